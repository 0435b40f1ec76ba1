/* fastgemm.c — blocked AVX-512 SGEMM (12x32 register tile, A packed per block, B packed once)
 * with the epilogue (alpha, beta·C, bias, activation) fused into the tile store.
 * Why our own: OpenBLAS 0.3.21 runs its Haswell (AVX2) kernels on this CPU, i.e. at most half
 * of the machine's FMA peak; a 512-bit kernel doubles the ceiling. Not a general BLAS: no
 * column-major, no complex, no tuning beyond this machine's caches. */
#include "model/fastgemm.h"

#include "core/core.h"
#include "model/simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512BF16__) && defined(__AVX512F__)
#define CA_HAVE_BF16 1
#else
#define CA_HAVE_BF16 0
#endif

/* Blocking for this machine (48 KiB L1d, 1 MiB L2 per core): the MR x KC micro-panel of A stays
 * in L1 while KC x NR panels of B stream from L2. KC = 768 covers the encoders' K = 768 in one
 * pass, so C is written once with its epilogue; measured best of KC 256..1024, MC 96..192 on
 * the encoders' GEMM shapes (CPU time, 1 thread). Overridable at build time for tuning runs. */
#ifndef CA_GEMM_KC
#define CA_GEMM_KC 768
#endif
#ifndef CA_GEMM_MC
#define CA_GEMM_MC 144
#endif
enum { MR = 12, NR = 32, KC = CA_GEMM_KC, MC = CA_GEMM_MC, DIRECT_M = 288 };

int ca_fastgemm_avx512(void) { return CA_HAVE_AVX512; }
/* ca_fastgemm_bf16 is in cpu.c: compiled in is not enough, the CPU must have AVX512-BF16. */

float ca_epi_ref(ca_epi act, float x) {
    switch (act) {
    case CA_EPI_QUICKGELU: return (float)((double)x / (1.0 + exp(-1.702 * (double)x)));
    case CA_EPI_RELU: return x > 0 ? x : 0;
    default: return x;
    }
}

/* ---- vector exp and QuickGELU ---- */
#if CA_HAVE_AVX512
static inline __m512 quickgelu512(__m512 x) {
    __m512 e = ca_exp512(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static inline __m512 epi512(ca_epi act, __m512 x) {
    if (act == CA_EPI_QUICKGELU) return quickgelu512(x);
    if (act == CA_EPI_RELU) return _mm512_max_ps(x, _mm512_setzero_ps());
    return x;
}
#endif

void ca_exp_fast(const float *x, float *y, long n) {
    long i = 0;
#if CA_HAVE_AVX512
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, ca_exp512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, ca_exp512(_mm512_maskz_loadu_ps(m, x + i)));
    }
#else
    for (; i < n; i++) y[i] = expf(x[i]);
#endif
}

void ca_quickgelu_fast(const float *x, float *y, long n) {
    long i = 0;
#if CA_HAVE_AVX512
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, quickgelu512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, quickgelu512(_mm512_maskz_loadu_ps(m, x + i)));
    }
#else
    for (; i < n; i++) y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
#endif
}

/* ---- packing ---- */

static float load_elem(const void *W, ca_dtype dt, size_t idx) {
    switch (dt) {
    case CA_DT_F16: return ca_f16_to_f32(((const uint16_t *)W)[idx]);
    case CA_DT_BF16: return ca_bf16_to_f32(((const uint16_t *)W)[idx]);
    default: return ((const float *)W)[idx];
    }
}

/* Panel j of op(B) (K, N) into dst [K][NR]: B element (k, n) = trans ? W[n*ld + k] : W[k*ld + n]. */
static void pack_panel(float *dst, const void *W, ca_dtype dt, int trans, int ld, int j0, int N, int K) {
    int nr = N - j0 < NR ? N - j0 : NR;
    if (trans) {
        /* rows of W are output columns: walk each row once (contiguous reads) */
        if (nr < NR)
            for (int k = 0; k < K; k++) memset(dst + (size_t)k * NR + nr, 0, sizeof(float) * (NR - nr));
        for (int c = 0; c < nr; c++) {
            size_t base = (size_t)(j0 + c) * (size_t)ld;
            if (dt == CA_DT_F32) {
                const float *w = (const float *)W + base;
                for (int k = 0; k < K; k++) dst[(size_t)k * NR + c] = w[k];
            } else {
                for (int k = 0; k < K; k++) dst[(size_t)k * NR + c] = load_elem(W, dt, base + k);
            }
        }
    } else {
        for (int k = 0; k < K; k++) {
            float *d = dst + (size_t)k * NR;
            size_t base = (size_t)k * (size_t)ld + (size_t)j0;
            for (int c = 0; c < nr; c++) d[c] = load_elem(W, dt, base + c);
            for (int c = nr; c < NR; c++) d[c] = 0;
        }
    }
}

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* dst (8 rows of stride ldd) = the transpose of src (8 rows of stride lds), 16-bit values. */
static void transpose8_u16(const uint16_t *src, size_t lds, uint16_t *dst, size_t ldd) {
#if defined(__SSE2__)
    __m128i r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm_loadu_si128((const __m128i *)(src + (size_t)i * lds));
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) { /* rows 0-3 and 4-7 */
        u[4 * h + 0] = _mm_unpacklo_epi32(t[4 * h + 0], t[4 * h + 2]);
        u[4 * h + 1] = _mm_unpackhi_epi32(t[4 * h + 0], t[4 * h + 2]);
        u[4 * h + 2] = _mm_unpacklo_epi32(t[4 * h + 1], t[4 * h + 3]);
        u[4 * h + 3] = _mm_unpackhi_epi32(t[4 * h + 1], t[4 * h + 3]);
    }
    for (int i = 0; i < 4; i++) {
        _mm_storeu_si128((__m128i *)(dst + (size_t)(2 * i) * ldd), _mm_unpacklo_epi64(u[i], u[4 + i]));
        _mm_storeu_si128((__m128i *)(dst + (size_t)(2 * i + 1) * ldd), _mm_unpackhi_epi64(u[i], u[4 + i]));
    }
#else
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
#endif
}

/* Packed panels of op(B): F32 ([N/32][K][32] floats) or, with half != 0, the same layout in F16
 * (each value rounded to nearest even: exact for weights stored as F16). Returns the aligned
 * block, or NULL with the error recorded. */
/* Bytes of the panels of an (N, K) matrix, 64-byte rounded and at least 64 (ca_gemm_ex packs
 * K = 0 too); 0 when they overflow. */
static size_t panel_bytes(int N, int K, int half) {
    size_t n, es = half ? sizeof(uint16_t) : sizeof(float);
    if (!ca_mul3_size((size_t)(N > 0 ? (N + NR - 1) / NR : 1), (size_t)(K > 0 ? K : 1), NR * es, &n) || n > SIZE_MAX - 63) return 0;
    return (n + 63) & ~(size_t)63;
}

static int pack_into(void *p, const void *W, ca_dtype dt, int trans, int ld, int N, int K, int threads, int half);

static void *pack_b(const void *W, ca_dtype dt, int trans, int ld, int N, int K, int threads, int half) {
    size_t n = panel_bytes(N, K, half);
    if (!n) {
        ca_fail(CA_E_NOMEM, "packed weights size overflows (%d x %d)", N, K);
        return NULL;
    }
    void *p = aligned_alloc(64, n);
    if (!p) {
        ca_fail(CA_E_NOMEM, "out of memory packing %d x %d weights", N, K);
        return NULL;
    }
    ca_populate(p, n, 1); /* every byte is written below */
    if (!pack_into(p, W, dt, trans, ld, N, K, threads, half)) {
        free(p);
        ca_fail(CA_E_NOMEM, "out of memory packing %d x %d weights", N, K);
        return NULL;
    }
    return p;
}

/* The panels of op(B) into p (panel_bytes(N, K, half) bytes, 64-byte aligned). 0 when out of
 * memory for a per-thread buffer. */
static int pack_into(void *p, const void *W, ca_dtype dt, int trans, int ld, int N, int K, int threads, int half) {
    int np = (N + NR - 1) / NR;
    if (!half) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int j = 0; j < np; j++) pack_panel((float *)p + (size_t)j * K * NR, W, dt, trans, ld, j * NR, N, K);
        return 1;
    }
    if (dt == CA_DT_F16 && trans) {
        /* F16 weights into F16 panels: the values move as they are (widening then rounding back
         * is the identity), straight from the caller's memory, e.g. a mapped checkpoint */
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int j = 0; j < np; j++) {
            uint16_t *d = (uint16_t *)p + (size_t)j * K * NR;
            int j0 = j * NR, nr = N - j0 < NR ? N - j0 : NR;
            if (nr < NR)
                for (int k = 0; k < K; k++) memset(d + (size_t)k * NR + nr, 0, sizeof(uint16_t) * (NR - nr));
            /* 8 x 8 blocks, k outer so that each 64-byte panel row is written whole at once */
            const uint16_t *src = (const uint16_t *)W + (size_t)j0 * (size_t)ld;
            int k8 = K & ~7, c8 = nr & ~7;
            for (int k = 0; k < k8; k += 8)
                for (int c0 = 0; c0 < c8; c0 += 8)
                    transpose8_u16(src + (size_t)c0 * ld + k, (size_t)ld, d + (size_t)k * NR + c0, NR);
            for (int k = 0; k < K; k++)
                for (int c = k < k8 ? c8 : 0; c < nr; c++) d[(size_t)k * NR + c] = src[(size_t)c * ld + k];
        }
        return 1;
    }
    /* F16: each panel through a per-thread F32 buffer, so no F32 copy of the whole matrix exists */
    int bad = 0;
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(| : bad)
    {
        float *tmp = malloc(sizeof(float) * (size_t)(K > 0 ? K : 1) * NR);
        if (!tmp) bad = 1;
#pragma omp for schedule(static)
        for (int j = 0; j < np; j++) {
            if (!tmp) continue;
            pack_panel(tmp, W, dt, trans, ld, j * NR, N, K);
            uint16_t *d = (uint16_t *)p + (size_t)j * K * NR;
            size_t i = 0;
#if CA_HAVE_AVX512
            for (; i < (size_t)K * NR; i += 16) /* round to nearest even, as ca_f32_to_f16 */
                _mm256_storeu_si256((__m256i *)(d + i), _mm512_cvtps_ph(_mm512_loadu_ps(tmp + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
            for (; i < (size_t)K * NR; i++) d[i] = ca_f32_to_f16(tmp[i]);
        }
        free(tmp);
    }
    return !bad;
}

ca_status ca_pack_weights_as(ca_packed *out, const void *W, ca_dtype dt, int N, int K, int ldw, ca_dtype panel) {
    memset(out, 0, sizeof *out);
    if (dt != CA_DT_F32 && dt != CA_DT_F16 && dt != CA_DT_BF16)
        return ca_fail(CA_E_UNSUPPORTED, "cannot pack %s weights", ca_dtype_name(dt));
    if (panel != CA_DT_F32 && panel != CA_DT_F16 && panel != CA_DT_BF16)
        return ca_fail(CA_E_UNSUPPORTED, "no %s panels", ca_dtype_name(panel));
    if (N <= 0 || K <= 0 || ldw < K) return ca_fail(CA_E_ARG, "bad weight shape %d x %d", N, K);
    /* F16 panels need the widening kernels; without AVX-512 the same F16-rounded values are
     * packed as F32, so results do not depend on the build */
    int half = panel == CA_DT_F16 && CA_HAVE_AVX512;
    void *p = pack_b(W, dt, 1, ldw, N, K, ca_kernel_threads(0), half);
    if (!p) return CA_E_NOMEM;
    out->N = N;
    out->K = K;
    if (half) out->ph = p;
    else out->p = p;
    if (panel == CA_DT_F16 && !half)
        for (size_t i = 0; i < (size_t)((N + NR - 1) / NR) * NR * K; i++) out->p[i] = ca_f16_to_f32(ca_f32_to_f16(out->p[i]));
    ca_status st = panel == CA_DT_BF16 ? ca_packed_to_bf16(out) : CA_OK;
    if (st) ca_packed_free(out);
    return st;
}

size_t ca_pack_size(int N, int K, ca_dtype panel) {
    if (panel != CA_DT_F32 && panel != CA_DT_F16) return 0;
    return panel_bytes(N, K, panel == CA_DT_F16 && CA_HAVE_AVX512);
}

ca_status ca_pack_weights_into(ca_packed *out, void *mem, size_t cap, const void *W, ca_dtype dt, int N, int K, int ldw,
                               int w_kn, ca_dtype panel) {
    memset(out, 0, sizeof *out);
    if (dt != CA_DT_F32 && dt != CA_DT_F16 && dt != CA_DT_BF16)
        return ca_fail(CA_E_UNSUPPORTED, "cannot pack %s weights", ca_dtype_name(dt));
    if (panel != CA_DT_F32 && panel != CA_DT_F16) return ca_fail(CA_E_UNSUPPORTED, "no %s panels in caller memory", ca_dtype_name(panel));
    if (N <= 0 || K <= 0 || ldw < (w_kn ? N : K)) return ca_fail(CA_E_ARG, "bad weight shape %d x %d", N, K);
    int half = panel == CA_DT_F16 && CA_HAVE_AVX512;
    size_t need = panel_bytes(N, K, half);
    if (!mem || ((uintptr_t)mem & 63) || !need || cap < need)
        return ca_fail(CA_E_ARG, "packed weights need %zu bytes, 64-byte aligned (%zu given)", need, cap);
    if (!pack_into(mem, W, dt, !w_kn, ldw, N, K, ca_kernel_threads(0), half))
        return ca_fail(CA_E_NOMEM, "out of memory packing %d x %d weights", N, K);
    out->N = N;
    out->K = K;
    out->borrowed = 1;
    if (half) out->ph = mem;
    else out->p = mem;
    if (panel == CA_DT_F16 && !half) /* as ca_pack_weights_as: the F16-rounded values as F32 */
        for (size_t i = 0; i < (size_t)((N + NR - 1) / NR) * NR * K; i++) out->p[i] = ca_f16_to_f32(ca_f32_to_f16(out->p[i]));
    return CA_OK;
}

ca_status ca_pack_weights(ca_packed *out, const void *W, ca_dtype dt, int N, int K, int ldw) {
    return ca_pack_weights_as(out, W, dt, N, K, ldw, CA_DT_F32);
}

ca_status ca_packed_set_scale(ca_packed *w, const float *scale) {
    free(w->scale);
    w->scale = NULL;
    if (!scale) return CA_OK;
    w->scale = ca_malloc2((size_t)w->N, sizeof(float));
    if (!w->scale) return ca_fail(CA_E_NOMEM, "out of memory for a column scale");
    memcpy(w->scale, scale, sizeof(float) * (size_t)w->N);
    return CA_OK;
}

ca_status ca_packed_unpack(const ca_packed *w, float *W, int ldw) {
    if (!w->p && !w->ph) return ca_fail(CA_E_UNSUPPORTED, "BF16 panels do not hold the weights exactly");
    if (ldw < w->K) return ca_fail(CA_E_ARG, "bad row stride %d for %d x %d weights", ldw, w->N, w->K);
    for (int n = 0; n < w->N; n++) {
        size_t base = (size_t)(n / NR) * w->K * NR + (size_t)(n % NR);
        float *d = W + (size_t)n * ldw;
        if (w->p)
            for (int k = 0; k < w->K; k++) d[k] = w->p[base + (size_t)k * NR];
        else
            for (int k = 0; k < w->K; k++) d[k] = ca_f16_to_f32(w->ph[base + (size_t)k * NR]);
    }
    return CA_OK;
}

void ca_packed_free(ca_packed *p) {
    if (!p) return;
    if (!p->borrowed) {
        free(p->p);
        free(p->ph);
        free(p->pb);
    }
    free(p->scale);
    memset(p, 0, sizeof *p);
}

/* Where the A operand comes from: a matrix (op(A), row stride lda) or, for the implicit-GEMM
 * convolution, an NHWC image whose receptive fields are the rows (k = (ky, kx, ci), ci fastest). */
typedef struct {
    const float *A;
    int lda, trans;
    const ca_conv_geom *conv;   /* NULL for a matrix */
    const uint16_t *Abf;        /* conv with BF16 weights: the input rounded to BF16 (Cin even) */
} a_src;

/* row i of the conv's A (receptive field of output pixel i), columns [k0, k0+kc), into d
 * with stride MR */
static void gather_conv_row(float *d, const ca_conv_geom *g, const float *in, int i, int k0, int kc) {
    int hw = g->Ho * g->Wo, n = i / hw, rem = i % hw, oy = rem / g->Wo, ox = rem % g->Wo;
    int ci = k0 % g->Cin, t = k0 / g->Cin, kx = t % g->KW, ky = t / g->KW;
    int k = 0;
    while (k < kc) {
        int run = g->Cin - ci < kc - k ? g->Cin - ci : kc - k;
        int iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
        if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) {
            for (int c = 0; c < run; c++) d[(size_t)(k + c) * MR] = 0;
        } else {
            const float *src = in + (((size_t)n * g->H + iy) * g->W + ix) * g->Cin + ci;
            for (int c = 0; c < run; c++) d[(size_t)(k + c) * MR] = src[c];
        }
        k += run;
        ci = 0;
        if (++kx == g->KW) { kx = 0; ky++; }
    }
}

size_t ca_packed_bytes(const ca_packed *p) {
    size_t panels = (size_t)(p->N + NR - 1) / NR;
    size_t s = p->scale ? (size_t)p->N * sizeof(float) : 0;
    if (p->p) return s + panels * NR * (size_t)p->K * sizeof(float);
    if (p->ph) return s + panels * NR * (size_t)p->K * sizeof(uint16_t);
    if (p->pb) return s + panels * NR * (size_t)((p->K + 1) / 2) * 2 * sizeof(uint16_t);
    return 0;
}

ca_status ca_packed_cols(const ca_packed *w, int n0, int n, ca_packed *view) {
    memset(view, 0, sizeof *view);
    if ((!w->p && !w->ph && !w->pb) || n0 < 0 || n <= 0 || n0 % NR || n0 > w->N - n)
        return CA_E_ARG; /* quiet: callers fall back to the whole matrix */
    size_t panel = (size_t)(n0 / NR);
    view->N = n;
    view->K = w->K;
    if (w->p) view->p = w->p + panel * (size_t)w->K * NR;
    if (w->ph) view->ph = w->ph + panel * (size_t)w->K * NR;
    if (w->pb) view->pb = w->pb + panel * (size_t)((w->K + 1) / 2) * NR * 2;
    if (w->scale) view->scale = w->scale + n0;
    return CA_OK;
}

/* [panel][k][32] F32 (or F16) -> [panel][k/2][32][2] BF16 (round to nearest even), the odd last
 * k paired with zero */
static void bf16_panels(const ca_packed *w, uint16_t *pb) {
    int N = w->N, K = w->K, np = (N + NR - 1) / NR, K2 = (K + 1) / 2;
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (int j = 0; j < np; j++) {
        size_t o = (size_t)j * K * NR;
        uint16_t *d = pb + (size_t)j * K2 * NR * 2;
        for (int p2 = 0; p2 < K2; p2++)
            for (int c = 0; c < NR; c++) {
                size_t i0 = o + (size_t)2 * p2 * NR + c, i1 = i0 + NR;
                d[((size_t)p2 * NR + c) * 2] = ca_f32_to_bf16(w->p ? w->p[i0] : ca_f16_to_f32(w->ph[i0]));
                d[((size_t)p2 * NR + c) * 2 + 1] =
                    2 * p2 + 1 < K ? ca_f32_to_bf16(w->p ? w->p[i1] : ca_f16_to_f32(w->ph[i1])) : 0;
            }
    }
}

size_t ca_pack_bf16_size(int N, int K) {
    size_t n;
    if (N <= 0 || K <= 0 || !ca_mul3_size((size_t)(N + NR - 1) / NR, (size_t)(K + 1) / 2, NR * 2 * sizeof(uint16_t), &n)) return 0;
    return n;
}

ca_status ca_packed_to_bf16(ca_packed *w) {
    if (!CA_HAVE_BF16 || !ca_fastgemm_bf16()) return ca_fail(CA_E_UNSUPPORTED, "no AVX512-BF16 kernels on this CPU path");
    if (!w->p && !w->ph) return w->pb ? CA_OK : ca_fail(CA_E_ARG, "unpacked weights");
    if (w->borrowed) return ca_fail(CA_E_ARG, "panels in the caller's memory cannot become BF16 in place");
    size_t n = ca_pack_bf16_size(w->N, w->K);
    if (!n) return ca_fail(CA_E_NOMEM, "packed weights size overflows");
    uint16_t *pb = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!pb) return ca_fail(CA_E_NOMEM, "out of memory packing %d x %d weights", w->N, w->K);
    bf16_panels(w, pb);
    free(w->p);
    free(w->ph);
    w->p = NULL;
    w->ph = NULL;
    w->pb = pb;
    return CA_OK;
}

ca_status ca_packed_bf16_into(ca_packed *out, void *mem, size_t cap, const ca_packed *src) {
    if (!CA_HAVE_BF16 || !ca_fastgemm_bf16()) return ca_fail(CA_E_UNSUPPORTED, "no AVX512-BF16 kernels on this CPU path");
    if (!src || (!src->p && !src->ph)) return ca_fail(CA_E_ARG, "no F32 or F16 panels to convert");
    size_t n = ca_pack_bf16_size(src->N, src->K);
    if (!n || cap < n || ((uintptr_t)mem & 63)) return ca_fail(CA_E_ARG, "BF16 panel buffer too small or not 64-byte aligned");
    bf16_panels(src, mem);
    *out = (ca_packed){.N = src->N, .K = src->K, .pb = mem, .scale = src->scale, .borrowed = 1};
    return CA_OK;
}

ca_status ca_pack_weights_bf16(ca_packed *out, const void *W, ca_dtype dt, int N, int K, int ldw) {
    memset(out, 0, sizeof *out);
    if (!CA_HAVE_BF16 || !ca_fastgemm_bf16()) return ca_fail(CA_E_UNSUPPORTED, "no AVX512-BF16 kernels on this CPU path");
    return ca_pack_weights_as(out, W, dt, N, K, ldw, CA_DT_BF16);
}

/* rows [i0, i0+mc) × k [k0, k0+kc) of op(A) into dst [mc/MR][kc][MR], zero padded */
static void pack_a(float *dst, const a_src *src, int i0, int mc, int M, int k0, int kc) {
    const float *A = src->A;
    int lda = src->lda, trans = src->trans;
    for (int ip = 0; ip < mc; ip += MR) {
        float *d = dst + (size_t)ip * kc;
        int mr = M - (i0 + ip) < MR ? M - (i0 + ip) : MR;
        if (src->conv) {
            for (int r = 0; r < mr; r++) gather_conv_row(d + r, src->conv, A, i0 + ip + r, k0, kc);
        } else if (!trans) {
            for (int r = 0; r < mr; r++) {
                const float *a = A + (size_t)(i0 + ip + r) * lda + k0;
                for (int k = 0; k < kc; k++) d[(size_t)k * MR + r] = a[k];
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *a = A + (size_t)(k0 + k) * lda + i0 + ip;
                for (int r = 0; r < mr; r++) d[(size_t)k * MR + r] = a[r];
            }
        }
        if (mr < MR)
            for (int k = 0; k < kc; k++)
                for (int r = mr; r < MR; r++) d[(size_t)k * MR + r] = 0;
    }
}

/* ---- micro-kernel: C tile (mr <= 12, nr <= 32) ---- */

typedef struct {
    float alpha, beta;     /* beta: applied when first */
    const float *scale;    /* per-column multiplier at column j0 (replaces alpha), or NULL */
    const float *bias;     /* at column j0, or NULL */
    ca_epi act;
    int first, last;
} tile_epi;

#if CA_HAVE_AVX512
static inline void store_row(float *c, __m512 acc, __mmask16 m, const tile_epi *e, const float *scale, const float *bias) {
    __m512 x = scale ? _mm512_mul_ps(acc, _mm512_maskz_loadu_ps(m, scale)) : _mm512_mul_ps(acc, _mm512_set1_ps(e->alpha));
    if (scale && e->alpha != 1.0f) x = _mm512_mul_ps(x, _mm512_set1_ps(e->alpha));
    if (!e->first) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, c));
    else if (e->beta != 0.0f) x = _mm512_fmadd_ps(_mm512_set1_ps(e->beta), _mm512_maskz_loadu_ps(m, c), x);
    if (e->last) {
        if (bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, bias));
        x = epi512(e->act, x);
    }
    _mm512_mask_storeu_ps(c, m, x);
}

/* The epilogue of every micro-kernel: the mr × nr tile held in c0 (columns 0-15) and c1 (16-31)
 * goes to C through store_row, masked at the right edge. Always inlined, so the accumulators
 * stay in registers. */
static inline __attribute__((always_inline)) void store_tile(float *C, int ldc, const __m512 *c0, const __m512 *c1,
                                                             int mr, int nr, const tile_epi *e) {
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    const float *bias = e->bias, *scale = e->scale;
    for (int r = 0; r < mr; r++) {
        float *c = C + (size_t)r * ldc;
        store_row(c, c0[r], m0, e, scale, bias);
        if (m1) store_row(c + 16, c1[r], m1, e, scale ? scale + 16 : NULL, bias ? bias + 16 : NULL);
    }
}

/* One k row of a B panel (32 columns) as two F32 vectors. half: the panel holds F16, widened
 * here (exact), so the F16 kernels compute bit for bit what the F32 ones do on the widened
 * values while reading half the bytes. b: element offset into the panel block. */
static inline __attribute__((always_inline)) void load_b(const void *b, size_t off, int half, __m512 *b0, __m512 *b1) {
    if (half) {
        const uint16_t *h = (const uint16_t *)b + off;
        *b0 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)h));
        *b1 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(h + 16)));
    } else {
        const float *f = (const float *)b + off;
        *b0 = _mm512_load_ps(f);
        *b1 = _mm512_load_ps(f + 16);
    }
}

/* C tile from a packed A block [kc][MR] and an F32 B panel slice [kc][NR]. Only ca_gemm_ex
 * (transposed A, B packed per call as F32) comes here, so it has no F16 twin. */
static void kernel(int kc, const float *restrict a, const float *restrict b, float *C, int ldc, int mr,
                   int nr, const tile_epi *e) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
        }
        a += MR;
        b += NR;
    }
    store_tile(C, ldc, c0, c1, mr, nr, e);
}

/* The kernels on packed weights are each one always-inlined body instantiated twice, for F32
 * panels (half = 0) and F16 panels (half = 1): the same instructions except the B loads. */

/* The same tile reading A in place (row-major, stride lda): no packing for plain matrices. Rows
 * are broadcast straight from memory; twelve sequential streams suit the prefetchers. */
static inline __attribute__((always_inline)) void kernel_direct_body(int kc, const float *restrict a, int lda,
                                                                     const void *restrict b, int half, float *C, int ldc,
                                                                     int mr, int nr, const tile_epi *e) {
    __m512 c0[MR], c1[MR];
    const float *ar[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) { c0[r] = c1[r] = _mm512_setzero_ps(); ar[r] = a + (size_t)(r < mr ? r : 0) * lda; }
    for (int k = 0; k < kc; k++) {
        __m512 b0, b1;
        load_b(b, (size_t)k * NR, half, &b0, &b1);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(ar[r][k]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    store_tile(C, ldc, c0, c1, mr, nr, e);
}

static void kernel_direct(int kc, const float *restrict a, int lda, const float *restrict b, float *C, int ldc,
                          int mr, int nr, const tile_epi *e) {
    kernel_direct_body(kc, a, lda, b, 0, C, ldc, mr, nr, e);
}
static void kernel_direct_h(int kc, const float *restrict a, int lda, const uint16_t *restrict b, float *C, int ldc,
                            int mr, int nr, const tile_epi *e) {
    kernel_direct_body(kc, a, lda, b, 1, C, ldc, mr, nr, e);
}

/* Implicit-GEMM convolution tile: row r of tap t reads Cin contiguous NHWC values at rp[t][r]
 * (a zero row for padding), so the receptive field is never copied; all taps accumulate in
 * registers and C is written once. b: the panel's full K = ntap·cin rows. */
static inline __attribute__((always_inline)) void kernel_conv_body(int ntap, int cin, const float *const *rp,
                                                                   const void *restrict b, int half, float *C, int ldc,
                                                                   int mr, int nr, const tile_epi *e) {
    __m512 c0[MR], c1[MR];
    size_t off = 0;
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int t = 0; t < ntap; t++) {
        const float *const *ar = rp + (size_t)t * MR;
        for (int k = 0; k < cin; k++) {
            __m512 b0, b1;
            load_b(b, off, half, &b0, &b1);
#pragma GCC unroll 12
            for (int r = 0; r < MR; r++) {
                __m512 av = _mm512_set1_ps(ar[r][k]);
                c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
                c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
            }
            off += NR;
        }
    }
    store_tile(C, ldc, c0, c1, mr, nr, e);
}

static void kernel_conv(int ntap, int cin, const float *const *rp, const float *restrict b, float *C, int ldc,
                        int mr, int nr, const tile_epi *e) {
    kernel_conv_body(ntap, cin, rp, b, 0, C, ldc, mr, nr, e);
}
static void kernel_conv_h(int ntap, int cin, const float *const *rp, const uint16_t *restrict b, float *C, int ldc,
                          int mr, int nr, const tile_epi *e) {
    kernel_conv_body(ntap, cin, rp, b, 1, C, ldc, mr, nr, e);
}

/* row pointers [tap][MR] of output pixels i0 .. i0+MR-1 (rows past M repeat a valid one);
 * in has elements of esize bytes */
static void conv_row_ptrs(const void **rp, const ca_conv_geom *g, const void *in, size_t esize, const void *zero,
                          int i0, int M) {
    int hw = g->Ho * g->Wo;
    for (int r = 0; r < MR; r++) {
        int i = i0 + r < M ? i0 + r : M - 1;
        int n = i / hw, rem = i % hw, oy = rem / g->Wo, ox = rem % g->Wo;
        for (int ky = 0; ky < g->KH; ky++)
            for (int kx = 0; kx < g->KW; kx++) {
                int iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
                rp[(size_t)(ky * g->KW + kx) * MR + r] =
                    (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W)
                        ? zero
                        : (const char *)in + (((size_t)n * g->H + iy) * g->W + ix) * g->Cin * esize;
            }
    }
}

#if CA_HAVE_BF16
/* F32 A pack [kc][MR] -> BF16 pairs [kc/2][MR] (uint32: k even in the low half); kc even */
static void a_to_bf16(uint32_t *d, const float *a, int kc) {
    const __mmask16 m12 = 0x0fff;
    for (int p = 0; p < kc / 2; p++) {
        __m512 x = _mm512_maskz_loadu_ps(m12, a + (size_t)2 * p * MR), y = _mm512_maskz_loadu_ps(m12, a + (size_t)(2 * p + 1) * MR);
        __m512i xi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x));
        __m512i yi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(y));
        _mm512_mask_storeu_epi32(d + (size_t)p * MR, m12, _mm512_or_si512(xi, _mm512_slli_epi32(yi, 16)));
    }
}

/* kernel_conv on BF16: rows are uint32 pairs of the BF16 input, b the BF16 panel [K/2][32][2] */
static void kernel_conv_bf16(int ntap, int cin2, const uint32_t *const *rp, const uint16_t *restrict b, float *C,
                             int ldc, int mr, int nr, const tile_epi *e) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int t = 0; t < ntap; t++) {
        const uint32_t *const *ar = rp + (size_t)t * MR;
        for (int k = 0; k < cin2; k++) {
            __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b), b1 = (__m512bh)_mm512_load_si512((const void *)(b + 32));
#pragma GCC unroll 12
            for (int r = 0; r < MR; r++) {
                __m512bh av = (__m512bh)_mm512_set1_epi32((int)ar[r][k]);
                c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
                c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
            }
            b += 2 * NR;
        }
    }
    store_tile(C, ldc, c0, c1, mr, nr, e);
}

static void kernel_bf16(int kc2, const uint32_t *restrict a, const uint16_t *restrict b, float *C, int ldc,
                        int mr, int nr, const tile_epi *e) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int k = 0; k < kc2; k++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b), b1 = (__m512bh)_mm512_load_si512((const void *)(b + 32));
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r]);
            c0[r] = _mm512_dpbf16_ps(c0[r], ar, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], ar, b1);
        }
        a += MR;
        b += 2 * NR;
    }
    store_tile(C, ldc, c0, c1, mr, nr, e);
}
#endif
#else
static void kernel(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                   const tile_epi *e) {
    float acc[MR][NR] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += a[k * MR + r] * b[k * NR + j];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float *c = C + (size_t)r * ldc + j;
            float x = e->scale ? acc[r][j] * e->scale[j] : e->alpha * acc[r][j];
            if (e->scale && e->alpha != 1.0f) x *= e->alpha;
            if (!e->first) x += *c;
            else if (e->beta != 0.0f) x += e->beta * *c;
            if (e->last) x = ca_epi_ref(e->act, x + (e->bias ? e->bias[j] : 0.0f));
            *c = x;
        }
}
#endif

/* ---- driver ---- */

/* The packed right-hand side: exactly one of the panel blocks is set. */
typedef struct {
    const float *p;         /* F32 panels */
    const uint16_t *ph;     /* F16 panels, widened in the kernels */
    const uint16_t *pb;     /* BF16 panels (BF16 compute) */
    const float *scale;     /* per-column multiplier (N) or NULL */
} b_src;

static b_src b_of(const ca_packed *W) { return (b_src){W->p, W->ph, W->pb, W->scale}; }

static ca_status run(const a_src *asrc, int M, int N, int K, const b_src *B, float alpha, const float *bias,
                     ca_epi act, float beta, float *C, int ldc, int threads) {
    const float *Bp = B->p;
    const uint16_t *Bh = B->ph, *Bb = B->pb;
    /* the direct kernels (A read in place: plain A, F32 or F16 panels, AVX-512) — chosen here,
     * once. Row blocks of MC; the direct kernels take up to DIRECT_M rows as one block, so each
     * B panel is read from memory once (Tip-Adapter-F's steps: 256 rows against 32 MB of keys)
     * while the rows stay in L2 */
    const int direct = CA_HAVE_AVX512 && !Bb && !asrc->conv && !asrc->trans;
    const int mcb = direct && M <= DIRECT_M ? (M + MR - 1) / MR * MR : MC;
    int nmb = (M + mcb - 1) / mcb, np = (N + NR - 1) / NR;
    /* enough tasks for the threads to balance, while keeping whole column ranges per task so a
     * B panel stays in L1 while the task's A block streams past it */
    int groups = 1;
    while (nmb * groups < 3 * threads && groups < np) groups++;
    int per = (np + groups - 1) / groups;
    groups = (np + per - 1) / per;
    int ntask = nmb * groups;
    if (threads > ntask) threads = ntask;
    int nkb = K > 0 ? (K + KC - 1) / KC : 1;
    /* per thread: the F32 A block, then (BF16 path) its pair-packed copy */
    size_t abuf = (size_t)MC * KC + (Bb ? (size_t)MC * (KC / 2 + 1) : 0);
    abuf = (abuf + 15) & ~(size_t)15;
    float *zero = NULL;
    if (asrc->conv) { /* room for the row-pointer tables, and a zero row for padding taps */
        size_t ptrs = (size_t)(MC / MR) * asrc->conv->KH * asrc->conv->KW * MR * sizeof(void *) / sizeof(float);
        if (ptrs > abuf) abuf = (ptrs + 15) & ~(size_t)15;
        zero = calloc((size_t)asrc->conv->Cin, sizeof(float));
        if (!zero) return ca_fail(CA_E_NOMEM, "out of memory for a GEMM buffer");
    }
    float *apack = aligned_alloc(64, sizeof(float) * abuf * (size_t)threads);
    if (!apack) { free(zero); return ca_fail(CA_E_NOMEM, "out of memory for a GEMM buffer"); }

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#ifdef _OPENMP
        float *ap = apack + abuf * (size_t)omp_get_thread_num();
#else
        float *ap = apack;
#endif
        ca_team_note();
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntask; t++) {
            int ib = t / groups, g = t % groups;
            int i0 = ib * mcb, mc = M - i0 < mcb ? M - i0 : mcb;
            int p0 = g * per, p1 = p0 + per < np ? p0 + per : np;
#if CA_HAVE_AVX512
            if (asrc->conv && zero && (!Bb || asrc->Abf)) {
                const ca_conv_geom *cg = asrc->conv;
                int ntap = cg->KH * cg->KW, bf = Bb != NULL;
                const void **rp = (const void **)ap; /* the A buffer holds the pointer table */
                tile_epi e = {alpha, beta, NULL, NULL, act, 1, 1};
                for (int ip = 0; ip < mc; ip += MR)
                    conv_row_ptrs(rp + (size_t)(ip / MR) * ntap * MR, cg, bf ? (const void *)asrc->Abf : (const void *)asrc->A,
                                  bf ? sizeof(uint16_t) : sizeof(float), zero, i0 + ip, M);
                for (int jp = p0; jp < p1; jp++) {
                    int j0 = jp * NR, nr = N - j0 < NR ? N - j0 : NR;
                    e.bias = bias ? bias + j0 : NULL;
                    e.scale = B->scale ? B->scale + j0 : NULL;
                    for (int ip = 0; ip < mc; ip += MR) {
                        int mr = mc - ip < MR ? mc - ip : MR;
                        const void *const *rpi = rp + (size_t)(ip / MR) * ntap * MR;
                        float *Ct = C + (size_t)(i0 + ip) * ldc + j0;
#if CA_HAVE_BF16
                        if (bf) {
                            kernel_conv_bf16(ntap, cg->Cin / 2, (const uint32_t *const *)rpi, Bb + (size_t)jp * (K / 2) * NR * 2,
                                             Ct, ldc, mr, nr, &e);
                            continue;
                        }
#endif
                        if (Bh)
                            kernel_conv_h(ntap, cg->Cin, (const float *const *)rpi, Bh + (size_t)jp * K * NR, Ct, ldc, mr, nr, &e);
                        else
                            kernel_conv(ntap, cg->Cin, (const float *const *)rpi, Bp + (size_t)jp * K * NR, Ct, ldc, mr, nr, &e);
                    }
                }
                continue;
            }
#endif
            for (int kb = 0; kb < nkb; kb++) {
                int k0 = kb * KC, kc = K - k0 < KC ? K - k0 : KC;
                if (kc < 0) kc = 0;
                tile_epi e = {alpha, beta, NULL, NULL, act, kb == 0, kb == nkb - 1};
#if CA_HAVE_AVX512
                if (direct) {
                    for (int jp = p0; jp < p1; jp++) {
                        int j0 = jp * NR, nr = N - j0 < NR ? N - j0 : NR;
                        size_t bo = (size_t)jp * K * NR + (size_t)k0 * NR;
                        e.bias = bias ? bias + j0 : NULL;
                        e.scale = B->scale ? B->scale + j0 : NULL;
                        for (int ip = 0; ip < mc; ip += MR) {
                            int mr = mc - ip < MR ? mc - ip : MR;
                            const float *a = asrc->A + (size_t)(i0 + ip) * asrc->lda + k0;
                            float *Ct = C + (size_t)(i0 + ip) * ldc + j0;
                            if (Bh) kernel_direct_h(kc, a, asrc->lda, Bh + bo, Ct, ldc, mr, nr, &e);
                            else kernel_direct(kc, a, asrc->lda, Bp + bo, Ct, ldc, mr, nr, &e);
                        }
                    }
                    continue;
                }
#endif
                /* packed weights take the direct or conv kernels above; F16 panels never get here */
                CA_ASSERT(!Bh || !CA_HAVE_AVX512);
                pack_a(ap, asrc, i0, mc, M, k0, kc);
#if CA_HAVE_BF16
                if (Bb) {
                    /* K blocks start at even k (KC is even); an odd tail pairs with a zero */
                    int kc2 = (kc + 1) / 2, K2 = (K + 1) / 2;
                    uint32_t *ap2 = (uint32_t *)(ap + (size_t)MC * KC);
                    for (int ip = 0; ip < mc; ip += MR) {
                        float *src = ap + (size_t)ip * kc;
                        uint32_t *dst = ap2 + (size_t)ip * kc2;
                        a_to_bf16(dst, src, kc & ~1);
                        if (kc & 1) /* last k alone: its pair partner is zero */
                            for (int r = 0; r < MR; r++) dst[(size_t)(kc2 - 1) * MR + r] = ca_f32_to_bf16(src[(size_t)(kc - 1) * MR + r]);
                    }
                    for (int jp = p0; jp < p1; jp++) {
                        int j0 = jp * NR, nr = N - j0 < NR ? N - j0 : NR;
                        const uint16_t *bp = Bb + ((size_t)jp * K2 + (size_t)k0 / 2) * NR * 2;
                        e.bias = bias ? bias + j0 : NULL;
                        e.scale = B->scale ? B->scale + j0 : NULL;
                        for (int ip = 0; ip < mc; ip += MR) {
                            int mr = mc - ip < MR ? mc - ip : MR;
                            kernel_bf16(kc2, ap2 + (size_t)ip * kc2, bp, C + (size_t)(i0 + ip) * ldc + j0, ldc, mr, nr, &e);
                        }
                    }
                    continue;
                }
#endif
                for (int jp = p0; jp < p1; jp++) {
                    int j0 = jp * NR, nr = N - j0 < NR ? N - j0 : NR;
                    size_t bo = (size_t)jp * K * NR + (size_t)k0 * NR;
                    e.bias = bias ? bias + j0 : NULL;
                    e.scale = B->scale ? B->scale + j0 : NULL;
                    for (int ip = 0; ip < mc; ip += MR) {
                        int mr = mc - ip < MR ? mc - ip : MR;
                        float *Ct = C + (size_t)(i0 + ip) * ldc + j0;
                        kernel(kc, ap + (size_t)ip * kc, Bp + bo, Ct, ldc, mr, nr, &e);
                    }
                }
            }
        }
    }
    free(apack);
    free(zero);
    return CA_OK;
}

ca_status ca_gemm_packed(int M, const float *A, int lda, const ca_packed *W, float alpha,
                         const float *bias, ca_epi act, float beta, float *C, int ldc, int threads) {
    if (M <= 0) return CA_OK;
    if (!W || (!W->p && !W->ph && !W->pb)) return ca_fail(CA_E_ARG, "unpacked weights");
    a_src as = {A, lda, 0, NULL, NULL};
    b_src bs = b_of(W);
    return run(&as, M, W->N, W->K, &bs, alpha, bias, act, beta, C, ldc, ca_kernel_threads(threads));
}

ca_status ca_gemm_ex(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, const float *bias, ca_epi act, float beta,
                     float *C, int ldc, int threads) {
    if (M <= 0 || N <= 0) return CA_OK;
    threads = ca_kernel_threads(threads);
    float *bp = pack_b(B, CA_DT_F32, transB, ldb, N, K > 0 ? K : 0, threads, 0);
    if (!bp) return CA_E_NOMEM;
    a_src as = {A, lda, transA, NULL, NULL};
    b_src bs = {bp, NULL, NULL, NULL};
    ca_status st = run(&as, M, N, K, &bs, alpha, bias, act, beta, C, ldc, threads);
    free(bp);
    return st;
}

/* Tip-Adapter-F's key gradient, written where the keys live (panels): for each 32-column panel
 * of B, Cp[jp] (M, 32) = alpha · Aᵀ · Bp[jp]. Aᵀ is packed into MR strips once, per K block, and
 * shared; threads take whole panels. The tiles run the same FMA sequence over k as ca_gemm_ex's
 * transposed-A path on the swapped product (Bᵀ·A, the same products in the same order), so the
 * result is bit-identical to computing Bᵀ·A with ca_gemm_ex and packing it. With fn, each panel
 * is handed to fn as soon as it is complete, on the thread that computed it, while it is still
 * in that core's cache; Cp NULL then means a per-thread panel buffer instead of the whole block. */
static ca_status tn_panels(int M, int N, int K, float alpha, const float *A, int lda, const float *Bp, float *Cp,
                           int threads, ca_panel_fn fn, void *user) {
    if (M <= 0 || N <= 0) return CA_OK;
    if (K <= 0) return ca_fail(CA_E_ARG, "ca_gemm_tn_panels: empty reduction (K = %d)", K);
    if (((uintptr_t)Bp & 63) || ((uintptr_t)Cp & 63)) return ca_fail(CA_E_ARG, "ca_gemm_tn_panels: panels must be 64-byte aligned");
    threads = ca_kernel_threads(threads);
    const int np = (N + NR - 1) / NR, ns = (M + MR - 1) / MR, nkb = (K + KC - 1) / KC;
    if (threads > np) threads = np;
    /* strips [kb][s][kc][MR]: K blocks of KC (the last shorter), so block kb starts at k0 * ns * MR;
     * then, without Cp, one (M, 32) panel per thread */
    const size_t na = ((size_t)ns * MR * K + 15) & ~(size_t)15, npan = (size_t)M * NR;
    float *ap = aligned_alloc(64, sizeof(float) * (na + (Cp ? 0 : npan * (size_t)threads)));
    if (!ap) return ca_fail(CA_E_NOMEM, "out of memory for a GEMM buffer");
    a_src as = {A, lda, 1, NULL, NULL};
    for (int kb = 0; kb < nkb; kb++) {
        int k0 = kb * KC, kc = K - k0 < KC ? K - k0 : KC;
        pack_a(ap + (size_t)k0 * ns * MR, &as, 0, M, M, k0, kc);
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#ifdef _OPENMP
        float *own = Cp ? NULL : ap + na + npan * (size_t)omp_get_thread_num();
#else
        float *own = Cp ? NULL : ap + na;
#endif
        ca_team_note();
#pragma omp for schedule(dynamic, 4)   /* panels of equal work, but a shared host's cores are not */
        for (int jp = 0; jp < np; jp++) {
            float *C = Cp ? Cp + (size_t)jp * M * NR : own;
            for (int kb = 0; kb < nkb; kb++) {
                int k0 = kb * KC, kc = K - k0 < KC ? K - k0 : KC;
                tile_epi e = {alpha, 0.0f, NULL, NULL, CA_EPI_NONE, kb == 0, kb == nkb - 1};
                const float *a = ap + (size_t)k0 * ns * MR, *b = Bp + ((size_t)jp * K + k0) * NR;
                for (int s = 0; s < ns; s++) {
                    int mr = M - s * MR < MR ? M - s * MR : MR;
                    kernel(kc, a + (size_t)s * MR * kc, b, C + (size_t)s * MR * NR, NR, mr, NR, &e);
                }
            }
            if (fn) fn(jp, C, user);
        }
    }
    free(ap);
    return CA_OK;
}

ca_status ca_gemm_tn_panels(int M, int N, int K, float alpha, const float *A, int lda, const float *Bp,
                            float *Cp, int threads) {
    if (!Cp && M > 0 && N > 0) return ca_fail(CA_E_ARG, "ca_gemm_tn_panels: no output panels");
    return tn_panels(M, N, K, alpha, A, lda, Bp, Cp, threads, NULL, NULL);
}

ca_status ca_gemm_tn_panels_each(int M, int N, int K, float alpha, const float *A, int lda, const float *Bp,
                                 float *Cp, int threads, ca_panel_fn fn, void *user) {
    if (!fn) return ca_fail(CA_E_ARG, "ca_gemm_tn_panels_each: no panel function");
    return tn_panels(M, N, K, alpha, A, lda, Bp, Cp, threads, fn, user);
}

/* dst panel row: element j of n goes to dst[(j/32)·stride + j%32], = h[idx[j]]·a[j] (one float
 * multiply, so the same value on every path), the last panel's row zero-padded to 32. */
void ca_gather_mul_panels(float *restrict dst, size_t stride, const float *restrict a, const float *restrict h,
                          const int32_t *restrict idx, int n) {
    for (int j0 = 0; j0 < n; j0 += NR) {
        float *d = dst + (size_t)(j0 / NR) * stride;
        int w = n - j0 < NR ? n - j0 : NR, j = 0;
#if CA_HAVE_AVX512
        for (; j + 16 <= w; j += 16) {
            __m512i ix = _mm512_loadu_si512((const void *)(idx + j0 + j));
            _mm512_storeu_ps(d + j, _mm512_mul_ps(_mm512_i32gather_ps(ix, h, 4), _mm512_loadu_ps(a + j0 + j)));
        }
#endif
        for (; j < w; j++) d[j] = h[idx[j0 + j]] * a[j0 + j];
        for (; j < NR; j++) d[j] = 0.0f;
    }
}

/* AdamW on n floats with the scalars precomputed (ca_adamw_f32 in fastgemm.h). Every
 * operation is an IEEE one in float (multiply, add, subtract, divide, square root, all correctly
 * rounded at any vector width; no contraction in C11 mode), in the order of ca_optim_step's loop,
 * so each element gets the same value as there, on every CPU path. */
void ca_adamw_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n, float decay,
                  float b1, float b2, float stepsz, float bc2s, float eps) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    size_t i = 0;
#if CA_HAVE_AVX512
    const __m512 vdecay = _mm512_set1_ps(decay), vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2), vc1 = _mm512_set1_ps(c1),
                 vc2 = _mm512_set1_ps(c2), vstep = _mm512_set1_ps(stepsz), vbc2s = _mm512_set1_ps(bc2s), veps = _mm512_set1_ps(eps);
    for (; i + 16 <= n; i += 16) {
        __m512 gi = _mm512_loadu_ps(g + i);
        __m512 pi = _mm512_mul_ps(_mm512_loadu_ps(p + i), vdecay);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), vb1), _mm512_mul_ps(gi, vc1));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), vb2), _mm512_mul_ps(_mm512_mul_ps(gi, gi), vc2));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), vbc2s), veps);
        pi = _mm512_sub_ps(pi, _mm512_div_ps(_mm512_mul_ps(vstep, mi), den));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        _mm512_storeu_ps(p + i, pi);
    }
#endif
    for (; i < n; i++) {
        p[i] *= decay;
        m[i] = m[i] * b1 + g[i] * c1;
        v[i] = v[i] * b2 + g[i] * g[i] * c2;
        p[i] -= stepsz * m[i] / (sqrtf(v[i]) / bc2s + eps);
    }
}

ca_status ca_gemm_conv_nhwc(const ca_conv_geom *g, const float *in, const ca_packed *W,
                            const float *bias, ca_epi act, float beta, float *out, int threads) {
    if (!W || (!W->p && !W->ph && !W->pb) || W->K != g->KH * g->KW * g->Cin) return ca_fail(CA_E_ARG, "conv weights do not match the geometry");
    int M = g->N * g->Ho * g->Wo;
    if (M <= 0) return CA_OK;
    a_src as = {in, 0, 0, g, NULL};
    uint16_t *inb = NULL;
#if CA_HAVE_BF16
    if (W->pb && g->Cin % 2 == 0) {
        /* round the input to BF16 once, so the taps read pairs in place like the F32 kernel */
        size_t n = (size_t)g->N * g->H * g->W * g->Cin, i = 0;
        inb = aligned_alloc(64, (n * sizeof(uint16_t) + 63) & ~(size_t)63);
        if (!inb) return ca_fail(CA_E_NOMEM, "out of memory for a convolution input");
        for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(inb + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(in + i)));
        for (; i < n; i++) inb[i] = ca_f32_to_bf16(in[i]);
        as.Abf = inb;
    }
#endif
    b_src bs = b_of(W);
    ca_status st = run(&as, M, W->N, W->K, &bs, 1.0f, bias, act, beta, out, W->N, ca_kernel_threads(threads));
    free(inb);
    return st;
}
