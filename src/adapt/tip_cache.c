/* tip_cache.c — Tip-Adapter's cache model alone, without the zero-shot term: class scores
 * Σ_{keys of class c} exp(−β(1 − f·key)), β chosen on val. Needs no text weights.
 * The logits returned are the log of those scores (a monotone map: same ranking, same
 * accuracy), because the exp form underflows to all-zero rows for large β.
 */
#include "adapt/adapt.h"
#include "model/gemm.h"
#include "model/vmath.h"

#include <math.h>
#include <string.h>

#define N_BETA 32          /* beta_i = 0.5 · 400^(i/31): 0.5 .. 200, log-spaced */
#define ROWS 64            /* query rows per affinity block */
#define GROUP 8            /* affinity blocks per parallel pass: (GROUP·ROWS, N) floats */

static double beta_at(int i) { return 0.5 * pow(400.0, (double)i / (N_BETA - 1)); }

/* Keys grouped by class (a stable counting sort: key order within a class), so a class's keys
 * are one contiguous run and its exps one vector loop. order: (N), start: (C+1). */
static void group_keys(const int32_t *y, int N, int C, int32_t *order, int32_t *start) {
    memset(start, 0, sizeof(int32_t) * ((size_t)C + 1));
    for (int k = 0; k < N; k++) start[y[k] + 1]++;
    for (int c = 0; c < C; c++) start[c + 1] += start[c];
    for (int k = 0; k < N; k++) order[start[y[k]]++] = k;
    for (int c = C; c > 0; c--) start[c] = start[c - 1]; /* the fill pointers moved: shift back */
    start[0] = 0;
}

/* One affinity row a (N) in grouped order into as (N), and the per-class maxima mx (C), -INF for
 * empty classes. */
static void group_row(const float *a, const int32_t *order, const int32_t *start, int N, int C, float *as, float *mx) {
    for (int k = 0; k < N; k++) as[k] = a[order[k]];
    for (int c = 0; c < C; c++) {
        float m = -INFINITY;
        for (int k = start[c]; k < start[c + 1]; k++) m = as[k] > m ? as[k] : m;
        mx[c] = m;
    }
}

/* Score of class c: β(mx − 1) + log Σ exp(β(a − mx)) over its keys as[s..e) in key order (the max
 * term is exp(0) = 1, so the sum is >= 1); -1e30 for a class without keys. tmp: (e − s) doubles. */
static float class_score(const float *as, int s, int e, float mx, double beta, double *tmp) {
    if (s == e) return -1e30f;
    for (int k = s; k < e; k++) tmp[k - s] = beta * ((double)as[k] - mx);
    ca_vexp_d(tmp, tmp, e - s);
    double sum = 0;
    for (int k = 0; k < e - s; k++) sum += tmp[k];
    return (float)(beta * (mx - 1.0) + log(sum));
}

static ca_status tc_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    (void)p;
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    float *keys = ca_clf_add_tensor(c, "cache_keys", 2, (int64_t[]){N, D});
    float *lab = ca_clf_add_tensor(c, "cache_labels", 1, (int64_t[]){N});
    if (!keys || !lab) return CA_E_NOMEM;
    memcpy(keys, d->train.x, sizeof(float) * (size_t)N * D);
    for (int i = 0; i < N; i++) lab[i] = (float)d->train.y[i];
    int64_t correct[N_BETA] = {0};
    /* The affinity GEMMs run as before (64-row calls, all threads), GROUP of them at a time; the
     * per-row β loop is then split over threads by rows. Integer counts make the reduction
     * order-free, so the chosen β is the single-threaded loop's. A class whose best possible
     * score, β(mx − 1) + log(keys), is below the best class's least one, β(mx − 1), by a margin
     * far above rounding cannot be the argmax: its exps are skipped (most classes at large β). */
    float *A = ca_malloc2((size_t)GROUP * ROWS * N, sizeof(float));
    int32_t *order = ca_malloc2((size_t)N, sizeof(int32_t)), *start = ca_malloc2((size_t)C + 1, sizeof(int32_t));
    double *logn = ca_malloc2((size_t)C, sizeof(double));
    if (!A || !order || !start || !logn) { free(A); free(order); free(start); free(logn); return CA_E_NOMEM; }
    group_keys(d->train.y, N, C, order, start);
    for (int j = 0; j < C; j++) logn[j] = log(start[j + 1] - start[j] > 0 ? (double)(start[j + 1] - start[j]) : 1.0);
    int fail = 0;
    for (int g0 = 0; g0 < Nv; g0 += GROUP * ROWS) {
        int gm = Nv - g0 < GROUP * ROWS ? Nv - g0 : GROUP * ROWS;
        for (int i0 = 0; i0 < gm; i0 += ROWS) {
            int m = gm - i0 < ROWS ? gm - i0 : ROWS;
            ca_sgemm(0, 1, m, N, D, 1.0f, d->val.x + (size_t)(g0 + i0) * D, D, keys, D, 0.0f, A + (size_t)i0 * N, N);
        }
        #pragma omp parallel num_threads(ca_kernel_threads(p->threads))
        {
            float *mx = ca_malloc2((size_t)C, sizeof(float)), *as = ca_malloc2((size_t)N, sizeof(float));
            double *tmp = ca_malloc2((size_t)N, sizeof(double));
            int64_t local[N_BETA] = {0};
            if (!mx || !as || !tmp) {
                #pragma omp atomic write
                fail = 1;
            }
            #pragma omp for schedule(dynamic, 4)
            for (int i = 0; i < gm; i++) {
                if (!mx || !as || !tmp) continue;
                group_row(A + (size_t)i * N, order, start, N, C, as, mx);
                for (int b = 0; b < N_BETA; b++) {
                    const double beta = beta_at(b);
                    double lo = -INFINITY;
                    for (int j = 0; j < C; j++)
                        if (mx[j] > -INFINITY && beta * (mx[j] - 1.0) > lo) lo = beta * (mx[j] - 1.0);
                    const double cut = lo - 1e-5 * (1.0 + fabs(lo));
                    int best = -1;
                    float bv = 0;
                    for (int j = 0; j < C; j++) { /* first maximum, as the argmax over all classes */
                        if (!(mx[j] > -INFINITY) || beta * (mx[j] - 1.0) + logn[j] < cut) continue;
                        float v = class_score(as, start[j], start[j + 1], mx[j], beta, tmp);
                        if (best < 0 || v > bv) { best = j; bv = v; }
                    }
                    local[b] += best == d->val.y[g0 + i];
                }
            }
            for (int b = 0; b < N_BETA; b++) __atomic_fetch_add(&correct[b], local[b], __ATOMIC_RELAXED);
            free(mx); free(as); free(tmp);
        }
        if (fail) break;
    }
    free(order); free(start); free(logn);
    free(A);
    if (fail) return ca_fail(CA_E_NOMEM, "tip-cache: out of memory");
    int bi = 0;
    for (int b = 1; b < N_BETA; b++) if (correct[b] > correct[bi]) bi = b;
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
    int32_t *y = ca_malloc2((size_t)N, sizeof(int32_t)), *order = ca_malloc2((size_t)N, sizeof(int32_t));
    int32_t *start = ca_malloc2((size_t)C + 1, sizeof(int32_t));
    float *A = ca_malloc2((size_t)ROWS * N, sizeof(float));
    ca_status st = CA_OK;
    if (!y || !order || !start || !A) { st = CA_E_NOMEM; goto done; }
    for (int k = 0; k < N; k++) {
        if (!(lab[k] >= 0 && lab[k] < C && lab[k] == floorf(lab[k]))) { st = ca_fail(CA_E_FORMAT, "tip-cache: cache label %d is not a class index", k); goto done; }
        y[k] = (int32_t)lab[k];
    }
    group_keys(y, N, C, order, start);
    for (int i0 = 0; i0 < n; i0 += ROWS) {
        int m = n - i0 < ROWS ? n - i0 : ROWS;
        ca_sgemm(0, 1, m, N, D, 1.0f, x + (size_t)i0 * D, D, keys, D, 0.0f, A, N);
        int fail = 0;
        #pragma omp parallel num_threads(ca_kernel_threads(0))
        {
            float *as = ca_malloc2((size_t)N, sizeof(float)), *mx = ca_malloc2((size_t)C, sizeof(float));
            double *tmp = ca_malloc2((size_t)N, sizeof(double));
            if (!as || !mx || !tmp) {
                #pragma omp atomic write
                fail = 1;
            }
            #pragma omp for schedule(static)
            for (int i = 0; i < m; i++) {
                if (!as || !mx || !tmp) continue;
                float *o = out + (size_t)(i0 + i) * C;
                group_row(A + (size_t)i * N, order, start, N, C, as, mx);
                for (int j = 0; j < C; j++) o[j] = class_score(as, start[j], start[j + 1], mx[j], beta, tmp);
            }
            free(as); free(mx); free(tmp);
        }
        if (fail) { st = CA_E_NOMEM; goto done; }
    }
done:
    free(y); free(order); free(start); free(A);
    return st;
}

const ca_method ca_method_tip_cache = {
    .name = "tip-cache",
    .help = "Tip-Adapter's cache term alone, log Σ exp(−β(1−f·key)) per class, β chosen on val, 5.5 without val (no text)",
    .needs_text = 0, .fit = tc_fit, .logits = tc_logits,
};
