/* simd.h — vector math shared by the fast kernels (fastgemm.c, fastops.c). AVX-512 only; callers
 * keep scalar fallbacks. */
#ifndef CA_SIMD_H
#define CA_SIMD_H

/* CA_HAVE_AVX512: whether this build compiles the AVX-512 paths (else the scalar fallbacks). */
#if defined(__AVX512F__)
#define CA_HAVE_AVX512 1
#include <immintrin.h>

/* exp(x) = 2^n · p(r), n = round(x·log2 e), r = x − n·ln 2 (two-part ln 2), p the degree-6
 * Taylor polynomial: |r| <= ln2/2 bounds its relative error by ~1.2e-7. */
static inline __m512 ca_exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

#else
#define CA_HAVE_AVX512 0
#endif
#endif
