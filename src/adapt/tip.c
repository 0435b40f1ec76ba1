/* tip.c — Tip-Adapter (Zhang et al., 2022), training-free: the K-shot features are the cache
 * keys, their one-hot labels the values, and α, β come from the official grid search on val.
 * logits = 100·f·Wᵀ + α·exp(−β(1 − f·keysᵀ))·values. Tip-Adapter-F (tipf.c) shares the logits.
 */
#include "adapt/tip.h"
#include "model/gemm.h"

#include <string.h>

#define TIP_ROW_BLOCK 512 /* rows per block: bounds the (rows, N) affinity buffer */

/* o (C) += alpha · cache logits of one row; aff: (N); e (N), cache (C): scratch. */
static void add_cache_row(const float *aff, const ca_key_run *runs, int nr, int N, int C, float alpha, float beta,
                          float *e, float *cache, float *o) {
    ca_tip_cache_row_runs(aff, runs, nr, N, C, beta, e, cache);
    for (int c = 0; c < C; c++) o[c] = o[c] + cache[c] * alpha;
}

/* Row blocks of TIP_ROW_BLOCK: the clip logits of a block (into out) and its affinities are the
 * products ca_sgemm computes for that block. Where the affinity product takes the packed kernel,
 * the threads compute it in pieces, with no barrier between blocks, and their rows' logits. The
 * values are those of SUB-row pieces through ca_sgemm_bt (its kernel choice per piece); where a
 * full SUB piece takes the packed kernel, BIG rows at a time (forced onto it: the same values,
 * the kernel's sums do not depend on the row split; more rows per pass over the keys), and a
 * short last piece as before. A block on BLAS (a short last one, small caches, CPUs without
 * AVX-512) runs as one call, then its rows. */
#define SUB 64
#define BIG 144 /* 12 of the kernel's 12-row tiles */
ca_status ca_tip_logits(const float *x, int n, const float *text_w, const float *keys,
                        const int32_t *key_y, int N, int C, int D, float alpha, float beta, float *out) {
    if (n < 1) return CA_OK;
    const int rb = n < TIP_ROW_BLOCK ? n : TIP_ROW_BLOCK;
    ca_key_run *runs = ca_malloc2((size_t)N + 1, sizeof(ca_key_run));
    if (!runs) return ca_fail(CA_E_NOMEM, "tip logits: out of memory");
    const int nr = ca_tip_key_runs(key_y, N, runs);
    ca_sgemm_bt_plan kp;
    ca_status st = ca_sgemm_bt_init(&kp, keys, N, D, D, rb); /* the keys packed once for all blocks */
    if (st != CA_OK) { free(runs); return st; }
    int nfast = 0; /* rows [0, nfast) lie in blocks on the packed kernel: all full blocks, or none */
    for (int r0 = 0; r0 < n; r0 += rb) {
        const int m = n - r0 < rb ? n - r0 : rb;
        if (text_w) ca_logits_linear(x + (size_t)r0 * D, m, text_w, C, D, 100.0f, out + (size_t)r0 * C);
        else memset(out + (size_t)r0 * C, 0, sizeof(float) * (size_t)m * C);
        if (ca_sgemm_bt_fast(&kp, m) && nfast == r0) nfast = r0 + m;
    }
    /* work items: [0, nbig_rows) in BIG-row items on the packed kernel, then SUB-row pieces */
    const int big = kp.packed && ca_sgemm_bt_fast(&kp, SUB);
    const int nbig_rows = big ? nfast - nfast % SUB : 0;
    const int nbig = (nbig_rows + BIG - 1) / BIG, nitems = nbig + (nfast - nbig_rows + SUB - 1) / SUB;
    const int cap = big ? BIG : SUB;
    int fail = 0;
    #pragma omp parallel num_threads(ca_kernel_threads(0)) if (nitems > 1)
    {
        float *aff = ca_malloc2((size_t)cap * N, sizeof(float)), *e = ca_malloc2((size_t)N, sizeof(float));
        float *cache = ca_malloc2((size_t)C, sizeof(float));
        const int ok = aff && e && cache;
        if (!ok) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < nitems; t++) {
            if (!ok) continue;
            const int r0 = t < nbig ? t * BIG : nbig_rows + (t - nbig) * SUB;
            const int end = t < nbig ? nbig_rows : nfast, lim = t < nbig ? BIG : SUB;
            const int m = end - r0 < lim ? end - r0 : lim;
            if (t < nbig) ca_sgemm_bt_rows(&kp, m, x + (size_t)r0 * D, D, aff, N, 1);
            else ca_sgemm_bt(&kp, m, x + (size_t)r0 * D, D, aff, N, 1);
            for (int i = 0; i < m; i++)
                add_cache_row(aff + (size_t)i * N, runs, nr, N, C, alpha, beta, e, cache, out + (size_t)(r0 + i) * C);
        }
        free(aff); free(e); free(cache);
    }
    float *aff = NULL;
    if (!fail && nfast < n) {
        aff = ca_malloc2((size_t)rb * N, sizeof(float));
        float *e = ca_malloc2((size_t)N, sizeof(float)), *cache = ca_malloc2((size_t)C, sizeof(float));
        fail = !aff || !e || !cache;
        for (int r0 = nfast; r0 < n && !fail; r0 += rb) {
            const int m = n - r0 < rb ? n - r0 : rb;
            ca_sgemm_bt(&kp, m, x + (size_t)r0 * D, D, aff, N, 0);
            for (int i = 0; i < m; i++)
                add_cache_row(aff + (size_t)i * N, runs, nr, N, C, alpha, beta, e, cache, out + (size_t)(r0 + i) * C);
        }
        free(e); free(cache);
    }
    free(aff); free(runs);
    ca_sgemm_bt_free(&kp);
    return fail ? ca_fail(CA_E_NOMEM, "tip logits: out of memory") : CA_OK;
}

/* Logits of a stored tip-adapter / tip-adapter-f classifier (layout in tip.h). */
ca_status ca_tip_stored_logits(const ca_classifier *c, const float *x, int n, float *out) {
    int N = (int)ca_classifier_param(c, "cache_size", 0);
    if (N < 1 || N > 10000000) return ca_fail(CA_E_FORMAT, "%s classifier: bad cache_size %d", c->m->name, N);
    const float *w = ca_clf_get_tensor(c, "text_w", (int64_t)c->C * c->D);
    const float *keys = ca_clf_get_tensor(c, "keys", (int64_t)N * c->D);
    const float *kl = ca_clf_get_tensor(c, "key_labels", N);
    if (!w || !keys || !kl) return CA_E_FORMAT;
    int32_t *ky = ca_malloc2((size_t)N, sizeof(int32_t));
    if (!ky) return CA_E_NOMEM;
    for (int k = 0; k < N; k++) {
        if (!(kl[k] >= 0 && kl[k] < c->C && kl[k] == (float)(int)kl[k])) {
            free(ky);
            return ca_fail(CA_E_FORMAT, "%s classifier: key_labels[%d] = %g is not a class in [0,%d)", c->m->name, k, kl[k], c->C);
        }
        ky[k] = (int32_t)kl[k];
    }
    float alpha = (float)ca_classifier_param(c, "alpha", 0), beta = (float)ca_classifier_param(c, "beta", 0);
    ca_status st = ca_tip_logits(x, n, w, keys, ky, N, c->C, c->D, alpha, beta, out);
    free(ky);
    return st;
}

ca_status ca_tip_store(ca_classifier *c, const ca_fit_data *d, const float *keys) {
    int N = d->train.n, C = c->C, D = c->D;
    float *w = ca_clf_add_tensor(c, "text_w", 2, (int64_t[]){C, D});
    float *k = w ? ca_clf_add_tensor(c, "keys", 2, (int64_t[]){N, D}) : NULL;
    float *kl = k ? ca_clf_add_tensor(c, "key_labels", 1, (int64_t[]){N}) : NULL;
    if (!kl) return CA_E_NOMEM;
    memcpy(w, d->text_w, sizeof(float) * (size_t)C * D);
    memcpy(k, keys, sizeof(float) * (size_t)N * D);
    for (int i = 0; i < N; i++) kl[i] = (float)d->train.y[i];
    return ca_clf_set_param(c, "cache_size", N);
}

/* The affinities of val rows with the keys for the search's worker threads, block by block. */
typedef struct { const ca_sgemm_bt_plan *kp; const float *x; int D; } aff_src;
static void val_aff_rows(void *ctx, int r0, int m, float *out) {
    const aff_src *a = ctx;
    ca_sgemm_bt(a->kp, m, a->x + (size_t)r0 * a->D, a->D, out, a->kp->N, 1);
}

/* The search on val. When one product of all val rows with the keys would take the packed kernel
 * (ca_sgemm's choice), the search's threads compute the affinities block by block from keys
 * packed once (the same values: the kernel's sums do not depend on the row split), with no
 * (val, keys) matrix; else that matrix once, as ca_sgemm computes it. */
ca_status ca_tip_search_val(ca_classifier *c, const ca_fit_data *d, const float *keys, const ca_fit_params *p) {
    const ca_split *v = &d->val;
    int N = d->train.n, C = c->C, D = c->D;
    if (v->n < 1) return ca_fail(CA_E_ARG, "%s: the α/β search needs a non-empty val split", c->m->name);
    double t0 = ca_now();
    ca_sgemm_bt_plan kp;
    ca_status st = ca_sgemm_bt_init(&kp, keys, N, D, D, v->n);
    const int fused = st == CA_OK && ca_sgemm_bt_fast(&kp, v->n);
    float *clip = ca_malloc2((size_t)v->n * C, sizeof(float));
    float *aff = fused ? NULL : ca_malloc2((size_t)v->n * N, sizeof(float));
    if (st != CA_OK) goto done;
    if (!clip || (!fused && !aff)) { st = ca_fail(CA_E_NOMEM, "%s: out of memory", c->m->name); goto done; }
    ca_logits_linear(v->x, v->n, d->text_w, C, D, 100.0f, clip);
    aff_src src = {.kp = &kp, .x = v->x, .D = D};
    if (!fused) ca_sgemm(0, 1, v->n, N, D, 1.0f, v->x, D, keys, D, 0.0f, aff, N); /* affinity once */
    ca_tip_search_in in = {.n = v->n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = d->train.y, .y = v->y,
                           .aff_rows = fused ? val_aff_rows : NULL, .aff_ctx = &src};
    ca_tip_choice ch;
    if ((st = ca_tip_search(&in, p, &ch)) != CA_OK) goto done;
    st = ca_clf_set_param(c, "alpha", ch.alpha);
    if (st == CA_OK) st = ca_clf_set_param(c, "beta", ch.beta);
    if (st == CA_OK) st = ca_clf_set_param(c, "search_val_acc", ch.acc);
    if (st == CA_OK) st = ca_clf_set_param(c, "search_scale_beta", p->search_scale_beta);
    if (st == CA_OK) st = ca_clf_set_param(c, "search_scale_alpha", p->search_scale_alpha);
    if (st == CA_OK) st = ca_clf_set_param(c, "search_steps_beta", p->search_steps_beta);
    if (st == CA_OK) st = ca_clf_set_param(c, "search_steps_alpha", p->search_steps_alpha);
    if (st == CA_OK) st = ca_clf_set_param(c, "search_seconds", ca_now() - t0);
done:
    free(clip); free(aff); ca_sgemm_bt_free(&kp);
    return st;
}

/* Without val (selection regime "none"): the paper's fixed α = 1, β = 5.5 (Zhang et al., ECCV
 * 2022, §4: the ImageNet setting used without search). */
#define TIP_FIXED_ALPHA 1.0
#define TIP_FIXED_BETA 5.5

ca_status ca_tip_set_fixed(ca_classifier *c, double alpha, double beta) {
    ca_status st = ca_clf_set_param(c, "alpha", alpha);
    if (st == CA_OK) st = ca_clf_set_param(c, "beta", beta);
    if (st == CA_OK) st = ca_clf_set_param(c, "searched", 0);
    return st;
}

static ca_status tip_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    if (d->train.n < 1) return ca_fail(CA_E_ARG, "tip-adapter: the train split is empty");
    ca_status st = ca_tip_store(c, d, d->train.x);
    if (st != CA_OK) return st;
    if (d->val.n < 1) return ca_tip_set_fixed(c, TIP_FIXED_ALPHA, TIP_FIXED_BETA);
    return ca_tip_search_val(c, d, d->train.x, p);
}

const ca_method ca_method_tip_adapter = {
    .name = "tip-adapter",
    .help = "Tip-Adapter: K-shot cache of features and one-hot labels added to zero-shot; α, β grid-searched on val, without val the paper's α = 1, β = 5.5 (needs text weights; no training)",
    .needs_text = 1,
    .fit = tip_fit,
    .logits = ca_tip_stored_logits,
};
