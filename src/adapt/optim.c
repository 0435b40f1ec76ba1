/* optim.c — AdamW and the cosine learning-rate schedule (see optim.h for the exact contract). */
#include "adapt/optim.h"

#include <math.h>
#include <string.h>

ca_status ca_adamw_init(ca_adamw *o, size_t n, double eps, double weight_decay) {
    memset(o, 0, sizeof *o);
    o->m = ca_calloc2(n ? 2 * n : 1, sizeof(float)); /* m and v in one block */
    if (!o->m) return CA_E_NOMEM;
    o->v = o->m + n;
    o->n = n;
    o->beta1 = 0.9; o->beta2 = 0.999; o->eps = eps; o->weight_decay = weight_decay;
    return CA_OK;
}

void ca_adamw_free(ca_adamw *o) {
    if (!o) return;
    free(o->m);
    o->m = o->v = NULL;
}

/* The Makefile builds this file with -fno-math-errno: sqrtf's errno path (never taken, v >= 0)
 * otherwise stops the loop from vectorising. Numerics are unchanged (IEEE sqrt). */
// p: (n), g: (n)
void ca_adamw_step(ca_adamw *o, float *p, const float *g, double lr) {
    o->t++;
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float decay = (float)(1.0 - lr * o->weight_decay);
    const double bc1 = 1.0 - pow(o->beta1, (double)o->t), bc2 = 1.0 - pow(o->beta2, (double)o->t);
    const float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->eps;
    float *m = o->m, *v = o->v;
    const long n = (long)o->n;
    /* single-threaded and vectorised: a thread pool here would spin against OpenBLAS's */
    #pragma omp simd
    for (long i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = m[i] * b1 + g[i] * (1.0f - b1);
        v[i] = v[i] * b2 + g[i] * g[i] * (1.0f - b2);
        p[i] -= step * m[i] / (sqrtf(v[i]) / bc2s + eps);
    }
}

double ca_cosine_lr(double base, int64_t t, int64_t total) {
    if (total <= 0) return base;
    return base * 0.5 * (1.0 + cos(M_PI * (double)t / (double)total));
}
