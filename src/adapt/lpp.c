/* lpp.c — LP++ (Shakeri et al., CVPR 2024): a linear probe blended with the text classifier,
 * logits_k = f·w_k + b_k + α_k·(f·t_k), trained full-batch with step sizes from Lipschitz
 * constants, no learning-rate search. Follows the official code (FewShot-CLIP-Strong-Baseline,
 * methods/linear_probe_p2.py): W starts at the class sums of the features, b at PyTorch's
 * nn.Linear init (seeded), every α_k at 250 × the mean over classes of the mean zero-shot cosine
 * of the true class; W, b take SGD steps (momentum 0.9) of size 4N/λ_max(FᵀF); α steps every 10
 * epochs by N/(4·max_k Σ_i (f_i·t_k)²) times its gradient, accumulated since the first epoch (the
 * official code never clears α's gradient). 300 epochs; the last epoch with the best val
 * accuracy is kept, the final one without val. Needs text weights.
 */
#include "adapt/adapt.h"
#include "adapt/methods.h"
#include "adapt/train.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

#define LPP_EPOCHS 300
#define LPP_ALPHA_EVERY 10
#define LPP_INIT_ALPHA 250.0

double ca_lpp_loss(const float *X, const float *Z, const int32_t *y, int N, int C, int D,
                   const float *theta, float *g, float *scratch) {
    const float *W = theta, *b = W + (size_t)C * D, *al = b + C;
    float *L = scratch;
    ca_sgemm(0, 1, N, C, D, 1.0f, X, D, W, D, 0.0f, L, C);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) L[(size_t)i * C + j] += b[j] + al[j] * Z[(size_t)i * C + j];
    double f = ca_softmax_ce(L, y, N, C, L);   /* L now holds dloss/dlogits */
    float *gW = g, *gb = g + (size_t)C * D, *ga = gb + C;
    ca_sgemm(1, 0, C, D, N, 1.0f, L, C, X, D, 0.0f, gW, D);
    for (int j = 0; j < C; j++) gb[j] = ga[j] = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            gb[j] += L[(size_t)i * C + j];
            ga[j] += L[(size_t)i * C + j] * Z[(size_t)i * C + j];
        }
    return f;
}

/* λ_max of XᵀX: the D×D Gram matrix once, then power iteration on it in double (a step size
 * needs a few digits; scipy's eigh in the official code gives the same number). */
static double top_eigen(const float *X, int N, int D) {
    float *G = ca_malloc2((size_t)D * D, sizeof(float));
    double *v = ca_malloc2(2 * (size_t)D, sizeof(double)), lam = 0;
    if (!G || !v) { free(G); free(v); return -1; }
    double *u = v + D;
    ca_sgemm(1, 0, D, D, N, 1.0f, X, D, X, D, 0.0f, G, D);
    for (int k = 0; k < D; k++) v[k] = (1.0 + 0.01 * (k % 7)) / sqrt((double)D);
    for (int it = 0; it < 1000; it++) {
        double nv = 0;
        for (int i = 0; i < D; i++) {
            double s = 0;
            for (int k = 0; k < D; k++) s += (double)G[(size_t)i * D + k] * v[k];
            u[i] = s;
            nv += s * s;
        }
        nv = sqrt(nv);
        if (!(nv > 0)) break;
        double prev = lam;
        lam = nv;
        for (int k = 0; k < D; k++) v[k] = u[k] / nv;
        if (it > 10 && fabs(lam - prev) <= 1e-10 * lam) break;
    }
    free(G); free(v);
    return lam;
}

static void lpp_apply(const float *X, const float *Z, int n, int C, int D, const float *theta, float *out) {
    const float *W = theta, *b = W + (size_t)C * D, *al = b + C;
    ca_sgemm(0, 1, n, C, D, 1.0f, X, D, W, D, 0.0f, out, C);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) out[(size_t)i * C + j] += b[j] + al[j] * Z[(size_t)i * C + j];
}

static ca_status lpp_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    if (N < 1) return ca_fail(CA_E_ARG, "lp++: the train split is empty");
    const size_t np = (size_t)C * D + 2 * (size_t)C;
    int rows = N > Nv ? N : Nv;
    float *blk = ca_malloc2((size_t)N * C + (size_t)Nv * C + (size_t)rows * C + np * 5, sizeof(float));
    int *cnt = ca_calloc2((size_t)C, sizeof(int));
    if (!blk || !cnt) { free(blk); free(cnt); return ca_fail(CA_E_NOMEM, "lp++: out of memory"); }
    float *Z = blk, *Zv = Z + (size_t)N * C, *L = Zv + (size_t)Nv * C, *th = L + (size_t)rows * C;
    float *g = th + np, *mom = g + np, *gacc = mom + np, *best = gacc + np;
    const float *X = d->train.x;
    const int32_t *y = d->train.y;
    ca_status st = CA_OK;
    ca_gemm_threads saved = ca_train_threads_set(p->threads);
    ca_logits_linear(X, N, d->text_w, C, D, 1.0f, Z);
    if (Nv) ca_logits_linear(d->val.x, Nv, d->text_w, C, D, 1.0f, Zv);
    /* init: W = class sums, b ~ U(±1/√D), α = 250 · mean_k (mean zero-shot cosine of class k) */
    float *W = th, *b = W + (size_t)C * D, *al = b + C;
    memset(th, 0, np * sizeof(float));
    double *zsum = calloc((size_t)C, sizeof(double));
    if (!zsum) { st = ca_fail(CA_E_NOMEM, "lp++: out of memory"); goto done; }
    for (int i = 0; i < N; i++) {
        cnt[y[i]]++;
        zsum[y[i]] += Z[(size_t)i * C + y[i]];
        for (int k = 0; k < D; k++) W[(size_t)y[i] * D + k] += X[(size_t)i * D + k];
    }
    double a0 = 0;
    int seen = 0;
    for (int j = 0; j < C; j++) if (cnt[j]) { a0 += zsum[j] / cnt[j]; seen++; }
    free(zsum);
    a0 = LPP_INIT_ALPHA * a0 / (seen ? seen : 1);
    ca_rng r = ca_rng_make(p->seed, 0x1bb);
    ca_init_uniform(&r, b, (size_t)C, D);
    for (int j = 0; j < C; j++) al[j] = (float)a0;
    /* step sizes from Lipschitz constants */
    double lmax = top_eigen(X, N, D), zmax = 0;
    for (int j = 0; j < C; j++) {
        double s = 0;
        for (int i = 0; i < N; i++) s += (double)Z[(size_t)i * C + j] * Z[(size_t)i * C + j];
        zmax = fmax(zmax, s);
    }
    if (!(lmax > 0) || !(zmax > 0)) { st = ca_fail(CA_E_ARG, "lp++: degenerate training features (zero scatter)"); goto done; }
    double lr_w = 4.0 * N / lmax, lr_a = N / (4.0 * zmax);
    ca_optim opt = {.kind = CA_OPT_SGD, .momentum = 0.9f};
    memset(mom, 0, np * sizeof(float));
    memset(gacc, 0, np * sizeof(float));
    memcpy(best, th, np * sizeof(float));
    double best_acc = -1, loss = 0;
    int best_epoch = LPP_EPOCHS - 1, epochs = p->epochs > 0 ? p->epochs : LPP_EPOCHS;
    for (int e = 0; e < epochs; e++) {
        loss = ca_lpp_loss(X, Z, y, N, C, D, th, g, L);
        if (!isfinite(loss)) { st = ca_fail(CA_E_NONFINITE, "lp++: the loss diverged at epoch %d", e + 1); goto done; }
        ca_optim_step(&opt, lr_w, e + 1, th, g, mom, NULL, (size_t)C * (D + 1));   /* W and b */
        for (int j = 0; j < C; j++) gacc[j] += g[(size_t)C * (D + 1) + j];
        if ((e + 1) % LPP_ALPHA_EVERY == 0)
            for (int j = 0; j < C; j++) al[j] -= (float)(lr_a * gacc[j]);
        if (Nv) {
            lpp_apply(d->val.x, Zv, Nv, C, D, th, L);
            double acc = ca_accuracy(L, d->val.y, Nv, C);
            if (acc >= best_acc) { best_acc = acc; best_epoch = e; memcpy(best, th, np * sizeof(float)); }
        }
        if (p->progress && p->progress("lp++", e + 1, epochs, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }
    }
    if (!Nv) { memcpy(best, th, np * sizeof(float)); best_epoch = epochs - 1; }
    float *ow = ca_clf_add_tensor(c, "lpp_w", 2, (int64_t[]){C, D});
    float *ob = ow ? ca_clf_add_tensor(c, "lpp_b", 1, (int64_t[]){C}) : NULL;
    float *oa = ob ? ca_clf_add_tensor(c, "lpp_alpha", 1, (int64_t[]){C}) : NULL;
    float *ot = oa ? ca_clf_add_tensor(c, "text_w", 2, (int64_t[]){C, D}) : NULL;
    if (!ot) { st = CA_E_NOMEM; goto done; }
    memcpy(ow, best, sizeof(float) * (size_t)C * D);
    memcpy(ob, best + (size_t)C * D, sizeof(float) * C);
    memcpy(oa, best + (size_t)C * (D + 1), sizeof(float) * C);
    memcpy(ot, d->text_w, sizeof(float) * (size_t)C * D);
    for (size_t k = 0; k < np; k++)
        if (!isfinite(best[k])) { st = ca_fail(CA_E_NONFINITE, "lp++: a fitted weight is not finite"); goto done; }
    st = ca_clf_set_param(c, "lr_w", lr_w);
    if (!st) st = ca_clf_set_param(c, "lr_alpha", lr_a);
    if (!st) st = ca_clf_set_param(c, "init_alpha", a0);
    if (!st) st = ca_clf_set_param(c, "epochs", epochs);
    if (!st) st = ca_clf_set_param(c, "best_epoch", best_epoch + 1);
    if (!st) st = ca_clf_set_param(c, "train_loss", loss);
    if (!st) st = ca_clf_set_param(c, "val_acc", best_acc < 0 ? 0 : best_acc);
done:
    ca_train_threads_restore(saved);
    free(blk); free(cnt);
    return st;
}

static ca_status lpp_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const int C = c->C, D = c->D;
    const float *W = ca_clf_get_tensor(c, "lpp_w", (int64_t)C * D), *b = ca_clf_get_tensor(c, "lpp_b", C);
    const float *al = ca_clf_get_tensor(c, "lpp_alpha", C), *T = ca_clf_get_tensor(c, "text_w", (int64_t)C * D);
    if (!W || !b || !al || !T) return CA_E_FORMAT;
    float *Z = ca_malloc2((size_t)n * C, sizeof(float));
    if (!Z) return CA_E_NOMEM;
    ca_logits_linear(x, n, T, C, D, 1.0f, Z);
    ca_sgemm(0, 1, n, C, D, 1.0f, x, D, W, D, 0.0f, out, C);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) out[(size_t)i * C + j] += b[j] + al[j] * Z[(size_t)i * C + j];
    free(Z);
    return CA_OK;
}

const ca_method ca_method_lpp = {
    .name = "lp++",
    .help = "LP++: linear probe + α_k·(f·t_k), full-batch steps from Lipschitz constants, 300 epochs, best val epoch (needs text weights)",
    .needs_text = 1, .fit = lpp_fit, .logits = lpp_logits,
};
