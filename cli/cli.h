/* cli.h — shared pieces of the clipadapt program: the command table, error reporting that turns
 * statuses into one-line messages, option parsing, and the terminal progress bar. */
#ifndef CA_CLI_H
#define CA_CLI_H

#include "clipadapt.h"
#include <stdint.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 runtime failure (bad input, I/O), 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Print "clipadapt: error: <msg>" and return CLI_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "clipadapt <cmd>: <msg>" plus a hint to --help, return CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the library's detail for a failed status (ca_last_error, else ca_strerror), return CLI_FAIL. */
int cli_status(ca_status st);
/* Load a model for the CLI: BF16 compute when bf16 (a clear message when the CPU lacks it).
 * Returns NULL with the error printed and the exit code in *rc. */
ca_model *cli_load_model(const char *path, const ca_model_params *p, int bf16, int *rc);
/* The same, prefixed with the user's file the failure concerns unless the detail names it. */
int cli_status_file(ca_status st, const char *path);

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

/* A file a command reads or writes, named by the flag it came from. dir: an input folder whose
 * every file is an input (--images). */
typedef struct { const char *flag, *path; int dir; } cli_file;
/* The output policy, run before any work: refuse an output that is the same file as an input
 * (device and inode) or lies inside an input folder, an existing directory, an output given
 * twice, or one whose folder cannot be written. NULL paths are skipped; "-" is stdout (once). */
int cli_check_outputs(const cli_file *in, int nin, const cli_file *out, int nout);
/* Flush and close stdout; on a write error print it with the reason and return CLI_FAIL, else rc. */
int cli_finish_stdout(int rc);

/* ---- the option table (opts.c): one row per flag; every command parses and documents its flags
 * from rows, most of them shared, so the same thing has the same flag everywhere ---- */
enum { CLI_FLAG, CLI_STR, CLI_INT, CLI_U64, CLI_DBL, CLI_PAIR_DBL, CLI_PAIR_INT, CLI_ENUM, CLI_FN };
enum { CLI_HELP = -1 };   /* cli_parse printed --help: the command returns CLI_OK */
typedef struct {
    const char *name, *alias;       /* "--init-alpha", and an accepted older spelling or NULL */
    int kind;                       /* CLI_*: the type behind dst (int, uint64_t, double, const char *) */
    void *dst, *dst2;               /* where the value goes (dst2: second of a pair) */
    double lo, hi;                  /* inclusive range of numbers */
    const char *const *choices;     /* CLI_ENUM: names, the index is stored as int */
    int (*fn)(const char *cmd, const char *v, void *dst);   /* CLI_FN: non-zero after printing usage */
    const char *metavar, *help;     /* for --help */
    const char *section;            /* a --help heading printed before this row, or NULL */
} cli_opt;
typedef struct {
    const char *name, *usage, *about, *footer;   /* footer may be NULL */
    const cli_opt *opts;
    int nopts;
    int *short_v;                   /* "-v" sets it (--verbose), or NULL */
} cli_cmd;
cli_opt cli_opt_str(const char *name, const char **dst, const char *metavar, const char *help);
cli_opt cli_opt_flag(const char *name, int *dst, const char *help);
cli_opt cli_opt_int(const char *name, int *dst, double lo, double hi, const char *metavar, const char *help);
cli_opt cli_opt_dbl(const char *name, double *dst, double lo, double hi, const char *metavar, const char *help);
/* --act quickgelu|gelu into *dst (CA_ACTIVATION_*; left as is when absent): extract, encode,
 * predict and info. */
cli_opt cli_opt_act(int *dst);
/* The training and search options shared by fit and fewshot (and any command that fits), into t
 * (room for 16); returns the count. */
int cli_opts_training(cli_opt *t, ca_fit_params *p);
/* Parse argv[1..] against c's rows. Positional arguments go to pos (room for argc) when given,
 * else are usage errors. Returns CLI_OK, CLI_HELP (help printed), or CLI_USAGE (message printed). */
int cli_parse(const cli_cmd *c, int argc, char **argv, const char **pos, int *npos);
void cli_help(const cli_cmd *c, FILE *fp);

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
int cmd_merge(int argc, char **argv);
/* build/clipadapt-mpi only (CA_MPI): run an extract or predict command as rank R of N, each rank
 * a --shard R/N part beside --output, rank 0 merging them; other commands run on rank 0. */
int cli_mpi_run(int (*run)(int, char **), int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
