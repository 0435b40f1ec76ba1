/* tc_rows.c — tip-cache's row kernels (see tc_rows.h), compiled once per CPU path (the
 * Makefile's ISA_SRC) so that the inline double exp (ca_vexpd1) runs 8 lanes wide on AVX-512.
 * Every path and form performs the same IEEE operations per element (exp element by element,
 * then sums in key order, then libm's log), so the scores are identical on all of them. */
#include "adapt/tc_rows.h"
#include "model/vmath.h"

#include <math.h>

/* One affinity row a (N) in grouped order into as (N), and the per-class maxima mx (C), -INF for
 * empty classes. */
static void group_row(const float *a, const int32_t *order, const int32_t *start, int N, int C, float *as, float *mx) {
    for (int k = 0; k < N; k++) as[k] = a[order[k]];
    for (int c = 0; c < C; c++) {
        float m = -INFINITY;
        for (int k = start[c]; k < start[c + 1]; k++) m = as[k] > m ? as[k] : m;
        mx[c] = m;
    }
}

/* Score of class c: β(mx − 1) + log Σ exp(β(a − mx)) over its keys as[s..e) in key order (the max
 * term is exp(0) = 1, so the sum is >= 1); -1e30 for a class without keys. tmp: (e − s) doubles. */
static float class_score(const float *as, int s, int e, float mx, double beta, double *tmp) {
    if (s == e) return -1e30f;
    const int n = e - s;
    #pragma omp simd
    for (int k = 0; k < n; k++) tmp[k] = ca_vexpd1(beta * ((double)as[s + k] - mx));
    double sum = 0;
    for (int k = 0; k < n; k++) sum += tmp[k];
    return (float)(beta * (mx - 1.0) + log(sum));
}

void ca_tc_logits_row(const float *a, const int32_t *order, const int32_t *start, int N, int C, double beta,
                      float *as, float *mx, double *tmp, float *o) {
    group_row(a, order, start, N, C, as, mx);
    for (int c = 0; c < C; c++) {
        const double m = mx[c];
        const int s = start[c], e = start[c + 1];
        #pragma omp simd
        for (int k = s; k < e; k++) tmp[k] = beta * ((double)as[k] - m);
    }
    #pragma omp simd
    for (int k = 0; k < N; k++) tmp[k] = ca_vexpd1(tmp[k]);
    for (int c = 0; c < C; c++) {
        const int s = start[c], e = start[c + 1];
        if (s == e) { o[c] = -1e30f; continue; }
        double sum = 0;
        for (int k = s; k < e; k++) sum += tmp[k];
        o[c] = (float)(beta * (mx[c] - 1.0) + log(sum));
    }
}

void ca_tc_logits_row_ref(const float *a, const int32_t *order, const int32_t *start, int N, int C, double beta,
                          float *as, float *mx, double *tmp, float *o) {
    group_row(a, order, start, N, C, as, mx);
    for (int c = 0; c < C; c++) {
        const int s = start[c], e = start[c + 1];
        if (s == e) { o[c] = -1e30f; continue; }
        for (int k = s; k < e; k++) tmp[k - s] = beta * ((double)as[k] - mx[c]);
        ca_vexp_d(tmp, tmp, e - s);
        double sum = 0;
        for (int k = 0; k < e - s; k++) sum += tmp[k];
        o[c] = (float)(beta * (mx[c] - 1.0) + log(sum));
    }
}

void ca_tc_fit_row(const float *a, int y, const int32_t *order, const int32_t *start, const double *logn, int N, int C,
                   int nbeta, const double *betas, float *as, float *mx, double *tmp, int64_t *correct) {
    group_row(a, order, start, N, C, as, mx);
    int top = -1; /* the class with the largest affinity: its score is near the best */
    for (int j = 0; j < C; j++)
        if (mx[j] > -INFINITY && (top < 0 || mx[j] > mx[top])) top = j;
    for (int b = 0; b < nbeta; b++) {
        const double beta = betas[b];
        /* the best score is at least top's (which is >= β(mx − 1): its sum is >= 1) */
        const float vt = top >= 0 ? class_score(as, start[top], start[top + 1], mx[top], beta, tmp) : 0.0f;
        const double cut = top >= 0 && isfinite(vt) ? vt - 1e-5 * (1.0 + fabs((double)vt)) : -INFINITY;
        int best = -1;
        float bv = 0;
        for (int j = 0; j < C; j++) { /* first maximum, as the argmax over all classes */
            if (!(mx[j] > -INFINITY) || beta * (mx[j] - 1.0) + logn[j] < cut) continue;
            float v = j == top ? vt : class_score(as, start[j], start[j + 1], mx[j], beta, tmp);
            if (best < 0 || v > bv) { best = j; bv = v; }
        }
        correct[b] += best == y;
    }
}
