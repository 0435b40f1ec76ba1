/* vmath.h — vectorisable elementwise math for hot loops (plain C that the compiler turns into
 * SIMD under `omp simd`; the same code runs scalar elsewhere). libm is the oracle in tests. */
#ifndef CA_VMATH_H
#define CA_VMATH_H

/* y[i] = exp(x[i]) for i < n, max relative error ~1.5 ulp (libm expf: < 1 ulp), inputs clamped
 * to [-87.3, 88.3] (no inf/denormal results; NaN is not handled). y may equal x. */
void ca_vexp(float *y, const float *x, int n);
/* y[i] = exp(-(b - b * x[i])): Tip-Adapter's affinity kernel, with torch's float32 operation
 * order for the argument. y may equal x. */
void ca_vexp_affinity(float *y, const float *x, int n, float b);

#endif
