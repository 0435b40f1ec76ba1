/* bench/tip.c — Tip-Adapter α/β search: the fast search (affinity once, one exp per β, per-class
 * sums) against the straightforward oracle (full cache logits by dense GEMM per (α, β) pair),
 * and Tip-Adapter-F training, on stanford_cars at 16 shots. Prints "name value" lines.
 * The oracle costs ~4000x a pair on the full grid, so it runs on a sub-grid and its full-grid
 * time is extrapolated per pair (said so in the output).
 * With a feature set as second argument (e.g. the synthetic ImageNet-size one of gen_features.c),
 * it times instead the phases of `fewshot` for tip-adapter and tip-cache at 16 shots: the fit
 * (the α/β or β search on val) and the scoring of val and of test, each wall and process CPU
 * seconds, min and median of REPS runs: `tip REPS FEATURES`. */
#include "adapt/tip.h"
#include "core/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* "name wall_min wall_median cpu_min cpu_median" of reps samples (sorted in place) */
static void report(const char *name, double *wall, double *cpu, int reps) {
    qsort(wall, (size_t)reps, sizeof(double), cmp_d);
    qsort(cpu, (size_t)reps, sizeof(double), cmp_d);
    printf("%-26s wall min %7.3f s median %7.3f s   CPU min %7.3f s median %7.3f s   (%d runs)\n", name, wall[0],
           wall[reps / 2], cpu[0], cpu[reps / 2], reps);
}

static double accuracy(const ca_classifier *c, const ca_split *s, double *wall, double *cpu) {
    float *lg = malloc(sizeof(float) * (size_t)s->n * (size_t)ca_classifier_num_classes(c));
    double t = ca_now(), u = cpu_s(), acc = -1;
    if (lg && ca_classifier_logits(c, s->x, s->n, lg) == CA_OK) acc = ca_accuracy(lg, s->y, s->n, ca_classifier_num_classes(c));
    *wall = ca_now() - t;
    *cpu = cpu_s() - u;
    free(lg);
    return acc;
}

/* The phases of fewshot's tip-adapter and tip-cache fits on one feature set, 16 shots. */
static int phases(const char *path, int reps) {
    ca_status st;
    ca_featureset *fs = ca_features_load(path, &st);
    if (!fs) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    ca_fit_data d = {.num_classes = ca_features_num_classes(fs), .dim = ca_features_dim(fs), .text_w = ca_features_text(fs)};
    ca_split test;
    if (ca_features_split(fs, "train.16shot", &d.train) || ca_features_split(fs, "val", &d.val) ||
        ca_features_split(fs, "test", &test)) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    printf("threads %d\nval_rows %d\ntest_rows %d\ncache_keys %d\nclasses %d\n", ca_default_threads(), d.val.n, test.n,
           d.train.n, d.num_classes);
    const char *methods[] = {"tip-adapter", "tip-cache"};
    for (int mi = 0; mi < 2; mi++) {
        double fw[64], fc[64], vw[64], vc[64], tw[64], tc[64], va = 0, ta = 0;
        ca_classifier *c = NULL;
        for (int r = 0; r < reps; r++) {
            ca_classifier_free(c);
            double t = ca_now(), u = cpu_s();
            c = ca_fit(methods[mi], &d, NULL, &st);
            fw[r] = ca_now() - t; fc[r] = cpu_s() - u;
            if (!c) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
            va = accuracy(c, &d.val, &vw[r], &vc[r]);
            ta = accuracy(c, &test, &tw[r], &tc[r]);
        }
        char name[64];
        snprintf(name, sizeof name, "%s_fit", methods[mi]);
        report(name, fw, fc, reps);
        snprintf(name, sizeof name, "%s_score_val", methods[mi]);
        report(name, vw, vc, reps);
        snprintf(name, sizeof name, "%s_score_test", methods[mi]);
        report(name, tw, tc, reps);
        printf("%s_chose alpha %g beta %g val %.2f%% test %.2f%%\n", methods[mi], ca_classifier_param(c, "alpha", 0),
               ca_classifier_param(c, "beta", 0), va, ta);
        ca_classifier_free(c);
    }
    ca_features_free(fs);
    return 0;
}

static double best_of(int reps, ca_status (*fn)(const ca_tip_search_in *, const ca_fit_params *, ca_tip_choice *),
                      const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = ca_now();
        if (fn(in, p, out) != CA_OK) { fprintf(stderr, "search failed: %s\n", ca_last_error()); exit(1); }
        t = ca_now() - t;
        best = t < best ? t : best;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *shared = getenv("SHARED") ? getenv("SHARED") : "../shared";
    char path[1024];
    snprintf(path, sizeof path, "%s/features/stanford_cars.safetensors", shared);
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    if (reps < 1 || reps > 64) { fprintf(stderr, "usage: tip [REPS 1..64] [FEATURES]\n"); return 2; }
    if (argc > 2) return phases(argv[2], reps);
    ca_status st;
    ca_featureset *fs = ca_features_load(path, &st);
    if (!fs) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    ca_fit_data d = {.num_classes = ca_features_num_classes(fs), .dim = ca_features_dim(fs), .text_w = ca_features_text(fs)};
    ca_features_split(fs, "train.16shot", &d.train);
    ca_features_split(fs, "val", &d.val);
    int n = d.val.n, N = d.train.n, C = d.num_classes, D = d.dim;
    printf("threads %d\nval_rows %d\ncache_keys %d\nclasses %d\n", ca_default_threads(), n, N, C);

    double t = ca_now();
    float *clip = malloc(sizeof(float) * (size_t)n * C), *aff = malloc(sizeof(float) * (size_t)n * N);
    ca_logits_linear(d.val.x, n, d.text_w, C, D, 100.0f, clip);
    ca_logits_linear(d.val.x, n, d.train.x, N, D, 1.0f, aff);
    printf("affinity_and_clip_s %.4f\n", ca_now() - t);
    ca_tip_search_in in = {.n = n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = d.train.y, .y = d.val.y};

    ca_fit_params full = ca_fit_default_params(), sub = full;
    sub.search_steps_beta = 10; sub.search_steps_alpha = 4; /* 40 pairs */
    ca_tip_choice a, b, c;
    double fast_full = best_of(reps, ca_tip_search, &in, &full, &a);
    double fast_sub = best_of(reps, ca_tip_search, &in, &sub, &b);
    double ref_sub = best_of(1, ca_tip_search_ref, &in, &sub, &c);
    int pairs_full = full.search_steps_beta * full.search_steps_alpha, pairs_sub = sub.search_steps_beta * sub.search_steps_alpha;
    printf("search_fast_full_grid_s %.4f   # %dx%d grid, best of %d; chose alpha %g beta %g val %.2f%%\n",
           fast_full, full.search_steps_beta, full.search_steps_alpha, reps, a.alpha, a.beta, a.acc);
    printf("search_fast_subgrid_s %.4f   # %d pairs, best of %d\n", fast_sub, pairs_sub, reps);
    printf("search_ref_subgrid_s %.4f   # %d pairs, one run; same choice as fast: %s\n", ref_sub, pairs_sub,
           b.alpha == c.alpha && b.beta == c.beta && b.acc == c.acc ? "yes" : "NO");
    printf("search_ref_full_grid_s_extrapolated %.2f   # %d pairs x per-pair time\n", ref_sub / pairs_sub * pairs_full, pairs_full);
    printf("speedup_subgrid %.1f\n", ref_sub / fast_sub);
    printf("speedup_full_grid_extrapolated %.1f\n", ref_sub / pairs_sub * pairs_full / fast_full);

    /* Tip-Adapter-F end to end (training, val selection, search) */
    double best = 1e30;
    double acc = 0;
    int freps = reps > 2 ? 2 : reps;
    for (int r = 0; r < freps; r++) {
        t = ca_now();
        ca_classifier *clf = ca_fit("tip-adapter-f", &d, NULL, &st);
        t = ca_now() - t;
        if (!clf) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
        acc = ca_classifier_param(clf, "search_val_acc", 0);
        ca_classifier_free(clf);
        best = t < best ? t : best;
    }
    printf("tipf_fit_16shot_s %.3f   # 20 epochs + val selection + search, best of %d; val %.2f%%\n", best, freps, acc);
    free(clip); free(aff);
    ca_features_free(fs);
    return 0;
}
