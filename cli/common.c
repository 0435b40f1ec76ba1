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

ca_model *cli_load_model(const char *path, const ca_model_params *p, int bf16, int *rc) {
    ca_model_params mp = *p;
    if (bf16) mp.compute = CA_COMPUTE_BF16; /* the compute path is fixed at load (weights packed for it) */
    ca_status st;
    ca_model *m = ca_model_load(path, &mp, &st);
    if (m) { *rc = CLI_OK; return m; }
    if (bf16 && st == CA_E_UNSUPPORTED) *rc = cli_error("--bf16: this CPU or build has no AVX512-BF16 kernels; run without --bf16");
    else *rc = cli_status(st);
    return NULL;
}

int cli_status_file(ca_status st, const char *path) {
    const char *d = ca_last_error();
    if (!d || !*d) d = ca_strerror(st);
    if (path && strstr(d, path)) return cli_error("%s", d);
    return cli_error("%s: %s", path, d);
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Not a terminal (a log file, CI): one line per 5% step of each stage, no carriage returns. A few
 * stages may interleave (fewshot's runs and each run's epochs), so each keeps its own step. */
static void progress_line(const char *stage, int64_t done, int64_t total, double t) {
    static struct { char name[32]; int step; double t0; } st[8];
    static int n;
    int k = 0;
    while (k < n && strncmp(st[k].name, stage, sizeof st[k].name - 1) != 0) k++;
    if (k == n) {
        if (n < 8) n++;
        else k = 7;
        snprintf(st[k].name, sizeof st[k].name, "%s", stage);
        st[k].step = 0; st[k].t0 = t;
    }
    if (done == 0 || done < st[k].step * total / 20) { st[k].step = 0; st[k].t0 = t; }   /* restarted */
    int step = (int)(20 * done / total);
    if (step <= st[k].step) return;
    st[k].step = step;
    double el = t - st[k].t0, rate = el > 0 ? done / el : 0, eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "clipadapt: %s: %3.0f%% (%lld/%lld), %.1f/s, ETA %.0f s\n", stage, 100.0 * done / total,
            (long long)done, (long long)total, rate, eta);
}

int cli_progress(const char *stage, int64_t done, int64_t total, void *user) {
    (void)user;
    static int tty = -1;
    static double t0, last;
    static char cur[64];
    if (tty < 0) tty = getenv("CLIPADAPT_QUIET") && *getenv("CLIPADAPT_QUIET") && strcmp(getenv("CLIPADAPT_QUIET"), "0") ? 0 : isatty(2) ? 1 : 2;
    if (!tty || total <= 0) return 0;
    double t = now_s();
    if (tty == 2) { progress_line(stage, done, total, t); return 0; }
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
