/* cmd_fewshot.c — `clipadapt fewshot`: fit methods × K on a feature set, print the accuracy
 * table, and optionally write JSON records and an SVG plot. Methods come from the registry, so
 * new ones appear here without changes. All output is written only after every run succeeded. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 64

/* Comma list of K into ks (strictly positive); returns the count or -1. */
static int parse_shots(const char *s, int *ks) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (n == MAX_LIST || cli_int(tok, &v) || v < 1 || v > 1000000) return -1;
        ks[n++] = (int)v;
    }
    return n ? n : -1;
}

/* --seeds: "N" (seeds 1..N) or a comma list of distinct seeds; returns the count or -1. */
static int parse_seeds(const char *s, uint64_t *out) {
    long v;
    if (!strchr(s, ',')) {
        if (cli_int(s, &v) || v < 1 || v > MAX_LIST) return -1;
        for (long i = 0; i < v; i++) out[i] = (uint64_t)(i + 1);
        return (int)v;
    }
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == MAX_LIST || cli_int(tok, &v) || v < 0) return -1;
        for (int j = 0; j < n; j++) if (out[j] == (uint64_t)v) return -1;
        out[n++] = (uint64_t)v;
    }
    return n ? n : -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int quiet;
static int progress(const char *stage, int64_t done, int64_t total, void *user) {
    return quiet ? 0 : cli_progress(stage, done, total, user);
}

typedef struct { uint64_t *seeds; int *n; } seeds_arg;
static int take_seeds(const char *cmd, const char *v, void *dst) {
    seeds_arg *a = dst;
    if ((*a->n = parse_seeds(v, a->seeds)) > 0) return 0;
    cli_usage(cmd, "--seeds wants N (seeds 1..N, N <= %d) or a comma list of distinct seeds, got '%s'", MAX_LIST, v);
    return -1;
}
static int take_select(const char *cmd, const char *v, void *dst) {
    if ((((ca_protocol *)dst)->select = ca_select_from_name(v)) >= 0) return 0;
    cli_usage(cmd, "--select wants val, kshot-val or none, got '%s'", v);
    return -1;
}
static int take_sample(const char *cmd, const char *v, void *dst) {
    if (!strcmp(v, "pool")) ((ca_protocol *)dst)->sample = CA_SAMPLE_POOL;
    else if (!strcmp(v, "fixed")) ((ca_protocol *)dst)->sample = CA_SAMPLE_FIXED;
    else { cli_usage(cmd, "--sample wants pool or fixed, got '%s'", v); return -1; }
    return 0;
}

int cmd_fewshot(int argc, char **argv) {
    const char *C = "fewshot", *features = NULL, *method = "all", *shots = "all", *json = NULL, *plot = NULL;
    ca_fit_params p = ca_fit_default_params();
    ca_protocol proto = ca_protocol_default_params();
    ca_report_params rp = ca_report_default_params();
    uint64_t seeds[MAX_LIST];
    int nseeds = 0, seed_given = 0, no_timings = 0;
    seeds_arg sa = {seeds, &nseeds};
    cli_opt t[40];
    int n = 0;
    t[n++] = cli_opt_str("--features", &features, "FILE", "feature set (.safetensors) (required)");
    t[n++] = cli_opt_str("--method", &method, "NAME|all", "a method, a comma list, or all (default all): every registered method "
                                                          "the set supports (those needing text weights are skipped when it has none)");
    t[n++] = cli_opt_str("--shots", &shots, "K|all", "K, a comma list, or all available (default all); with --sample pool any K "
                                                     "below the largest train split");
    t[n++] = (cli_opt){.name = "--seeds", .kind = CLI_FN, .fn = take_seeds, .dst = &sa, .metavar = "N|a,b,...",
                       .help = "run every method x K once per seed (N alone: seeds 1..N) and report mean ± sample std over "
                               "seeds (table, JSON aggregate, SVG error bars). A seed changes the training randomness always; "
                               "the K-shot sample too when the set holds a larger train split (K of its shots per class, flagged "
                               "resampled; see --sample); the kshot-val "
                               "draw. The images themselves are sampled by `extract --seed`"};
    t[n++] = (cli_opt){.name = "--select", .kind = CLI_FN, .fn = take_select, .dst = &proto, .metavar = "val|kshot-val|none",
                       .help = "validation data for hyper-parameters and epochs: all of val (default); min(K,4) val images per "
                               "class drawn with the seed; none (each method's published fixed values). Test is evaluated "
                               "once per run under every regime"};
    t[n++] = (cli_opt){.name = "--sample", .kind = CLI_FN, .fn = take_sample, .dst = &proto, .metavar = "pool|fixed",
                       .help = "K-shot training set: pool (default) draws K per class from the largest train split with the "
                               "seed when K is smaller; fixed uses the stored train.{K}shot split"};
    t[n++] = cli_opt_flag("--no-timings", &no_timings, "leave wall-clock fields out of the JSON, so that the same command (and "
                                                       "--threads) gives byte-identical JSON");
    t[n++] = cli_opt_str("--json", &json, "PATH|-", "write JSON records (an object for one run, else an array); with '-' the "
                                                    "JSON goes to stdout and the table to stderr");
    t[n++] = cli_opt_str("--plot", &plot, "FILE.svg", "write test accuracy vs K, one line per method");
    t[n++] = cli_opt_flag("--quiet", &quiet, "no progress output");
    int nt0 = n;
    n += cli_opts_training(t + n, &p);
    char footer[4096] = "methods:\n";
    for (const char *const *m = ca_method_names(); *m; m++)
        snprintf(footer + strlen(footer), sizeof footer - strlen(footer), "  %-16s %s\n", *m, ca_method_help(*m));
    cli_cmd cmd = {"fewshot", "--features FILE [options]",
                   "Fit few-shot methods on a feature set (train.{K}shot, val, test; see `extract`), choose\n"
                   "hyper-parameters and epochs on val only, and report test accuracy once per run. The\n"
                   "training and search options are those of `clipadapt fit`.",
                   footer, t, n, NULL};
    (void)nt0;
    int r = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (r) return r == CLI_HELP ? CLI_OK : r;
    if (no_timings) rp.timings = 0;
    for (int i = 1; i < argc; i++)   /* --seed given explicitly (it conflicts with --seeds) */
        if (!strcmp(argv[i], "--seed") || !strncmp(argv[i], "--seed=", 7)) seed_given = 1;
    if (!features) return cli_usage(C, "--features FILE is required");
    if (seed_given && nseeds) return cli_usage(C, "give --seed S or --seeds, not both");
    rp.aggregate = nseeds > 0;   /* --seeds: the aggregate JSON, even for one seed */
    if (!nseeds) seeds[nseeds++] = p.seed;
    rp.features_path = features;

    /* methods: validate names before the (slow) load */
    const char *methods[MAX_LIST];
    char mbuf[1024];
    int nm = 0, explicit_methods = strcmp(method, "all") != 0;
    if (!explicit_methods) {
        for (const char *const *m = ca_method_names(); *m && nm < MAX_LIST; m++) methods[nm++] = *m;
    } else {
        snprintf(mbuf, sizeof mbuf, "%s", method);
        for (char *save = NULL, *tok = strtok_r(mbuf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (ca_method_needs_text(tok) < 0) return cli_usage(C, "unknown method '%s' (see --help for the list)", tok);
            if (nm == MAX_LIST) return cli_usage(C, "too many methods");
            methods[nm++] = tok;
        }
        if (nm == 0) return cli_usage(C, "--method is empty");
    }

    cli_file in[] = {{"--features", features, 0}}, out[] = {{"--json", json, 0}, {"--plot", plot, 0}};
    int rc0 = cli_check_outputs(in, 1, out, 2);
    if (rc0) return rc0;
    double t_start = now_s();
    ca_status st;
    ca_featureset *fs = ca_features_load(features, &st);
    if (!fs) return cli_status(st);
    if (!quiet) p.progress = progress;
    int avail[MAX_LIST], na = ca_features_shots(fs, avail, MAX_LIST), ks[MAX_LIST], nk;
    if (na > MAX_LIST) na = MAX_LIST;
    if (!strcmp(shots, "all")) {
        memcpy(ks, avail, sizeof(int) * (size_t)na);
        nk = na;
    } else if ((nk = parse_shots(shots, ks)) < 0) {
        ca_features_free(fs);
        return cli_usage(C, "--shots wants K, a comma list of K, or all; got '%s'", shots);
    }
    for (int j = 0; j < nk; j++) {
        int found = 0;
        for (int a = 0; a < na; a++) found |= avail[a] == ks[j] || (proto.sample == CA_SAMPLE_POOL && avail[a] > ks[j]);
        if (!found) {
            char list[256] = "";
            for (int a = 0; a < na; a++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", a ? "," : "", avail[a]);
            ca_features_free(fs);
            return cli_error("%s: no %d-shot split (train.%dshot); available K: %s", features, ks[j], ks[j], list);
        }
    }
    /* a set without validation data serves --select none only: one line here, not one per run */
    ca_split vsp;
    if (proto.select != CA_SELECT_NONE && (ca_features_split(fs, "val", &vsp) != CA_OK || vsp.n == 0)) {
        ca_features_free(fs);
        return cli_error("%s: the feature set has no validation split (no val.features rows): --select %s needs one; "
                         "use --select none (each method's published fixed values)", features, ca_select_name(proto.select));
    }
    /* --method all: keep what this set supports; a named method that cannot run is an error */
    if (!explicit_methods && !ca_features_text(fs)) {
        int keep = 0;
        for (int j = 0; j < nm; j++) {
            if (ca_method_needs_text(methods[j]) == 1) fprintf(stderr, "clipadapt: note: skipping %s (needs text.weights, which %s lacks)\n", methods[j], features);
            else methods[keep++] = methods[j];
        }
        nm = keep;
        if (nm == 0) { ca_features_free(fs); return cli_error("%s: no registered method runs without text.weights", features); }
    }

    int total = nseeds * nm * nk, done = 0, rc = CLI_OK, skip[MAX_LIST] = {0};
    ca_run_result *runs = calloc((size_t)total, sizeof *runs);
    if (!runs) { ca_features_free(fs); return cli_error("out of memory"); }
    for (int s = 0; s < nseeds && rc == CLI_OK; s++)
        for (int j = 0; j < nm && rc == CLI_OK; j++)
            for (int k = 0; k < nk && rc == CLI_OK && !skip[j]; k++) {
                progress("fewshot", done, total, NULL);
                p.seed = seeds[s];
                if ((st = ca_run_fewshot_protocol(fs, methods[j], ks[k], &p, &proto, &runs[done])) == CA_OK) { done++; continue; }
                /* --method all: a method that refuses this selection regime is left out, said once */
                if (!explicit_methods && st == CA_E_ARG && proto.select != CA_SELECT_VAL && s == 0 && k == 0) {
                    fprintf(stderr, "clipadapt: note: skipping %s (%s)\n", methods[j], ca_last_error());
                    skip[j] = 1;
                } else {
                    rc = cli_error("%s: %s at K=%d, seed %llu: %s", features, methods[j], ks[k], (unsigned long long)seeds[s], ca_last_error());
                }
            }
    if (rc == CLI_OK && done == 0) rc = cli_error("%s: no method ran under --select %s", features, ca_select_name(proto.select));
    if (rc == CLI_OK) progress("fewshot", done, total, NULL);
    char *table = NULL, *js = NULL, *svg = NULL;
    if (rc == CLI_OK && !(table = ca_report_table(runs, done))) rc = cli_status(CA_E_NOMEM);
    if (rc == CLI_OK && json && !(js = ca_report_json_ex(runs, done, &rp))) rc = cli_status(CA_E_NOMEM);
    if (rc == CLI_OK && plot) {
        char title[256];
        const char *base = strrchr(features, '/');
        snprintf(title, sizeof title, "few-shot test accuracy: %s", base ? base + 1 : features);
        if (!(svg = ca_plot_svg(runs, done, title))) rc = cli_status(CA_E_NOMEM);
    }
    /* files first (atomic), then stdout: a failed write leaves nothing half-done */
    if (rc == CLI_OK && js && strcmp(json, "-") != 0 && (st = ca_write_text(json, js)) != CA_OK) rc = cli_status(st);
    if (rc == CLI_OK && svg && (st = ca_write_text(plot, svg)) != CA_OK) rc = cli_status(st);
    if (rc == CLI_OK) {
        int json_stdout = js && !strcmp(json, "-");
        fputs(table, json_stdout ? stderr : stdout);
        if (json_stdout) fputs(js, stdout);
        fflush(stdout);
        fprintf(stderr, "clipadapt: fewshot: %d run%s, total %.2f s (load included)\n", done, done == 1 ? "" : "s", now_s() - t_start);
    }
    free(table); free(js); free(svg);
    for (int j = 0; j < done; j++) ca_run_free(&runs[j]);
    free(runs);
    ca_features_free(fs);
    return rc;
}
