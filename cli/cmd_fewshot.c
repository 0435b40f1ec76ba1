/* cmd_fewshot.c — `clipadapt fewshot`: placeholder until the Tip-Adapter issue lands. */
#include "cli.h"

int cmd_fewshot(int argc, char **argv) {
    (void)argc; (void)argv;
    return cli_error("fewshot: not implemented yet");
}
