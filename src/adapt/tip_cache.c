/* tip_cache.c — Tip-Adapter's cache model alone, without the zero-shot term: class scores
 * Σ_{keys of class c} exp(−β(1 − f·key)), β chosen on val. Needs no text weights.
 * The logits returned are the log of those scores (a monotone map: same ranking, same
 * accuracy), because the exp form underflows to all-zero rows for large β.
 */
#include "adapt/adapt.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

#define N_BETA 32          /* beta_i = 0.5 · 400^(i/31): 0.5 .. 200, log-spaced */
#define ROWS 64            /* query rows per affinity block */

static double beta_at(int i) { return 0.5 * pow(400.0, (double)i / (N_BETA - 1)); }

/* Per-class maxima of one affinity row a (N) over labels y: mx (C), -INF for empty classes. */
static void class_max(const float *a, const int32_t *y, int N, int C, float *mx) {
    for (int j = 0; j < C; j++) mx[j] = -INFINITY;
    for (int k = 0; k < N; k++) if (a[k] > mx[y[k]]) mx[y[k]] = a[k];
}

/* out (C) = log Σ_c exp(β(a − 1)) computed around the class maxima; sum: (C) scratch. */
static void class_scores(const float *a, const int32_t *y, int N, int C, const float *mx, double beta,
                         double *sum, float *out) {
    for (int j = 0; j < C; j++) sum[j] = 0;
    for (int k = 0; k < N; k++) sum[y[k]] += exp(beta * ((double)a[k] - mx[y[k]]));
    for (int j = 0; j < C; j++)
        out[j] = sum[j] > 0 ? (float)(beta * (mx[j] - 1.0) + log(sum[j])) : -1e30f;
}

static ca_status tc_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    (void)p;
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    float *keys = ca_clf_add_tensor(c, "cache_keys", 2, (int64_t[]){N, D});
    float *lab = ca_clf_add_tensor(c, "cache_labels", 1, (int64_t[]){N});
    if (!keys || !lab) return CA_E_NOMEM;
    memcpy(keys, d->train.x, sizeof(float) * (size_t)N * D);
    for (int i = 0; i < N; i++) lab[i] = (float)d->train.y[i];
    float *A = ca_malloc2((size_t)ROWS * N, sizeof(float)), *mx = ca_malloc2((size_t)C * 2, sizeof(float));
    double *sum = ca_malloc2((size_t)C, sizeof(double));
    int correct[N_BETA] = {0};
    if (!A || !mx || !sum) { free(A); free(mx); free(sum); return CA_E_NOMEM; }
    for (int i0 = 0; i0 < Nv; i0 += ROWS) {
        int m = Nv - i0 < ROWS ? Nv - i0 : ROWS;
        ca_sgemm(0, 1, m, N, D, 1.0f, d->val.x + (size_t)i0 * D, D, keys, D, 0.0f, A, N);
        for (int i = 0; i < m; i++) {
            const float *a = A + (size_t)i * N;
            class_max(a, d->train.y, N, C, mx);
            for (int b = 0; b < N_BETA; b++) {
                class_scores(a, d->train.y, N, C, mx, beta_at(b), sum, mx + C);
                int best = 0;
                for (int j = 1; j < C; j++) if (mx[C + j] > mx[C + best]) best = j;
                correct[b] += best == d->val.y[i0 + i];
            }
        }
    }
    int bi = 0;
    for (int b = 1; b < N_BETA; b++) if (correct[b] > correct[bi]) bi = b;
    free(A); free(mx); free(sum);
    /* without val: Tip-Adapter's published β = 5.5 (Zhang et al., ECCV 2022) */
    ca_status st = ca_clf_set_param(c, "beta", Nv > 0 ? beta_at(bi) : 5.5);
    if (!st && Nv > 0) st = ca_clf_set_param(c, "val_acc", 100.0 * correct[bi] / Nv);
    return st;
}

static ca_status tc_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const int C = c->C, D = c->D;
    int N = 0;
    for (int i = 0; i < c->nt; i++) if (!strcmp(c->t[i].name, "cache_keys")) N = (int)c->t[i].shape[0];
    const float *keys = ca_clf_get_tensor(c, "cache_keys", (int64_t)N * D), *lab = ca_clf_get_tensor(c, "cache_labels", N);
    if (!keys || !lab || N < 1) return ca_fail(CA_E_FORMAT, "tip-cache: cache tensors missing or empty");
    double beta = ca_classifier_param(c, "beta", 1.0);
    if (!(beta > 0 && beta < 1e6)) return ca_fail(CA_E_FORMAT, "tip-cache: bad beta %g", beta);
    int32_t *y = ca_malloc2((size_t)N, sizeof(int32_t));
    float *A = ca_malloc2((size_t)ROWS * N, sizeof(float)), *mx = ca_malloc2((size_t)C, sizeof(float));
    double *sum = ca_malloc2((size_t)C, sizeof(double));
    ca_status st = CA_OK;
    if (!y || !A || !mx || !sum) { st = CA_E_NOMEM; goto done; }
    for (int k = 0; k < N; k++) {
        if (!(lab[k] >= 0 && lab[k] < C && lab[k] == floorf(lab[k]))) { st = ca_fail(CA_E_FORMAT, "tip-cache: cache label %d is not a class index", k); goto done; }
        y[k] = (int32_t)lab[k];
    }
    for (int i0 = 0; i0 < n; i0 += ROWS) {
        int m = n - i0 < ROWS ? n - i0 : ROWS;
        ca_sgemm(0, 1, m, N, D, 1.0f, x + (size_t)i0 * D, D, keys, D, 0.0f, A, N);
        for (int i = 0; i < m; i++) {
            class_max(A + (size_t)i * N, y, N, C, mx);
            class_scores(A + (size_t)i * N, y, N, C, mx, beta, sum, out + (size_t)(i0 + i) * C);
        }
    }
done:
    free(y); free(A); free(mx); free(sum);
    return st;
}

const ca_method ca_method_tip_cache = {
    .name = "tip-cache",
    .help = "Tip-Adapter's cache term alone, log Σ exp(−β(1−f·key)) per class, β chosen on val, 5.5 without val (no text)",
    .needs_text = 0, .fit = tc_fit, .logits = tc_logits,
};
