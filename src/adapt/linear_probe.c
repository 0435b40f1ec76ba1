/* linear_probe.c — the CLIP paper's linear-probe baseline: multinomial logistic regression on
 * the features with an L2 penalty, solved to convergence by L-BFGS, the penalty chosen on val
 * from a log-spaced grid walked from strong to weak with warm starts. No text weights needed.
 * Features are centred and scaled (train statistics) for conditioning; the stored weights map
 * raw features, so prediction is one GEMM.
 */
#include "adapt/adapt.h"
#include "adapt/methods.h"
#include "adapt/train.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

#define LBFGS_M 10
#define LBFGS_MAX_ITER 300
#define GRAD_TOL 1e-4      /* stop when max |gradient| <= GRAD_TOL ... */
#define FTOL 1e-9          /* ... or the objective's relative decrease over an iteration < FTOL */
#define N_LAMBDA 8         /* lambda = 10^(1 - k), k = 0..7: 10 .. 1e-6 */
#define PATIENCE 2         /* stop walking the grid after this many lambdas without a val gain */

double ca_logreg_loss(const float *X, const int32_t *y, int N, int C, int D, double lambda,
                      const float *theta, float *g, float *scratch) {
    const float *W = theta, *b = theta + (size_t)C * D;
    float *L = scratch;
    ca_sgemm(0, 1, N, C, D, 1.0f, X, D, W, D, 0.0f, L, C);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) L[(size_t)i * C + j] += b[j];
    double f = ca_softmax_ce(L, y, N, C, L);
    double r = 0;
    for (size_t k = 0; k < (size_t)C * D; k++) r += (double)W[k] * W[k];
    f += 0.5 * lambda * r;
    float *gW = g, *gb = g + (size_t)C * D;
    memcpy(gW, W, sizeof(float) * (size_t)C * D);
    ca_sgemm(1, 0, C, D, N, 1.0f, L, C, X, D, (float)lambda, gW, D);   /* dLᵀ·X + lambda·W */
    for (int j = 0; j < C; j++) gb[j] = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) gb[j] += L[(size_t)i * C + j];
    return f;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef struct {
    const float *X; const int32_t *y; int N, C, D; double lambda;
    float *scratch;
} lr_problem;

/* Minimise the objective from theta (updated in place). Work: 4n + 2·M·n floats. Returns the
 * number of iterations. */
static int lbfgs(const lr_problem *pb, float *theta, float *work) {
    const size_t n = (size_t)pb->C * (pb->D + 1);
    float *g = work, *d = g + n, *tn = d + n, *gn = tn + n, *S = gn + n, *Y = S + LBFGS_M * n;
    double rho[LBFGS_M], al[LBFGS_M];
    int k = 0, head = 0, it;
    double f = ca_logreg_loss(pb->X, pb->y, pb->N, pb->C, pb->D, pb->lambda, theta, g, pb->scratch);
    for (it = 0; it < LBFGS_MAX_ITER; it++) {
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        if (gmax <= GRAD_TOL) break;
        /* two-loop recursion: d = -H·g */
        for (size_t i = 0; i < n; i++) d[i] = -g[i];
        for (int j = 0; j < k; j++) {
            int s = (head - 1 - j + LBFGS_M) % LBFGS_M;
            al[s] = rho[s] * dot(S + s * n, d, n);
            for (size_t i = 0; i < n; i++) d[i] -= (float)al[s] * Y[s * n + i];
        }
        if (k > 0) {
            int s = (head - 1 + LBFGS_M) % LBFGS_M;
            double gam = dot(S + s * n, Y + s * n, n) / dot(Y + s * n, Y + s * n, n);
            for (size_t i = 0; i < n; i++) d[i] *= (float)gam;
        }
        for (int j = k - 1; j >= 0; j--) {
            int s = (head - 1 - j + LBFGS_M) % LBFGS_M;
            double be = rho[s] * dot(Y + s * n, d, n);
            for (size_t i = 0; i < n; i++) d[i] += (float)(al[s] - be) * S[s * n + i];
        }
        double gd = dot(g, d, n);
        if (!(gd < 0)) {   /* not a descent direction: drop the memory, use steepest descent */
            k = 0;
            for (size_t i = 0; i < n; i++) d[i] = -g[i];
            gd = dot(g, d, n);
        }
        double t = k == 0 ? 1.0 / fmax(1.0, sqrt(-gd)) : 1.0, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 40; ls++) {   /* Armijo backtracking */
            for (size_t i = 0; i < n; i++) tn[i] = theta[i] + (float)t * d[i];
            fn = ca_logreg_loss(pb->X, pb->y, pb->N, pb->C, pb->D, pb->lambda, tn, gn, pb->scratch);
            if (fn <= f + 1e-4 * t * gd) { ok = 1; break; }
            t *= 0.5;
        }
        if (!ok) break;   /* no decrease at float precision: converged as far as it can */
        float *s = S + head * n, *yv = Y + head * n;
        for (size_t i = 0; i < n; i++) { s[i] = tn[i] - theta[i]; yv[i] = gn[i] - g[i]; }
        double sy = dot(s, yv, n);
        if (sy > 1e-12) { rho[head] = 1.0 / sy; head = (head + 1) % LBFGS_M; if (k < LBFGS_M) k++; }
        memcpy(theta, tn, n * sizeof(float));
        memcpy(g, gn, n * sizeof(float));
        double rel = (f - fn) / fmax(fabs(f), 1.0);
        f = fn;
        if (rel < FTOL) { it++; break; }
    }
    return it;
}

static ca_status lp_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D, N = d->train.n, Nv = d->val.n;
    const size_t n = (size_t)C * (D + 1);
    int rows = N > Nv ? N : Nv;
    float *blk = ca_malloc2((size_t)(N + Nv) * D + (size_t)rows * C + n * (6 + 2 * LBFGS_M) + D, sizeof(float));
    if (!blk) return CA_E_NOMEM;
    float *X = blk, *Xv = X + (size_t)N * D, *scr = Xv + (size_t)Nv * D, *theta = scr + (size_t)rows * C;
    float *best = theta + n, *work = best + n, *mu = work + n * (4 + 2 * LBFGS_M);
    double t0 = ca_now();
    ca_gemm_threads blas_saved = ca_train_threads_set(p->threads);
    /* Centre on the train mean, scale so that the mean squared row norm is D. */
    for (int k = 0; k < D; k++) mu[k] = 0;
    for (int i = 0; i < N; i++) for (int k = 0; k < D; k++) mu[k] += d->train.x[(size_t)i * D + k] / N;
    double ss = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) {
            float v = d->train.x[(size_t)i * D + k] - mu[k];
            X[(size_t)i * D + k] = v; ss += (double)v * v;
        }
    float sc = ss > 1e-20 ? (float)sqrt((double)D * N / ss) : 1.0f;
    for (size_t i = 0; i < (size_t)N * D; i++) X[i] *= sc;
    for (int i = 0; i < Nv; i++)
        for (int k = 0; k < D; k++) Xv[(size_t)i * D + k] = (d->val.x[(size_t)i * D + k] - mu[k]) * sc;

    memset(theta, 0, n * sizeof(float));
    memcpy(best, theta, n * sizeof(float));
    double best_acc = -1, best_lambda = 1e-2;
    int since = 0, iters = 0;
    for (int kk = 0; kk < N_LAMBDA; kk++) {
        double lambda = pow(10.0, 1.0 - kk);
        /* No val split: one fixed penalty, scikit-learn's default C = 1 (the CLIP paper's solver)
         * on our mean-loss objective, λ = 1/(C·N), on the standardised features. */
        if (Nv == 0) lambda = 1.0 / N;
        lr_problem pb = {X, d->train.y, N, C, D, lambda, scr};
        iters += lbfgs(&pb, theta, work);
        if (Nv == 0) { memcpy(best, theta, n * sizeof(float)); best_lambda = lambda; break; }
        ca_sgemm(0, 1, Nv, C, D, 1.0f, Xv, D, theta, D, 0.0f, scr, C);
        for (int i = 0; i < Nv; i++) for (int j = 0; j < C; j++) scr[(size_t)i * C + j] += theta[(size_t)C * D + j];
        double acc = ca_accuracy(scr, d->val.y, Nv, C);
        if (acc > best_acc) { best_acc = acc; best_lambda = lambda; memcpy(best, theta, n * sizeof(float)); since = 0; }
        else if (++since >= PATIENCE) break;
        if (p->progress && p->progress("linear-probe", kk + 1, N_LAMBDA, p->progress_user)) {
            ca_train_threads_restore(blas_saved); free(blk); return ca_fail(CA_E_CANCELLED, "cancelled by the progress callback");
        }
    }
    ca_train_threads_restore(blas_saved);
    float *w = ca_clf_add_tensor(c, "lp_w", 2, (int64_t[]){C, D});
    float *b = ca_clf_add_tensor(c, "lp_b", 1, (int64_t[]){C});
    if (!w || !b) { free(blk); return CA_E_NOMEM; }
    for (int j = 0; j < C; j++) {     /* fold the standardisation into the weights */
        double o = best[(size_t)C * D + j];
        for (int k = 0; k < D; k++) {
            w[(size_t)j * D + k] = best[(size_t)j * D + k] * sc;
            o -= (double)w[(size_t)j * D + k] * mu[k];
        }
        b[j] = (float)o;
    }
    free(blk);
    ca_status st = ca_clf_set_param(c, "lambda", best_lambda);
    if (!st && Nv > 0) st = ca_clf_set_param(c, "val_acc", best_acc);
    if (!st) st = ca_clf_set_param(c, "lbfgs_iters", iters);
    if (!st) st = ca_clf_set_param(c, "train_seconds", ca_now() - t0);
    return st;
}

static ca_status lp_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const float *w = ca_clf_get_tensor(c, "lp_w", (int64_t)c->C * c->D), *b = ca_clf_get_tensor(c, "lp_b", c->C);
    if (!w || !b) return CA_E_FORMAT;
    ca_sgemm(0, 1, n, c->C, c->D, 1.0f, x, c->D, w, c->D, 0.0f, out, c->C);
    for (int i = 0; i < n; i++) for (int j = 0; j < c->C; j++) out[(size_t)i * c->C + j] += b[j];
    return CA_OK;
}

const ca_method ca_method_linear_probe = {
    .name = "linear-probe",
    .help = "multinomial logistic regression (L-BFGS), L2 penalty chosen on val, λ = 1/N without val (no text needed)",
    .needs_text = 0, .fit = lp_fit, .logits = lp_logits,
};
