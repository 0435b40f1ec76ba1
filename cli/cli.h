/* cli.h — shared pieces of the clipadapt program: the command table, error reporting that turns
 * statuses into one-line messages, option parsing, and the terminal progress bar. */
#ifndef CA_CLI_H
#define CA_CLI_H

#include "clipadapt.h"
#include <stdint.h>

/* Exit codes: 0 success, 1 runtime failure (bad input, I/O), 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Print "clipadapt: error: <msg>" and return CLI_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "clipadapt <cmd>: <msg>" plus a hint to --help, return CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the library's detail for a failed status (ca_last_error, else ca_strerror), return CLI_FAIL. */
int cli_status(ca_status st);
/* --bf16: switch m to BF16 compute (CA_COMPUTE_BF16); a one-line error and CLI_FAIL when the CPU
 * or build lacks AVX512-BF16. */
int cli_use_bf16(ca_model *m);

/* "--name VALUE" or "--name=VALUE" at argv[*i]: returns 1 and sets *val (advancing *i past the
 * value), 0 when argv[*i] is another option, -1 when the value is missing. */
int cli_take(int argc, char **argv, int *i, const char *name, const char **val);
/* Strict number parsing: return 0 on success, -1 when s is not entirely a number. */
int cli_int(const char *s, long *out);
int cli_double(const char *s, double *out);
/* --act VALUE: "quickgelu" or "gelu" into *out (CA_ACTIVATION_*); -1 for anything else. */
int cli_act(const char *s, int *out);
/* Log sink for the library: notes (level >= 1) to stderr as "clipadapt: note: ..."; level 1
 * is hidden by CLIPADAPT_QUIET. Matches ca_log_fn. */
void cli_log(int level, const char *msg, void *user);

/* Progress callback: a bar with rate and ETA on stderr when it is a terminal, silent otherwise
 * (or when CLIPADAPT_QUIET is set). Matches ca_progress_fn; user is unused. */
int cli_progress(const char *stage, int64_t done, int64_t total, void *user);

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
} cli_command;

int cmd_fewshot(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
