/* convert.c — bulk element conversions of loaded tensors, compiled once per CPU path (the
 * Makefile's ISA_SRC): on the avx2 and avx512 paths F16C widens 16 halves per instruction pair;
 * the generic path runs ca_f16_to_f32 per element. Both are exact (subnormals and inf included),
 * so every path gives the same floats; a NaN stays a NaN (F16C quiets a signalling one). */
#include "core/core.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif
#include <string.h>

/* dst (n floats) = the IEEE half floats at src (2n bytes, any alignment, little-endian). */
void ca_f16_to_f32_n(float *dst, const void *src, size_t n) {
    const unsigned char *p = src;
    size_t i = 0;
#if defined(__F16C__)
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(p + 2 * i)), b = _mm_loadu_si128((const __m128i *)(p + 2 * i + 16));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(b));
    }
#endif
    for (; i < n; i++) {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        dst[i] = ca_f16_to_f32(v);
    }
}
