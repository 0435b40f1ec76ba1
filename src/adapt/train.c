/* train.c — optimisers, schedule, cross-entropy, L2-norm and ReLU kernels for trained methods.
 * Everything is sequential and allocation-free so that a training loop is deterministic. */
#include "adapt/train.h"
#include "model/gemm.h"

#include <math.h>

/* The element-wise loops below run every optimiser step over every parameter: let GCC vectorise
 * them (the Makefile adds -fno-math-errno for this file so that sqrtf vectorises; no value
 * changes, no fast-math). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("-O3")
#endif

void ca_optim_step(const ca_optim *o, double lr, int64_t step, float *restrict p, const float *restrict g, float *restrict m,
                   float *restrict v, size_t n) {
    const float flr = (float)lr, wd = o->weight_decay;
    if (o->kind == CA_OPT_SGD) {
        const float mu = o->momentum;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            m[i] = step <= 1 ? gi : mu * m[i] + gi;   /* torch: the first step seeds the buffer */
            p[i] -= flr * m[i];
        }
        return;
    }
    /* torch.optim.AdamW's order: decoupled decay first, then p -= (lr/bc1)·m / (sqrt(v)/sqrt(bc2) + eps) */
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    const double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    const float stepsz = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
    const float decay = (float)(1.0 - lr * wd);
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = m[i] * b1 + g[i] * (1.0f - b1);
        v[i] = v[i] * b2 + g[i] * g[i] * (1.0f - b2);
        p[i] -= stepsz * m[i] / (sqrtf(v[i]) / bc2s + eps);   /* vectorised (-fno-math-errno) */
    }
}

double ca_lr_cosine(double base, int64_t step, int64_t total, int64_t warmup) {
    if (warmup > 0 && step < warmup) return base * (double)(step + 1) / (double)(warmup + 1);
    int64_t span = total - warmup;
    if (span <= 0) return base;
    double t = (double)(step - warmup) / (double)span;
    if (t > 1) t = 1;
    return 0.5 * base * (1.0 + cos(M_PI * t));
}

double ca_softmax_ce(const float *logits, const int32_t *y, int B, int C, float *dlogits) {
    double loss = 0;
    const float inv = 1.0f / (float)B;
    for (int i = 0; i < B; i++) {
        const float *l = logits + (size_t)i * C;
        float mx = l[0];
        for (int j = 1; j < C; j++) mx = l[j] > mx ? l[j] : mx;
        float ly = l[y[i]];
        float s = 0;
        if (dlogits) {   /* exps kept in dlogits (it may alias logits: ly was read first) */
            float *d = dlogits + (size_t)i * C;
            for (int j = 0; j < C; j++) { d[j] = expf(l[j] - mx); s += d[j]; }
            float r = inv / s;
            for (int j = 0; j < C; j++) d[j] *= r;
            d[y[i]] -= inv;
        } else {
            for (int j = 0; j < C; j++) s += expf(l[j] - mx);
        }
        loss += (double)mx + log((double)s) - ly;
    }
    return loss / B;
}

void ca_l2norm_forward(const float *x, int n, int D, float *y, float *norm) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * D;
        float *yi = y + (size_t)i * D;
        double s = 0;
        for (int k = 0; k < D; k++) s += (double)xi[k] * xi[k];
        float nr = (float)sqrt(s);
        if (nr < 1e-12f) nr = 1e-12f;
        norm[i] = nr;
        float r = 1.0f / nr;
        for (int k = 0; k < D; k++) yi[k] = xi[k] * r;
    }
}

void ca_l2norm_backward(const float *y, const float *norm, const float *dy, int n, int D, float *dx) {
    for (int i = 0; i < n; i++) {
        const float *yi = y + (size_t)i * D, *di = dy + (size_t)i * D;
        float *o = dx + (size_t)i * D;
        float dot = 0;
        for (int k = 0; k < D; k++) dot += yi[k] * di[k];
        float r = 1.0f / norm[i];
        for (int k = 0; k < D; k++) o[k] = (di[k] - yi[k] * dot) * r;
    }
}

void ca_relu_forward(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

void ca_relu_backward(const float *y, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dx[i] : 0.0f;
}

void ca_epoch_order(ca_rng *r, int *perm, int n) {
    for (int i = 0; i < n; i++) perm[i] = i;
    ca_rng_shuffle_int(r, perm, n);
}

void ca_init_uniform(ca_rng *r, float *w, size_t n, int fan_in) {
    double a = 1.0 / sqrt((double)(fan_in > 0 ? fan_in : 1));
    for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * ca_rng_uniform(r) - 1.0) * a);
}

/* OpenBLAS's own thread count (process-wide). Declared here rather than through cblas.h so that
 * only this file knows which BLAS is linked. */
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);

/* ThreadSanitizer builds (make test TSAN=1) leave OpenBLAS's count as the environment set it
 * (OPENBLAS_NUM_THREADS=1, scripts/run_tests.sh): OpenBLAS's pthread pool hands work over through
 * spin flags TSAN cannot see, so a pool started here would make every training GEMM a report.
 * Only the BLAS count differs; clipadapt's own kernels still get the fit's budget. */
#if defined(__SANITIZE_THREAD__)
#define CA_BLAS_COUNT_FIXED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CA_BLAS_COUNT_FIXED 1
#endif
#endif

ca_gemm_threads ca_train_threads_set(int n) {
    if (n <= 0) n = ca_default_threads();
    ca_gemm_threads old = {openblas_get_num_threads(), ca_sgemm_set_threads(n)};
#ifndef CA_BLAS_COUNT_FIXED
    openblas_set_num_threads(n);
#endif
    return old;
}

void ca_train_threads_restore(ca_gemm_threads saved) {
#ifndef CA_BLAS_COUNT_FIXED
    openblas_set_num_threads(saved.blas);
#endif
    ca_sgemm_set_threads(saved.sgemm);
}
