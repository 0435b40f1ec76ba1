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

int ca_tip_key_runs(const int32_t *key_y, int N, ca_key_run *runs) {
    int nr = 0;
    for (int k = 0; k < N;) {
        const int32_t c0 = key_y[k];
        int L = 1;
        while (k + L < N && key_y[k + L] == c0) L++;
        /* four maximal runs of length L and four different classes from k? */
        int four = k + 4 * L <= N && (k + 4 * L == N || key_y[k + 4 * L] != key_y[k + 4 * L - 1]);
        for (int r = 1; four && r < 4; r++) {
            const int32_t cr = key_y[k + r * L];
            for (int q = 0; q < r && four; q++) four = key_y[k + q * L] != cr;
            for (int j = 1; j < L && four; j++) four = key_y[k + r * L + j] == cr;
        }
        ca_key_run *u = &runs[nr++];
        u->k = k; u->len = L; u->four = four;
        for (int r = 0; r < 4; r++) u->c[r] = four ? key_y[k + r * L] : c0;
        k += four ? 4 * L : L;
    }
    return nr;
}

// aff: (N), runs: (nr) of ca_tip_key_runs, e: (N) scratch, out: (C)
void ca_tip_cache_row_runs(const float *aff, const ca_key_run *runs, int nr, int N, int C, float beta, float *e, float *out) {
    ca_vexp_affinity(e, aff, N, beta);
    memset(out, 0, sizeof(float) * (size_t)C);
    for (int i = 0; i < nr; i++) {
        const ca_key_run *u = &runs[i];
        const float *e0 = e + u->k;
        const int L = u->len;
        if (u->four) { /* four independent add chains */
            float s0 = out[u->c[0]], s1 = out[u->c[1]], s2 = out[u->c[2]], s3 = out[u->c[3]];
            for (int j = 0; j < L; j++) { s0 += e0[j]; s1 += e0[L + j]; s2 += e0[2 * L + j]; s3 += e0[3 * L + j]; }
            out[u->c[0]] = s0; out[u->c[1]] = s1; out[u->c[2]] = s2; out[u->c[3]] = s3;
        } else {
            float s = out[u->c[0]];
            for (int j = 0; j < L; j++) s += e0[j];
            out[u->c[0]] = s;
        }
    }
}

// clip: (n,C), aff: (n,N), out: (n,C)
ca_status ca_tip_logits_from_aff(const float *clip, const float *aff, const int32_t *key_y, int n, int N,
                                 int C, float alpha, float beta, float *out) {
    ca_key_run *runs = ca_malloc2((size_t)N + 1, sizeof(ca_key_run));
    if (!runs) return ca_fail(CA_E_NOMEM, "tip logits: out of memory");
    const int nr = ca_tip_key_runs(key_y, N, runs);
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
            ca_tip_cache_row_runs(aff + (size_t)i * N, runs, nr, N, C, beta, e, o);
            const float *cl = clip + (size_t)i * C;
            for (int c = 0; c < C; c++) o[c] = cl[c] + o[c] * alpha;
        }
        free(e);
    }
    free(runs);
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
    if (!in || !p || in->n < 1 || in->N < 1 || in->C < 2 || !in->clip || (!in->aff && !in->aff_rows) || !in->key_y || !in->y)
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

/* The search works row by row with LANES β in the lanes of a vector: one key's exp for LANES β is
 * one vector operation, and each (row, β) class sum still adds its keys in key order with the
 * exact arithmetic of ca_tip_cache_row (vexp1 of vmath.h, the same float adds in the same order,
 * no FMA contraction: C11 mode), so counts and the chosen pair are identical. Keys are visited
 * grouped by class (a stable order: key order within a class).
 *
 * Most class sums cannot change a row's count: a class whose largest possible score,
 * clip_c + α·n_c·exp(−β(1 − max_k a_k)), stays below the label's score clip_y + α·S_y at the
 * smallest and at the largest α (so at every α between: both are linear in α) can never be the
 * row's argmax, for any α. Such a class is skipped (not summed, not compared) for those LANES β;
 * the bound carries a margin far above float rounding (BOUND_TOL, MARGIN), so a skipped class
 * would have lost every comparison anyway and the counts stay those of the row oracle. A row
 * with a non-finite affinity or clip logit skips nothing (NaN comparisons decide as before).
 * This file is compiled once per CPU path (Makefile ISA_SRC): the loops below are the same C on
 * every path, with AVX-512 intrinsics for the hot loops where the compiler has them. */
#define LANES 16     /* β per vector */
#define AG 10        /* α per pass over the classes: 2·AG running maxima in registers */
#define ROWS 256      /* rows per affinity block when the search computes the affinities itself */
#define BOUND_TOL 1e-4f /* relative slack of a class-sum bound: exp's ~2 ulp, float sums */
#define MARGIN 1e-4f    /* relative slack of a skip decision: the float products and adds of scores */

typedef struct {
    int n, N, C, nb, na, nbv;     /* nbv: β vectors, nb rounded up to LANES */
    const float *betas;           /* (nbv·LANES) padded with the last β */
    const float *alphas;          /* alphas padded with its last value to a multiple of AG */
    float amin, amax;             /* the smallest and largest α of the grid */
    const int32_t *order;         /* (N) keys grouped by class, key order within a class */
    const int32_t *start;         /* (C+1) class c's keys are order[start[c] .. start[c+1]) */
    const float *bfac;            /* (C) n_c·(1 + slack): S_c <= bfac[c]·exp(−β(1 − max a)) */
} search_plan;

/* s (LANES) = per-β sums of exp(-(β - β·a)) over the keys as[k0..k1) in order; b: (LANES) β. */
static inline void class_sum(const float *as, int k0, int k1, const float *b, float *s) {
#if CA_HAVE_AVX512
    const __m512 bv = _mm512_loadu_ps(b);
    __m512 acc = _mm512_setzero_ps();
    for (int k = k0; k < k1; k++) acc = _mm512_add_ps(acc, vexp_affinity16(_mm512_set1_ps(as[k]), bv));
    _mm512_store_ps(s, acc);
#else
    float acc[LANES] = {0};
    for (int k = k0; k < k1; k++) {
        const float a = as[k];
        #pragma omp simd
        for (int l = 0; l < LANES; l++) acc[l] += ca_vexp1(-(b[l] - b[l] * a));
    }
    memcpy(s, acc, sizeof acc);
#endif
}

/* 1 when class c, with largest affinity mx and bound factor f, loses to the label at every α for
 * all LANES β: clip_c + α·ub + margin < clip_y + α·S_y at α = amin and α = amax. */
static inline int class_loses(const search_plan *sp, const float *b, float mx, float f, float cc, float cy, const float *sy) {
#if CA_HAVE_AVX512
    const __m512 ub = _mm512_mul_ps(vexp_affinity16(_mm512_set1_ps(mx), _mm512_loadu_ps(b)), _mm512_set1_ps(f));
    const __m512 s = _mm512_load_ps(sy), c = _mm512_set1_ps(cc), y = _mm512_set1_ps(cy);
    const __m512 mag = _mm512_set1_ps(fabsf(cc) + fabsf(cy)), tol = _mm512_set1_ps(MARGIN);
    __mmask16 ok = 0xFFFF;
    for (int e = 0; e < 2; e++) {
        const __m512 al = _mm512_set1_ps(e ? sp->amax : sp->amin);
        const __m512 lhs = _mm512_add_ps(c, _mm512_mul_ps(al, ub)), rhs = _mm512_add_ps(y, _mm512_mul_ps(al, s));
        const __m512 m = _mm512_mul_ps(tol, _mm512_add_ps(mag, _mm512_mul_ps(al, _mm512_add_ps(ub, s))));
        ok &= _mm512_cmp_ps_mask(_mm512_add_ps(lhs, m), rhs, _CMP_LT_OQ); /* NaN: does not lose */
    }
    return ok == 0xFFFF;
#else
    int ok = 1;
    for (int l = 0; l < LANES; l++) {
        const float ub = ca_vexp1(-(b[l] - b[l] * mx)) * f;
        for (int e = 0; e < 2; e++) {
            const float al = e ? sp->amax : sp->amin;
            const float m = MARGIN * (fabsf(cc) + fabsf(cy) + al * (ub + sy[l]));
            ok &= (cc + al * ub) + m < cy + al * sy[l];
        }
    }
    return ok;
#endif
}

/* For every α: add to cnt[l·na + a] (l < nl valid β lanes) when the row's first maximum of
 * clip + cache·α is at its label y. Classes: act[0..nlo) below y, act[nlo..nact) above y, their
 * sums cache (nact, LANES); vy: (nap, LANES) the label's scores. */
static void alpha_counts(const search_plan *sp, const float *clip, const int32_t *act, int nlo, int nact,
                         const float *cache, const float *vy, int nl, int64_t *cnt) {
    const int na = sp->na;
    for (int a0 = 0; a0 < na; a0 += AG) {
        const int ag = na - a0 < AG ? na - a0 : AG;
        uint32_t good[AG];
#if CA_HAVE_AVX512
        /* class c beats y when its score is >= (c < y) or > (c > y), torch.argmax's first-maximum
         * rule: compare the running maxima of the scores of the classes below and above y */
        __m512 lo[AG], hi[AG];
        for (int j = 0; j < AG; j++) lo[j] = hi[j] = _mm512_set1_ps(-INFINITY);
        for (int i = 0; i < nact; i++) {
            const __m512 cl = _mm512_set1_ps(clip[act[i]]), ca = _mm512_load_ps(cache + (size_t)i * LANES);
            if (i < nlo) {
                #pragma GCC unroll 16 /* keeps lo[] in registers */
                for (int j = 0; j < AG; j++) lo[j] = _mm512_max_ps(lo[j], _mm512_add_ps(cl, _mm512_mul_ps(ca, _mm512_set1_ps(sp->alphas[a0 + j]))));
            } else {
                #pragma GCC unroll 16
                for (int j = 0; j < AG; j++) hi[j] = _mm512_max_ps(hi[j], _mm512_add_ps(cl, _mm512_mul_ps(ca, _mm512_set1_ps(sp->alphas[a0 + j]))));
            }
        }
        for (int j = 0; j < ag; j++) {
            __m512 t = _mm512_load_ps(vy + (size_t)(a0 + j) * LANES);
            good[j] = (uint16_t)~(_mm512_cmp_ps_mask(lo[j], t, _CMP_GE_OQ) | _mm512_cmp_ps_mask(hi[j], t, _CMP_GT_OQ));
        }
#else
        for (int j = 0; j < ag; j++) {
            const float al = sp->alphas[a0 + j], *t = vy + (size_t)(a0 + j) * LANES;
            int32_t bad[LANES] = {0};
            for (int i = 0; i < nact; i++) {
                const float cl = clip[act[i]], *ca = cache + (size_t)i * LANES;
                const int below = i < nlo;
                #pragma omp simd
                for (int l = 0; l < LANES; l++) {
                    float v = cl + ca[l] * al;
                    bad[l] |= below ? v >= t[l] : v > t[l];
                }
            }
            good[j] = 0;
            for (int l = 0; l < LANES; l++) good[j] |= (uint32_t)!bad[l] << l;
        }
#endif
        for (int l = 0; l < nl; l++)
            for (int j = 0; j < ag; j++) cnt[(size_t)l * na + a0 + j] += (good[j] >> l) & 1;
    }
}

/* Per-thread scratch: floats (64-byte aligned) then ints. */
static size_t scratch_floats(const search_plan *sp) {
    size_t nap = (size_t)(sp->na + AG - 1) / AG * AG;
    size_t n = ((size_t)sp->N + 15) / 16 * 16 + ((size_t)sp->C + 15) / 16 * 16;
    return n + (size_t)LANES * ((size_t)sp->C + nap + 1);
}

/* Counts of correct rows for every (β, α) of one row (aff: (N), clip: (C), label y), added to
 * cnt (nb·na). Returns the class sums computed (LANES β each), for the tests. */
static int64_t search_row(const search_plan *sp, const float *aff, const float *clip, int y, float *w, int32_t *act,
                          int64_t *cnt) {
    const int N = sp->N, C = sp->C;
    float *as = w, *mx = as + ((size_t)N + 15) / 16 * 16, *sy = mx + ((size_t)C + 15) / 16 * 16;
    float *cache = sy + LANES, *vy = cache + (size_t)C * LANES;
    int finite = 1;
    for (int k = 0; k < N; k++) {
        as[k] = aff[sp->order[k]];
        finite &= isfinite(as[k]);
    }
    for (int c = 0; c < C; c++) {
        finite &= isfinite(clip[c]);
        float m = -INFINITY;
        for (int k = sp->start[c]; k < sp->start[c + 1]; k++) m = as[k] > m ? as[k] : m;
        mx[c] = m;
    }
    const int nap = (sp->na + AG - 1) / AG * AG;
    const float cy = clip[y];
    int64_t sums = 0;
    for (int g = 0; g < sp->nbv; g++) {
        const float *b = sp->betas + (size_t)g * LANES;
        class_sum(as, sp->start[y], sp->start[y + 1], b, sy);
        for (int a = 0; a < nap; a++)
            for (int l = 0; l < LANES; l++) vy[(size_t)a * LANES + l] = cy + sy[l] * sp->alphas[a];
        int nact = 0, nlo = 0;
        for (int c = 0; c < C; c++) {
            if (c == y) { nlo = nact; continue; }
            const int k0 = sp->start[c], k1 = sp->start[c + 1];
            if (finite && class_loses(sp, b, k1 > k0 ? mx[c] : 0.0f, sp->bfac[c], clip[c], cy, sy)) continue;
            class_sum(as, k0, k1, b, cache + (size_t)nact * LANES);
            act[nact++] = c;
            sums++;
        }
        const int nl = sp->nb - g * LANES < LANES ? sp->nb - g * LANES : LANES;
        alpha_counts(sp, clip, act, nlo, nact, cache, vy, nl, cnt + (size_t)g * LANES * sp->na);
    }
    return sums;
}

/* The search's counts; *sums: class sums computed (with LANES β each), for the tests. */
static ca_status search_counts(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt, int64_t *sums) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    const int nb = p->search_steps_beta, na = p->search_steps_alpha, n = in->n, N = in->N, C = in->C;
    const int nap = (na + AG - 1) / AG * AG, nbv = (nb + LANES - 1) / LANES;
    float *betas = ca_malloc2((size_t)nbv * LANES, sizeof(float)), *alphas = ca_malloc2((size_t)nap, sizeof(float));
    float *bfac = ca_malloc2((size_t)C, sizeof(float));
    int32_t *order = ca_malloc2((size_t)N, sizeof(int32_t)), *start = ca_calloc2((size_t)C + 1, sizeof(int32_t));
    int32_t *fill = ca_calloc2((size_t)C + 1, sizeof(int32_t));
    int fail = 0;
    int64_t nsums = 0;
    if (!betas || !alphas || !bfac || !order || !start || !fill) { fail = 1; goto done; }
    memset(cnt, 0, sizeof(int64_t) * (size_t)nb * na);
    /* torch multiplies a float32 tensor by a Python float as float32 */
    for (int b = 0; b < nbv * LANES; b++) betas[b] = (float)ca_tip_grid(b < nb ? b : nb - 1, nb, p->search_scale_beta);
    for (int a = 0; a < nap; a++) alphas[a] = (float)ca_tip_grid(a < na ? a : na - 1, na, p->search_scale_alpha);
    float amin = alphas[0], amax = alphas[0];
    for (int a = 1; a < na; a++) {
        amin = alphas[a] < amin ? alphas[a] : amin;
        amax = alphas[a] > amax ? alphas[a] : amax;
    }
    /* counting sort of the keys by class: stable, so key order within each class */
    for (int k = 0; k < N; k++) start[in->key_y[k] + 1]++;
    for (int c = 0; c < C; c++) start[c + 1] += start[c];
    memcpy(fill, start, sizeof(int32_t) * (size_t)C);
    for (int k = 0; k < N; k++) order[fill[in->key_y[k]]++] = k;
    /* a float sum of n terms each <= e is <= n·e·(1 + n·2^-23); exp's own error is ~2 ulp */
    for (int c = 0; c < C; c++) {
        const double nc = start[c + 1] - start[c];
        bfac[c] = (float)(nc * (1.0 + BOUND_TOL + nc * 2.4e-7));
    }
    search_plan sp = {.n = n, .N = N, .C = C, .nb = nb, .na = na, .nbv = nbv, .betas = betas, .alphas = alphas,
                      .amin = amin, .amax = amax, .order = order, .start = start, .bfac = bfac};
    const int nblk = (n + ROWS - 1) / ROWS;
    const size_t wbytes = (scratch_floats(&sp) * sizeof(float) + 63) / 64 * 64;
    const size_t abytes = in->aff ? 0 : ((size_t)ROWS * N * sizeof(float) + 63) / 64 * 64;
    /* integer counts make the reduction order-free (deterministic for any thread count) */
    #pragma omp parallel num_threads(ca_kernel_threads(p->threads)) reduction(+ : nsums)
    {
        float *w = aligned_alloc(64, wbytes); /* the AVX-512 loops use aligned loads */
        float *ab = abytes ? aligned_alloc(64, abytes) : NULL;
        int32_t *act = ca_malloc2((size_t)C, sizeof(int32_t));
        int64_t *local = calloc((size_t)nb * (size_t)na, sizeof(int64_t));
        const int ok = w && act && local && (ab || !abytes);
        if (!ok) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int blk = 0; blk < nblk; blk++) {
            if (!ok) continue;
            const int r0 = blk * ROWS, m = n - r0 < ROWS ? n - r0 : ROWS;
            const float *A = in->aff ? in->aff + (size_t)r0 * N : ab;
            if (!in->aff) in->aff_rows(in->aff_ctx, r0, m, ab); /* this thread's block of affinities */
            for (int i = 0; i < m; i++)
                nsums += search_row(&sp, A + (size_t)i * N, in->clip + (size_t)(r0 + i) * C, in->y[r0 + i], w, act, local);
        }
        /* integer sums: atomic adds in any order give the same counts (and no lock, which
         * TSAN's OpenMP support reported as a double lock) */
        if (ok)
            for (size_t j = 0; j < (size_t)nb * na; j++) __atomic_fetch_add(&cnt[j], local[j], __ATOMIC_RELAXED);
        free(w); free(ab); free(act); free(local);
    }
done:
    if (sums) *sums = nsums;
    free(betas); free(alphas); free(bfac); free(order); free(start); free(fill);
    return fail ? ca_fail(CA_E_NOMEM, "tip search: out of memory") : CA_OK;
}

ca_status ca_tip_search_counts(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt) {
    return search_counts(in, p, cnt, NULL);
}

ca_status ca_tip_search_counts_stats(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt, int64_t *sums) {
    return search_counts(in, p, cnt, sums);
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
    if (!in->aff) return ca_fail(CA_E_ARG, "tip search oracle: needs the affinities in->aff");
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
    if (!in->aff) return ca_fail(CA_E_ARG, "tip search oracle: needs the affinities in->aff");
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
