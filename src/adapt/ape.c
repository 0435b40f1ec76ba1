/* ape.c — APE, training-free (Zhu et al., ICCV 2023): Tip-Adapter on the Q most discriminative
 * feature channels, with each cache value reweighted by how far the zero-shot prediction of its
 * key is from its label. As the official main.py / utils.py:
 *  - criterion per channel: −0.7·(mean product of the channel over pairs of samples from two
 *    different classes, samples = each class's text weight and its shots) + 0.3·(variance of the
 *    text weights over classes); keep the top Q channels (Q = 400/512 of D: the official 800 of
 *    RN50's 1024);
 *  - keys, text weights and queries restricted to those channels and re-normalised;
 *  - value weight of key k: exp(γ·KL_k), KL_k = log2((1 + 1e-6)/(p_k + 1e-6)), p_k the softmax of
 *    the key's reduced cosines with the reduced text weights at its class;
 *  - logits = 100·f·Tᵀ + α·Σ_k exp(−β(1 − f'·k'))·exp(γ·KL_k)·onehot_k;
 *  - β, α, γ from the official grid (β: 200 steps to 7, α: 20 steps to 7, γ: i/20), the first
 *    strictly best on val in β, α, γ order; without val, the official initial (1, 1, 0.1).
 * The search scores every α of a (β, γ) at once: a row is right for α in an interval.
 */
#include "adapt/adapt.h"
#include "model/gemm.h"
#include "model/vmath.h"

#include <math.h>
#include <string.h>

#define APE_NB 200
#define APE_NA 20
#define APE_NG 20
static double ape_beta(int i) { return i * (7.0 - 0.1) / APE_NB + 0.1; }
static double ape_alpha(int i) { return i * (7.0 - 0.1) / APE_NA + 0.1; }
static double ape_gamma(int i) { return i * 1.0 / APE_NG; }

static void normalise_rows(float *x, int n, int d) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)x[(size_t)i * d + k] * x[(size_t)i * d + k];
        float r = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int k = 0; k < d; k++) x[(size_t)i * d + k] *= r;
    }
}

/* x (n,D) -> out (n,Q): the chosen channels, re-normalised. */
static void reduce(const float *x, int n, int D, const int *idx, int Q, float *out) {
    for (int i = 0; i < n; i++)
        for (int q = 0; q < Q; q++) out[(size_t)i * Q + q] = x[(size_t)i * D + idx[q]];
    normalise_rows(out, n, Q);
}

/* Channel criterion and the top-Q channels (ties: lower channel first). */
static ca_status choose_channels(const ca_fit_data *d, int Q, int *idx) {
    const int C = d->num_classes, D = d->dim, N = d->train.n;
    double *S = calloc((size_t)C * D, sizeof(double)), *crit = malloc(sizeof(double) * D);
    double *n = calloc((size_t)C, sizeof(double));
    if (!S || !crit || !n) { free(S); free(crit); free(n); return ca_fail(CA_E_NOMEM, "ape: out of memory"); }
    for (int c = 0; c < C; c++) { n[c] = 1; for (int k = 0; k < D; k++) S[(size_t)c * D + k] = d->text_w[(size_t)c * D + k]; }
    for (int i = 0; i < N; i++) {
        int y = d->train.y[i];
        n[y] += 1;
        for (int k = 0; k < D; k++) S[(size_t)y * D + k] += d->train.x[(size_t)i * D + k];
    }
    double tn = 0, tn2 = 0;
    for (int c = 0; c < C; c++) { tn += n[c]; tn2 += n[c] * n[c]; }
    double pairs = tn * tn - tn2;   /* ordered pairs of samples from different classes */
    for (int k = 0; k < D; k++) {
        double s = 0, s2 = 0, m = 0, v = 0;
        for (int c = 0; c < C; c++) { s += S[(size_t)c * D + k]; s2 += S[(size_t)c * D + k] * S[(size_t)c * D + k]; }
        double sim = pairs > 0 ? (s * s - s2) / pairs : 0;
        for (int c = 0; c < C; c++) m += d->text_w[(size_t)c * D + k];
        m /= C;
        for (int c = 0; c < C; c++) { double t = d->text_w[(size_t)c * D + k] - m; v += t * t; }
        v /= (C > 1 ? C - 1 : 1);   /* torch.var: unbiased */
        crit[k] = -0.7 * sim + 0.3 * v;
    }
    /* selection of the Q largest, stable */
    char *used = calloc((size_t)D, 1);
    if (!used) { free(S); free(crit); free(n); return ca_fail(CA_E_NOMEM, "ape: out of memory"); }
    for (int q = 0; q < Q; q++) {
        int b = -1;
        for (int k = 0; k < D; k++) if (!used[k] && (b < 0 || crit[k] > crit[b])) b = k;
        used[b] = 1;
        idx[q] = b;
    }
    free(used); free(S); free(crit); free(n);
    return CA_OK;
}

/* Cache logits of one row: out[c] = Σ_{k: y_k = c} exp(−β(1 − aff_k))·w_k. */
static void cache_row(const float *aff, const int32_t *ky, const float *w, int N, int C, double beta, double *out) {
    for (int c = 0; c < C; c++) out[c] = 0;
    for (int k = 0; k < N; k++) out[ky[k]] += exp(-beta * (1.0 - aff[k])) * w[k];
}

static ca_status ape_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    if (N < 1) return ca_fail(CA_E_ARG, "ape: the train split is empty");
    int Q = (int)((int64_t)D * 400 / 512);
    if (Q < 1) Q = 1;
    int *idx = ca_malloc2((size_t)Q, sizeof(int));
    float *Kr = ca_malloc2((size_t)N * Q, sizeof(float)), *Tr = ca_malloc2((size_t)C * Q, sizeof(float));
    float *KL = ca_malloc2((size_t)N * C, sizeof(float)), *div = ca_malloc2((size_t)N, sizeof(float));
    ca_status st = CA_OK;
    float *Vr = NULL, *aff = NULL, *clip = NULL;
    long *cnt = NULL;
    if (!idx || !Kr || !Tr || !KL || !div) { st = ca_fail(CA_E_NOMEM, "ape: out of memory"); goto done; }
    if ((st = choose_channels(d, Q, idx))) goto done;
    reduce(d->train.x, N, D, idx, Q, Kr);
    reduce(d->text_w, C, D, idx, Q, Tr);
    ca_sgemm(0, 1, N, C, Q, 1.0f, Kr, Q, Tr, Q, 0.0f, KL, C);   /* key cosines with text, no scale */
    for (int i = 0; i < N; i++) {
        const float *l = KL + (size_t)i * C;
        float mx = l[0];
        for (int j = 1; j < C; j++) mx = l[j] > mx ? l[j] : mx;
        double z = 0;
        for (int j = 0; j < C; j++) z += exp((double)l[j] - mx);
        double py = exp((double)l[d->train.y[i]] - mx) / z;
        div[i] = (float)(log2((1.0 + 1e-6) / (py + 1e-6)));
    }
    double best_b = 1, best_a = 1, best_g = 0.1, best_acc = 0;
    if (Nv > 0) {
        Vr = ca_malloc2((size_t)Nv * Q, sizeof(float));
        aff = ca_malloc2((size_t)Nv * N, sizeof(float));
        clip = ca_malloc2((size_t)Nv * C, sizeof(float));
        cnt = calloc((size_t)APE_NA * APE_NG, sizeof(long));
        if (!Vr || !aff || !clip || !cnt) { st = ca_fail(CA_E_NOMEM, "ape: out of memory"); goto done; }
        /* keys in class order, so that each class's cache sum is one contiguous dot product */
        int *order = ca_malloc2((size_t)N, sizeof(int)), *cstart = ca_calloc2((size_t)C + 1, sizeof(int));
        float *Ks = ca_malloc2((size_t)N * Q, sizeof(float)), *wg = ca_malloc2((size_t)APE_NG * N, sizeof(float));
        if (!order || !cstart || !Ks || !wg) { free(order); free(cstart); free(Ks); free(wg); st = ca_fail(CA_E_NOMEM, "ape: out of memory"); goto done; }
        for (int k = 0; k < N; k++) cstart[d->train.y[k] + 1]++;
        for (int j = 0; j < C; j++) cstart[j + 1] += cstart[j];
        {
            int *fill = ca_malloc2((size_t)C, sizeof(int));
            if (!fill) { free(order); free(cstart); free(Ks); free(wg); st = ca_fail(CA_E_NOMEM, "ape: out of memory"); goto done; }
            memcpy(fill, cstart, sizeof(int) * C);
            for (int k = 0; k < N; k++) order[fill[d->train.y[k]]++] = k;
            free(fill);
        }
        for (int k = 0; k < N; k++) memcpy(Ks + (size_t)k * Q, Kr + (size_t)order[k] * Q, sizeof(float) * Q);
        for (int g = 0; g < APE_NG; g++)
            for (int k = 0; k < N; k++) wg[(size_t)g * N + k] = expf((float)(ape_gamma(g) * div[order[k]]));
        reduce(d->val.x, Nv, D, idx, Q, Vr);
        ca_sgemm(0, 1, Nv, N, Q, 1.0f, Vr, Q, Ks, Q, 0.0f, aff, N);
        ca_logits_linear(d->val.x, Nv, d->text_w, C, D, 100.0f, clip);
        best_acc = 0; best_b = best_a = best_g = 0;   /* as the official: nothing above 0% keeps (0, 0, 0) */
        int nt = ca_kernel_threads(p->threads);
        for (int bi = 0; bi < APE_NB; bi++) {
            const float beta = (float)ape_beta(bi);
            memset(cnt, 0, sizeof(long) * APE_NA * APE_NG);
            #pragma omp parallel num_threads(nt)
            {
                long lc[APE_NA * APE_NG];
                memset(lc, 0, sizeof lc);
                float *E = malloc(sizeof(float) * (size_t)N);
                double *q = malloc(sizeof(double) * (size_t)C);
                #pragma omp for schedule(static)
                for (int r = 0; r < Nv; r++) {
                    if (!E || !q) continue;
                    const float *z = clip + (size_t)r * C;
                    const int y = d->val.y[r];
                    ca_vexp_affinity(E, aff + (size_t)r * N, N, beta);
                    for (int g = 0; g < APE_NG; g++) {
                        const float *w = wg + (size_t)g * N;
                        for (int j = 0; j < C; j++) {
                            float acc = 0;
                            #pragma omp simd reduction(+:acc)
                            for (int k = cstart[j]; k < cstart[j + 1]; k++) acc += E[k] * w[k];
                            q[j] = acc;
                        }
                        /* right for α in (lo, hi): z_y − z_j + α(q_y − q_j) > 0 for all j ≠ y */
                        double lo = -INFINITY, hi = INFINITY;
                        int ok = 1;
                        for (int j = 0; j < C && ok; j++) {
                            if (j == y) continue;
                            double a = (double)z[y] - z[j], b = q[y] - q[j];
                            if (b > 0) lo = fmax(lo, -a / b);
                            else if (b < 0) hi = fmin(hi, -a / b);
                            else if (!(a > 0)) ok = 0;
                        }
                        if (!ok) continue;
                        for (int ai = 0; ai < APE_NA; ai++) {
                            double al = ape_alpha(ai);
                            if (al > lo && al < hi) lc[ai * APE_NG + g]++;
                        }
                    }
                }
                #pragma omp critical
                for (int t = 0; t < APE_NA * APE_NG; t++) cnt[t] += lc[t];
                free(E); free(q);
            }
            for (int ai = 0; ai < APE_NA; ai++)
                for (int g = 0; g < APE_NG; g++) {
                    double acc = 100.0 * (double)cnt[ai * APE_NG + g] / Nv;
                    if (acc > best_acc) { best_acc = acc; best_b = ape_beta(bi); best_a = ape_alpha(ai); best_g = ape_gamma(g); }
                }
            if (p->progress && p->progress("ape", bi + 1, APE_NB, p->progress_user)) {
                free(order); free(cstart); free(Ks); free(wg);
                st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback");
                goto done;
            }
        }
        free(order); free(cstart); free(Ks);
        free(wg);
    }
    float *oi = ca_clf_add_tensor(c, "ape_channels", 1, (int64_t[]){Q});
    float *ok = oi ? ca_clf_add_tensor(c, "keys_r", 2, (int64_t[]){N, Q}) : NULL;
    float *ow = ok ? ca_clf_add_tensor(c, "value_w", 1, (int64_t[]){N}) : NULL;
    float *oy = ow ? ca_clf_add_tensor(c, "key_labels", 1, (int64_t[]){N}) : NULL;
    float *ot = oy ? ca_clf_add_tensor(c, "text_w", 2, (int64_t[]){C, D}) : NULL;
    if (!ot) { st = CA_E_NOMEM; goto done; }
    for (int q = 0; q < Q; q++) oi[q] = (float)idx[q];
    memcpy(ok, Kr, sizeof(float) * (size_t)N * Q);
    for (int k = 0; k < N; k++) { ow[k] = expf((float)(best_g * div[k])); oy[k] = (float)d->train.y[k]; }
    memcpy(ot, d->text_w, sizeof(float) * (size_t)C * D);
    st = ca_clf_set_param(c, "cache_size", N);
    if (!st) st = ca_clf_set_param(c, "channels", Q);
    if (!st) st = ca_clf_set_param(c, "alpha", best_a);
    if (!st) st = ca_clf_set_param(c, "beta", best_b);
    if (!st) st = ca_clf_set_param(c, "gamma", best_g);
    if (!st) st = ca_clf_set_param(c, "val_acc", best_acc);
done:
    free(idx); free(Kr); free(Tr); free(KL); free(div); free(Vr); free(aff); free(clip); free(cnt);
    return st;
}

static ca_status ape_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const int C = c->C, D = c->D;
    int N = (int)ca_classifier_param(c, "cache_size", 0), Q = (int)ca_classifier_param(c, "channels", 0);
    double al = ca_classifier_param(c, "alpha", NAN), beta = ca_classifier_param(c, "beta", NAN);
    if (N < 1 || N > 10000000 || Q < 1 || Q > D) return ca_fail(CA_E_FORMAT, "ape classifier: bad cache_size %d or channels %d", N, Q);
    if (!isfinite(al) || !isfinite(beta)) return ca_fail(CA_E_FORMAT, "ape classifier: alpha or beta missing or not finite");
    const float *ch = ca_clf_get_tensor(c, "ape_channels", Q), *K = ca_clf_get_tensor(c, "keys_r", (int64_t)N * Q);
    const float *w = ca_clf_get_tensor(c, "value_w", N), *kl = ca_clf_get_tensor(c, "key_labels", N);
    const float *T = ca_clf_get_tensor(c, "text_w", (int64_t)C * D);
    if (!ch || !K || !w || !kl || !T) return CA_E_FORMAT;
    const int rb = n < 256 ? n : 256;
    int *idx = ca_malloc2((size_t)Q, sizeof(int));
    int32_t *ky = ca_malloc2((size_t)N, sizeof(int32_t));
    float *xr = ca_malloc2((size_t)rb * Q, sizeof(float)), *aff = ca_malloc2((size_t)rb * N, sizeof(float));
    double *q = ca_malloc2((size_t)C, sizeof(double));
    ca_status st = CA_OK;
    if (!idx || !ky || !xr || !aff || !q) { st = CA_E_NOMEM; goto done; }
    for (int i = 0; i < Q; i++) {
        if (!(ch[i] >= 0 && ch[i] < D && ch[i] == (float)(int)ch[i])) { st = ca_fail(CA_E_FORMAT, "ape classifier: channel %g out of range", ch[i]); goto done; }
        idx[i] = (int)ch[i];
    }
    for (int k = 0; k < N; k++) {
        if (!(kl[k] >= 0 && kl[k] < C && kl[k] == (float)(int)kl[k])) { st = ca_fail(CA_E_FORMAT, "ape classifier: key_labels[%d] = %g is not a class", k, kl[k]); goto done; }
        ky[k] = (int32_t)kl[k];
    }
    ca_logits_linear(x, n, T, C, D, 100.0f, out);
    for (int r0 = 0; r0 < n; r0 += rb) {
        int m = n - r0 < rb ? n - r0 : rb;
        reduce(x + (size_t)r0 * D, m, D, idx, Q, xr);
        ca_sgemm(0, 1, m, N, Q, 1.0f, xr, Q, K, Q, 0.0f, aff, N);
        for (int r = 0; r < m; r++) {
            cache_row(aff + (size_t)r * N, ky, w, N, C, beta, q);
            for (int j = 0; j < C; j++) out[(size_t)(r0 + r) * C + j] += (float)(al * q[j]);
        }
    }
done:
    free(idx); free(ky); free(xr); free(aff); free(q);
    return st;
}

const ca_method ca_method_ape = {
    .name = "ape",
    .help = "APE: Tip-Adapter on the most discriminative channels, cache values reweighted by the keys' zero-shot KL; β, α, γ searched on val (needs text weights; no training)",
    .needs_text = 1, .fit = ape_fit, .logits = ape_logits,
};
