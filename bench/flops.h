/* flops.h — shared by the encoder benches (bench/model.c, bench/peer.c): median of timings, the
 * machine's measured FMA peak, and FLOPs per image counted from the architecture. Header-only
 * (static functions) because each bench is one .c file linked alone against the library. */
#ifndef CA_BENCH_FLOPS_H
#define CA_BENCH_FLOPS_H
#include "core/core.h"
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}


/* ---- FMA peak: independent FMA chains, 12 accumulators per thread ---- */
/* The machine's peak, whatever path the kernels run on: AVX-512 when the CPU has it (compiled
 * with a target attribute, so a portable build measures it too), else 8 scalar lanes. */
#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_FMA512 1
__attribute__((noinline, target("avx512f"))) static float fma_loop512(long n) {
    __m512 a[12], b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < n; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
#endif
__attribute__((noinline)) static float fma_loop8(long n) {
    float a[12][8], b = 0.9999999f, c = 1e-7f;
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < 8; j++) a[i][j] = (float)i;
    for (long it = 0; it < n; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) a[i][j] = fmaf(a[i][j], b, c);
    }
    return a[0][0] + a[11][7];
}

#ifdef HAVE_FMA512
#define FMA512(n) fma_loop512(n)
#else
#define FMA512(n) fma_loop8(n)
#endif
static double fma_peak(int threads) {
    long n = 20000000;
    int wide = 0;
#ifdef HAVE_FMA512
    wide = __builtin_cpu_supports("avx512f");
#endif
    int lanes = wide ? 16 : 8;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t = ca_now();
        float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += wide ? FMA512(n) : fma_loop8(n);
        t = ca_now() - t;
        double g = (double)threads * n * 12 * lanes * 2 / t / 1e9;
        if (g > best) best = g;
        if (sink == 12345.0f) puts("");
    }
    return best;
}

/* ---- FLOPs (multiply-add = 2) per image / per prompt token ---- */
/* kept: the FLOPs fast.c executes, whose last block runs only the one row read afterwards (keys
 * and values for all T rows; query, attention, output projection and MLP for one row). Without
 * it: the model's FLOPs, which is what the reference computes. */
static double xformer_flops(const ca_xformer *tf, double T, int kept) {
    double W = tf->width, H = tf->hidden;
    double full = 2 * T * (4 * W * W + 2 * W * H) + 4 * T * T * W;
    if (!kept || tf->layers < 1) return tf->layers * full;
    double last = 2 * T * 2 * W * W + 2 * (2 * W * W + 2 * W * H) + 4 * T * W;
    return (tf->layers - 1) * full + last;
}

static double image_flops(const ca_model *m, int kept) {
    const ca_vision *v = &m->vis;
    if (m->info.is_vit) {
        double G2 = (double)v->grid * v->grid, T = G2 + 1, W = v->width;
        return 2 * G2 * W * 3 * v->patch * v->patch + xformer_flops(&v->tf, T, kept) + 2 * W * v->embed_dim;
    }
    double f = 0, H = v->image_size, W = v->width;
    H = floor((H - 1) / 2) + 1; /* stem conv1 stride 2 */
    f += 2 * H * H * (W / 2) * 3 * 9 + 2 * H * H * (W / 2) * (W / 2) * 9 + 2 * H * H * W * (W / 2) * 9;
    H /= 2;
    const ca_bottleneck *b = v->blocks;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < v->rn_layers[s]; i++, b++) {
            double P = b->planes, OH = H / b->stride;
            f += 2 * H * H * P * b->inplanes + 2 * H * H * P * P * 9 + 2 * OH * OH * 4 * P * P;
            if (b->down) f += 2 * OH * OH * 4 * P * b->inplanes;
            H = OH;
        }
    double D = v->ap_dim, T = H * H + 1;
    f += 2 * D * D + 2 * T * 2 * D * D + 4 * T * D + 2 * D * v->embed_dim;
    return f;
}

#endif
