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

/* exp of a double: the same range reduction in double (Cody–Waite ln 2 from fdlibm, whose high
 * part has 32 trailing zero bits, so n·ln2_hi is exact) and the degree-13 Taylor polynomial
 * (truncation < 5e-18 relative on |r| <= ln2/2). Branch-free for `omp simd`. */
#pragma omp declare simd
static inline double vexpd1(double x) {
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    double t = x * 1.4426950408889634 + 6755399441055744.0; /* 1.5·2^52 shifter: round(x/ln 2) */
    uint64_t ti;
    memcpy(&ti, &t, sizeof ti);
    double n = t - 6755399441055744.0;
    double r = x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t e = (ti - 0x4338000000000000ull + 1023u) << 52; /* 2^n as double bits; n in [-1021, 1023] */
    double s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

void ca_vexp_d(double *y, const double *x, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = vexpd1(x[i]);
}
