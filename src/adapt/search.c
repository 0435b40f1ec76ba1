/* search.c — Tip-Adapter's cache-logit kernel and the official α/β grid search (search_hp), in a
 * fast form and a straightforward oracle. It does not build caches or train keys (tip.c, tipf.c).
 */
#include "adapt/search.h"
#include "model/gemm.h"
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

/* The search works on blocks of LANES val rows held transposed, one row per SIMD lane: the exp of
 * a key's affinities and its add into the class sums are then one vector operation for all rows
 * of the block, and each row's class sum still adds its keys in key order, the exact arithmetic
 * of ca_tip_cache_row (same ca_vexp_affinity, same float adds in the same order), so counts and
 * the chosen pair are identical. Keys are visited grouped by class (a stable order: key order
 * within a class), which keeps each class's partial sum in registers/L1 instead of scattering. */
#define LANES 16
#define KEY_CHUNK 256 /* keys per exp batch: (KEY_CHUNK, LANES) floats = 16 KB, stays in L1 */

typedef struct {
    int n, N, C, nb, na;
    const float *betas, *alphas;
    const int32_t *order;  /* (N) keys grouped by class, key order within a class */
    const int32_t *cls;    /* (N) class of order[k] */
} search_plan;

/* Counts of correct rows for every (β, α) over one block of rows r0..r0+m-1 (m <= LANES), added to
 * cnt (nb·na). w: scratch of (N + 2·C + KEY_CHUNK)·LANES floats. */
static void search_block(const search_plan *sp, const ca_tip_search_in *in, int r0, int m, float *w, int64_t *cnt) {
    const int N = sp->N, C = sp->C;
    float *affT = w, *clipT = affT + (size_t)N * LANES, *cacheT = clipT + (size_t)C * LANES;
    float *e = cacheT + (size_t)C * LANES;
    int32_t y[LANES];
    /* transpose the block; lanes past m repeat row r0 and are not counted */
    for (int l = 0; l < LANES; l++) {
        int r = r0 + (l < m ? l : 0);
        y[l] = in->y[r];
        const float *a = in->aff + (size_t)r * N, *c = in->clip + (size_t)r * C;
        for (int k = 0; k < N; k++) affT[(size_t)k * LANES + l] = a[sp->order[k]];
        for (int j = 0; j < C; j++) clipT[(size_t)j * LANES + l] = c[j];
    }
    for (int b = 0; b < sp->nb; b++) {
        memset(cacheT, 0, sizeof(float) * (size_t)C * LANES);
        for (int k0 = 0; k0 < N; k0 += KEY_CHUNK) {
            int kn = N - k0 < KEY_CHUNK ? N - k0 : KEY_CHUNK;
            ca_vexp_affinity(e, affT + (size_t)k0 * LANES, kn * LANES, sp->betas[b]);
            for (int k = 0; k < kn; k++) {
                float *o = cacheT + (size_t)sp->cls[k0 + k] * LANES;
                const float *ek = e + (size_t)k * LANES;
                #pragma omp simd
                for (int l = 0; l < LANES; l++) o[l] += ek[l];
            }
        }
        for (int a = 0; a < sp->na; a++) {
            const float al = sp->alphas[a];
            float vy[LANES];
            int32_t bad[LANES];
            for (int l = 0; l < LANES; l++) {
                vy[l] = clipT[(size_t)y[l] * LANES + l] + cacheT[(size_t)y[l] * LANES + l] * al;
                bad[l] = 0;
            }
            /* row_correct without the early exit: class c beats y when its score is >= (c < y) or
             * > (c > y), torch.argmax's first-maximum rule */
            for (int c = 0; c < C; c++) {
                const float *cl = clipT + (size_t)c * LANES, *ca = cacheT + (size_t)c * LANES;
                #pragma omp simd
                for (int l = 0; l < LANES; l++) {
                    float v = cl[l] + ca[l] * al;
                    bad[l] |= ((c < y[l]) & (v >= vy[l])) | ((c > y[l]) & (v > vy[l])); /* branch-free: vectorises */
                }
            }
            int64_t ok = 0;
            for (int l = 0; l < m; l++) ok += !bad[l];
            cnt[(size_t)b * sp->na + a] += ok;
        }
    }
}

ca_status ca_tip_search(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    const int nb = p->search_steps_beta, na = p->search_steps_alpha, n = in->n, N = in->N, C = in->C;
    float *betas = ca_malloc2((size_t)nb, sizeof(float)), *alphas = ca_malloc2((size_t)na, sizeof(float));
    int64_t *cnt = ca_calloc2((size_t)nb * (size_t)na, sizeof(int64_t));
    int32_t *order = ca_malloc2((size_t)N, sizeof(int32_t)), *cls = ca_malloc2((size_t)N, sizeof(int32_t));
    int32_t *start = ca_calloc2((size_t)C + 1, sizeof(int32_t));
    int fail = 0;
    if (!betas || !alphas || !cnt || !order || !cls || !start) { fail = 1; goto done; }
    /* torch multiplies a float32 tensor by a Python float as float32 */
    for (int b = 0; b < nb; b++) betas[b] = (float)ca_tip_grid(b, nb, p->search_scale_beta);
    for (int a = 0; a < na; a++) alphas[a] = (float)ca_tip_grid(a, na, p->search_scale_alpha);
    /* counting sort of the keys by class: stable, so key order within each class */
    for (int k = 0; k < N; k++) start[in->key_y[k] + 1]++;
    for (int c = 0; c < C; c++) start[c + 1] += start[c];
    for (int k = 0; k < N; k++) {
        int j = start[in->key_y[k]]++;
        order[j] = k;
        cls[j] = in->key_y[k];
    }
    search_plan sp = {.n = n, .N = N, .C = C, .nb = nb, .na = na, .betas = betas, .alphas = alphas,
                      .order = order, .cls = cls};
    const int nblk = (n + LANES - 1) / LANES;
    /* integer counts make the reduction order-free (deterministic for any thread count) */
    #pragma omp parallel num_threads(ca_kernel_threads(p->threads))
    {
        float *w = malloc(sizeof(float) * LANES * ((size_t)N + 2 * (size_t)C + KEY_CHUNK));
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
    if (!fail) pick(cnt, nb, na, p, n, out);
done:
    free(betas); free(alphas); free(cnt); free(order); free(cls); free(start);
    return fail ? ca_fail(CA_E_NOMEM, "tip search: out of memory") : CA_OK;
}

/* The per-row form of the search (the kernel before blocking): each row's exp row and per-class
 * scatter sums, then every α with an early-exit argmax test. Kept as the oracle the blocked search
 * must match count for count (tests/test_tip.c). */
ca_status ca_tip_search_rows(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    const int nb = p->search_steps_beta, na = p->search_steps_alpha, n = in->n, N = in->N, C = in->C;
    float *betas = ca_malloc2((size_t)nb, sizeof(float)), *alphas = ca_malloc2((size_t)na, sizeof(float));
    int64_t *cnt = ca_calloc2((size_t)nb * (size_t)na, sizeof(int64_t));
    float *cache = ca_malloc2((size_t)C + (size_t)N, sizeof(float));
    if (!betas || !alphas || !cnt || !cache) { st = ca_fail(CA_E_NOMEM, "tip search: out of memory"); goto done; }
    for (int b = 0; b < nb; b++) betas[b] = (float)ca_tip_grid(b, nb, p->search_scale_beta);
    for (int a = 0; a < na; a++) alphas[a] = (float)ca_tip_grid(a, na, p->search_scale_alpha);
    for (int i = 0; i < n; i++) {
        const float *aff = in->aff + (size_t)i * N, *clip = in->clip + (size_t)i * C;
        for (int b = 0; b < nb; b++) {
            ca_tip_cache_row(aff, in->key_y, N, C, betas[b], cache + C, cache);
            for (int a = 0; a < na; a++) cnt[(size_t)b * na + a] += row_correct(clip, cache, C, alphas[a], in->y[i]);
        }
    }
    pick(cnt, nb, na, p, n, out);
done:
    free(betas); free(alphas); free(cnt); free(cache);
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
