/* search.c — Tip-Adapter's cache-logit kernel and the official α/β grid search (search_hp), in a
 * fast form and a straightforward oracle. It does not build caches or train keys (tip.c, tipf.c).
 */
#include "adapt/search.h"
#include "model/gemm.h"
#include "model/simd.h"
#include "model/vmath.h"

#include <math.h>
#include <string.h>

double ca_tip_grid(int i, int steps, double scale) {
    /* Python: [i * (scale - 0.1) / steps + 0.1 for i in range(steps)], same operation order */
    return (double)i * (scale - 0.1) / (double)steps + 0.1;
}

// aff: (N), key_y: (N), e: (N) scratch, out: (C)
void ca_tip_cache_row(const float *aff, const int32_t *key_y, int N, int C, float beta, float *e, float *out) {
    ca_vexp_affinity(e, aff, N, beta);
    memset(out, 0, sizeof(float) * (size_t)C);
    for (int k = 0; k < N; k++) out[key_y[k]] += e[k]; /* one-hot product as per-class sums */
}

// clip: (n,C), aff: (n,N), out: (n,C)
ca_status ca_tip_logits_from_aff(const float *clip, const float *aff, const int32_t *key_y, int n, int N,
                                 int C, float alpha, float beta, float *out) {
    int fail = 0;
    #pragma omp parallel num_threads(ca_kernel_threads(0))
    {
        float *e = malloc(sizeof(float) * (size_t)N);
        if (!e) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            if (!e) continue;
            float *o = out + (size_t)i * C;
            ca_tip_cache_row(aff + (size_t)i * N, key_y, N, C, beta, e, o);
            const float *cl = clip + (size_t)i * C;
            for (int c = 0; c < C; c++) o[c] = cl[c] + o[c] * alpha;
        }
        free(e);
    }
    return fail ? ca_fail(CA_E_NOMEM, "tip logits: out of memory") : CA_OK;
}

/* 1 when the first maximum of clip + cache·a is at class y (torch.argmax semantics). */
static int row_correct(const float *clip, const float *cache, int C, float a, int y) {
    float vy = clip[y] + cache[y] * a;
    for (int c = 0; c < y; c++)
        if (clip[c] + cache[c] * a >= vy) return 0;
    for (int c = y + 1; c < C; c++)
        if (clip[c] + cache[c] * a > vy) return 0;
    return 1;
}

static ca_status check_in(const ca_tip_search_in *in, const ca_fit_params *p) {
    if (!in || !p || in->n < 1 || in->N < 1 || in->C < 2 || !in->clip || !in->aff || !in->key_y || !in->y)
        return ca_fail(CA_E_ARG, "tip search: empty or missing inputs");
    if (p->search_steps_beta < 1 || p->search_steps_alpha < 1 || p->search_steps_beta > 100000 ||
        p->search_steps_alpha > 100000)
        return ca_fail(CA_E_ARG, "tip search: search steps must be in [1, 100000], got %d,%d",
                       p->search_steps_beta, p->search_steps_alpha);
    if (!(p->search_scale_beta > 0 && p->search_scale_beta <= 1000 && p->search_scale_alpha > 0 &&
          p->search_scale_alpha <= 1e6))
        return ca_fail(CA_E_ARG, "tip search: search scales must be in (0, 1000] and (0, 1e6], got %g,%g",
                       p->search_scale_beta, p->search_scale_alpha);
    for (int i = 0; i < in->n; i++)
        if (in->y[i] < 0 || in->y[i] >= in->C) return ca_fail(CA_E_ARG, "tip search: label %d out of range", in->y[i]);
    for (int k = 0; k < in->N; k++)
        if (in->key_y[k] < 0 || in->key_y[k] >= in->C) return ca_fail(CA_E_ARG, "tip search: key label %d out of range", in->key_y[k]);
    return CA_OK;
}

/* First strictly-better pair in (β outer, α inner) order, from correct counts (nb, na). */
static void pick(const int64_t *cnt, int nb, int na, const ca_fit_params *p, int n, ca_tip_choice *out) {
    int64_t best = 0;
    out->alpha = out->beta = out->acc = 0;
    for (int b = 0; b < nb; b++)
        for (int a = 0; a < na; a++)
            if (cnt[(size_t)b * na + a] > best) {
                best = cnt[(size_t)b * na + a];
                out->beta = ca_tip_grid(b, nb, p->search_scale_beta);
                out->alpha = ca_tip_grid(a, na, p->search_scale_alpha);
                out->acc = 100.0 * (double)best / n;
            }
}

#if CA_HAVE_AVX512
/* ca_vexp1(-(b - b·a)) on 16 lanes, operation for operation (the same clamps, separate multiplies
 * and adds, no FMA): bit-identical to ca_vexp_affinity, which tests/test_tip.c checks. */
static inline __m512 vexp_affinity16(__m512 a, __m512 b) {
    __m512 x = _mm512_sub_ps(b, _mm512_mul_ps(b, a));
    x = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.3f));
    __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _mm512_set1_ps(12582912.0f));
    __m512 n = _mm512_sub_ps(t, _mm512_set1_ps(12582912.0f));
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(127 - 0x4B400000)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}
#endif

/* The search works on blocks of LANES val rows held transposed, one row per SIMD lane: the exp of
 * a key's affinities and its add into the class sums are then one vector operation for all rows
 * of the block, and each row's class sum still adds its keys in key order with the exact
 * arithmetic of ca_tip_cache_row (vexp1 of vmath.h, the same float adds in the same order, no
 * FMA contraction: C11 mode), so counts and the chosen pair are identical. Keys are visited
 * grouped by class (a stable order: key order within a class), so a class's partial sum stays in
 * a register. BG β share one pass over a class's keys (their affinities are loaded once for BG
 * exps), and AG α share one pass over the classes in the argmax test.
 * This file is compiled once per CPU path (Makefile ISA_SRC): the loops below are the same C on
 * every path, with AVX-512 intrinsics for the two hot loops where the compiler has them. */
#define LANES 16
#define BG 8  /* β per pass over the keys: BG running class sums, (BG, C, LANES) floats of cache */
#define AG 10 /* α per pass over the classes: 2·AG running maxima in registers */

typedef struct {
    int n, N, C, nb, na;
    const float *betas, *alphas;  /* alphas padded with its last value to a multiple of AG */
    const int32_t *order;         /* (N) keys grouped by class, key order within a class */
    const int32_t *start;         /* (C+1) class c's keys are order[start[c] .. start[c+1]) */
} search_plan;

/* cache (nbg, C, LANES) = per-class sums of exp(-(β - β·a)) for nbg <= BG betas; affT: (N, LANES)
 * in plan order. */
static void class_sums(const search_plan *sp, const float *affT, const float *betas, int nbg, float *cache) {
    const int C = sp->C;
#if CA_HAVE_AVX512
    if (nbg == BG) {
        __m512 bv[BG];
        for (int j = 0; j < BG; j++) bv[j] = _mm512_set1_ps(betas[j]);
        for (int c = 0; c < C; c++) {
            __m512 acc[BG];
            for (int j = 0; j < BG; j++) acc[j] = _mm512_setzero_ps();
            for (int k = sp->start[c]; k < sp->start[c + 1]; k++) {
                __m512 a = _mm512_load_ps(affT + (size_t)k * LANES);
                #pragma GCC unroll 16 /* keeps acc[] in registers: BG independent exp chains */
                for (int j = 0; j < BG; j++) acc[j] = _mm512_add_ps(acc[j], vexp_affinity16(a, bv[j]));
            }
            for (int j = 0; j < BG; j++) _mm512_store_ps(cache + ((size_t)j * C + c) * LANES, acc[j]);
        }
        return;
    }
#endif
    for (int j = 0; j < nbg; j++) {
        const float b = betas[j];
        for (int c = 0; c < C; c++) {
            float acc[LANES] = {0};
            for (int k = sp->start[c]; k < sp->start[c + 1]; k++) {
                const float *a = affT + (size_t)k * LANES;
                #pragma omp simd
                for (int l = 0; l < LANES; l++) acc[l] += ca_vexp1(-(b - b * a[l]));
            }
            memcpy(cache + ((size_t)j * C + c) * LANES, acc, sizeof acc);
        }
    }
}

/* For every α: add to cnt[a] the rows (lanes < m) whose first maximum of clip + cache·α is at
 * their label. clipT, cacheT: (C, LANES); vy: (na_padded, LANES) scratch. */
static void alpha_counts(const search_plan *sp, const float *clipT, const float *cacheT, const int32_t *y,
                         int m, float *vy, int64_t *cnt) {
    const int C = sp->C, na = sp->na;
    for (int a = 0; a < na; a++)
        for (int l = 0; l < LANES; l++)
            vy[(size_t)a * LANES + l] = clipT[(size_t)y[l] * LANES + l] + cacheT[(size_t)y[l] * LANES + l] * sp->alphas[a];
    for (int a0 = 0; a0 < na; a0 += AG) {
        const int ag = na - a0 < AG ? na - a0 : AG;
#if CA_HAVE_AVX512
        /* class c beats y when its score is >= (c < y) or > (c > y), torch.argmax's first-maximum
         * rule: compare the running maxima of the scores of the classes below and above y */
        __m512 lo[AG], hi[AG];
        const __m512i yv = _mm512_loadu_si512(y);
        for (int j = 0; j < AG; j++) lo[j] = hi[j] = _mm512_set1_ps(-INFINITY);
        for (int c = 0; c < C; c++) {
            const __m512 cl = _mm512_load_ps(clipT + (size_t)c * LANES), ca = _mm512_load_ps(cacheT + (size_t)c * LANES);
            const __m512i cv = _mm512_set1_epi32(c);
            const __mmask16 below = _mm512_cmplt_epi32_mask(cv, yv), above = _mm512_cmpgt_epi32_mask(cv, yv);
            #pragma GCC unroll 16 /* keeps lo[], hi[] in registers */
            for (int j = 0; j < AG; j++) {
                __m512 v = _mm512_add_ps(cl, _mm512_mul_ps(ca, _mm512_set1_ps(sp->alphas[a0 + j])));
                lo[j] = _mm512_mask_max_ps(lo[j], below, lo[j], v);
                hi[j] = _mm512_mask_max_ps(hi[j], above, hi[j], v);
            }
        }
        for (int j = 0; j < ag; j++) {
            __m512 t = _mm512_load_ps(vy + (size_t)(a0 + j) * LANES);
            __mmask16 bad = _mm512_cmp_ps_mask(lo[j], t, _CMP_GE_OQ) | _mm512_cmp_ps_mask(hi[j], t, _CMP_GT_OQ);
            cnt[a0 + j] += __builtin_popcount(~bad & ((1u << m) - 1));
        }
#else
        for (int j = 0; j < ag; j++) {
            const float al = sp->alphas[a0 + j], *t = vy + (size_t)(a0 + j) * LANES;
            int32_t bad[LANES] = {0};
            for (int c = 0; c < C; c++) {
                const float *cl = clipT + (size_t)c * LANES, *ca = cacheT + (size_t)c * LANES;
                #pragma omp simd
                for (int l = 0; l < LANES; l++) {
                    float v = cl[l] + ca[l] * al;
                    bad[l] |= ((c < y[l]) & (v >= t[l])) | ((c > y[l]) & (v > t[l])); /* branch-free */
                }
            }
            for (int l = 0; l < m; l++) cnt[a0 + j] += !bad[l];
        }
#endif
    }
}

/* Counts of correct rows for every (β, α) over one block of rows r0..r0+m-1 (m <= LANES), added to
 * cnt (nb·na). w: scratch of search_scratch_floats() floats, 64-byte aligned. */
static size_t search_scratch_floats(const search_plan *sp) {
    size_t nap = (size_t)(sp->na + AG - 1) / AG * AG;
    return (size_t)LANES * ((size_t)sp->N + (size_t)sp->C * (1 + BG) + nap);
}

static void search_block(const search_plan *sp, const ca_tip_search_in *in, int r0, int m, float *w, int64_t *cnt) {
    const int N = sp->N, C = sp->C;
    float *affT = w, *clipT = affT + (size_t)N * LANES, *cache = clipT + (size_t)C * LANES;
    float *vy = cache + (size_t)BG * C * LANES;
    int32_t y[LANES];
    /* transpose the block; lanes past m repeat row r0 and are not counted */
    for (int l = 0; l < LANES; l++) {
        int r = r0 + (l < m ? l : 0);
        y[l] = in->y[r];
        const float *a = in->aff + (size_t)r * N, *c = in->clip + (size_t)r * C;
        for (int k = 0; k < N; k++) affT[(size_t)k * LANES + l] = a[sp->order[k]];
        for (int j = 0; j < C; j++) clipT[(size_t)j * LANES + l] = c[j];
    }
    for (int b0 = 0; b0 < sp->nb; b0 += BG) {
        const int nbg = sp->nb - b0 < BG ? sp->nb - b0 : BG;
        class_sums(sp, affT, sp->betas + b0, nbg, cache);
        for (int j = 0; j < nbg; j++)
            alpha_counts(sp, clipT, cache + (size_t)j * C * LANES, y, m, vy, cnt + (size_t)(b0 + j) * sp->na);
    }
}

ca_status ca_tip_search_counts(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    const int nb = p->search_steps_beta, na = p->search_steps_alpha, n = in->n, N = in->N, C = in->C;
    const int nap = (na + AG - 1) / AG * AG;
    float *betas = ca_malloc2((size_t)nb, sizeof(float)), *alphas = ca_malloc2((size_t)nap, sizeof(float));
    int32_t *order = ca_malloc2((size_t)N, sizeof(int32_t)), *start = ca_calloc2((size_t)C + 1, sizeof(int32_t));
    int32_t *fill = ca_calloc2((size_t)C + 1, sizeof(int32_t));
    int fail = 0;
    if (!betas || !alphas || !order || !start || !fill) { fail = 1; goto done; }
    memset(cnt, 0, sizeof(int64_t) * (size_t)nb * na);
    /* torch multiplies a float32 tensor by a Python float as float32 */
    for (int b = 0; b < nb; b++) betas[b] = (float)ca_tip_grid(b, nb, p->search_scale_beta);
    for (int a = 0; a < nap; a++) alphas[a] = (float)ca_tip_grid(a < na ? a : na - 1, na, p->search_scale_alpha);
    /* counting sort of the keys by class: stable, so key order within each class */
    for (int k = 0; k < N; k++) start[in->key_y[k] + 1]++;
    for (int c = 0; c < C; c++) start[c + 1] += start[c];
    memcpy(fill, start, sizeof(int32_t) * (size_t)C);
    for (int k = 0; k < N; k++) order[fill[in->key_y[k]]++] = k;
    search_plan sp = {.n = n, .N = N, .C = C, .nb = nb, .na = na, .betas = betas, .alphas = alphas,
                      .order = order, .start = start};
    const int nblk = (n + LANES - 1) / LANES;
    const size_t wbytes = (search_scratch_floats(&sp) * sizeof(float) + 63) / 64 * 64;
    /* integer counts make the reduction order-free (deterministic for any thread count) */
    #pragma omp parallel num_threads(ca_kernel_threads(p->threads))
    {
        float *w = aligned_alloc(64, wbytes); /* the AVX-512 loops use aligned loads */
        int64_t *local = calloc((size_t)nb * (size_t)na, sizeof(int64_t));
        if (!w || !local) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int blk = 0; blk < nblk; blk++) {
            if (!w || !local) continue;
            int r0 = blk * LANES, m = n - r0 < LANES ? n - r0 : LANES;
            search_block(&sp, in, r0, m, w, local);
        }
        /* integer sums: atomic adds in any order give the same counts (and no lock, which
         * TSAN's OpenMP support reported as a double lock) */
        if (w && local)
            for (size_t j = 0; j < (size_t)nb * na; j++) __atomic_fetch_add(&cnt[j], local[j], __ATOMIC_RELAXED);
        free(w); free(local);
    }
done:
    free(betas); free(alphas); free(order); free(start); free(fill);
    return fail ? ca_fail(CA_E_NOMEM, "tip search: out of memory") : CA_OK;
}

ca_status ca_tip_search(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    int64_t *cnt = ca_malloc2((size_t)p->search_steps_beta * (size_t)p->search_steps_alpha, sizeof(int64_t));
    if (!cnt) return ca_fail(CA_E_NOMEM, "tip search: out of memory");
    st = ca_tip_search_counts(in, p, cnt);
    if (st == CA_OK) pick(cnt, p->search_steps_beta, p->search_steps_alpha, p, in->n, out);
    free(cnt);
    return st;
}

/* The per-row form of the search (the kernel before blocking): each row's exp row and per-class
 * scatter sums, then every α with an early-exit argmax test. Kept as the oracle the blocked search
 * must match count for count (tests/test_tip.c). */
ca_status ca_tip_search_rows_counts(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    const int nb = p->search_steps_beta, na = p->search_steps_alpha, n = in->n, N = in->N, C = in->C;
    float *betas = ca_malloc2((size_t)nb, sizeof(float)), *alphas = ca_malloc2((size_t)na, sizeof(float));
    float *cache = ca_malloc2((size_t)C + (size_t)N, sizeof(float));
    if (!betas || !alphas || !cache) { st = ca_fail(CA_E_NOMEM, "tip search: out of memory"); goto done; }
    memset(cnt, 0, sizeof(int64_t) * (size_t)nb * na);
    for (int b = 0; b < nb; b++) betas[b] = (float)ca_tip_grid(b, nb, p->search_scale_beta);
    for (int a = 0; a < na; a++) alphas[a] = (float)ca_tip_grid(a, na, p->search_scale_alpha);
    for (int i = 0; i < n; i++) {
        const float *aff = in->aff + (size_t)i * N, *clip = in->clip + (size_t)i * C;
        for (int b = 0; b < nb; b++) {
            ca_tip_cache_row(aff, in->key_y, N, C, betas[b], cache + C, cache);
            for (int a = 0; a < na; a++) cnt[(size_t)b * na + a] += row_correct(clip, cache, C, alphas[a], in->y[i]);
        }
    }
done:
    free(betas); free(alphas); free(cache);
    return st;
}

ca_status ca_tip_search_rows(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    int64_t *cnt = ca_malloc2((size_t)p->search_steps_beta * (size_t)p->search_steps_alpha, sizeof(int64_t));
    if (!cnt) return ca_fail(CA_E_NOMEM, "tip search: out of memory");
    st = ca_tip_search_rows_counts(in, p, cnt);
    if (st == CA_OK) pick(cnt, p->search_steps_beta, p->search_steps_alpha, p, in->n, out);
    free(cnt);
    return st;
}

ca_status ca_tip_search_ref(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    const int nb = p->search_steps_beta, na = p->search_steps_alpha, n = in->n, N = in->N, C = in->C;
    float *E = ca_malloc2((size_t)n * N, sizeof(float)), *V = ca_calloc2((size_t)N * C, sizeof(float));
    float *L = ca_malloc2((size_t)n * C, sizeof(float));
    int64_t *cnt = ca_calloc2((size_t)nb * (size_t)na, sizeof(int64_t));
    if (!E || !V || !L || !cnt) { st = ca_fail(CA_E_NOMEM, "tip search: out of memory"); goto done; }
    for (int k = 0; k < N; k++) V[(size_t)k * C + in->key_y[k]] = 1.0f; /* one-hot cache values */
    for (int b = 0; b < nb; b++)
        for (int a = 0; a < na; a++) {
            float beta = (float)ca_tip_grid(b, nb, p->search_scale_beta);
            float alpha = (float)ca_tip_grid(a, na, p->search_scale_alpha);
            for (size_t j = 0; j < (size_t)n * N; j++) E[j] = expf(-(beta - beta * in->aff[j])); /* libm */
            ca_sgemm(0, 0, n, C, N, 1.0f, E, N, V, C, 0.0f, L, C); /* cache logits = E · values */
            for (size_t j = 0; j < (size_t)n * C; j++) L[j] = in->clip[j] + L[j] * alpha;
            int64_t c = 0;
            for (int i = 0; i < n; i++) {
                const float *r = L + (size_t)i * C;
                int best = 0;
                for (int j = 1; j < C; j++)
                    if (r[j] > r[best]) best = j;
                c += best == in->y[i];
            }
            cnt[(size_t)b * na + a] = c;
        }
    pick(cnt, nb, na, p, n, out);
done:
    free(E); free(V); free(L); free(cnt);
    return st;
}
