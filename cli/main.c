/* main.c — the clipadapt program: dispatches to one function per sub-command. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const cli_command COMMANDS[] = {
    {"preprocess", cmd_preprocess, "decode images and write CLIP-preprocessed tensors (Pillow-exact)"},
    {"encode", cmd_encode, "encode preprocessed images and/or tokens with a CLIP checkpoint"},
    {"info", cmd_info, "print the format, architecture and activation of a CLIP checkpoint"},
    {"convert", cmd_convert, "rewrite a checkpoint (PyTorch, TorchScript, sharded...) as one safetensors file"},
    {"fewshot", cmd_fewshot, "run few-shot methods on a feature set; print accuracy table, JSON, SVG plot"},
    {"extract", cmd_extract, "encode an image folder or CoOp split with CLIP into a feature set"},
    {"fit", cmd_fit, "fit a few-shot method on a feature set and save the classifier"},
    {"eval", cmd_eval, "score a saved classifier on a split of a feature set"},
    {"predict", cmd_predict, "classify image files with a CLIP model and a saved classifier"},
    {"merge", cmd_merge, "join the parts of a job split with --shard I/N into the single-process file"},
    {"serve", cmd_serve, "serve classifiers over HTTP; add examples and classes while it runs"},
    {"tokenize", cmd_tokenize, "CLIP BPE token ids of each stdin line, as JSON arrays"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *fp) {
    fprintf(fp, "clipadapt %s — adapt CLIP to your few-shot image classification task\n\n", CA_VERSION);
    fprintf(fp, "usage: clipadapt <command> [options]   (clipadapt <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(fp, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv) {
    /* one write at the end for piped output, so a failed write is seen (with its reason) there */
    if (!isatty(1)) setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc < 2) { usage(stderr); return CLI_USAGE; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) { usage(stdout); return cli_finish_stdout(CLI_OK); }
    /* CLIPADAPT_CPU naming a path this CPU lacks is refused before any work */
    ca_status st;
    const char *cpu = ca_cpu_path(&st);
    if (!cpu) return cli_status(st);
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("clipadapt %s (kernels: %s)\n", ca_version(), cpu);
        return cli_finish_stdout(CLI_OK);
    }
    ca_set_log(cli_log, NULL);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) {
#ifdef CA_MPI
            return cli_finish_stdout(cli_mpi_run(COMMANDS[i].run, argc - 1, argv + 1));
#else
            return cli_finish_stdout(COMMANDS[i].run(argc - 1, argv + 1));
#endif
        }
    fprintf(stderr, "clipadapt: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
