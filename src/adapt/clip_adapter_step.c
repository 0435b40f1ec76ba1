/* clip_adapter_step.c — CLIP-Adapter's training step on AVX-512 for large class counts: the
 * seven products of one step (adapter forward, logits against W0, dlogits·W0, the three
 * gradient products) on one register tile (12 rows × 32 columns, B read in place, no packing),
 * the row operations between them vectorised over the batch, and the optimiser update, all in
 * one OpenMP region per step with barriers between phases.
 * Why: at batch 32 each product is 2-16 M multiply-adds; through OpenBLAS the step cost ~1 ms
 * (Haswell kernels, a fork/join or a yield per product). Activations are stored feature-major
 * (features × batch columns) so that every product is "broadcast A, stream a 32-wide row of B",
 * and every per-row operation of the plain step (L2 norm, softmax) becomes a column operation
 * that vectorises over the batch in the same order. Each output element is one sequential
 * k sum computed by one thread, so the thread count never changes a bit.
 * Not here: the gate (hypernetwork) ratios, the text side, the shipped sets (clip_adapter.c's
 * plain step, also the oracle, ca_clip_adapter_loss). Compiled once per CPU path; only the
 * avx512 copy has the step. */
#include "adapt/clip_adapter_step.h"

#include "model/simd.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int ca_castep_available(void) { return CA_HAVE_AVX512; }

void ca_castep_free(ca_castep *st) {
    if (!st) return;
    free(st->mem);
    memset(st, 0, sizeof *st);
}

#if CA_HAVE_AVX512

enum { TR = 12, TC = 32, CH = 16 };   /* tile rows, tile columns, column chunk of the row ops */

/* C tile (mr <= 12, nr <= 32) = epilogue(Σ_k A(r,k)·B[k][0..nr)), k = 0..K-1 in order, one FMA
 * chain per element. A(r,k) = a[r·sa + k·sk]; B row k at b + k·ldb. Epilogue: ·alpha (when not
 * 1), then ReLU (relu) or the ReLU mask of a forward output g (g: same shape as C, ldg):
 * x where g > 0, else 0. Rows mr..11 are computed on row 0 and dropped. */
/* AdamW on the elements of a gradient tile, as ca_optim_step computes it (same operations in the
 * same order, no contraction: bit for bit), while the tile is in registers. p, m, v: the
 * parameters and moments at the tile's place (C's layout). */
typedef struct {
    float *p, *m, *v;
    float decay, b1, omb1, b2, omb2, stepsz, bc2s, eps;
} adam_upd;

static inline void adam_vec(const adam_upd *u, size_t o, __mmask16 k, __m512 g) {
    __m512 p = _mm512_maskz_loadu_ps(k, u->p + o), m = _mm512_maskz_loadu_ps(k, u->m + o), v = _mm512_maskz_loadu_ps(k, u->v + o);
    p = _mm512_mul_ps(p, _mm512_set1_ps(u->decay));
    m = _mm512_add_ps(_mm512_mul_ps(m, _mm512_set1_ps(u->b1)), _mm512_mul_ps(g, _mm512_set1_ps(u->omb1)));
    v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(u->b2)), _mm512_mul_ps(_mm512_mul_ps(g, g), _mm512_set1_ps(u->omb2)));
    __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(v), _mm512_set1_ps(u->bc2s)), _mm512_set1_ps(u->eps));
    p = _mm512_sub_ps(p, _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(u->stepsz), m), den));
    _mm512_mask_storeu_ps(u->p + o, k, p);
    _mm512_mask_storeu_ps(u->m + o, k, m);
    _mm512_mask_storeu_ps(u->v + o, k, v);
}

static inline __attribute__((always_inline)) void tile_body(int K, const float *a, size_t sa, size_t sk, const float *b,
                                                           size_t ldb, float *c, size_t ldc, int mr, int nr, float alpha,
                                                           int relu, const float *g, size_t ldg, const adam_upd *u) {
    __m512 c0[TR], c1[TR];
    const float *ar[TR];
#pragma GCC unroll 12
    for (int r = 0; r < TR; r++) { c0[r] = c1[r] = _mm512_setzero_ps(); ar[r] = a + (size_t)(r < mr ? r : 0) * sa; }
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * ldb;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bk), b1 = _mm512_maskz_loadu_ps(m1, bk + 16);
#pragma GCC unroll 12
        for (int r = 0; r < TR; r++) {
            __m512 av = _mm512_set1_ps(ar[r][(size_t)k * sk]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    /* the accumulators leave their registers once, at constant indices: a loop over r < mr
     * on c0/c1 themselves would keep them in memory for the whole k loop */
    float acc[TR][TC] __attribute__((aligned(64)));
#pragma GCC unroll 12
    for (int r = 0; r < TR; r++) { _mm512_store_ps(acc[r], c0[r]); _mm512_store_ps(acc[r] + 16, c1[r]); }
    const __m512 zero = _mm512_setzero_ps(), al = _mm512_set1_ps(alpha);
    for (int r = 0; r < mr; r++) {
        __m512 x0 = _mm512_load_ps(acc[r]), x1 = _mm512_load_ps(acc[r] + 16);
        if (alpha != 1.0f) { x0 = _mm512_mul_ps(x0, al); x1 = _mm512_mul_ps(x1, al); }
        if (relu) { x0 = _mm512_max_ps(x0, zero); x1 = _mm512_max_ps(x1, zero); }
        if (g) {
            const float *gr = g + (size_t)r * ldg;
            x0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m0, gr), zero, _CMP_GT_OQ), x0);
            x1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m1, gr + 16), zero, _CMP_GT_OQ), x1);
        }
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, x0);
        if (m1) _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, x1);
        if (u) {
            adam_vec(u, (size_t)r * ldc, m0, x0);
            if (m1) adam_vec(u, (size_t)r * ldc + 16, m1, x1);
        }
    }
}

/* A row-major (sk = 1) or transposed (sa = 1): the two instances the step uses. */
static void tile_nn(int K, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc, int mr, int nr,
                    float alpha, int relu, const float *g, size_t ldg, const adam_upd *u) {
    tile_body(K, a, lda, 1, b, ldb, c, ldc, mr, nr, alpha, relu, g, ldg, u);
}
static void tile_tn(int K, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc, int mr, int nr,
                    float alpha, int relu, const float *g, size_t ldg) {
    tile_body(K, a, 1, lda, b, ldb, c, ldc, mr, nr, alpha, relu, g, ldg, NULL);
}

/* Thread tid's share of C (M,N) = epi(op(A)·B): tiles numbered row-major, split in contiguous
 * runs. trans: A is stored (K,M) with row stride lda, else (M,K). */
static void gemm_part(int tid, int T, int trans, int M, int N, int K, const float *A, size_t lda, const float *B,
                      size_t ldb, float *C, size_t ldc, float alpha, int relu, const float *g, size_t ldg,
                      const adam_upd *u) {
    int nrt = (M + TR - 1) / TR, nct = (N + TC - 1) / TC, nt = nrt * nct;
    int t0 = (int)((long)nt * tid / T), t1 = (int)((long)nt * (tid + 1) / T);
    for (int t = t0; t < t1; t++) {
        int i0 = (t / nct) * TR, j0 = (t % nct) * TC;
        int mr = M - i0 < TR ? M - i0 : TR, nr = N - j0 < TC ? N - j0 : TC;
        const float *gt = g ? g + (size_t)i0 * ldg + j0 : NULL;
        size_t co = (size_t)i0 * ldc + j0;
        if (trans) tile_tn(K, A + i0, lda, B + j0, ldb, C + co, ldc, mr, nr, alpha, relu, gt, ldg);
        else if (!u) tile_nn(K, A + (size_t)i0 * lda, lda, B + j0, ldb, C + co, ldc, mr, nr, alpha, relu, gt, ldg, NULL);
        else {   /* u at C's origin: shift it to the tile */
            adam_upd ut = *u;
            ut.p += co; ut.m += co; ut.v += co;
            tile_nn(K, A + (size_t)i0 * lda, lda, B + j0, ldb, C + co, ldc, mr, nr, alpha, relu, gt, ldg, &ut);
        }
    }
}

/* Rows [r0, r1) of the (R, ncols) matrix src (row stride lds) into columns of dst (row stride
 * ldd): dst[j][i] = src[i][j] for i in [r0,r1), j < ncols. */
static void transpose_rows(const float *src, size_t lds, int r0, int r1, int ncols, float *dst, size_t ldd) {
    for (int j0 = 0; j0 < ncols; j0 += 64) {
        int j1 = j0 + 64 < ncols ? j0 + 64 : ncols;
        for (int i = r0; i < r1; i++)
            for (int j = j0; j < j1; j++) dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
    }
}

static inline __m512 dbl_to_ps(__m512d lo, __m512d hi) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

/* Columns [c0, c0+16) of the blend and L2 norm, as the plain step per row:
 * F = r·A + (1-r)·X, norm = max((float)sqrt(Σ (double)F²), 1e-12), Fn = F·(1/norm). */
static void blend_norm_chunk(ca_castep *s, int c0, float ratio) {
    const int D = s->D;
    const size_t ld = (size_t)s->ldb;
    const __m512 r = _mm512_set1_ps(ratio), r1 = _mm512_set1_ps(1 - ratio);
    __m512d slo = _mm512_setzero_pd(), shi = _mm512_setzero_pd();
    for (int d = 0; d < D; d++) {
        size_t o = (size_t)d * ld + c0;
        __m512 f = _mm512_add_ps(_mm512_mul_ps(r, _mm512_loadu_ps(s->At + o)), _mm512_mul_ps(r1, _mm512_loadu_ps(s->Xt + o)));
        _mm512_storeu_ps(s->Fnt + o, f);
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(f)), hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(f, 1));
        slo = _mm512_add_pd(slo, _mm512_mul_pd(lo, lo));
        shi = _mm512_add_pd(shi, _mm512_mul_pd(hi, hi));
    }
    __m512 nr = dbl_to_ps(_mm512_sqrt_pd(slo), _mm512_sqrt_pd(shi));
    const __m512 fl = _mm512_set1_ps(1e-12f);
    nr = _mm512_mask_mov_ps(nr, _mm512_cmp_ps_mask(nr, fl, _CMP_LT_OQ), fl);
    _mm512_storeu_ps(s->norm + c0, nr);
    __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), nr);
    for (int d = 0; d < D; d++) {
        size_t o = (size_t)d * ld + c0;
        _mm512_storeu_ps(s->Fnt + o, _mm512_mul_ps(_mm512_loadu_ps(s->Fnt + o), inv));
    }
}

/* Columns [c0, c0+16) of the softmax cross-entropy over the C rows of Lt, in place: Lt becomes
 * (softmax - onehot)/nb (0 in columns >= nb); closs[i] the column's loss. */
static void softmax_chunk(ca_castep *s, int c0, const int32_t *y, int nb) {
    const int C = s->C;
    const size_t ld = (size_t)s->ldb;
    float *L = s->Lt + c0;
    int n = nb - c0 < CH ? nb - c0 : CH;
    if (n <= 0) {
        for (int c = 0; c < C; c++) _mm512_storeu_ps(L + (size_t)c * ld, _mm512_setzero_ps());
        return;
    }
    __mmask16 live = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
    float ly[CH], mxs[CH], ss[CH];
    for (int i = 0; i < n; i++) ly[i] = L[(size_t)y[c0 + i] * ld + i];
    __m512 mx = _mm512_loadu_ps(L);
    for (int c = 1; c < C; c++) {
        __m512 v = _mm512_loadu_ps(L + (size_t)c * ld);
        mx = _mm512_mask_mov_ps(mx, _mm512_cmp_ps_mask(v, mx, _CMP_GT_OQ), v);
    }
    __m512 sum = _mm512_setzero_ps();
    for (int c = 0; c < C; c++) {
        float *l = L + (size_t)c * ld;
        __m512 e = ca_exp512(_mm512_sub_ps(_mm512_loadu_ps(l), mx));
        _mm512_storeu_ps(l, e);
        sum = _mm512_add_ps(sum, e);
    }
    const float inv = 1.0f / (float)nb;
    __m512 rs = _mm512_maskz_div_ps(live, _mm512_set1_ps(inv), sum);   /* 0 in dead columns */
    for (int c = 0; c < C; c++) {
        float *l = L + (size_t)c * ld;
        _mm512_storeu_ps(l, _mm512_mul_ps(_mm512_loadu_ps(l), rs));
    }
    _mm512_storeu_ps(mxs, mx);
    _mm512_storeu_ps(ss, sum);
    for (int i = 0; i < n; i++) {
        L[(size_t)y[c0 + i] * ld + i] -= inv;
        s->closs[c0 + i] = (double)mxs[i] + log((double)ss[i]) - ly[i];
    }
}

/* Columns [c0, c0+16) of the backward from dFn to dZ2 (in place in dFt), as the plain step:
 * dF = (dFn - Fn·(Fn·dFn))·(1/norm), dA = r·dF, dZ2 = dA where A > 0. */
static void norm_back_chunk(ca_castep *s, int c0, float ratio) {
    const int D = s->D;
    const size_t ld = (size_t)s->ldb;
    __m512 dot = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        size_t o = (size_t)d * ld + c0;
        dot = _mm512_add_ps(dot, _mm512_mul_ps(_mm512_loadu_ps(s->Fnt + o), _mm512_loadu_ps(s->dFt + o)));
    }
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_loadu_ps(s->norm + c0)), r = _mm512_set1_ps(ratio);
    const __m512 zero = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        size_t o = (size_t)d * ld + c0;
        __m512 g = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(s->dFt + o), _mm512_mul_ps(_mm512_loadu_ps(s->Fnt + o), dot)), inv);
        g = _mm512_mul_ps(g, r);
        g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(s->At + o), zero, _CMP_GT_OQ), g);
        _mm512_storeu_ps(s->dFt + o, g);
    }
}

/* The team's barrier between phases: spin briefly (the partner is usually microseconds away on
 * an idle machine), then yield, so that on a loaded machine a waiting thread gives its core to
 * the one it waits for instead of spinning through its time slice (GOMP's default barrier spins
 * ~300k times: 2-thread steps were 10-20x slower than 1-thread ones with other jobs running). */
typedef struct {
    _Atomic int count, gen;
    int n;
} team_bar;

static void bar_wait(team_bar *b) {
    if (b->n <= 1) return;
    int g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == b->n - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->gen, g + 1, memory_order_release);
        return;
    }
    for (int spins = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == g; spins++) {
        if (spins < 4000) _mm_pause();
        else sched_yield();
    }
}

/* One thread's part of one step on the batch in s->X / s->y (nb rows); see ca_castep_run.
 * Ends with the gradient in G and, when the loss is finite, P updated. */
static double step_part(ca_castep *s, team_bar *bar, int tid, int nt, const float *X, int nb, float ratio, float *P,
                        float *G, const ca_optim *opt, double lr, int64_t stepno, float *M, float *V) {
    const int C = s->C, D = s->D, h = s->h, ldb = s->ldb, nch = ldb / CH;
    const size_t n = (size_t)2 * h * D;
    const float *W1 = P, *W2 = P + (size_t)h * D;
    const int32_t *y = s->y;
    float *gW1 = G, *gW2 = G + (size_t)h * D;
    /* the batch feature-major, padding columns zero */
    int d0 = (int)((long)D * tid / nt), d1 = (int)((long)D * (tid + 1) / nt);
    for (int d = d0; d < d1; d++) memset(s->Xt + (size_t)d * ldb + nb, 0, sizeof(float) * (size_t)(ldb - nb));
    transpose_rows(X + d0, D, 0, nb, d1 - d0, s->Xt + (size_t)d0 * ldb, ldb);
    bar_wait(bar);
    gemm_part(tid, nt, 0, h, ldb, D, W1, D, s->Xt, ldb, s->H1t, ldb, 1.0f, 1, NULL, 0, NULL);   /* H1 = ReLU(X·W1ᵀ) */
    bar_wait(bar);
    gemm_part(tid, nt, 0, D, ldb, h, W2, h, s->H1t, ldb, s->At, ldb, 1.0f, 1, NULL, 0, NULL);   /* A = ReLU(H1·W2ᵀ) */
    int j0 = (int)((long)h * tid / nt), j1 = (int)((long)h * (tid + 1) / nt);
    transpose_rows(s->H1t, ldb, j0, j1, nb, s->H1, h);                                    /* H1 row-major */
    bar_wait(bar);
    for (int q = tid; q < nch; q += nt) blend_norm_chunk(s, q * CH, ratio);
    bar_wait(bar);
    gemm_part(tid, nt, 0, C, ldb, D, s->W0, D, s->Fnt, ldb, s->Lt, ldb, 100.0f, 0, NULL, 0, NULL);  /* logits */
    bar_wait(bar);
    for (int q = tid; q < nch; q += nt) softmax_chunk(s, q * CH, y, nb);
    bar_wait(bar);
    double l = 0;   /* every thread sums the same column losses in the same order */
    for (int i = 0; i < nb; i++) l += s->closs[i];
    l /= nb;
    /* AdamW goes into the gradient tiles (their values still in registers): no second pass
     * over P, G and the moments. Non-finite loss: no update at all. */
    int fused = opt && opt->kind == CA_OPT_ADAMW && isfinite(l);
    adam_upd u1 = {0}, u2 = {0};
    if (fused) {   /* ca_optim_step's constants, computed the same way */
        const float b1 = opt->beta1, b2 = opt->beta2;
        const double bc1 = 1.0 - pow(b1, (double)stepno), bc2 = 1.0 - pow(b2, (double)stepno);
        u1 = (adam_upd){P, M, V, (float)(1.0 - lr * opt->weight_decay), b1, 1.0f - b1, b2, 1.0f - b2, (float)(lr / bc1),
                        (float)sqrt(bc2), opt->eps};
        u2 = u1;
        u2.p += (size_t)h * D; u2.m += (size_t)h * D; u2.v += (size_t)h * D;
    }
    gemm_part(tid, nt, 0, D, ldb, C, s->W0t, C, s->Lt, ldb, s->dFt, ldb, 100.0f, 0, NULL, 0, NULL);  /* dFn */
    bar_wait(bar);
    for (int q = tid; q < nch; q += nt) norm_back_chunk(s, q * CH, ratio);
    bar_wait(bar);
    gemm_part(tid, nt, 1, h, ldb, D, W2, h, s->dFt, ldb, s->dZ1t, ldb, 1.0f, 0, s->H1t, ldb, NULL); /* dZ1 = dZ2·W2, masked */
    bar_wait(bar);   /* W2 read for the last time: its update may start */
    gemm_part(tid, nt, 0, D, h, nb, s->dFt, ldb, s->H1, h, gW2, h, 1.0f, 0, NULL, 0, fused ? &u2 : NULL);  /* gW2 = dZ2ᵀ·H1 */
    gemm_part(tid, nt, 0, h, D, nb, s->dZ1t, ldb, X, D, gW1, D, 1.0f, 0, NULL, 0, fused ? &u1 : NULL);     /* gW1 = dZ1ᵀ·X */
    if (opt && !fused && isfinite(l)) {   /* SGD: the plain update, split (element-wise: same values) */
        bar_wait(bar);   /* G complete */
        size_t e0 = (n * (size_t)tid / (size_t)nt) & ~(size_t)15;
        size_t e1 = tid + 1 == nt ? n : (n * (size_t)(tid + 1) / (size_t)nt) & ~(size_t)15;
        ca_optim_step(opt, lr, stepno, P + e0, G + e0, M + e0, V + e0, e1 - e0);
    }
    return l;
}

double ca_castep_epoch(ca_castep *s, int i0, int nsteps, ca_castep_batch_fn next, void *user, float ratio, float *P,
                       float *G, const ca_optim *opt, float *M, float *V, int *bad_step) {
    int T = s->threads;
    team_bar bar = {0, 0, T};
    double loss = 0;
    int nb = 0, bad = -1;
    double lr = 0;
    int64_t stepno = 0;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int tid = 0, nt = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        ca_team_note();
        if (tid == 0) bar.n = nt;   /* the team may be smaller than asked */
#pragma omp barrier
        for (int i = i0; i < i0 + nsteps; i++) {
            /* thread 0 fetches the batch while the others finish the last step's gradient tiles,
             * which still read the last batch: two batch buffers, used in turn. The barrier
             * publishes the batch and ends the last step's updates. */
            float *X = s->X + (size_t)(i & 1) * s->B * s->D;
            if (tid == 0) nb = next(user, i, X, s->y, &lr, &stepno);
            bar_wait(&bar);
            if (nb < 1 || nb > s->B) { if (tid == 0) { loss = NAN; bad = i; } break; }
            double l = step_part(s, &bar, tid, nt, X, nb, ratio, P, G, opt, lr, stepno, M, V);
            if (!isfinite(l)) { if (tid == 0) { loss = l; bad = i; } break; }   /* every thread sees the same l */
            if (tid == 0) loss = l;
        }
    }
    if (bad_step) *bad_step = bad;
    return loss;
}

ca_status ca_castep_init(ca_castep *s, const float *W0, int C, int D, int h, int B, int threads) {
    memset(s, 0, sizeof *s);
    if (C < 1 || D < 1 || h < 1 || B < 1) return CA_E_ARG;
    int ldb = (B + CH - 1) / CH * CH;
    size_t fl = (size_t)D * C + (size_t)ldb * ((size_t)D * 6 + (size_t)h * 2 + (size_t)C + 1) + (size_t)B * (h + 2 * D + 1);
    size_t bytes = fl * sizeof(float) + sizeof(double) * (size_t)ldb + 64 * 16;
    char *m = calloc(1, bytes);
    if (!m) return CA_E_NOMEM;
    float *f = (float *)(((uintptr_t)m + 63) & ~(uintptr_t)63);
    s->mem = m;
    s->C = C; s->D = D; s->h = h; s->B = B; s->ldb = ldb; s->threads = threads > 0 ? threads : 1;
    s->W0 = W0;
    s->W0t = f; f += (size_t)D * C;
    s->Xt = f; f += (size_t)D * ldb;
    s->At = f; f += (size_t)D * ldb;
    s->Fnt = f; f += (size_t)D * ldb;
    s->dFt = f; f += (size_t)D * ldb;
    s->H1t = f; f += (size_t)h * ldb;
    s->dZ1t = f; f += (size_t)h * ldb;
    s->Lt = f; f += (size_t)C * ldb;
    s->norm = f; f += ldb;
    s->H1 = f; f += (size_t)B * h;
    s->X = f; f += (size_t)2 * B * D;
    s->y = (int32_t *)f; f += B;
    s->closs = (double *)(((uintptr_t)f + 7) & ~(uintptr_t)7);
    transpose_rows(W0, D, 0, C, D, s->W0t, C);
    return CA_OK;
}

#else /* no AVX-512 in this path: the plain step runs instead */

ca_status ca_castep_init(ca_castep *s, const float *W0, int C, int D, int h, int B, int threads) {
    memset(s, 0, sizeof *s);
    return CA_E_UNSUPPORTED;
}

double ca_castep_epoch(ca_castep *s, int i0, int nsteps, ca_castep_batch_fn next, void *user, float ratio, float *P,
                       float *G, const ca_optim *opt, float *M, float *V, int *bad_step) {
    if (bad_step) *bad_step = i0;
    return NAN;
}

#endif

/* ca_castep_run's batch: the caller's rows, copied once */
typedef struct { const float *X; const int32_t *y; int nb, D; double lr; int64_t step; } one_batch;

static int one_next(void *u, int i, float *X, int32_t *y, double *lr, int64_t *step) {
    const one_batch *o = u;
    memcpy(X, o->X, sizeof(float) * (size_t)o->nb * o->D);
    memcpy(y, o->y, sizeof(int32_t) * (size_t)o->nb);
    *lr = o->lr;
    *step = o->step;
    return o->nb;
}

double ca_castep_run(ca_castep *s, float *P, const float *X, const int32_t *y, int nb, float ratio, float *G,
                     const ca_optim *opt, double lr, int64_t step, float *M, float *V) {
    if (nb < 1 || nb > s->B) return NAN;
    one_batch o = {X, y, nb, s->D, lr, step};
    return ca_castep_epoch(s, 0, 1, one_next, &o, ratio, P, G, opt, M, V, NULL);
}
