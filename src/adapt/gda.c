/* gda.c — Gaussian discriminant analysis with one shared covariance (linear discriminant):
 * logits_c = f·Σ⁻¹μ_c − ½ μ_cᵀΣ⁻¹μ_c, Σ = (1−s)·S + s·τ·I (S pooled within-class covariance,
 * τ = tr(S)/D), shrinkage s chosen on val. `gda` needs no text; `gda-zs` adds it to zero-shot:
 * 100·f·Wᵀ + α·gda(f), α chosen on val. S is eigen-decomposed once (LAPACK dsyevd from
 * OpenBLAS), so each shrinkage on the grid costs one GEMM.
 */
#include "adapt/adapt.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

/* LAPACK (Fortran ABI, shipped inside libopenblas): symmetric eigen-decomposition. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

static const double SHRINK[] = {1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 3e-3, 1e-3, 3e-4, 1e-4};
#define N_SHRINK (int)(sizeof SHRINK / sizeof SHRINK[0])

/* Discriminant weights for shrinkage s: W (C,D) = M'·diag(dd)·Qᵀ, b_c = −½ Σ_k dd_k M'_ck².
 * Mp = M·Q (C,D); Q (D,D) row-major eigenvectors as columns; ev (D) eigenvalues. tmp: (C,D). */
static void discriminant(const float *Mp, const float *Q, const double *ev, double tau, double s, int C,
                         int D, float *tmp, float *Wp, float *W, float *b) {
    for (int j = 0; j < C; j++) {
        double o = 0;
        for (int k = 0; k < D; k++) {
            double lam = (1 - s) * (ev[k] > 0 ? ev[k] : 0) + s * tau;
            double dk = 1.0 / lam, m = Mp[(size_t)j * D + k];
            tmp[(size_t)j * D + k] = (float)(m * dk);
            o += m * m * dk;
        }
        b[j] = (float)(-0.5 * o);
    }
    if (Wp) memcpy(Wp, tmp, sizeof(float) * (size_t)C * D);   /* weights in the eigenbasis */
    if (W) ca_sgemm(0, 1, C, D, D, 1.0f, tmp, D, Q, D, 0.0f, W, D);
}

static void affine_logits(const float *X, int n, const float *W, const float *b, int C, int D, float *out) {
    ca_sgemm(0, 1, n, C, D, 1.0f, X, D, W, D, 0.0f, out, C);
    for (int i = 0; i < n; i++) for (int j = 0; j < C; j++) out[(size_t)i * C + j] += b[j];
}

/* Fit the discriminant, store "gda_w", "gda_b" and params; val logits of the chosen model are
 * left in *val_logits (Nv,C), malloc'd, for gda-zs (NULL when there is no val). */
static ca_status gda_core(ca_classifier *c, const ca_fit_data *d, float **val_logits) {
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    *val_logits = NULL;
    if (D > 16384) return ca_fail(CA_E_UNSUPPORTED, "gda: feature dim %d is above 16384 (a D×D covariance)", D);
    int lwork = 1 + 6 * D + 2 * D * D, liwork = 3 + 5 * D, info = 0;
    size_t nf = (size_t)N * D + (size_t)D * D + (size_t)C * D * 4 + (size_t)Nv * D + (size_t)Nv * C + C;
    float *blk = ca_malloc2(nf, sizeof(float));
    double *S = ca_malloc2((size_t)D * D + D + (size_t)lwork, sizeof(double));
    int *iwork = ca_malloc2((size_t)liwork, sizeof(int));
    int *cnt = ca_calloc2((size_t)C, sizeof(int));
    ca_status st = CA_OK;
    if (!blk || !S || !iwork || !cnt) { st = ca_fail(CA_E_NOMEM, "gda: out of memory"); goto done; }
    float *Xc = blk, *Q = Xc + (size_t)N * D, *M = Q + (size_t)D * D, *Mp = M + (size_t)C * D;
    float *tmp = Mp + (size_t)C * D, *Wp = tmp + (size_t)C * D, *Xvp = Wp + (size_t)C * D;
    float *L = Xvp + (size_t)Nv * D, *bb = L + (size_t)Nv * C;
    double *ev = S + (size_t)D * D, *work = ev + D;
    memset(M, 0, sizeof(float) * (size_t)C * D);
    for (int i = 0; i < N; i++) {
        cnt[d->train.y[i]]++;
        for (int k = 0; k < D; k++) M[(size_t)d->train.y[i] * D + k] += d->train.x[(size_t)i * D + k];
    }
    for (int j = 0; j < C; j++) if (cnt[j]) for (int k = 0; k < D; k++) M[(size_t)j * D + k] /= cnt[j];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) Xc[(size_t)i * D + k] = d->train.x[(size_t)i * D + k] - M[(size_t)d->train.y[i] * D + k];
    int dof = N - C > 0 ? N - C : 1;
    ca_sgemm(1, 0, D, D, N, 1.0f / dof, Xc, D, Xc, D, 0.0f, Q, D);
    double tr = 0;
    for (size_t k = 0; k < (size_t)D * D; k++) S[k] = Q[k];
    for (int k = 0; k < D; k++) tr += S[(size_t)k * D + k];
    double tau = tr / D;
    if (!(tau > 1e-12)) tau = 1.0 / D;   /* 1 shot: no within-class scatter; isotropic fallback */
    /* Row-major S is symmetric, so the Fortran column-major view is the same matrix. */
    dsyevd_("V", "U", &D, S, &D, ev, work, &lwork, iwork, &liwork, &info, 1, 1);
    if (info != 0) { st = ca_fail(CA_E_INTERNAL, "gda: eigen-decomposition failed (info %d)", info); goto done; }
    /* dsyevd leaves eigenvector k in column k (column-major) = row k of our row-major array:
     * Q[i][k] (row-major, eigenvectors as columns) = S[k*D + i]. */
    for (int i = 0; i < D; i++) for (int k = 0; k < D; k++) Q[(size_t)i * D + k] = (float)S[(size_t)k * D + i];
    ca_sgemm(0, 0, C, D, D, 1.0f, M, D, Q, D, 0.0f, Mp, D);
    if (Nv > 0) ca_sgemm(0, 0, Nv, D, D, 1.0f, d->val.x, D, Q, D, 0.0f, Xvp, D);
    double best_s = 0.2, best_acc = -1;
    for (int g = 0; Nv > 0 && g < N_SHRINK; g++) {   /* strong to weak: ties keep more shrinkage */
        discriminant(Mp, Q, ev, tau, SHRINK[g], C, D, tmp, Wp, NULL, bb);
        affine_logits(Xvp, Nv, Wp, bb, C, D, L);
        double acc = ca_accuracy(L, d->val.y, Nv, C);
        if (acc > best_acc) { best_acc = acc; best_s = SHRINK[g]; }
    }
    float *W = ca_clf_add_tensor(c, "gda_w", 2, (int64_t[]){C, D}), *b = ca_clf_add_tensor(c, "gda_b", 1, (int64_t[]){C});
    if (!W || !b) { st = CA_E_NOMEM; goto done; }
    discriminant(Mp, Q, ev, tau, best_s, C, D, tmp, NULL, W, b);
    if (Nv > 0) {
        float *vl = ca_malloc2((size_t)Nv * C, sizeof(float));
        if (!vl) { st = CA_E_NOMEM; goto done; }
        affine_logits(d->val.x, Nv, W, b, C, D, vl);
        *val_logits = vl;
    }
    /* without val the shrinkage stays at 0.2 (ours: GDA's paper has no shrinkage to copy) */
    if (!(st = ca_clf_set_param(c, "shrinkage", best_s)) && Nv > 0) st = ca_clf_set_param(c, "val_acc", best_acc);
done:
    free(blk); free(S); free(iwork); free(cnt);
    return st;
}

static ca_status gda_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    (void)p;
    float *vl = NULL;
    ca_status st = gda_core(c, d, &vl);
    free(vl);
    return st;
}

static ca_status gda_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const float *W = ca_clf_get_tensor(c, "gda_w", (int64_t)c->C * c->D), *b = ca_clf_get_tensor(c, "gda_b", c->C);
    if (!W || !b) return CA_E_FORMAT;
    affine_logits(x, n, W, b, c->C, c->D, out);
    return CA_OK;
}

static double stddev(const float *v, size_t n) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) { s += v[i]; s2 += (double)v[i] * v[i]; }
    double m = s / n, var = s2 / n - m * m;
    return var > 0 ? sqrt(var) : 0;
}

static ca_status gdazs_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    (void)p;
    const int C = c->C, D = c->D, Nv = d->val.n;
    float *G = NULL, *Z = NULL, *T = NULL;
    ca_status st = gda_core(c, d, &G);
    if (st) goto done;
    double gda_acc = ca_classifier_param(c, "val_acc", NAN);
    float *tw = ca_clf_add_tensor(c, "text_w", 2, (int64_t[]){C, D});
    if (!tw) { st = CA_E_NOMEM; goto done; }
    memcpy(tw, d->text_w, sizeof(float) * (size_t)C * D);
    double alpha = 0, best = -1;
    if (Nv == 0) {
        /* No val: α gives both terms the same spread on the training features (ours; there is
         * no published fixed value for this combination). */
        const int N = d->train.n;
        Z = ca_malloc2((size_t)N * C, sizeof(float));
        T = ca_malloc2((size_t)N * C, sizeof(float));
        if (!Z || !T) { st = CA_E_NOMEM; goto done; }
        ca_logits_linear(d->train.x, N, tw, C, D, 100.0f, Z);
        if ((st = gda_logits(c, d->train.x, N, T)) != CA_OK) goto done;
        double sg = stddev(T, (size_t)N * C), sz = stddev(Z, (size_t)N * C);
        alpha = sg > 0 ? sz / sg : 0;
    } else {
        Z = ca_malloc2((size_t)Nv * C, sizeof(float));
        T = ca_malloc2((size_t)Nv * C, sizeof(float));
        if (!Z || !T) { st = CA_E_NOMEM; goto done; }
        ca_logits_linear(d->val.x, Nv, tw, C, D, 100.0f, Z);
        double sg = stddev(G, (size_t)Nv * C), sz = stddev(Z, (size_t)Nv * C);
        double unit = sg > 0 ? sz / sg : 0;   /* alpha that gives both terms the same spread */
        /* alpha = 0 (zero-shot alone), then unit · 10^(−2 + k/4), k = 0..16 (0.01 .. 100) */
        for (int k = -1; k <= 16; k++) {
            double a = k < 0 ? 0 : unit * pow(10.0, -2 + 0.25 * k);
            for (size_t i = 0; i < (size_t)Nv * C; i++) T[i] = Z[i] + (float)a * G[i];
            double acc = ca_accuracy(T, d->val.y, Nv, C);
            if (acc > best) { best = acc; alpha = a; }
        }
    }
    if ((st = ca_clf_set_param(c, "alpha", alpha))) goto done;
    if (Nv > 0 && (st = ca_clf_set_param(c, "gda_val_acc", gda_acc))) goto done;
    if (Nv > 0) st = ca_clf_set_param(c, "val_acc", best);
done:
    free(G); free(Z); free(T);
    return st;
}

static ca_status gdazs_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const int C = c->C, D = c->D;
    const float *W = ca_clf_get_tensor(c, "gda_w", (int64_t)C * D), *b = ca_clf_get_tensor(c, "gda_b", C);
    const float *tw = ca_clf_get_tensor(c, "text_w", (int64_t)C * D);
    if (!W || !b || !tw) return CA_E_FORMAT;
    float a = (float)ca_classifier_param(c, "alpha", 0);
    if (!isfinite(a)) return ca_fail(CA_E_FORMAT, "gda-zs: alpha is not finite");
    ca_sgemm(0, 1, n, C, D, 100.0f, x, D, tw, D, 0.0f, out, C);
    ca_sgemm(0, 1, n, C, D, a, x, D, W, D, 1.0f, out, C);
    for (int i = 0; i < n; i++) for (int j = 0; j < C; j++) out[(size_t)i * C + j] += a * b[j];
    return CA_OK;
}

const ca_method ca_method_gda = {
    .name = "gda",
    .help = "Gaussian discriminant analysis, shared covariance with shrinkage chosen on val (no text)",
    .needs_text = 0, .fit = gda_fit, .logits = gda_logits,
};
const ca_method ca_method_gda_zs = {
    .name = "gda-zs",
    .help = "zero-shot plus GDA: 100·f·Wᵀ + α·gda(f), shrinkage and α chosen on val (needs text weights)",
    .needs_text = 1, .fit = gdazs_fit, .logits = gdazs_logits,
};
