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

ca_status ca_tip_search(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out) {
    ca_status st = check_in(in, p);
    if (st != CA_OK) return st;
    const int nb = p->search_steps_beta, na = p->search_steps_alpha, n = in->n, N = in->N, C = in->C;
    float *betas = ca_malloc2((size_t)nb, sizeof(float)), *alphas = ca_malloc2((size_t)na, sizeof(float));
    int64_t *cnt = ca_calloc2((size_t)nb * (size_t)na, sizeof(int64_t));
    int fail = 0;
    if (!betas || !alphas || !cnt) { fail = 1; goto done; }
    /* torch multiplies a float32 tensor by a Python float as float32 */
    for (int b = 0; b < nb; b++) betas[b] = (float)ca_tip_grid(b, nb, p->search_scale_beta);
    for (int a = 0; a < na; a++) alphas[a] = (float)ca_tip_grid(a, na, p->search_scale_alpha);
    /* Rows are independent: each thread sums exp rows per class once per β, then scores every α
     * on that (C)-vector; integer counts make the reduction order-free (deterministic). */
    #pragma omp parallel num_threads(ca_kernel_threads(p->threads))
    {
        float *cache = malloc(sizeof(float) * ((size_t)C + (size_t)N));
        int64_t *local = calloc((size_t)nb * (size_t)na, sizeof(int64_t));
        if (!cache || !local) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(dynamic, 4)
        for (int i = 0; i < n; i++) {
            if (!cache || !local) continue;
            const float *aff = in->aff + (size_t)i * N, *clip = in->clip + (size_t)i * C;
            for (int b = 0; b < nb; b++) {
                ca_tip_cache_row(aff, in->key_y, N, C, betas[b], cache + C, cache);
                for (int a = 0; a < na; a++) local[(size_t)b * na + a] += row_correct(clip, cache, C, alphas[a], in->y[i]);
            }
        }
        /* integer sums: atomic adds in any order give the same counts (and no lock, which
         * TSAN's OpenMP support reported as a double lock) */
        if (cache && local)
            for (size_t j = 0; j < (size_t)nb * na; j++) __atomic_fetch_add(&cnt[j], local[j], __ATOMIC_RELAXED);
        free(cache); free(local);
    }
    if (!fail) pick(cnt, nb, na, p, n, out);
done:
    free(betas); free(alphas); free(cnt);
    return fail ? ca_fail(CA_E_NOMEM, "tip search: out of memory") : CA_OK;
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
