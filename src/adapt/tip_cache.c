/* tip_cache.c — Tip-Adapter's cache model alone, without the zero-shot term: class scores
 * Σ_{keys of class c} exp(−β(1 − f·key)), β chosen on val. Needs no text weights.
 * The logits returned are the log of those scores (a monotone map: same ranking, same
 * accuracy), because the exp form underflows to all-zero rows for large β.
 */
#include "adapt/adapt.h"
#include "adapt/tc_rows.h"
#include "core/core.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

#define N_BETA 32          /* beta_i = 0.5 · 400^(i/31): 0.5 .. 200, log-spaced */
#define ROWS 64            /* query rows per block whose kernel choice (ca_sgemm_bt_fast) the values follow */
#define BIG 144            /* rows per work item within the blocks on the packed kernel (12-row tiles) */

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

/* What both passes share: n query rows x (n, D) against the keys, ROWS at a time. The blocks whose
 * affinity product takes the packed kernel (ca_sgemm's choice for those ROWS rows) are computed
 * BIG rows at a time by one thread each, from keys packed once, and their rows scored by that
 * thread (no barrier per block);
 * a block on BLAS (a short last one, small caches, CPUs without AVX-512) is one multi-threaded
 * product, then its rows split over the threads. Row results go through ca_tc_fit_row or ca_tc_logits_row (tc_rows.c). */
typedef struct {
    const int32_t *order, *start, *y;
    const double *logn, *betas;   /* fit: log key counts (C), the β grid (N_BETA) */
    int N, C, fit;
    double beta;          /* logits: the classifier's β */
    float *out;           /* logits: (n, C) */
    int64_t *correct;     /* fit: (N_BETA) counts */
} tc_pass;

static ca_status tc_run(const tc_pass *ps, const float *x, int n, const float *keys, int D, int threads) {
    const int N = ps->N, C = ps->C;
    ca_sgemm_bt_plan kp;
    ca_status st = ca_sgemm_bt_init(&kp, keys, N, D, D, ROWS); /* the keys packed once */
    if (st != CA_OK) return st;
    int nfast = 0; /* rows [0, nfast) lie in blocks on the packed kernel: all full blocks, or none */
    for (int r0 = 0; r0 < n; r0 += ROWS)
        if (ca_sgemm_bt_fast(&kp, n - r0 < ROWS ? n - r0 : ROWS) && nfast == r0) nfast = r0 + (n - r0 < ROWS ? n - r0 : ROWS);
    float *A = nfast < n ? ca_malloc2((size_t)ROWS * N, sizeof(float)) : NULL;
    int fail = nfast < n && !A;
    /* r0 = -1: the pass over [0, nfast); then each BLAS block [r0, r0 + ROWS) */
    for (int r0 = nfast > 0 ? -1 : 0; r0 < n && !fail; r0 = r0 < 0 ? nfast : r0 + ROWS) {
        const int tail = r0 >= 0, m = tail ? (n - r0 < ROWS ? n - r0 : ROWS) : 0;
        if (tail) ca_sgemm_bt(&kp, m, x + (size_t)r0 * D, D, A, N, threads);
        const int nwork = tail ? m : (nfast + BIG - 1) / BIG;
        #pragma omp parallel num_threads(threads) if (nwork > 1)
        {
            float *mx = ca_malloc2((size_t)C, sizeof(float)), *as = ca_malloc2((size_t)N, sizeof(float));
            double *tmp = ca_malloc2((size_t)N, sizeof(double));
            float *Ab = tail ? NULL : ca_malloc2((size_t)BIG * N, sizeof(float));
            int64_t local[N_BETA] = {0};
            const int ok = mx && as && tmp && (tail || Ab);
            if (!ok) {
                #pragma omp atomic write
                fail = 1;
            }
            #pragma omp for schedule(dynamic, 1)
            for (int w = 0; w < nwork; w++) {
                if (!ok) continue;
                int i0 = tail ? r0 + w : w * BIG, i1 = tail ? i0 + 1 : (nfast - i0 < BIG ? nfast : i0 + BIG);
                const float *a = tail ? A + (size_t)w * N : Ab;
                /* rows of blocks that each took the packed kernel: the same values in any split */
                if (!tail) ca_sgemm_bt_rows(&kp, i1 - i0, x + (size_t)i0 * D, D, Ab, N, 1);
                for (int i = i0; i < i1; i++, a += N) {
                    if (ps->fit)
                        ca_tc_fit_row(a, ps->y[i], ps->order, ps->start, ps->logn, N, C, N_BETA, ps->betas, as, mx, tmp, local);
                    else ca_tc_logits_row(a, ps->order, ps->start, N, C, ps->beta, as, mx, tmp, ps->out + (size_t)i * C);
                }
            }
            if (ps->fit)
                for (int b = 0; b < N_BETA; b++) __atomic_fetch_add(&ps->correct[b], local[b], __ATOMIC_RELAXED);
            free(mx); free(as); free(tmp); free(Ab);
        }
    }
    free(A);
    ca_sgemm_bt_free(&kp);
    return fail ? ca_fail(CA_E_NOMEM, "tip-cache: out of memory") : CA_OK;
}

static ca_status tc_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    float *keys = ca_clf_add_tensor(c, "cache_keys", 2, (int64_t[]){N, D});
    float *lab = ca_clf_add_tensor(c, "cache_labels", 1, (int64_t[]){N});
    if (!keys || !lab) return CA_E_NOMEM;
    memcpy(keys, d->train.x, sizeof(float) * (size_t)N * D);
    for (int i = 0; i < N; i++) lab[i] = (float)d->train.y[i];
    int64_t correct[N_BETA] = {0};
    /* Integer counts make the reduction over threads order-free, so the chosen β is the
     * single-threaded loop's. */
    double t0 = ca_now();
    int32_t *order = ca_malloc2((size_t)N, sizeof(int32_t)), *start = ca_malloc2((size_t)C + 1, sizeof(int32_t));
    double *logn = ca_malloc2((size_t)C, sizeof(double));
    ca_status st = CA_OK;
    if (!order || !start || !logn) st = ca_fail(CA_E_NOMEM, "tip-cache: out of memory");
    if (st == CA_OK) {
        group_keys(d->train.y, N, C, order, start);
        for (int j = 0; j < C; j++) logn[j] = log(start[j + 1] - start[j] > 0 ? (double)(start[j + 1] - start[j]) : 1.0);
        double betas[N_BETA];
        for (int b = 0; b < N_BETA; b++) betas[b] = beta_at(b);
        tc_pass ps = {.order = order, .start = start, .y = d->val.y, .logn = logn, .betas = betas, .N = N, .C = C,
                      .fit = 1, .correct = correct};
        if (Nv > 0) st = tc_run(&ps, d->val.x, Nv, keys, D, ca_kernel_threads(p->threads));
    }
    free(order); free(start); free(logn);
    if (st != CA_OK) return st;
    int bi = 0;
    for (int b = 1; b < N_BETA; b++) if (correct[b] > correct[bi]) bi = b;
    /* without val: Tip-Adapter's published β = 5.5 (Zhang et al., ECCV 2022) */
    st = ca_clf_set_param(c, "beta", Nv > 0 ? beta_at(bi) : 5.5);
    if (!st && Nv > 0) st = ca_clf_set_param(c, "val_acc", 100.0 * correct[bi] / Nv);
    if (!st && Nv > 0) st = ca_clf_set_param(c, "search_seconds", ca_now() - t0);
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
    ca_status st = CA_OK;
    if (!y || !order || !start) { st = CA_E_NOMEM; goto done; }
    for (int k = 0; k < N; k++) {
        if (!(lab[k] >= 0 && lab[k] < C && lab[k] == floorf(lab[k]))) { st = ca_fail(CA_E_FORMAT, "tip-cache: cache label %d is not a class index", k); goto done; }
        y[k] = (int32_t)lab[k];
    }
    group_keys(y, N, C, order, start);
    tc_pass ps = {.order = order, .start = start, .N = N, .C = C, .fit = 0, .beta = beta, .out = out};
    if (n > 0) st = tc_run(&ps, x, n, keys, D, ca_kernel_threads(0));
done:
    free(y); free(order); free(start);
    return st;
}

const ca_method ca_method_tip_cache = {
    .name = "tip-cache",
    .help = "Tip-Adapter's cache term alone, log Σ exp(−β(1−f·key)) per class, β chosen on val, 5.5 without val (no text)",
    .needs_text = 0, .fit = tc_fit, .logits = tc_logits,
    .val_acc_param = "val_acc",
};
