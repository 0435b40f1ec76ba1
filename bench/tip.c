/* bench/tip.c — Tip-Adapter α/β search: the fast search (affinity once, one exp per β, per-class
 * sums) against the straightforward oracle (full cache logits by dense GEMM per (α, β) pair),
 * and Tip-Adapter-F training, on stanford_cars at 16 shots. Prints "name value" lines.
 * The oracle costs ~4000x a pair on the full grid, so it runs on a sub-grid and its full-grid
 * time is extrapolated per pair (said so in the output). */
#include "adapt/tip.h"
#include "core/core.h"

#include <stdio.h>

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
