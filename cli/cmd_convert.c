/* cmd_convert.c — `clipadapt convert IN OUT.safetensors`: any checkpoint clipadapt reads
 * (PyTorch zip / TorchScript / legacy files, sharded indexes, folders, safetensors) written as one
 * safetensors file, atomically, with the tensor names and dtypes as read. Not a model check:
 * the tensors are copied whatever they hold (use `clipadapt info` for that).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char *HELP =
    "usage: clipadapt convert IN OUT.safetensors\n\n"
    "Read a checkpoint in any format clipadapt reads, chosen by content: safetensors, a PyTorch\n"
    "torch.save file (.pt/.bin/.pth, zip or legacy), an OpenAI TorchScript archive (ViT-B-32.pt),\n"
    "a sharded checkpoint's *.index.json or a folder holding one; write every tensor, with its\n"
    "name and dtype, to OUT.safetensors (written to a temporary and renamed: no partial output).\n"
    "Pickles are read by a restricted reader: anything but data is refused, nothing is executed.\n"
    "Training checkpoints are unwrapped ('state_dict'/'model') and a 'module.' prefix stripped.\n"
    "The metadata records the source format; an OpenCLIP open_clip_config.json (which says the\n"
    "activation) is not part of the weights: keep it beside the output.\n";

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(HELP, stdout); return CLI_OK; }
        if (argv[i][0] == '-' && argv[i][1]) return cli_usage("convert", "unknown option '%s'", argv[i]);
        if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else return cli_usage("convert", "too many arguments ('%s')", argv[i]);
    }
    if (!in || !out) return cli_usage("convert", "IN and OUT.safetensors are required");

    ca_status st;
    ca_st_file *f = ca_weights_open(in, &st);
    if (!f) return cli_status(st);
    int rc = CLI_FAIL;
    ca_st_writer *w = ca_st_writer_new();
    if (!w) { cli_error("out of memory"); goto out; }
    for (int i = 0; i < ca_st_metadata_count(f); i++) {
        const char *k = ca_st_metadata_key(f, i);
        if ((st = ca_st_writer_metadata(w, k, ca_st_metadata(f, k)))) { cli_status(st); goto out; }
    }
    if ((st = ca_st_writer_metadata(w, "clipadapt.source_format", ca_st_format(f)))) { cli_status(st); goto out; }
    for (int i = 0; i < ca_st_count(f); i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        if ((st = ca_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data))) { cli_status(st); goto out; }
    }
    if ((st = ca_st_writer_save(w, out))) { cli_status(st); goto out; }
    fprintf(stderr, "clipadapt: convert: %s (%s, %d tensors) -> %s\n", ca_st_path(f), ca_st_format(f), ca_st_count(f), out);
    rc = CLI_OK;
out:
    ca_st_writer_free(w);
    ca_st_close(f);
    return rc;
}
