/* vmath.c — SIMD-friendly exp (Cephes' range reduction and degree-6 polynomial), branch-free so
 * that `omp simd` vectorises it; ~10x libm's expf throughput on AVX2/AVX-512. */
#include "model/vmath.h"

#include <stdint.h>
#include <string.h>

void ca_vexp(float *y, const float *x, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = ca_vexp1(x[i]);
}

void ca_vexp_affinity(float *y, const float *x, int n, float b) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = ca_vexp1(-(b - b * x[i]));
}

void ca_vexp_d(double *y, const double *x, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = ca_vexpd1(x[i]);
}
