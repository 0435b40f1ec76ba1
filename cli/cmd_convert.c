/* cmd_convert.c — `clipadapt convert IN OUT.safetensors`: any checkpoint clipadapt reads
 * (PyTorch zip / TorchScript / legacy files, sharded indexes, folders, safetensors) written as one
 * safetensors file, atomically, with the tensor names and dtypes as read. Not a model check:
 * the tensors are copied whatever they hold (use `clipadapt info` for that).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_convert(int argc, char **argv) {
    cli_cmd cmd = {"convert", "IN OUT.safetensors",
                   "Read a checkpoint in any format clipadapt reads, chosen by content: safetensors, a PyTorch\n"
                   "torch.save file (.pt/.bin/.pth, zip or legacy), an OpenAI TorchScript archive (ViT-B-32.pt),\n"
                   "a sharded checkpoint's *.index.json or a folder holding one; write every tensor, with its\n"
                   "name and dtype, to OUT.safetensors (written to a temporary and renamed: no partial output;\n"
                   "'-' = stdout; OUT may not be an input). Pickles are read by a restricted reader: anything\n"
                   "but data is refused, nothing is executed. Training checkpoints are unwrapped\n"
                   "('state_dict'/'model') and a 'module.' prefix stripped. The metadata records the source\n"
                   "format; an OpenCLIP open_clip_config.json (which says the activation) is not part of the\n"
                   "weights: keep it beside the output.",
                   NULL, NULL, 0, NULL};
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) return cli_error("out of memory");
    int npos = 0, r = cli_parse(&cmd, argc, argv, pos, &npos);
    const char *in = npos > 0 ? pos[0] : NULL, *out = npos > 1 ? pos[1] : NULL;
    if (!r && npos > 2) r = cli_usage("convert", "too many arguments ('%s')", pos[2]);
    free(pos);
    if (r) return r == CLI_HELP ? CLI_OK : r;
    if (!in || !out) return cli_usage("convert", "IN and OUT.safetensors are required");

    cli_file fin[2] = {{"IN", in, 0}, {"IN", NULL, 0}}, fout[] = {{"OUT", out, 0}};
    if ((r = cli_check_outputs(fin, 1, fout, 1))) return r;
    ca_status st;
    ca_st_file *f = ca_weights_open(in, &st);
    if (!f) return cli_status(st);
    /* a folder's checkpoint is known once opened (reading only): check it too, before writing */
    fin[1].path = ca_st_path(f);
    int rc = cli_check_outputs(fin, 2, fout, 1);
    if (rc) { ca_st_close(f); return rc; }
    rc = CLI_FAIL;
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
