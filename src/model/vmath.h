/* vmath.h — vectorisable elementwise math for hot loops (plain C that the compiler turns into
 * SIMD under `omp simd`; the same code runs scalar elsewhere). libm is the oracle in tests. */
#ifndef CA_VMATH_H
#define CA_VMATH_H

#include <stdint.h>
#include <string.h>

/* y[i] = exp(x[i]) for i < n, max relative error ~1.5 ulp (libm expf: < 1 ulp), inputs clamped
 * to [-87.3, 88.3] (no inf/denormal results; NaN is not handled). y may equal x. */
void ca_vexp(float *y, const float *x, int n);
/* y[i] = exp(-(b - b * x[i])): Tip-Adapter's affinity kernel, with torch's float32 operation
 * order for the argument. y may equal x. */
void ca_vexp_affinity(float *y, const float *x, int n, float b);

/* y[i] = exp(x[i]) in double, max relative error ~2 ulp of double (libm exp is the oracle in
 * tests), inputs clamped to [-708, 709]; exp(0) = 1 exactly. y may equal x. */
void ca_vexp_d(double *y, const double *x, int n);

/* exp(x) of one float, the element function of both (inline, so that hot loops elsewhere, e.g.
 * the Tip-Adapter search, can fuse it and still give bit-identical results). */
#pragma omp declare simd
static inline float ca_vexp1(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    /* n = round(x / ln 2) via the 1.5·2^23 shifter; r = x − n·ln 2 in two parts (exact hi) */
    float t = x * 1.44269504088896341f + 12582912.0f;
    int32_t ti;
    memcpy(&ti, &t, sizeof ti);
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t e = (ti - 0x4B400000 + 127) * (1 << 23); /* 2^n as float bits; n in [-126, 128) */
    float s;
    memcpy(&s, &e, sizeof s);
    return y * s;
}

/* exp of a double, the element function of ca_vexp_d (inline, like ca_vexp1, for fused loops
 * that must give bit-identical results): the same range reduction in double (Cody–Waite ln 2
 * from fdlibm, whose high part has 32 trailing zero bits, so n·ln2_hi is exact) and the degree-13 Taylor polynomial
 * (truncation < 5e-18 relative on |r| <= ln2/2). Branch-free for `omp simd`. */
#pragma omp declare simd
static inline double ca_vexpd1(double x) {
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

#endif
