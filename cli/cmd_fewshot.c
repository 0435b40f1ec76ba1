/* cmd_fewshot.c — `clipadapt fewshot`: fit methods × K on a feature set, print the accuracy
 * table, and optionally write JSON records and an SVG plot. Methods come from the registry, so
 * new ones appear here without changes. All output is written only after every run succeeded. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 64

static void help(void) {
    printf("usage: clipadapt fewshot --features FILE [options]\n\n"
           "Fit few-shot methods on a feature set (train.{K}shot, val, test; see `extract`), choose\n"
           "hyper-parameters and epochs on val only, and report test accuracy once per run.\n\n"
           "  --features FILE        feature set (.safetensors)                        (required)\n"
           "  --method NAME|all      a method, a comma list, or all (default all): every registered\n"
           "                         method the set supports (those needing text weights are\n"
           "                         skipped when the set has none)\n"
           "  --shots K|all          K, a comma list, or all available (default all); with --sample\n"
           "                         pool any K below the largest train split\n"
           "  --seed S               seed for every random choice (default 1)\n"
           "  --seeds N|a,b,...      run every method x K once per seed (N alone: seeds 1..N) and\n"
           "                         report mean ± sample std over seeds (table, JSON aggregate,\n"
           "                         SVG error bars). A seed changes the training randomness\n"
           "                         always; the K-shot sample too when the set holds a larger\n"
           "                         train split (K of its shots per class, flagged resampled;\n"
           "                         see --sample); the kshot-val draw. The images themselves are\n"
           "                         sampled by `extract --seed`\n"
           "  --select val|kshot-val|none\n"
           "                         validation data for hyper-parameters and epochs: all of val\n"
           "                         (default); min(K,4) val images per class drawn with the seed;\n"
           "                         none (each method's published fixed values). Test is\n"
           "                         evaluated once per run under every regime\n"
           "  --sample pool|fixed    K-shot training set: pool (default) draws K per class from the\n"
           "                         largest train split with the seed when K is smaller; fixed\n"
           "                         uses the stored train.{K}shot split\n"
           "  --no-timings           leave wall-clock fields out of the JSON, so that the same\n"
           "                         command (and --threads) gives byte-identical JSON\n"
           "  --search-scale SB,SA   Tip-Adapter grid scales for beta, alpha (default 20,10)\n"
           "  --search-steps NB,NA   Tip-Adapter grid steps for beta, alpha (default 200,20)\n"
           "  --init-alpha A         Tip-Adapter-F training alpha (default 1)\n"
           "  --init-beta B          Tip-Adapter-F training beta (default 1)\n"
           "  --epochs N             training epochs (default: the method's; Tip-Adapter-F 20)\n"
           "  --batch N              batch size (default: the method's; Tip-Adapter-F 256)\n"
           "  --lr X                 learning rate (default: the method's; Tip-Adapter-F 1e-3)\n"
           "  --weight-decay X       weight decay (default: the method's; Tip-Adapter-F 0.01)\n"
           "  --reduction R          CLIP-Adapter bottleneck D/R (default 4)\n"
           "  --ratio X              CLIP-Adapter residual ratio (default 0.2)\n"
           "  --ratio-mode M         fixed|search|learn (default fixed)\n"
           "  --optimizer O          default|sgd|adamw (default: the method's)\n"
           "  --warmup-epochs N      warm-up epochs (default: the method's)\n"
           "  --threads N            threads (default: all cores)\n"
           "  --json PATH|-          write JSON records (an object for one run, else an array);\n"
           "                         with '-' the JSON goes to stdout and the table to stderr\n"
           "  --plot FILE.svg        write test accuracy vs K, one line per method\n"
           "  --quiet                no progress bar\n\nmethods:\n");
    for (const char *const *m = ca_method_names(); *m; m++)
        printf("  %-16s %s\n", *m, ca_method_help(*m));
}

/* "a,b" -> two doubles */
static int pair_double(const char *s, double *a, double *b) {
    char buf[128];
    const char *comma = strchr(s, ',');
    if (!comma || (size_t)(comma - s) >= sizeof buf) return -1;
    memcpy(buf, s, (size_t)(comma - s));
    buf[comma - s] = 0;
    return cli_double(buf, a) || cli_double(comma + 1, b) ? -1 : 0;
}

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

int cmd_fewshot(int argc, char **argv) {
    const char *C = "fewshot", *features = NULL, *method = "all", *shots = "all", *json = NULL, *plot = NULL;
    ca_fit_params p = ca_fit_default_params();
    ca_protocol proto = ca_protocol_default_params();
    ca_report_params rp = ca_report_default_params();
    uint64_t seeds[MAX_LIST];
    int nseeds = 0, seed_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        long l;
        double d;
        int r;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { help(); return CLI_OK; }
        if (!strcmp(argv[i], "--quiet")) { quiet = 1; continue; }
        if (!strcmp(argv[i], "--no-timings")) { rp.timings = 0; continue; }
#define TAKE(name) ((r = cli_take(argc, argv, &i, name, &v)) < 0 ? (cli_usage(C, "%s needs a value", name), -1) : r)
#define NEED(ok, ...) do { if (!(ok)) return cli_usage(C, __VA_ARGS__); } while (0)
        if ((r = TAKE("--features")) != 0) { if (r < 0) return CLI_USAGE; features = v; }
        else if ((r = TAKE("--method")) != 0) { if (r < 0) return CLI_USAGE; method = v; }
        else if ((r = TAKE("--shots")) != 0) { if (r < 0) return CLI_USAGE; shots = v; }
        else if ((r = TAKE("--json")) != 0) { if (r < 0) return CLI_USAGE; json = v; }
        else if ((r = TAKE("--plot")) != 0) { if (r < 0) return CLI_USAGE; plot = v; }
        else if ((r = TAKE("--seed")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_int(v, &l) && l >= 0, "--seed wants a non-negative integer, got '%s'", v);
            p.seed = (uint64_t)l;
            seed_given = 1;
        } else if ((r = TAKE("--seeds")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED((nseeds = parse_seeds(v, seeds)) > 0, "--seeds wants N (seeds 1..N, N <= %d) or a comma list of distinct seeds, got '%s'", MAX_LIST, v);
        } else if ((r = TAKE("--select")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED((proto.select = ca_select_from_name(v)) >= 0, "--select wants val, kshot-val or none, got '%s'", v);
        } else if ((r = TAKE("--sample")) != 0) {
            if (r < 0) return CLI_USAGE;
            if (!strcmp(v, "pool")) proto.sample = CA_SAMPLE_POOL;
            else if (!strcmp(v, "fixed")) proto.sample = CA_SAMPLE_FIXED;
            else return cli_usage(C, "--sample wants pool or fixed, got '%s'", v);
        } else if ((r = TAKE("--search-scale")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!pair_double(v, &p.search_scale_beta, &p.search_scale_alpha) && p.search_scale_beta > 0 &&
                 p.search_scale_alpha > 0, "--search-scale wants SB,SA (positive numbers), got '%s'", v);
        } else if ((r = TAKE("--search-steps")) != 0) {
            double a, b;
            if (r < 0) return CLI_USAGE;
            NEED(!pair_double(v, &a, &b) && a >= 1 && b >= 1 && a <= 100000 && b <= 100000 && a == (int)a && b == (int)b,
                 "--search-steps wants NB,NA (integers in [1,100000]), got '%s'", v);
            p.search_steps_beta = (int)a; p.search_steps_alpha = (int)b;
        } else if ((r = TAKE("--init-alpha")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_double(v, &p.init_alpha), "--init-alpha wants a number, got '%s'", v);
        } else if ((r = TAKE("--init-beta")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_double(v, &p.init_beta) && p.init_beta >= 0, "--init-beta wants a number >= 0, got '%s'", v);
        } else if ((r = TAKE("--epochs")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_int(v, &l) && l >= 1 && l <= 100000, "--epochs wants an integer in [1,100000], got '%s'", v);
            p.epochs = (int)l;
        } else if ((r = TAKE("--batch")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_int(v, &l) && l >= 1 && l <= 1000000, "--batch wants a positive integer, got '%s'", v);
            p.batch = (int)l;
        } else if ((r = TAKE("--lr")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_double(v, &d) && d > 0, "--lr wants a positive number, got '%s'", v);
            p.lr = d;
        } else if ((r = TAKE("--weight-decay")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_double(v, &d) && d >= 0, "--weight-decay wants a number >= 0, got '%s'", v);
            p.weight_decay = d;
        } else if ((r = TAKE("--reduction")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_int(v, &l) && l >= 1 && l <= 65536, "--reduction wants a positive integer, got '%s'", v);
            p.reduction = (int)l;
        } else if ((r = TAKE("--ratio")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_double(v, &p.ratio), "--ratio wants a number, got '%s'", v);
        } else if ((r = TAKE("--ratio-mode")) != 0) {
            if (r < 0) return CLI_USAGE;
            if (!strcmp(v, "fixed")) p.ratio_mode = 0;
            else if (!strcmp(v, "search")) p.ratio_mode = 1;
            else if (!strcmp(v, "learn")) p.ratio_mode = 2;
            else return cli_usage(C, "--ratio-mode wants fixed, search or learn, got '%s'", v);
        } else if ((r = TAKE("--optimizer")) != 0) {
            if (r < 0) return CLI_USAGE;
            if (!strcmp(v, "default")) p.optimizer = 0;
            else if (!strcmp(v, "sgd")) p.optimizer = 1;
            else if (!strcmp(v, "adamw")) p.optimizer = 2;
            else return cli_usage(C, "--optimizer wants default, sgd or adamw, got '%s'", v);
        } else if ((r = TAKE("--warmup-epochs")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_int(v, &l) && l >= 0 && l <= 100000, "--warmup-epochs wants an integer >= 0, got '%s'", v);
            p.warmup_epochs = (int)l;
        } else if ((r = TAKE("--threads")) != 0) {
            if (r < 0) return CLI_USAGE;
            NEED(!cli_int(v, &l) && l >= 0 && l <= 4096, "--threads wants an integer >= 0, got '%s'", v);
            p.threads = (int)l;
        } else return cli_usage(C, "unknown option '%s'", argv[i]);
#undef TAKE
#undef NEED
    }
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
