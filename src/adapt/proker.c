/* proker.c — ProKeR (Bendou et al., CVPR 2025), training-free: kernel ridge regression of the
 * one-hot labels towards the zero-shot predictor with Tip-Adapter's kernel,
 *   f(x) = x·Tᵀ + k(x, S)·A,   A = (K/λ + I)⁻¹ (Y − S·Tᵀ),   k(x, x') = exp(−β(1 − x·x')),
 * in the parametrisation of the official code (trainers/proker.py): the zero-shot term is the
 * plain cosine (no ×100) and (K/λ + I)⁻¹ = λ(K + λI)⁻¹, i.e. the textbook proximal KRR solution
 * f_zs + k(K + λI)⁻¹(Y − f_zs(X)) with its correction scaled by λ. S are the K-shot features
 * (one row per shot: with views, the view-mean feature, not every view as the official code,
 * which would make K a (V·N)² matrix). β, λ: grid-searched on val (first strictly best, β outer)
 * or, without val, the official ImageNet values for the nearest K. Solved by Cholesky (LAPACK).
 */
#include "adapt/adapt.h"
#include "adapt/methods.h"
#include "adapt/train.h"
#include "model/gemm.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda,
                    double *b, const int *ldb, int *info, size_t);
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t);
extern void spotrs_(const char *uplo, const int *n, const int *nrhs, const float *a, const int *lda,
                    float *b, const int *ldb, int *info, size_t);

/* Search grid: β over [0.5, 3] (the official RN50 range) in 6 steps; λ on a log grid
 * {0.003, 0.01, 0.03, 0.1, 0.3} that holds the official ImageNet values (0.05–0.1) and the
 * stanford_cars choice (0.01). Each pair costs one N×N Cholesky, hence the small grid. */
#define PK_NB 6
#define PK_NL 5
static double pk_beta(int i) { return 0.5 + i * (3.0 - 0.5) / (PK_NB - 1); }
static double pk_lambda(int i) { static const double L[PK_NL] = {0.003, 0.01, 0.03, 0.1, 0.3}; return L[i]; }

/* Official hyper-parameters found on ImageNet (configs/RN50/configs_proker/hyperparameters.json),
 * used when there is no validation data. */
static const struct { int k; double beta, lambda; } PK_FIXED[] = {
    {1, 3.0, 0.05}, {2, 2.6, 0.05}, {4, 1.5, 0.05}, {8, 1.66, 0.07}, {16, 1.7, 0.1},
};

/* out(n,N) = exp(−β(1 − x·Sᵀ)) */
static void kernel(const float *x, int n, const float *S, int N, int D, double beta, float *out) {
    ca_sgemm(0, 1, n, N, D, 1.0f, x, D, S, D, 0.0f, out, N);
    for (size_t i = 0; i < (size_t)n * N; i++) out[i] = expf((float)(-beta * (1.0 - out[i])));
}

/* A (N,C) = (K/λ + I)⁻¹ R by Cholesky in double. Kf: (N,N) kernel; M: (N,N) scratch; R: (N,C)
 * targets (double, column-major for LAPACK: R[c*N + i]), overwritten by the solution. */
static ca_status solve(const float *Kf, int N, int C, double lambda, double *M, double *R) {
    for (size_t i = 0; i < (size_t)N * N; i++) M[i] = (double)Kf[i] / lambda;
    for (int i = 0; i < N; i++) M[(size_t)i * N + i] += 1.0;
    int info = 0;
    dpotrf_("L", &N, M, &N, &info, 1);
    if (info != 0) return ca_fail(CA_E_NONFINITE, "proker: the kernel system is not positive definite (info %d)", info);
    dpotrs_("L", &N, &C, M, &N, R, &N, &info, 1);
    return info ? ca_fail(CA_E_INTERNAL, "proker: triangular solve failed (info %d)", info) : CA_OK;
}

/* Without val: the official ImageNet values for the nearest K (shots per class). */
static void fixed_params(int N, int C, double *beta, double *lambda) {
    double k = (double)N / C, bd = 1e30;
    for (size_t i = 0; i < sizeof PK_FIXED / sizeof PK_FIXED[0]; i++) {
        double dist = fabs(log(k / PK_FIXED[i].k));
        if (dist < bd) { bd = dist; *beta = PK_FIXED[i].beta; *lambda = PK_FIXED[i].lambda; }
    }
}

/* Stores the fitted classifier: keys S, krr_alpha from R (N,C) column-major, text weights. */
static ca_status store(ca_classifier *c, const ca_fit_data *d, const double *Rd, const float *Rf, double beta,
                       double lambda, double acc) {
    const int C = c->C, D = c->D, N = d->train.n;
    float *keys = ca_clf_add_tensor(c, "keys", 2, (int64_t[]){N, D});
    float *A = keys ? ca_clf_add_tensor(c, "krr_alpha", 2, (int64_t[]){N, C}) : NULL;
    float *tw = A ? ca_clf_add_tensor(c, "text_w", 2, (int64_t[]){C, D}) : NULL;
    if (!tw) return CA_E_NOMEM;
    memcpy(keys, d->train.x, sizeof(float) * (size_t)N * D);
    memcpy(tw, d->text_w, sizeof(float) * (size_t)C * D);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            A[(size_t)i * C + j] = Rd ? (float)Rd[(size_t)j * N + i] : Rf[(size_t)j * N + i];
            if (!isfinite(A[(size_t)i * C + j])) return ca_fail(CA_E_NONFINITE, "proker: the solution is not finite");
        }
    ca_status st = ca_clf_set_param(c, "cache_size", N);
    if (!st) st = ca_clf_set_param(c, "beta", beta);
    if (!st) st = ca_clf_set_param(c, "lambda", lambda);
    if (!st) st = ca_clf_set_param(c, "val_acc", acc);
    return st;
}

/* The large-cache path (ImageNet size: 16,000 shots), within a bounded memory: the N×N system in
 * float32 (as the official code solves it, in torch's default precision), built row block by
 * row block straight into the factor's storage for every (β, λ), and the val logits computed
 * block by block; about 4·N² bytes (1 GiB at 16,000 shots) instead of ~24·N² plus 4·Nv·N. The
 * same grid, order and first-strictly-best rule as the dense path. */
#define PK_ROWS 256
static ca_status lean_system(const float *S, int N, int D, double beta, double lambda, float *M, float *blk) {
    for (int r0 = 0; r0 < N; r0 += PK_ROWS) {
        int m = N - r0 < PK_ROWS ? N - r0 : PK_ROWS;
        kernel(S + (size_t)r0 * D, m, S, N, D, beta, blk);
        for (int i = 0; i < m; i++) {
            float *row = M + (size_t)(r0 + i) * N;
            const float *k = blk + (size_t)i * N;
            for (int j = 0; j < N; j++) row[j] = (float)((double)k[j] / lambda);
            row[r0 + i] += 1.0f;
        }
    }
    /* symmetric, so the row-major array is also the column-major one LAPACK reads */
    int info = 0;
    spotrf_("L", &N, M, &N, &info, 1);
    return info != 0 ? ca_fail(CA_E_NONFINITE, "proker: the kernel system is not positive definite (info %d)", info) : CA_OK;
}

ca_status ca_proker_fit_lean(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    const float *S = d->train.x, *T = d->text_w;
    size_t NC = (size_t)N * C;
    float *M = ca_malloc_big((size_t)N * N, sizeof(float)), *R0 = ca_malloc2(NC, sizeof(float));
    float *R = ca_malloc2(NC, sizeof(float)), *blk = ca_malloc2((size_t)PK_ROWS * (N > C ? N : C), sizeof(float));
    float *L = ca_malloc2((size_t)PK_ROWS * C, sizeof(float));
    ca_status st = CA_OK;
    if (!M || !R0 || !R || !blk || !L) { st = ca_fail(CA_E_NOMEM, "proker: out of memory (%d shots)", N); goto done; }
    ca_gemm_threads saved = ca_train_threads_set(p->threads);
    for (int r0 = 0; r0 < N; r0 += PK_ROWS) { /* residual targets Y − S·Tᵀ, column-major */
        int m = N - r0 < PK_ROWS ? N - r0 : PK_ROWS;
        ca_logits_linear(S + (size_t)r0 * D, m, T, C, D, 1.0f, blk);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < C; j++) R0[(size_t)j * N + r0 + i] = (d->train.y[r0 + i] == j ? 1.0f : 0.0f) - blk[(size_t)i * C + j];
    }
    double best_beta = 0, best_lambda = 0, best_acc = 0;
    if (Nv) {
        best_beta = pk_beta(0); best_lambda = pk_lambda(0);
        for (int bi = 0; bi < PK_NB && st == CA_OK; bi++) {
            double beta = pk_beta(bi);
            for (int li = 0; li < PK_NL && st == CA_OK; li++) {
                double lambda = pk_lambda(li);
                if ((st = lean_system(S, N, D, beta, lambda, M, blk)) != CA_OK) break;
                memcpy(R, R0, NC * sizeof(float));
                int info = 0;
                spotrs_("L", &N, &C, M, &N, R, &N, &info, 1);
                if (info) { st = ca_fail(CA_E_INTERNAL, "proker: triangular solve failed (info %d)", info); break; }
                int64_t correct = 0;
                for (int r0 = 0; r0 < Nv; r0 += PK_ROWS) { /* val logits x·Tᵀ + k(x, S)·A, A = R (col-major) */
                    int m = Nv - r0 < PK_ROWS ? Nv - r0 : PK_ROWS;
                    const float *xv = d->val.x + (size_t)r0 * D;
                    ca_logits_linear(xv, m, T, C, D, 1.0f, L);
                    kernel(xv, m, S, N, D, beta, blk);
                    ca_sgemm(0, 1, m, C, N, 1.0f, blk, N, R, N, 1.0f, L, C);
                    for (int i = 0; i < m; i++) {
                        const float *l = L + (size_t)i * C;
                        int b = 0;
                        for (int j = 1; j < C; j++) if (l[j] > l[b]) b = j;
                        correct += b == d->val.y[r0 + i];
                    }
                }
                double acc = 100.0 * (double)correct / Nv;
                if (acc > best_acc) { best_acc = acc; best_beta = beta; best_lambda = lambda; }
            }
            if (p->progress && p->progress("proker", bi + 1, PK_NB, p->progress_user)) st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback");
        }
    } else {
        fixed_params(N, C, &best_beta, &best_lambda);
    }
    if (st == CA_OK && (st = lean_system(S, N, D, best_beta, best_lambda, M, blk)) == CA_OK) {
        memcpy(R, R0, NC * sizeof(float));
        int info = 0;
        spotrs_("L", &N, &C, M, &N, R, &N, &info, 1);
        if (info) st = ca_fail(CA_E_INTERNAL, "proker: triangular solve failed (info %d)", info);
    }
    ca_train_threads_restore(saved);
    if (st == CA_OK) st = store(c, d, NULL, R, best_beta, best_lambda, best_acc);
done:
    free(M); free(R0); free(R); free(blk); free(L);
    return st;
}

/* The dense path in double (every shipped set): ~(8 + 4)·N² + 4·Nv·N bytes of kernels and factor. */
static size_t dense_bytes(int N, int Nv, int C) {
    return (size_t)N * N * 12 + (size_t)Nv * N * 4 + (size_t)N * C * 28;
}

static _Atomic size_t dense_limit = (size_t)768 << 20;

size_t ca_proker_set_dense_limit(size_t bytes) { return atomic_exchange(&dense_limit, bytes); }

static ca_status proker_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    const float *S = d->train.x, *T = d->text_w;
    if (N < 1) return ca_fail(CA_E_ARG, "proker: the train split is empty");
    if (N > 46000) return ca_fail(CA_E_UNSUPPORTED, "proker: %d shots make an N×N kernel too large", N);
    if (dense_bytes(N, Nv, C) > atomic_load(&dense_limit)) return ca_proker_fit_lean(c, d, p);
    size_t NN = (size_t)N * N, NC = (size_t)N * C;
    double *M = ca_malloc2(NN, sizeof(double));
    double *R0 = ca_malloc2(NC, sizeof(double)), *R = ca_malloc2(NC, sizeof(double));
    float *Kf = ca_malloc2(NN > (size_t)Nv * N ? NN : (size_t)Nv * N, sizeof(float));
    float *Kv = Nv ? ca_malloc2((size_t)Nv * N, sizeof(float)) : NULL;
    float *Zs = ca_malloc2(NC, sizeof(float)), *Zv = Nv ? ca_malloc2((size_t)Nv * C, sizeof(float)) : NULL;
    float *Af = ca_malloc2(NC, sizeof(float)), *L = Nv ? ca_malloc2((size_t)Nv * C, sizeof(float)) : NULL;
    ca_status st = CA_OK;
    if (!M || !R0 || !R || !Kf || !Zs || !Af || (Nv && (!Kv || !Zv || !L))) { st = ca_fail(CA_E_NOMEM, "proker: out of memory (%d shots)", N); goto done; }
    ca_gemm_threads saved = ca_train_threads_set(p->threads);
    ca_logits_linear(S, N, T, C, D, 1.0f, Zs);
    for (int i = 0; i < N; i++)   /* residual targets Y − S·Tᵀ, column-major */
        for (int j = 0; j < C; j++) R0[(size_t)j * N + i] = (d->train.y[i] == j ? 1.0 : 0.0) - Zs[(size_t)i * C + j];
    double best_beta = 0, best_lambda = 0, best_acc = 0;
    if (Nv) {
        ca_logits_linear(d->val.x, Nv, T, C, D, 1.0f, Zv);
        best_beta = pk_beta(0); best_lambda = pk_lambda(0);   /* kept when nothing beats 0% */
        for (int bi = 0; bi < PK_NB && st == CA_OK; bi++) {
            double beta = pk_beta(bi);
            kernel(S, N, S, N, D, beta, Kf);
            kernel(d->val.x, Nv, S, N, D, beta, Kv);
            for (int li = 0; li < PK_NL && st == CA_OK; li++) {
                double lambda = pk_lambda(li);
                memcpy(R, R0, NC * sizeof(double));
                if ((st = solve(Kf, N, C, lambda, M, R)) != CA_OK) break;
                for (int i = 0; i < N; i++) for (int j = 0; j < C; j++) Af[(size_t)i * C + j] = (float)R[(size_t)j * N + i];
                memcpy(L, Zv, sizeof(float) * (size_t)Nv * C);
                ca_sgemm(0, 0, Nv, C, N, 1.0f, Kv, N, Af, C, 1.0f, L, C);
                double acc = ca_accuracy(L, d->val.y, Nv, C);
                if (acc > best_acc) { best_acc = acc; best_beta = beta; best_lambda = lambda; }
            }
            if (p->progress && p->progress("proker", bi + 1, PK_NB, p->progress_user)) st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback");
        }
    } else {
        fixed_params(N, C, &best_beta, &best_lambda);
    }
    if (st == CA_OK) {
        kernel(S, N, S, N, D, best_beta, Kf);
        memcpy(R, R0, NC * sizeof(double));
        st = solve(Kf, N, C, best_lambda, M, R);
    }
    ca_train_threads_restore(saved);
    if (st == CA_OK) st = store(c, d, R, NULL, best_beta, best_lambda, best_acc);
done:
    free(M); free(R0); free(R); free(Kf); free(Kv); free(Zs); free(Zv); free(Af); free(L);
    return st;
}

static ca_status proker_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const int C = c->C, D = c->D;
    int N = (int)ca_classifier_param(c, "cache_size", 0);
    double beta = ca_classifier_param(c, "beta", NAN);
    if (N < 1 || N > 10000000) return ca_fail(CA_E_FORMAT, "proker classifier: bad cache_size %d", N);
    if (!isfinite(beta)) return ca_fail(CA_E_FORMAT, "proker classifier: beta is missing or not finite");
    const float *keys = ca_clf_get_tensor(c, "keys", (int64_t)N * D), *A = ca_clf_get_tensor(c, "krr_alpha", (int64_t)N * C);
    const float *T = ca_clf_get_tensor(c, "text_w", (int64_t)C * D);
    if (!keys || !A || !T) return CA_E_FORMAT;
    const int rb = 256;
    float *K = ca_malloc2((size_t)(n < rb ? n : rb) * N, sizeof(float));
    if (!K) return CA_E_NOMEM;
    for (int r0 = 0; r0 < n; r0 += rb) {
        int m = n - r0 < rb ? n - r0 : rb;
        ca_logits_linear(x + (size_t)r0 * D, m, T, C, D, 1.0f, out + (size_t)r0 * C);
        kernel(x + (size_t)r0 * D, m, keys, N, D, beta, K);
        ca_sgemm(0, 0, m, C, N, 1.0f, K, N, A, C, 1.0f, out + (size_t)r0 * C, C);
    }
    free(K);
    return CA_OK;
}

const ca_method ca_method_proker = {
    .name = "proker",
    .help = "ProKeR: kernel ridge regression towards zero-shot with Tip's kernel, closed form; β, λ searched on val (needs text weights; no training)",
    .needs_text = 1, .fit = proker_fit, .logits = proker_logits,
};
