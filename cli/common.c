/* common.c — error reporting, option parsing and the progress bar shared by all commands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("clipadapt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "clipadapt %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'clipadapt %s --help')\n", cmd);
    va_end(ap);
    return CLI_USAGE;
}

int cli_status(ca_status st) {
    const char *d = ca_last_error();
    return cli_error("%s", d && *d ? d : ca_strerror(st));
}

int cli_use_bf16(ca_model *m) {
    ca_status st = ca_model_set_compute(m, CA_COMPUTE_BF16);
    if (st == CA_E_UNSUPPORTED) return cli_error("--bf16: this CPU or build has no AVX512-BF16 kernels; run without --bf16");
    return st ? cli_status(st) : CLI_OK;
}

int cli_take(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') { *val = a + n + 1; return 1; }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) return -1;
    *val = argv[++*i];
    return 1;
}

int cli_int(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) return -1;
    *out = v;
    return 0;
}

int cli_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_act(const char *s, int *out) {
    if (!strcmp(s, "quickgelu") || !strcmp(s, "quick_gelu")) *out = CA_ACTIVATION_QUICKGELU;
    else if (!strcmp(s, "gelu")) *out = CA_ACTIVATION_GELU;
    else return -1;
    return 0;
}

void cli_log(int level, const char *msg, void *user) {
    (void)user;
    if (level < 1 || (level == 1 && getenv("CLIPADAPT_QUIET"))) return;
    fprintf(stderr, "clipadapt: %s: %s\n", level >= 2 ? "warning" : "note", msg);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int cli_progress(const char *stage, int64_t done, int64_t total, void *user) {
    (void)user;
    static int tty = -1;
    static double t0, last;
    static char cur[64];
    if (tty < 0) tty = isatty(2) && !getenv("CLIPADAPT_QUIET");
    if (!tty || total <= 0) return 0;
    double t = now_s();
    if (strncmp(cur, stage, sizeof cur - 1) != 0 || done == 0) {
        snprintf(cur, sizeof cur, "%s", stage);
        t0 = t; last = 0;
    }
    if (done < total && t - last < 0.1) return 0;
    last = t;
    double frac = (double)done / (double)total, el = t - t0;
    double rate = el > 0 ? done / el : 0, eta = rate > 0 ? (total - done) / rate : 0;
    int w = 30, fill = (int)(frac * w);
    char bar[64];
    for (int k = 0; k < w; k++) bar[k] = k < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r%-14.14s [%s] %3.0f%% %lld/%lld  %.1f/s  ETA %.0fs  ", stage, bar, 100 * frac,
            (long long)done, (long long)total, rate, eta);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}
