/* gda.c — Gaussian discriminant analysis with one shared covariance (linear discriminant):
 * logits_c = f·Σ⁻¹μ_c − ½ μ_cᵀΣ⁻¹μ_c. Two covariance estimators (ca_fit_params.covariance):
 *  - tuned: Σ = (1−s)·S + s·τ·I (S pooled within-class covariance, τ = tr(S)/D), the shrinkage s
 *    chosen on val; gda-zs's α on a spread-matched log grid;
 *  - ks: the ICLR 2024 estimator of Wang et al. as their code computes it: every augmented view
 *    of every shot is a sample, Σ⁻¹ = D·pinv((N−1)·S + tr(S)·I) with S = torch.cov of the
 *    class-centred samples, bias log(1/C) − ½ μᵀΣ⁻¹μ, gda-zs's α from {1e-4, …, 100}, the first
 *    strictly best on val (starting from 0 with α = 0.1).
 * `gda` needs no text; `gda-zs` adds it to zero-shot: 100·f·Wᵀ + α·gda(f). The scatter is
 * eigen-decomposed once (LAPACK dsyevd from OpenBLAS), so each grid point costs one GEMM.
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

/* The precision's eigenvalues dd (D) for shrinkage s of the tuned estimator. */
static void tuned_precision(const double *ev, double tau, double s, int D, double *dd) {
    for (int k = 0; k < D; k++) dd[k] = 1.0 / ((1 - s) * (ev[k] > 0 ? ev[k] : 0) + s * tau);
}

/* The KS estimator's precision D·pinv(A), A = scatter + tr(cov)·I, from the scatter's eigenvalues
 * ev (D). pinv as torch.linalg.pinv: eigenvalues of A at or below rtol·max are dropped. */
static void ks_precision(const double *ev, double trc, int D, double *dd) {
    double mx = 0;
    for (int k = 0; k < D; k++) mx = fmax(mx, fabs((ev[k] > 0 ? ev[k] : 0) + trc));
    double tol = mx * D * 1.1920928955078125e-07;   /* max(m,n)·eps(float32), torch's default rtol */
    for (int k = 0; k < D; k++) {
        double a = (ev[k] > 0 ? ev[k] : 0) + trc;
        dd[k] = a > tol && a > 0 ? (double)D / a : 0.0;
    }
}

/* Discriminant weights for precision eigenvalues dd: W (C,D) = M'·diag(dd)·Qᵀ,
 * b_c = b0 − ½ Σ_k dd_k M'_ck². Mp = M·Q (C,D); Q (D,D) row-major eigenvectors as columns.
 * tmp: (C,D). */
static void discriminant(const float *Mp, const float *Q, const double *dd, double b0, int C,
                         int D, float *tmp, float *Wp, float *W, float *b) {
    for (int j = 0; j < C; j++) {
        double o = 0;
        for (int k = 0; k < D; k++) {
            double dk = dd[k], m = Mp[(size_t)j * D + k];
            tmp[(size_t)j * D + k] = (float)(m * dk);
            o += m * m * dk;
        }
        b[j] = (float)(b0 - 0.5 * o);
    }
    if (Wp) memcpy(Wp, tmp, sizeof(float) * (size_t)C * D);   /* weights in the eigenbasis */
    if (W) ca_sgemm(0, 1, C, D, D, 1.0f, tmp, D, Q, D, 0.0f, W, D);
}

static void affine_logits(const float *X, int n, const float *W, const float *b, int C, int D, float *out) {
    ca_sgemm(0, 1, n, C, D, 1.0f, X, D, W, D, 0.0f, out, C);
    for (int i = 0; i < n; i++) for (int j = 0; j < C; j++) out[(size_t)i * C + j] += b[j];
}

/* Fit the discriminant, store "gda_w", "gda_b" and params; val logits of the chosen model are
 * left in *val_logits (Nv,C), malloc'd, for gda-zs (NULL when there is no val). ks: the KS
 * estimator over every view (or the features when the split has no views), no search. */
static ca_status gda_core(ca_classifier *c, const ca_fit_data *d, int ks, int alone, float **val_logits) {
    const int C = c->C, D = c->D, Nv = d->val.n;
    const int use_views = ks && d->train.views > 0 && d->train.xv;
    const int V = use_views ? d->train.views : 1, N0 = d->train.n;
    *val_logits = NULL;
    if (D > 16384) return ca_fail(CA_E_UNSUPPORTED, "gda: feature dim %d is above 16384 (a D×D covariance)", D);
    if ((int64_t)V * N0 > 100000000) return ca_fail(CA_E_UNSUPPORTED, "gda: %d views × %d shots is too many samples", V, N0);
    const int N = V * N0;
    const float *X = use_views ? d->train.xv : d->train.x;   /* (V·N0, D): view v of shot i at row v·N0 + i */
    int lwork = 1 + 6 * D + 2 * D * D, liwork = 3 + 5 * D, info = 0;
    size_t nf = (size_t)N * D + (size_t)D * D + (size_t)C * D * 4 + (size_t)Nv * D + (size_t)Nv * C + C;
    float *blk = ca_malloc2(nf, sizeof(float));
    double *S = ca_malloc2((size_t)D * D + 2 * (size_t)D + (size_t)lwork, sizeof(double));
    int *iwork = ca_malloc2((size_t)liwork, sizeof(int));
    int *cnt = ca_calloc2((size_t)C, sizeof(int));
    ca_status st = CA_OK;
    if (!blk || !S || !iwork || !cnt) { st = ca_fail(CA_E_NOMEM, "gda: out of memory"); goto done; }
    float *Xc = blk, *Q = Xc + (size_t)N * D, *M = Q + (size_t)D * D, *Mp = M + (size_t)C * D;
    float *tmp = Mp + (size_t)C * D, *Wp = tmp + (size_t)C * D, *Xvp = Wp + (size_t)C * D;
    float *L = Xvp + (size_t)Nv * D, *bb = L + (size_t)Nv * C;
    double *ev = S + (size_t)D * D, *dd = ev + D, *work = dd + D;
    memset(M, 0, sizeof(float) * (size_t)C * D);
    for (int i = 0; i < N; i++) {
        int y = d->train.y[i % N0];
        cnt[y]++;
        for (int k = 0; k < D; k++) M[(size_t)y * D + k] += X[(size_t)i * D + k];
    }
    for (int j = 0; j < C; j++) if (cnt[j]) for (int k = 0; k < D; k++) M[(size_t)j * D + k] /= cnt[j];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) Xc[(size_t)i * D + k] = X[(size_t)i * D + k] - M[(size_t)d->train.y[i % N0] * D + k];
    /* tuned: S = scatter/(N−C); ks: the scatter itself, (N−1)·torch.cov (the samples' column mean
     * is zero once each class is centred) */
    int dof = N - C > 0 ? N - C : 1;
    ca_sgemm(1, 0, D, D, N, ks ? 1.0f : 1.0f / dof, Xc, D, Xc, D, 0.0f, Q, D);
    double tr = 0;
    for (size_t k = 0; k < (size_t)D * D; k++) S[k] = Q[k];
    for (int k = 0; k < D; k++) tr += S[(size_t)k * D + k];
    double tau = tr / D;
    if (!(tau > 1e-12)) tau = 1.0 / D;   /* 1 shot: no within-class scatter; isotropic fallback */
    double trc = N > 1 ? tr / (N - 1) : 0;   /* ks: tr(torch.cov) */
    /* Row-major S is symmetric, so the Fortran column-major view is the same matrix. */
    dsyevd_("V", "U", &D, S, &D, ev, work, &lwork, iwork, &liwork, &info, 1, 1);
    if (info != 0) { st = ca_fail(CA_E_INTERNAL, "gda: eigen-decomposition failed (info %d)", info); goto done; }
    /* dsyevd leaves eigenvector k in column k (column-major) = row k of our row-major array:
     * Q[i][k] (row-major, eigenvectors as columns) = S[k*D + i]. */
    for (int i = 0; i < D; i++) for (int k = 0; k < D; k++) Q[(size_t)i * D + k] = (float)S[(size_t)k * D + i];
    ca_sgemm(0, 0, C, D, D, 1.0f, M, D, Q, D, 0.0f, Mp, D);
    double best_s = 0.2, best_acc = -1, b0 = ks ? log(1.0 / C) : 0.0;
    int isotropic = 0;
    if (ks) {
        ks_precision(ev, trc, D, dd);
        /* One sample per class (1 shot, no views): no within-class scatter, pinv(0) = 0 and the
         * discriminant vanishes. gda-zs then is zero-shot, as the official code; gda alone would be
         * constant, so it takes the identity precision (nearest class mean) and says so. */
        if (alone && !(trc > 0)) { isotropic = 1; for (int k = 0; k < D; k++) dd[k] = D; }
    } else {
        if (Nv > 0) ca_sgemm(0, 0, Nv, D, D, 1.0f, d->val.x, D, Q, D, 0.0f, Xvp, D);
        for (int g = 0; Nv > 0 && g < N_SHRINK; g++) {   /* strong to weak: ties keep more shrinkage */
            tuned_precision(ev, tau, SHRINK[g], D, dd);
            discriminant(Mp, Q, dd, 0.0, C, D, tmp, Wp, NULL, bb);
            affine_logits(Xvp, Nv, Wp, bb, C, D, L);
            double acc = ca_accuracy(L, d->val.y, Nv, C);
            if (acc > best_acc) { best_acc = acc; best_s = SHRINK[g]; }
        }
        tuned_precision(ev, tau, best_s, D, dd);
    }
    float *W = ca_clf_add_tensor(c, "gda_w", 2, (int64_t[]){C, D}), *b = ca_clf_add_tensor(c, "gda_b", 1, (int64_t[]){C});
    if (!W || !b) { st = CA_E_NOMEM; goto done; }
    discriminant(Mp, Q, dd, b0, C, D, tmp, NULL, W, b);
    if (Nv > 0) {
        float *vl = ca_malloc2((size_t)Nv * C, sizeof(float));
        if (!vl) { st = CA_E_NOMEM; goto done; }
        affine_logits(d->val.x, Nv, W, b, C, D, vl);
        if (ks) best_acc = ca_accuracy(vl, d->val.y, Nv, C);
        *val_logits = vl;
    }
    for (size_t k = 0; k < (size_t)C * D; k++)
        if (!isfinite(W[k])) { st = ca_fail(CA_E_NONFINITE, "gda: the discriminant has a non-finite weight"); goto done; }
    st = ca_clf_set_param(c, "covariance", ks);
    /* tuned without val: the shrinkage stays at 0.2 (ours: GDA's paper has no shrinkage to copy) */
    if (!st && !ks) st = ca_clf_set_param(c, "shrinkage", best_s);
    if (!st && ks) st = ca_clf_set_param(c, "samples", N);
    if (!st && ks) st = ca_clf_set_param(c, "isotropic", isotropic);
    if (!st && Nv > 0) st = ca_clf_set_param(c, "val_acc", best_acc);
done:
    free(blk); free(S); free(iwork); free(cnt);
    return st;
}

static ca_status gda_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    float *vl = NULL;
    ca_status st = gda_core(c, d, p->covariance == CA_COV_KS, 1, &vl);
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

/* The official α grid of the KS variant: 1e-4 .. 100 by decades, the first strictly best from a
 * best accuracy of 0, α = 0.1 when nothing beats 0 (as main_few_shots.py). */
static const double KS_ALPHA[] = {1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0};

static ca_status gdazs_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D, Nv = d->val.n, ks = p->covariance == CA_COV_KS;
    float *G = NULL, *Z = NULL, *T = NULL;
    if (ks && Nv == 0)
        return ca_fail(CA_E_ARG, "gda-zs --covariance ks chooses its α on validation data and cannot run without it (--select none); use --covariance tuned");
    ca_status st = gda_core(c, d, ks, 0, &G);
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
        if (ks) { best = 0; alpha = 0.1; }
        /* tuned: alpha = 0 (zero-shot alone), then unit · 10^(−2 + k/4), k = 0..16 (0.01 .. 100);
         * ks: the official decades */
        int nk = ks ? (int)(sizeof KS_ALPHA / sizeof KS_ALPHA[0]) : 18;
        for (int k = 0; k < nk; k++) {
            double a = ks ? KS_ALPHA[k] : (k == 0 ? 0 : unit * pow(10.0, -2 + 0.25 * (k - 1)));
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
