/* tipf.c — Tip-Adapter-F: the cache keys become trainable (initialised from the K-shot
 * features) and are fitted with AdamW + cosine schedule on the cross-entropy of the Tip logits
 * at fixed (init_alpha, init_beta); the best epoch is chosen on val (the original code chose it
 * on test; we never look at test), then α, β are re-searched on val. Values stay one-hot.
 * Without val (selection regime "none"): the keys of the last epoch, at the training α, β.
 */
#include "adapt/tip.h"
#include "adapt/train.h"
#include "model/fastgemm.h"
#include "model/gemm.h"
#include "model/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t ca_tipf_scratch_floats(int B, int N, int C) {
    return (size_t)B * (size_t)N + 2 * (size_t)B * (size_t)C + (size_t)B;
}

/* One row of a Tip-Adapter-F step, the same arithmetic for the reference step and the packed
 * one. a: (N) affinities in, E = exp(-(β - β·a)) out; cl: (C) the row's zero-shot logits;
 * l: (C) the logits cl + α·(E·onehot); g: (C) dloss/dlogits = (softmax − onehot)/B.
 * Returns the row's cross-entropy. */
/* The part both row forms share: l (C) holds the row's class sums in, the logits cl + α·l out;
 * g (C) = dloss/dlogits = (softmax − onehot)/B. Returns the row's cross-entropy. */
static float tipf_softmax_ce(float *l, float *g, const float *cl, int32_t yb, int C, float alpha, float invB) {
    float mx = -INFINITY;
    for (int c = 0; c < C; c++) {
        l[c] = cl[c] + l[c] * alpha;
        if (l[c] > mx) mx = l[c];
    }
    double s = 0;
    for (int c = 0; c < C; c++) s += exp((double)l[c] - mx);
    double lse = mx + log(s);
    for (int c = 0; c < C; c++) g[c] = (float)exp((double)l[c] - lse) * invB;
    g[yb] -= invB;
    return (float)(lse - l[yb]);
}

/* One row of a Tip-Adapter-F step, the same arithmetic for the reference step and the packed
 * one. a: (N) affinities in, E = exp(-(β - β·a)) out; cl: (C) the row's zero-shot logits;
 * l: (C) the logits cl + α·(E·onehot); g: (C) dloss/dlogits = (softmax − onehot)/B.
 * Returns the row's cross-entropy. */
static float tipf_row(float *a, float *l, float *g, const float *cl, int32_t yb, const int32_t *key_y, int N,
                      int C, float alpha, float beta, float invB) {
    ca_tip_cache_row(a, key_y, N, C, beta, a, l); /* E in place, l = the class sums in key order */
    return tipf_softmax_ce(l, g, cl, yb, C, alpha, invB);
}

/* tipf_row for the packed step: the same values, with the class sums over key runs
 * (ca_tip_cache_row_runs: each class's keys added in key order in a register, bit for bit the
 * scatter's sums), and l left holding ab·g[c] per class (ab = α·β), the factor of every key of
 * class c in dloss/daffinity (ab·g[key_y[k]]·E[k] in the oracle, evaluated left to right: the
 * same product). a: affinities in, E out (the exp is written in place). */
static float tipf_row_runs(float *a, float *l, float *g, const float *cl, int32_t yb, const ca_key_run *runs, int nruns,
                           int N, int C, float alpha, float beta, float invB) {
    ca_tip_cache_row_runs(a, runs, nruns, N, C, beta, a, l);
    const float loss = tipf_softmax_ce(l, g, cl, yb, C, alpha, invB), ab = alpha * beta;
    for (int c = 0; c < C; c++) l[c] = ab * g[c];
    return loss;
}

// x: (B,D), y: (B), clip: (B,C), keys: (N,D), key_y: (N) -> dkeys: (N,D)
double ca_tipf_loss_grad(const float *x, const int32_t *y, const float *clip, int B,
                         const float *keys, const int32_t *key_y, int N, int D, int C,
                         float alpha, float beta, float *dkeys, float *scratch) {
    float *A = scratch;                      /* (B,N) affinity, then exp, then dloss/daffinity */
    float *L = A + (size_t)B * N;            /* (B,C) logits */
    float *G = L + (size_t)B * C;            /* (B,C) dloss/dlogits */
    float *row_loss = G + (size_t)B * C;     /* (B) summed in order afterwards: deterministic */
    ca_sgemm(0, 1, B, N, D, 1.0f, x, D, keys, D, 0.0f, A, N);
    const float ab = alpha * beta, invB = 1.0f / (float)B;
    /* Single-threaded on purpose: this loop is ~5% of a step next to the two GEMMs, and an
     * OpenMP pool spinning between OpenBLAS calls halved throughput on a busy 2-core host. */
    for (int b = 0; b < B; b++) {
        float *a = A + (size_t)b * N, *g = G + (size_t)b * C;
        row_loss[b] = tipf_row(a, L + (size_t)b * C, g, clip + (size_t)b * C, y[b], key_y, N, C, alpha, beta, invB);
        /* dE[k] = α·dlogits[key_y[k]]; dA = dE · β·E (d/dA of exp(−β + βA)) */
        for (int k = 0; k < N; k++) a[k] = ab * g[key_y[k]] * a[k];
    }
    ca_sgemm(1, 0, N, D, B, 1.0f, A, N, x, D, 0.0f, dkeys, D); /* dkeys(N,D) = dAᵀ·x */
    double loss = 0;
    for (int b = 0; b < B; b++) loss += row_loss[b];
    return loss / B;
}

/* The fast step (ca_tipf_loss_grad_packed) keeps the affinity (B,N) row-major for the per-row
 * work and writes dloss/daffinity straight into panels [ceil(N/32)][B][32], the B operand of
 * ca_gemm_tn_panels; both 64-byte aligned, hence the rounding. */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t ca_tipf_packed_scratch_floats(int B, int N, int C) {
    size_t np = ((size_t)N + 31) / 32;   /* then the key runs, N + 1 ca_key_run */
    return round16((size_t)B * N) + round16(np * 32 * (size_t)B) + 2 * (size_t)B * C + (size_t)B +
           ((size_t)N + 1) * (sizeof(ca_key_run) / sizeof(float) + 1) + 16;
}

/* AdamW on one finished gradient panel (ca_gemm_tn_panels_each): the panel's keys and moments
 * are the same D·32 floats of their blocks, and ca_optim_step is elementwise, so this is the
 * update of the whole block, bit for bit, done while the gradient is still in cache. */
typedef struct {
    const ca_optim *opt;
    double lr;
    int64_t t;
    float *keys, *m, *v;
    size_t pf;   /* floats per panel: D·32 */
    float decay, stepsz, bc2s;   /* AdamW's scalars for (lr, t), computed as ca_optim_step does */
} adamw_panels;

static void adamw_panel(int jp, float *g, void *user) {
    const adamw_panels *u = user;
    size_t o = (size_t)jp * u->pf;
    if (u->opt->kind == CA_OPT_ADAMW)   /* the vectorised kernel, same values as ca_optim_step */
        ca_adamw_f32(u->keys + o, g, u->m + o, u->v + o, u->pf, u->decay, u->opt->beta1, u->opt->beta2, u->stepsz, u->bc2s,
                     u->opt->eps);
    else
        ca_optim_step(u->opt, u->lr, u->t, u->keys + o, g, u->m + o, u->v + o, u->pf);
}

/* The packed step; with upd, the gradient is not stored but applied panel by panel (upd->keys
 * are keys_p: the forward product has read them all before the first panel is updated). */
static double packed_step(const float *x, const int32_t *y, const float *clip, int B, const float *keys_p,
                          const int32_t *key_y, int N, int D, int C, float alpha, float beta, float *dkeys_p,
                          adamw_panels *upd, float *scratch, int threads) {
    const size_t np = ((size_t)N + 31) / 32;
    float *A = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);   /* (B,N) */
    float *dAp = A + round16((size_t)B * N);                             /* [np][B][32] */
    float *L = dAp + round16((size_t)np * 32 * B), *G = L + (size_t)B * C, *row_loss = G + (size_t)B * C;
    ca_key_run *runs = (ca_key_run *)(((uintptr_t)(row_loss + B) + 15) & ~(uintptr_t)15);
    const ca_packed kp = {.N = N, .K = D, .p = (float *)keys_p, .borrowed = 1};
    threads = ca_kernel_threads(threads);
    if (ca_gemm_packed(B, x, D, &kp, 1.0f, NULL, CA_EPI_NONE, 0.0f, A, N, threads) != CA_OK) return -1;
    const float invB = 1.0f / (float)B;
    const int nruns = ca_tip_key_runs(key_y, N, runs);
    /* Rows are independent: shared between the threads, each row's arithmetic exactly that of
     * ca_tipf_loss_grad (the oracle), its loss summed in row order afterwards. */
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int b = 0; b < B; b++) {
        float *a = A + (size_t)b * N, *g = G + (size_t)b * C, *h = L + (size_t)b * C;
        row_loss[b] = tipf_row_runs(a, h, g, clip + (size_t)b * C, y[b], runs, nruns, N, C, alpha, beta, invB);
        /* dA = ab·g[key_y[k]]·E[k] into row b of every panel (padding 0) */
        ca_gather_mul_panels(dAp + (size_t)b * 32, (size_t)B * 32, a, h, key_y, N);
    }
    ca_status st = upd ? ca_gemm_tn_panels_each(D, N, B, 1.0f, x, D, dAp, NULL, threads, adamw_panel, upd)
                       : ca_gemm_tn_panels(D, N, B, 1.0f, x, D, dAp, dkeys_p, threads);
    if (st != CA_OK) return -1;
    double loss = 0;
    for (int b = 0; b < B; b++) loss += row_loss[b];
    return loss / B;
}

// x: (B,D), y: (B), clip: (B,C), keys_p: panels of keys (N,D) -> dkeys_p: panels of (N,D)
double ca_tipf_loss_grad_packed(const float *x, const int32_t *y, const float *clip, int B,
                                const float *keys_p, const int32_t *key_y, int N, int D, int C,
                                float alpha, float beta, float *dkeys_p, float *scratch, int threads) {
    return packed_step(x, y, clip, B, keys_p, key_y, N, D, C, alpha, beta, dkeys_p, NULL, scratch, threads);
}

// keys_p, m, v: panels of (N,D), updated in place
double ca_tipf_step_packed(const float *x, const int32_t *y, const float *clip, int B, float *keys_p,
                           const int32_t *key_y, int N, int D, int C, float alpha, float beta, const ca_optim *opt,
                           double lr, int64_t t, float *m, float *v, float *scratch, int threads) {
    /* ca_optim_step's scalars, the same expressions (train.c) */
    const double bc1 = 1.0 - pow(opt->beta1, (double)t), bc2 = 1.0 - pow(opt->beta2, (double)t);
    adamw_panels u = {opt, lr, t, keys_p, m, v, (size_t)D * 32, (float)(1.0 - lr * opt->weight_decay), (float)(lr / bc1),
                      (float)sqrt(bc2)};
    return packed_step(x, y, clip, B, keys_p, key_y, N, D, C, alpha, beta, NULL, &u, scratch, threads);
}

/* Rows of val per affinity block in val_acc: bounds the (rows, N) buffer (ImageNet-size val,
 * 10,000 x 16,000 keys, would be 640 MB whole); the shipped sets' val fits in one block. On the
 * packed path, whose products give each row the same values whatever the block, blocks are
 * VAL_ROWS_PACKED rows (two of the kernel's 144-row blocks): an 18 MB block at ImageNet size,
 * small enough to be read back from cache rather than memory, and 113 MB less peak memory. */
#define VAL_ROWS 2048
#define VAL_ROWS_PACKED 288

/* Correct predictions of the exact packed val pass on m rows X (stride D) of val: row i is val
 * row idx[i] (or r0 + i without idx) for its label and zero-shot logits. Per row the arithmetic
 * of ca_tip_logits_from_aff (exp, class sums in key order, clip + α·sum), fused with the argmax
 * while the row is in cache; the class sums by runs. affv (m,N), L (m,C) scratch. */
static int64_t exact_rows(const ca_fit_data *d, const ca_packed *kp, const ca_key_run *runs, int nruns, const float *clipv,
                          const float *X, int m, const int *idx, int r0, float alpha, float beta, float *affv, float *L,
                          int threads) {
    const int N = d->train.n, C = d->num_classes;
    if (ca_gemm_packed(m, X, d->dim, kp, 1.0f, NULL, CA_EPI_NONE, 0.0f, affv, N, threads) != CA_OK) return -1;
    int64_t ok = 0;
    #pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : ok) if (threads > 1)
    for (int i = 0; i < m; i++) {
        const int vi = idx ? idx[i] : r0 + i;
        float *a = affv + (size_t)i * N, *o = L + (size_t)i * C;
        const float *cl = clipv + (size_t)vi * C;
        ca_tip_cache_row_runs(a, runs, nruns, N, C, beta, a, o);
        for (int c = 0; c < C; c++) o[c] = cl[c] + o[c] * alpha;
        int best = 0;   /* first maximum, as ca_accuracy */
        for (int j = 1; j < C; j++) if (o[j] > o[best]) best = j;
        ok += best == d->val.y[vi];
    }
    return ok;
}

/* The BF16 screen of the val pass (exact: it returns the F32 pass's count). Affinities are first
 * computed with keys and rows rounded to BF16 (twice the F32 kernel's speed); |a_bf16 − a_f32| ≤
 * eps = (2^-7 + 2^-16 + 2.2·D·2^-24)·‖x‖·max‖key‖ (each factor within 2^-8, F32 sums within
 * D·2^-24 of exact; Cauchy–Schwarz), plus a term for denormals flushed to zero. Then every E of the F32 pass lies within a factor
 * exp(±(β·eps + rounding)) of the screen's, each class sum within (expm1(..) + the sums'
 * rounding)·sum, and each logit within dev(c) below. A row whose first maximum beats every other
 * class by more than both deviations has the same argmax in the F32 pass; the others (non-finite
 * values included) are recomputed exactly. */
typedef struct {
    ca_packed kb;        /* the keys' BF16 panels (this epoch's) */
    float knmax;         /* max over keys of ‖key‖ (rounded up) */
    const float *xnorm;  /* (nv) ‖val row‖ (rounded up) */
    int cmaxn;           /* keys in the largest class */
    int *flag;           /* (nv) scratch: 1 right, 0 wrong, -1 unsure */
    float *xu;           /* (VAL_ROWS_PACKED, D) scratch: unsure rows gathered */
    int64_t unsure;      /* rows recomputed exactly, summed over calls */
} val_screen;

static double screen_scale = 1.0;   /* test hook: ca_tipf_set_screen_scale */

double ca_tipf_set_screen_scale(double s) {
    double old = screen_scale;
    screen_scale = s;
    return old;
}

static int64_t screened_rows(const ca_fit_data *d, const ca_packed *kp, val_screen *sc, const ca_key_run *runs, int nruns,
                             const float *clipv, float alpha, float beta, float *affv, float *L, int threads) {
    const ca_split *v = &d->val;
    const int N = d->train.n, C = d->num_classes, D = d->dim, rows = VAL_ROWS_PACKED;
    const double ca = (0.0078125 + 1.52587890625e-5 + 2.2 * D * 5.9604644775390625e-8) * screen_scale;
    const double aa = fabs((double)alpha), cn = sc->cmaxn * 2.4e-7 + 1e-6;
    for (int r0 = 0; r0 < v->n; r0 += rows) {
        int m = v->n - r0 < rows ? v->n - r0 : rows;
        if (ca_gemm_packed(m, v->x + (size_t)r0 * D, D, &sc->kb, 1.0f, NULL, CA_EPI_NONE, 0.0f, affv, N, threads) != CA_OK) return -1;
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int i = 0; i < m; i++) {
            const int vi = r0 + i;
            float *a = affv + (size_t)i * N, *o = L + (size_t)i * C;
            const float *cl = clipv + (size_t)vi * C;
            ca_tip_cache_row_runs(a, runs, nruns, N, C, beta, a, o);
            /* + BF16's flushing of denormal inputs and sums: at most 2^-125 per product */
            const double amax = (double)sc->xnorm[vi] * sc->knmax,
                         eps = ca * amax + D * 2.4e-38 * (1.0 + sc->xnorm[vi] + sc->knmax);
            const double q = (expm1((double)beta * (eps + 5e-7 * (1.0 + amax)) + 1e-6) + cn) * 1.01;
            /* one pass: the first maximum l_best with its lower bound lo, and the two largest
             * upper bounds l_c + dev(c) (the larger one may be the best's own) */
            int best = 0, top = -1, bad = 0;
            float lbest = 0;
            double lo = 0, u1 = -INFINITY, u2 = -INFINITY;
            for (int c = 0; c < C; c++) {
                const float sum = o[c], l = cl[c] + sum * alpha;
                const double dev = aa * sum * q + 1e-6 * fabs((double)cl[c]) + 1e-30, u = (double)l + dev;
                bad |= !isfinite(l) || !isfinite(dev);
                if (c == 0 || l > lbest) { best = c; lbest = l; lo = (double)l - dev; }
                if (u > u1) { u2 = u1; u1 = u; top = c; }
                else if (u > u2) u2 = u;
            }
            const int sure = !bad && lo > (top == best ? u2 : u1);
            sc->flag[vi] = sure ? best == v->y[vi] : -1;
        }
    }
    /* the unsure rows, exactly, in blocks; the sure ones counted */
    int64_t ok = 0;
    int nu = 0;
    int *idx = sc->flag;   /* compacted in place: idx[j] <= the row it came from */
    for (int i = 0; i < v->n; i++) {
        if (sc->flag[i] == 1) ok++;
        else if (sc->flag[i] < 0) idx[nu++] = i;
    }
    sc->unsure += nu;
    for (int u0 = 0; u0 < nu; u0 += rows) {
        int m = nu - u0 < rows ? nu - u0 : rows;
        for (int i = 0; i < m; i++) memcpy(sc->xu + (size_t)i * D, v->x + (size_t)idx[u0 + i] * D, sizeof(float) * D);
        int64_t e = exact_rows(d, kp, runs, nruns, clipv, sc->xu, m, idx + u0, 0, alpha, beta, affv, L, threads);
        if (e < 0) return -1;
        ok += e;
    }
    return ok;
}

/* Val accuracy of keys at (alpha, beta). keys: (N,D), or kp: the same keys packed (then keys
 * is NULL; the packing is reused by every block, and runs holds the key runs of ca_tip_key_runs);
 * with sc as well, through the BF16 screen. clipv: (nv,C); affv: (min(nv,VAL_ROWS or
 * VAL_ROWS_PACKED),N) and L: (the same rows,C) scratch. */
static double val_acc(const ca_fit_data *d, const float *keys, const ca_packed *kp, val_screen *sc, const ca_key_run *runs,
                      int nruns, const float *clipv, float alpha, float beta, float *affv, float *L, int threads) {
    const ca_split *v = &d->val;
    int N = d->train.n, C = d->num_classes;
    int64_t correct = 0;
    if (kp && sc) {
        correct = screened_rows(d, kp, sc, runs, nruns, clipv, alpha, beta, affv, L, threads);
        return correct < 0 ? -1 : 100.0 * (double)correct / v->n;
    }
    const int rows = kp ? VAL_ROWS_PACKED : VAL_ROWS;
    for (int r0 = 0; r0 < v->n; r0 += rows) {
        int m = v->n - r0 < rows ? v->n - r0 : rows;
        if (kp) {
            int64_t ok = exact_rows(d, kp, runs, nruns, clipv, v->x + (size_t)r0 * d->dim, m, NULL, r0, alpha, beta, affv, L, threads);
            if (ok < 0) return -1;
            correct += ok;
            continue;
        }
        ca_sgemm(0, 1, m, N, d->dim, 1.0f, v->x + (size_t)r0 * d->dim, d->dim, keys, d->dim, 0.0f, affv, N);
        if (ca_tip_logits_from_aff(clipv + (size_t)r0 * C, affv, d->train.y, m, N, C, alpha, beta, L) != CA_OK) return -1;
        for (int i = 0; i < m; i++) { /* first maximum, as ca_accuracy */
            const float *r = L + (size_t)i * C;
            int best = 0;
            for (int j = 1; j < C; j++) if (r[j] > r[best]) best = j;
            correct += best == v->y[r0 + i];
        }
    }
    return 100.0 * (double)correct / v->n;
}

/* Products at or above this many multiply-adds go to ca_sgemm's AVX-512 kernel (gemm.c); below
 * it to OpenBLAS, whose results differ in rounding. */
#define FAST_MIN_MACS 16777216.0

/* 1 when every product of this fit would run on the AVX-512 kernel through ca_sgemm: then the
 * packed-keys step (ca_tipf_loss_grad_packed, ca_gemm_packed for val) gives bit-identical keys
 * and skips the per-step repacking of all N keys that ca_sgemm does. Otherwise (small sets,
 * other CPUs) the plain step runs, so results never depend on which path a size picked. */
static int use_packed(int N, int D, int B, int nv) {
    if (!ca_fastgemm_avx512()) return 0;
    int last = N % B ? N % B : B, vlast = nv % VAL_ROWS ? nv % VAL_ROWS : VAL_ROWS;
    double mmin = last < B ? last : B;
    if (nv > 0 && vlast < mmin) mmin = vlast;
    return mmin * (double)N * D >= FAST_MIN_MACS;
}

/* keys in the largest class of y (n) over C classes; 0 for none */
static int class_max(const int32_t *y, int n, int C) {
    int *cnt = calloc((size_t)C + 1, sizeof(int)), mx = 0;
    if (!cnt) return n;   /* the bound then uses n, larger than any class */
    for (int i = 0; i < n; i++) {
        int c = y[i] >= 0 && y[i] < C ? y[i] : C;
        if (++cnt[c] > mx) mx = cnt[c];
    }
    free(cnt);
    return mx;
}

/* This epoch's keys for the screen: BF16 panels in kbf and the largest key norm, rounded up. */
static ca_status screen_keys(val_screen *sc, const ca_packed *kp, void *kbf) {
    ca_status st = ca_packed_bf16_into(&sc->kb, kbf, ca_pack_bf16_size(kp->N, kp->K), kp);
    if (st != CA_OK) return st;
    const int np = (kp->N + 31) / 32, K = kp->K;
    double mx = 0;
    for (int j = 0; j < np; j++) {
        double q[32] = {0};
        const float *w = kp->p + (size_t)j * K * 32;
        for (int k = 0; k < K; k++)
            for (int c = 0; c < 32; c++) q[c] += (double)w[(size_t)k * 32 + c] * w[(size_t)k * 32 + c];
        for (int c = 0; c < 32; c++) if (q[c] > mx) mx = q[c];
    }
    sc->knmax = (float)(sqrt(mx) * (1 + 1e-6));
    return CA_OK;
}

static ca_status tipf_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int N = d->train.n, D = c->D, C = c->C, nv = d->val.n, V = d->train.views;
    const int epochs = p->epochs > 0 ? p->epochs : 20;
    const int B = p->batch > 0 ? (p->batch < N ? p->batch : N) : (N < 256 ? N : 256);
    const double lr = p->lr > 0 ? p->lr : 1e-3, wd = p->weight_decay >= 0 ? p->weight_decay : 0.01;
    const float a0 = (float)p->init_alpha, b0 = (float)p->init_beta;
    if (N < 1) return ca_fail(CA_E_ARG, "tip-adapter-f: the train split is empty");
    if (epochs > 100000 || !(isfinite(p->init_alpha) && isfinite(p->init_beta) && p->init_beta >= 0 && p->init_beta <= 1000))
        return ca_fail(CA_E_ARG, "tip-adapter-f: bad epochs %d or init alpha/beta %g/%g", epochs, p->init_alpha, p->init_beta);
    if (V > 0 && !d->train.xv) return ca_fail(CA_E_ARG, "tip-adapter-f: train split claims %d views but has none", V);
    const int packed = use_packed(N, D, B, nv), nt = ca_kernel_threads(p->threads);

    /* Keys, best keys, gradient and the AdamW moments: (N,D) each, or, on the packed path, the
     * panel layout of ca_packed (padded to 32 keys) — AdamW is elementwise, so it updates panels
     * exactly as it would rows. One 64-byte aligned block for these five, one for the rest. The
     * packed path applies AdamW per gradient panel inside the step and never touches its (N,D)
     * gradient until the best keys are unpacked into it at the end. */
    const size_t nd = (size_t)N * D;
    const size_t kn = packed ? ca_pack_size(N, D, CA_DT_F32) / sizeof(float) : nd;
    const size_t sc = packed ? ca_tipf_packed_scratch_floats(B, N, C) : ca_tipf_scratch_floats(B, N, C);
    const int vrows = packed ? VAL_ROWS_PACKED : VAL_ROWS;
    const size_t nvb = nv < vrows ? (size_t)nv : (size_t)vrows;
    const size_t total_f = (size_t)B * D + (size_t)B * C + (size_t)nv * C + nvb * N + nvb * C + sc;
    float *kblk = kn && kn < SIZE_MAX / 5 / sizeof(float) ? aligned_alloc(64, 5 * kn * sizeof(float)) : NULL;
    float *blk = ca_malloc2(total_f, sizeof(float));
    int *perm = ca_malloc2((size_t)N, sizeof(int)), *view = ca_malloc2((size_t)N, sizeof(int));
    int32_t *yb = ca_malloc2((size_t)B, sizeof(int32_t));
    ca_key_run *runs = ca_malloc2((size_t)N + 1, sizeof(ca_key_run));
    /* AdamW as torch.optim.AdamW (betas 0.9/0.999, eps 1e-4 as the original); moments m, v */
    const ca_optim opt = {.kind = CA_OPT_ADAMW, .weight_decay = (float)wd, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-4f};
    ca_status st = CA_OK;
    ca_packed tw = {0};   /* text_w packed for the steps, or not (p NULL) */
    val_screen scr = {0}, *scp = NULL;   /* the BF16 screen of the val passes, when it runs */
    void *kbf = NULL;
    float *xnorm = NULL;
    if (!blk || !kblk || !perm || !view || !yb || !runs) {
        st = ca_fail(CA_E_NOMEM, "tip-adapter-f: out of memory for %d keys", N);
        goto done;
    }
    float *keys = kblk, *best = keys + kn, *grad = best + kn, *mom = grad + kn;
    memset(mom, 0, 2 * kn * sizeof(float));
    float *xb = blk, *clipb = xb + (size_t)B * D, *clipv = clipb + (size_t)B * C;
    float *affv = clipv + (size_t)nv * C, *Lv = affv + nvb * N, *scratch = Lv + nvb * C;
    ca_packed kp = {0};
    /* the text classifier packed once for the steps' zero-shot logits (ca_logits_linear packs it
     * per call); only where ca_sgemm takes our kernel: the products the packing reproduces */
    if (ca_fastgemm_avx512() && (double)(N < B ? N : B) * C * D >= FAST_MIN_MACS &&
        (st = ca_pack_weights(&tw, d->text_w, CA_DT_F32, C, D, D)) != CA_OK) goto done;

    if (packed) {   /* keys start as the cache */
        if ((st = ca_pack_weights_into(&kp, keys, kn * sizeof(float), d->train.x, CA_DT_F32, N, D, D, 0, CA_DT_F32)) != CA_OK) goto done;
    } else {
        memcpy(keys, d->train.x, sizeof(float) * nd);
    }
    memcpy(best, keys, sizeof(float) * kn);
    if (nv > 0) ca_logits_linear(d->val.x, nv, d->text_w, C, D, 100.0f, clipv);
    const int nruns = ca_tip_key_runs(d->train.y, N, runs);
    /* the BF16 screen of the val passes (packed path, CPUs with AVX512-BF16): val row norms
     * once, the keys' BF16 copy and largest norm per epoch */
    if (packed && nv > 0 && ca_fastgemm_bf16() && screen_scale > 0) {
        size_t kbn = ca_pack_bf16_size(N, D);
        kbf = kbn ? aligned_alloc(64, (kbn + 63) & ~(size_t)63) : NULL;
        xnorm = ca_malloc2((size_t)nv, sizeof(float));
        scr.flag = ca_malloc2((size_t)nv, sizeof(int));
        scr.xu = ca_malloc2((size_t)VAL_ROWS_PACKED * D, sizeof(float));
        if (!kbf || !xnorm || !scr.flag || !scr.xu) {
            st = ca_fail(CA_E_NOMEM, "tip-adapter-f: out of memory for the val screen");
            goto done;
        }
        for (int i = 0; i < nv; i++) {
            double q = 0;
            for (int j = 0; j < D; j++) q += (double)d->val.x[(size_t)i * D + j] * d->val.x[(size_t)i * D + j];
            xnorm[i] = (float)(sqrt(q) * (1 + 1e-6));
        }
        scr.cmaxn = class_max(d->train.y, N, C);
        scr.xnorm = xnorm;
        scp = &scr;
    }

    const int64_t spe = (N + B - 1) / B, total = (int64_t)epochs * spe;
    int64_t step = 0;
    double best_acc = -1, last_loss = 0;
    int best_epoch = -1;
    double t_train = 0, t_select = 0;   /* seconds: training steps, val passes (params) */
    for (int e = 0; e < epochs; e++) {
        double t0 = ca_now();
        ca_rng rng = ca_rng_make(p->seed, 0x746970660000ull + (uint64_t)e); /* "tipf" + epoch */
        for (int i = 0; i < N; i++) perm[i] = i;
        ca_rng_shuffle_int(&rng, perm, N);
        /* one augmented view per image per epoch, as the original sees one augmentation */
        for (int i = 0; i < N; i++) view[i] = V > 0 ? (int)ca_rng_below(&rng, (uint32_t)V) : -1;
        double loss_sum = 0;
        for (int64_t s = 0; s < spe; s++, step++) {
            int r0 = (int)(s * B), m = N - r0 < B ? N - r0 : B;
            for (int j = 0; j < m; j++) {
                int i = perm[r0 + j];
                const float *src = V > 0 ? d->train.xv + ((size_t)view[i] * N + i) * D : d->train.x + (size_t)i * D;
                memcpy(xb + (size_t)j * D, src, sizeof(float) * D);
                yb[j] = d->train.y[i];
            }
            /* (m,C), cheap next to (m,N); with text_w packed once when ca_sgemm would pack it
             * for our kernel anyway (the same panels and kernel, so the same logits) */
            if (tw.p && (double)m * C * D >= FAST_MIN_MACS) {
                if ((st = ca_gemm_packed(m, xb, D, &tw, 100.0f, NULL, CA_EPI_NONE, 0.0f, clipb, C, nt)) != CA_OK) goto done;
            } else {
                ca_logits_linear(xb, m, d->text_w, C, D, 100.0f, clipb);
            }
            const double lr_s = ca_lr_cosine(lr, step, total, 0);
            if (packed) {   /* the step and AdamW fused: the gradient never leaves the cache */
                double l = ca_tipf_step_packed(xb, yb, clipb, m, keys, d->train.y, N, D, C, a0, b0, &opt, lr_s, step + 1,
                                               mom, mom + kn, scratch, nt);
                if (l < 0) { st = CA_E_NOMEM; goto done; }   /* a GEMM buffer (its message is set) */
                loss_sum += m * l;
                continue;
            }
            double l = ca_tipf_loss_grad(xb, yb, clipb, m, keys, d->train.y, N, D, C, a0, b0, grad, scratch);
            loss_sum += m * l;
            /* elementwise: split over the threads in fixed chunks, the same values as one call */
            const size_t chunk = 1 << 16, nch = (kn + chunk - 1) / chunk;
            #pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && nch > 1)
            for (size_t q = 0; q < nch; q++) {
                size_t o = q * chunk, n = kn - o < chunk ? kn - o : chunk;
                ca_optim_step(&opt, lr_s, step + 1, keys + o, grad + o, mom + o, mom + kn + o, n);
            }
        }
        last_loss = loss_sum / N;
        if (!isfinite(last_loss)) { st = ca_fail(CA_E_NONFINITE, "tip-adapter-f: training diverged: loss %g at epoch %d with lr %g (lower --lr)", last_loss, e + 1, lr); goto done; }
        /* model selection on val only, at the training α, β; the first best epoch wins; without
         * val every epoch "wins", so the last one is kept */
        double t1 = ca_now();
        t_train += t1 - t0;
        if (scp && (st = screen_keys(scp, &kp, kbf)) != CA_OK) goto done;
        double acc = nv > 0 ? val_acc(d, packed ? NULL : keys, packed ? &kp : NULL, scp, runs, nruns, clipv, a0, b0, affv, Lv, nt) : 0;
        t_select += ca_now() - t1;
        if (acc < 0) { st = CA_E_NOMEM; goto done; }
        if (acc > best_acc || nv == 0) {
            best_acc = acc; best_epoch = e;
            memcpy(best, keys, sizeof(float) * kn);
        }
        if (p->progress && p->progress("tip-adapter-f", e + 1, epochs, p->progress_user)) {
            st = ca_fail(CA_E_CANCELLED, "tip-adapter-f: cancelled by the progress callback");
            goto done;
        }
    }
    if (packed) {   /* the best keys back to rows, into the gradient's (free now) memory */
        ca_packed bp = kp;
        bp.p = best;
        if ((st = ca_packed_unpack(&bp, grad, D)) != CA_OK) goto done;
        best = grad;
    }
    if ((st = ca_tip_store(c, d, best)) != CA_OK) goto done;
    if (nv > 0) st = ca_tip_search_val(c, d, best, p);
    else st = ca_tip_set_fixed(c, p->init_alpha, p->init_beta);
    if (st != CA_OK) goto done;
    const char *names[] = {"best_epoch", "select_val_acc", "train_loss", "epochs", "batch", "lr",
                           "weight_decay", "init_alpha", "init_beta", "seed", "train_seconds", "select_seconds",
                           "select_exact_rows"};
    /* select_exact_rows: val rows the BF16 screen left to the F32 pass, summed over epochs
     * (-1: no screen, every row in F32) */
    double vals[] = {best_epoch + 1, best_acc, last_loss, epochs, B, lr, wd, p->init_alpha, p->init_beta, (double)p->seed,
                     t_train, t_select, scp ? (double)scr.unsure : -1};
    for (size_t i = 0; st == CA_OK && i < sizeof vals / sizeof vals[0]; i++) st = ca_clf_set_param(c, names[i], vals[i]);
done:
    free(kbf); free(xnorm); free(scr.flag); free(scr.xu);
    free(kblk);
    free(blk); free(perm); free(view); free(yb); free(runs);
    ca_packed_free(&tw);
    return st;
}

const ca_method ca_method_tip_adapter_f = {
    .name = "tip-adapter-f",
    .help = "Tip-Adapter-F: cache keys fine-tuned with AdamW (20 epochs, best epoch on val), then α, β searched on val; without val the last epoch at the training α, β (needs text weights)",
    .needs_text = 1,
    .fit = tipf_fit,
    .logits = ca_tip_stored_logits,
};
