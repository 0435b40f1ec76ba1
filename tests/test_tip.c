/* test_tip.c — Tip-Adapter and Tip-Adapter-F: the grid, the fast search against its naive
 * oracle, the hand-written backward against finite differences, AdamW against its formula,
 * and the methods on stanford_cars (Tip-Adapter-F beats Tip-Adapter at 16 shots; stored
 * classifiers reproduce the searched accuracy; training is deterministic; views are used). */
#include "adapt/train.h"
#include "adapt/search.h"
#include "adapt/tc_rows.h"
#include "adapt/tip.h"
#include "core/core.h"
#include "model/gemm.h"
#include "model/vmath.h"
#include "harness.h"

#include <string.h>

static void test_grid(void) {
    CHECK_NEAR(ca_tip_grid(0, 200, 20), 0.1, 0);
    CHECK_NEAR(ca_tip_grid(199, 200, 20), 199 * 19.9 / 200 + 0.1, 1e-15);
    CHECK_NEAR(ca_tip_grid(1, 20, 10), 0.595, 1e-15);
    CHECK(ca_tip_grid(19, 20, 10) < 10);
}

/* The vectorised exp against libm over Tip-Adapter's range and beyond. */
static void test_vexp(void) {
    enum { n = 200001 };
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = -87.0f + 175.0f * (float)i / (n - 1);
    ca_vexp(y, x, n);
    double worst = 0;
    int at = 0;
    for (int i = 0; i < n; i++) {
        double e = exp((double)x[i]), rel = fabs(y[i] - e) / e;
        if (rel > worst) { worst = rel; at = i; }
    }
    CHECK_MSG(worst < 2.5e-7, "vexp max rel err %.3g at x = %.9g (libm expf %.9g, vexp %.9g)", worst, x[at], expf(x[at]), y[at]);
    float a[3] = {1.0f, 0.25f, -1.0f}, o[3];
    ca_vexp_affinity(o, a, 3, 4.0f);
    for (int i = 0; i < 3; i++) CHECK_NEAR(o[i], expf(-(4.0f - 4.0f * a[i])), 3e-7 * expf(-(4.0f - 4.0f * a[i])));
    free(x); free(y);
}

static ca_featureset *cars(void) {
    ca_featureset *fs = ca_features_load(th_shared("features/stanford_cars.safetensors"), NULL);
    CHECK_MSG(fs != NULL, "%s", ca_last_error());
    return fs;
}

static ca_fit_data fit_data(const ca_featureset *fs, const char *train) {
    ca_fit_data d = {.num_classes = ca_features_num_classes(fs), .dim = ca_features_dim(fs), .text_w = ca_features_text(fs)};
    ca_features_split(fs, train, &d.train);
    ca_features_split(fs, "val", &d.val);
    return d;
}

/* The fast search and the straightforward one choose the same pair on real data. */
static void test_search_matches_oracle(void) {
    ca_featureset *fs = cars();
    if (!fs) return;
    ca_fit_data d = fit_data(fs, "train.2shot");
    int n = d.val.n, N = d.train.n, C = d.num_classes, D = d.dim;
    float *clip = malloc(sizeof(float) * (size_t)n * C), *aff = malloc(sizeof(float) * (size_t)n * N);
    ca_logits_linear(d.val.x, n, d.text_w, C, D, 100.0f, clip);
    ca_logits_linear(d.val.x, n, d.train.x, N, D, 1.0f, aff);
    ca_tip_search_in in = {.n = n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = d.train.y, .y = d.val.y};
    ca_fit_params p = ca_fit_default_params();
    p.search_steps_beta = 16; p.search_steps_alpha = 8;
    ca_tip_choice a, b;
    CHECK(ca_tip_search(&in, &p, &a) == CA_OK);
    CHECK(ca_tip_search_ref(&in, &p, &b) == CA_OK);
    CHECK_NEAR(a.alpha, b.alpha, 0);
    CHECK_NEAR(a.beta, b.beta, 0);
    CHECK_NEAR(a.acc, b.acc, 1e-12);
    /* the blocked search against its row-by-row form on the full default grid */
    ca_fit_params full = ca_fit_default_params();
    CHECK(ca_tip_search(&in, &full, &a) == CA_OK);
    CHECK(ca_tip_search_rows(&in, &full, &b) == CA_OK);
    CHECK_NEAR(a.alpha, b.alpha, 0);
    CHECK_NEAR(a.beta, b.beta, 0);
    CHECK_NEAR(a.acc, b.acc, 1e-12);
    CHECK(a.acc > 60.0); /* zero-shot val is 60.37: the cache must help */
    /* a bad grid is refused, not crashed on */
    p.search_steps_beta = 0;
    CHECK(ca_tip_search(&in, &p, &a) == CA_E_ARG);
    free(clip); free(aff);
    ca_features_free(fs);
}

/* Blocked search vs the row-by-row oracle on synthetic data built to be hard for it: a row count
 * that is no multiple of the block, keys in shuffled class order, classes without keys, and
 * affinities on a coarse grid so that many scores tie exactly (argmax's first-maximum rule). */
static void test_search_blocked_exact(void) {
    enum { n = 37, N = 53, C = 11 };
    float clip[n * C], aff[n * N];
    int32_t ky[N], y[n];
    ca_rng r = ca_rng_make(3, 0);
    for (int k = 0; k < N; k++) ky[k] = (int32_t)ca_rng_below(&r, C - 2); /* classes 9, 10: no keys */
    for (int i = 0; i < n; i++) y[i] = (int32_t)ca_rng_below(&r, C);
    for (int j = 0; j < n * C; j++) clip[j] = (float)ca_rng_below(&r, 4);
    for (int j = 0; j < n * N; j++) aff[j] = (float)ca_rng_below(&r, 5) * 0.25f;
    ca_tip_search_in in = {.n = n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = ky, .y = y};
    ca_fit_params p = ca_fit_default_params();
    for (int g = 0; g < 3; g++) {
        p.search_steps_beta = 7 + 40 * g; p.search_steps_alpha = 5 + 8 * g;
        ca_tip_choice a, b, c;
        CHECK(ca_tip_search(&in, &p, &a) == CA_OK);
        CHECK(ca_tip_search_rows(&in, &p, &b) == CA_OK);
        CHECK(ca_tip_search_ref(&in, &p, &c) == CA_OK);
        CHECK_NEAR(a.alpha, b.alpha, 0);
        CHECK_NEAR(a.beta, b.beta, 0);
        CHECK_NEAR(a.acc, b.acc, 0);
        CHECK_NEAR(a.acc, c.acc, 1e-9); /* the GEMM oracle sums in another order: close, not exact */
        /* every count of the grid, not only the chosen pair: the per-path (AVX-512) loops must be
         * bit-identical to the row oracle */
        int64_t ca[160 * 30], cb[160 * 30];
        CHECK(ca_tip_search_counts(&in, &p, ca) == CA_OK);
        CHECK(ca_tip_search_rows_counts(&in, &p, cb) == CA_OK);
        int diff = 0;
        for (int j = 0; j < p.search_steps_beta * p.search_steps_alpha; j++) diff += ca[j] != cb[j];
        CHECK_MSG(diff == 0, "%d of %d grid counts differ from the row oracle", diff, p.search_steps_beta * p.search_steps_alpha);
    }
}

/* The same on continuous affinities in [-1, 1] and β up to 200 (exp arguments down to -400: the
 * clamp at -87.3 is exercised), 3 blocks and a remainder, classes of uneven sizes. */
static void test_search_counts_continuous(void) {
    enum { n = 53, N = 97, C = 13 };
    float clip[n * C], aff[n * N];
    int32_t ky[N], y[n];
    ca_rng r = ca_rng_make(5, 0);
    for (int k = 0; k < N; k++) ky[k] = (int32_t)ca_rng_below(&r, (uint32_t)(k % 3 ? C : 4));
    for (int i = 0; i < n; i++) y[i] = (int32_t)ca_rng_below(&r, C);
    for (int j = 0; j < n * C; j++) clip[j] = (float)(30.0 * ca_rng_uniform(&r));
    for (int j = 0; j < n * N; j++) aff[j] = (float)(2.0 * ca_rng_uniform(&r) - 1.0);
    ca_tip_search_in in = {.n = n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = ky, .y = y};
    ca_fit_params p = ca_fit_default_params();
    p.search_steps_beta = 37; p.search_steps_alpha = 23; p.search_scale_beta = 200; p.search_scale_alpha = 10;
    int64_t ca[37 * 23], cb[37 * 23];
    CHECK(ca_tip_search_counts(&in, &p, ca) == CA_OK);
    CHECK(ca_tip_search_rows_counts(&in, &p, cb) == CA_OK);
    int diff = 0;
    for (int j = 0; j < 37 * 23; j++) diff += ca[j] != cb[j];
    CHECK_MSG(diff == 0, "%d grid counts differ from the row oracle", diff);
}

/* Many classes, clip logits that separate most of them from the label, and keys near each row's
 * own class: the fast search skips most class sums as unable to change a count, and still gives
 * the row oracle's counts on every grid cell, including rows built to sit near the skip margin
 * (another class's score a hair below the label's) and classes without keys. */
static void test_search_skips_exact(void) {
    enum { n = 150, C = 60, N = 4 * (C - 3) };
    static float clip[n * C], aff[n * N];
    int32_t ky[N], y[n];
    ca_rng r = ca_rng_make(11, 0);
    for (int k = 0; k < N; k++) ky[k] = (int32_t)(k % (C - 3)); /* the last 3 classes: no keys */
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)ca_rng_below(&r, C);
        for (int c = 0; c < C; c++) clip[i * C + c] = (float)(20.0 + 5.0 * ca_rng_uniform(&r));
        clip[i * C + y[i]] += (float)(6.0 * ca_rng_uniform(&r) - 1.0);
        for (int k = 0; k < N; k++)
            aff[i * N + k] = (float)(0.3 + 0.3 * ca_rng_uniform(&r) + (ky[k] == y[i] ? 0.25 * ca_rng_uniform(&r) : 0.0));
        if (i % 7 == 0) { /* a rival class one float step below (or at) the label's clip, same keys */
            int c = (y[i] + 1) % (C - 3);
            clip[i * C + c] = nextafterf(clip[i * C + y[i]], i % 14 ? 0.0f : 1e9f);
            for (int k = 0; k < N; k++)
                if (ky[k] == c) aff[i * N + k] = aff[i * N + k - c + (y[i] < C - 3 ? y[i] : 0)];
        }
    }
    ca_tip_search_in in = {.n = n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = ky, .y = y};
    const double sb[3] = {20, 200, 2}, sa[3] = {10, 1000, 0.05};
    for (int g = 0; g < 3; g++) {
        ca_fit_params p = ca_fit_default_params();
        p.search_steps_beta = 50 + 7 * g; p.search_steps_alpha = 20 - 3 * g;
        p.search_scale_beta = sb[g]; p.search_scale_alpha = sa[g];
        static int64_t ca[80 * 20], cb[80 * 20];
        int64_t sums = -1;
        CHECK(ca_tip_search_counts_stats(&in, &p, ca, &sums) == CA_OK);
        CHECK(ca_tip_search_rows_counts(&in, &p, cb) == CA_OK);
        int diff = 0, cells = p.search_steps_beta * p.search_steps_alpha;
        for (int j = 0; j < cells; j++) diff += ca[j] != cb[j];
        CHECK_MSG(diff == 0, "grid %d: %d of %d counts differ from the row oracle", g, diff, cells);
        /* every row, every β vector, every class but the label: the sums without skipping */
        int64_t all = (int64_t)n * ((p.search_steps_beta + 15) / 16) * (C - 1);
        fprintf(stderr, "  grid %d: %lld of %lld class sums computed\n", g, (long long)sums, (long long)all);
        CHECK(sums > 0 && sums < all / 2); /* the skip is exercised, not only the full path */
    }
}

/* Affinities supplied block by block (aff_rows, as Tip-Adapter's fit does from packed keys) give
 * the same counts as the whole matrix, for a row count that is no multiple of the block. */
typedef struct { const float *aff; int N; } rows_src;
static void copy_rows(void *ctx, int r0, int m, float *out) {
    const rows_src *s = ctx;
    memcpy(out, s->aff + (size_t)r0 * s->N, sizeof(float) * (size_t)m * s->N);
}
static void test_search_aff_rows(void) {
    enum { n = 203, N = 97, C = 13 };
    static float clip[n * C], aff[n * N];
    int32_t ky[N], y[n];
    ca_rng r = ca_rng_make(7, 0);
    for (int k = 0; k < N; k++) ky[k] = (int32_t)ca_rng_below(&r, C);
    for (int i = 0; i < n; i++) y[i] = (int32_t)ca_rng_below(&r, C);
    for (int j = 0; j < n * C; j++) clip[j] = (float)(30.0 * ca_rng_uniform(&r));
    for (int j = 0; j < n * N; j++) aff[j] = (float)(2.0 * ca_rng_uniform(&r) - 1.0);
    rows_src src = {aff, N};
    ca_tip_search_in a = {.n = n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = ky, .y = y};
    ca_tip_search_in b = {.n = n, .N = N, .C = C, .clip = clip, .key_y = ky, .y = y, .aff_rows = copy_rows, .aff_ctx = &src};
    ca_fit_params p = ca_fit_default_params();
    static int64_t ca[200 * 20], cb[200 * 20];
    CHECK(ca_tip_search_counts(&a, &p, ca) == CA_OK);
    CHECK(ca_tip_search_counts(&b, &p, cb) == CA_OK);
    CHECK(memcmp(ca, cb, sizeof(int64_t) * 200 * 20) == 0);
    ca_tip_choice ch;
    CHECK(ca_tip_search_rows(&b, &p, &ch) == CA_E_ARG); /* the oracles need the matrix */
}

/* The double exp (tip-cache's scores) against libm's exp. */
static void test_vexp_d(void) {
    enum { n = 4001 };
    static double x[n], y[n];
    for (int i = 0; i < n; i++) x[i] = -720.0 + 1430.0 * i / (n - 1);
    x[2000] = 0;
    ca_vexp_d(y, x, n);
    double worst = 0;
    int at = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] < -708 || x[i] > 709) continue; /* clamped */
        double e = fabs(y[i] - exp(x[i])) / exp(x[i]);
        if (e > worst) { worst = e; at = i; }
    }
    CHECK_MSG(worst < 1e-15, "vexp_d max rel err %.3g at x = %.17g", worst, x[at]);
    CHECK(y[2000] == 1.0);
}

/* Tip-Adapter's run-grouped cache row against the scatter form, bit for bit, on key layouts:
 * sorted with equal counts (four-run groups), sorted ragged, shuffled, and classes that come back
 * in later runs (a group of four must never hold one class twice). */
static void test_cache_row_runs_exact(void) {
    enum { C = 40, N = 640 };
    static int32_t ky[N];
    static float aff[N], e[N], o1[C], o2[C];
    static ca_key_run runs[N + 1];
    ca_rng r = ca_rng_make(5, 9);
    int diff = 0, fours = 0;
    for (int layout = 0; layout < 5; layout++) {
        for (int k = 0; k < N; k++) {
            switch (layout) {
            case 0: ky[k] = k / 16; break;                                  /* 40 classes x 16 */
            case 1: ky[k] = k < 600 ? k / 15 : 39; break;                   /* ragged tail */
            case 2: ky[k] = (int32_t)(ca_rng_uniform(&r) * C); break;        /* shuffled */
            case 3: ky[k] = (k / 4) % 6; break;                             /* 0,0,0,0,1,..,5,0,... back again */
            default: ky[k] = (k / 8) % 3 == 2 ? 7 : (k / 8) % 5; break;     /* mixed lengths and repeats */
            }
        }
        const int nr = ca_tip_key_runs(ky, N, runs);
        for (int i = 0; i < nr; i++) fours += runs[i].four;
        for (int row = 0; row < 3; row++) {
            for (int k = 0; k < N; k++) aff[k] = (float)(2.0 * ca_rng_uniform(&r) - 1.0);
            ca_tip_cache_row(aff, ky, N, C, 3.7f, e, o1);
            ca_tip_cache_row_runs(aff, runs, nr, N, C, 3.7f, e, o2);
            diff += memcmp(o1, o2, sizeof o1) != 0;
        }
    }
    CHECK_EQ_INT(diff, 0);
    CHECK(fours > 10); /* the four-chain path ran */
}

/* tip-cache's fused row scores against the class-by-class oracle, bit for bit: ragged classes
 * (0 to 37 keys, one empty), several β, affinities spread so that some exps clamp. */
static void test_tc_rows_exact(void) {
    enum { C = 23, NMAX = 400, ROWS = 6 };
    int32_t cnt[C], y[NMAX], order[NMAX], start[C + 1];
    ca_rng r = ca_rng_make(11, 3);
    int N = 0;
    for (int c = 0; c < C; c++) { cnt[c] = c == 5 ? 0 : (int)(ca_rng_uniform(&r) * 38); if (N + cnt[c] > NMAX) cnt[c] = 0; N += cnt[c]; }
    for (int k = 0, c = 0; c < C; c++) for (int j = 0; j < cnt[c]; j++) y[k++] = c;
    for (int k = N - 1; k > 0; k--) { int j = (int)(ca_rng_uniform(&r) * (k + 1)); int32_t t = y[k]; y[k] = y[j]; y[j] = t; }
    /* group by class, stable (what tip_cache.c's group_keys builds) */
    start[0] = 0;
    for (int c = 0; c < C; c++) start[c + 1] = start[c] + cnt[c];
    int fill[C];
    memcpy(fill, start, sizeof fill);
    for (int k = 0; k < N; k++) order[fill[y[k]]++] = k;
    static float a[NMAX], as[NMAX], mx[C], o1[C], o2[C];
    static double tmp[NMAX];
    const double betas[] = {0.5, 5.5, 37.0, 200.0, 900.0};
    int diff = 0;
    for (int row = 0; row < ROWS; row++) {
        for (int k = 0; k < N; k++) a[k] = (float)(row == 0 ? 2.0 * ca_rng_uniform(&r) - 1.0 : 0.2 + 0.8 * ca_rng_uniform(&r));
        for (size_t b = 0; b < sizeof betas / sizeof *betas; b++) {
            ca_tc_logits_row(a, order, start, N, C, betas[b], as, mx, tmp, o1);
            ca_tc_logits_row_ref(a, order, start, N, C, betas[b], as, mx, tmp, o2);
            diff += memcmp(o1, o2, sizeof o1) != 0;
        }
    }
    CHECK_EQ_INT(diff, 0);
    CHECK(o1[5] == -1e30f);
}

/* Naive double-precision Tip-Adapter-F loss: the oracle for the hand-written backward. */
static double ref_loss(const float *x, const int32_t *y, const float *clip, int B, const double *keys,
                       const int32_t *key_y, int N, int D, int C, double alpha, double beta) {
    double loss = 0, l[16];
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) l[c] = clip[b * C + c];
        for (int k = 0; k < N; k++) {
            double a = 0;
            for (int j = 0; j < D; j++) a += (double)x[b * D + j] * keys[k * D + j];
            l[key_y[k]] += alpha * exp(-beta * (1 - a));
        }
        double mx = l[0], s = 0;
        for (int c = 1; c < C; c++) mx = l[c] > mx ? l[c] : mx;
        for (int c = 0; c < C; c++) s += exp(l[c] - mx);
        loss += mx + log(s) - l[y[b]];
    }
    return loss / B;
}

static void test_gradient_check(void) {
    enum { B = 5, N = 12, D = 8, C = 4 };
    float x[B * D], clip[B * C], keys[N * D], dk[N * D];
    double kd[N * D];
    int32_t y[B], ky[N];
    ca_rng r = ca_rng_make(7, 0);
    for (int i = 0; i < B * D; i++) x[i] = (float)ca_rng_normal(&r) * 0.35f;
    for (int i = 0; i < N * D; i++) kd[i] = keys[i] = (float)ca_rng_normal(&r) * 0.35f;
    for (int i = 0; i < B * C; i++) clip[i] = (float)ca_rng_normal(&r);
    for (int i = 0; i < B; i++) y[i] = (int32_t)ca_rng_below(&r, C);
    for (int k = 0; k < N; k++) ky[k] = k % C;
    const float alpha = 1.7f, beta = 2.3f;
    float *scratch = malloc(sizeof(float) * ca_tipf_scratch_floats(B, N, C));
    double loss = ca_tipf_loss_grad(x, y, clip, B, keys, ky, N, D, C, alpha, beta, dk, scratch);
    CHECK_NEAR(loss, ref_loss(x, y, clip, B, kd, ky, N, D, C, alpha, beta), 1e-5);
    double maxg = 0, maxerr = 0;
    int shown = 0;
    for (int i = 0; i < N * D; i++) {
        const double h = 1e-5, k0 = kd[i];
        kd[i] = k0 + h;
        double lp = ref_loss(x, y, clip, B, kd, ky, N, D, C, alpha, beta);
        kd[i] = k0 - h;
        double lm = ref_loss(x, y, clip, B, kd, ky, N, D, C, alpha, beta);
        kd[i] = k0;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - dk[i]);
        maxg = fmax(maxg, fabs(fd));
        maxerr = fmax(maxerr, err);
        if (err > 1e-5 + 1e-3 * fabs(fd) && shown++ < 5)
            fprintf(stderr, "  grad[%d]: analytic %.8g, finite difference %.8g\n", i, dk[i], fd);
    }
    CHECK(maxg > 1e-3); /* the check means something only when the gradient is not ~0 */
    CHECK_MSG(shown == 0, "gradient mismatch: max abs err %.3g (max |grad| %.3g)", maxerr, maxg);
    free(scratch);
}

static void test_adamw(void) {
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -0.25f};
    const ca_optim o = {.kind = CA_OPT_ADAMW, .weight_decay = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-4f};
    float om[2] = {0}, ov[2] = {0};
    double pd[2] = {1.0, -2.0}, m[2] = {0}, v[2] = {0};
    for (int t = 1; t <= 3; t++) {
        double lr = ca_lr_cosine(1e-2, t - 1, 3, 0);
        ca_optim_step(&o, lr, t, p, g, om, ov, 2);
        for (int i = 0; i < 2; i++) { /* torch.optim.AdamW, written out */
            pd[i] *= 1 - lr * 0.01;
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            double mh = m[i] / (1 - pow(0.9, t)), den = sqrt(v[i]) / sqrt(1 - pow(0.999, t)) + 1e-4;
            pd[i] -= lr * mh / den;
        }
    }
    CHECK_NEAR(p[0], pd[0], 1e-6);
    CHECK_NEAR(p[1], pd[1], 1e-6);
    CHECK_NEAR(ca_lr_cosine(1e-3, 0, 100, 0), 1e-3, 1e-15);
    CHECK_NEAR(ca_lr_cosine(1e-3, 50, 100, 0), 5e-4, 1e-15);
}

static double acc_of(const ca_classifier *c, const ca_split *s) {
    float *lg = malloc(sizeof(float) * (size_t)s->n * ca_classifier_num_classes(c));
    double a = ca_classifier_logits(c, s->x, s->n, lg) == CA_OK ? ca_accuracy(lg, s->y, s->n, ca_classifier_num_classes(c)) : -1;
    free(lg);
    return a;
}

/* The acceptance check: at 16 shots Tip-Adapter-F beats Tip-Adapter on test; both classifiers
 * reproduce their searched val accuracy through ca_classifier_logits and after save/load. */
static void test_cars_16shot(void) {
    ca_featureset *fs = cars();
    if (!fs) return;
    ca_fit_data d = fit_data(fs, "train.16shot");
    ca_split te;
    ca_features_split(fs, "test", &te);
    ca_status st;
    ca_classifier *tip = ca_fit("tip-adapter", &d, NULL, &st);
    ca_classifier *tipf = ca_fit("tip-adapter-f", &d, NULL, &st);
    CHECK_MSG(tip && tipf, "%s", ca_last_error());
    if (tip && tipf) {
        double at = acc_of(tip, &te), af = acc_of(tipf, &te);
        fprintf(stderr, "  16-shot test: tip-adapter %.2f (alpha %g beta %g), tip-adapter-f %.2f\n", at,
                ca_classifier_param(tip, "alpha", 0), ca_classifier_param(tip, "beta", 0), af);
        CHECK(at > 58.17 + 5);
        CHECK(af > at);
        CHECK_NEAR(acc_of(tip, &d.val), ca_classifier_param(tip, "search_val_acc", -1), 0);
        CHECK_NEAR(acc_of(tipf, &d.val), ca_classifier_param(tipf, "search_val_acc", -1), 0);
        char path[1024];
        snprintf(path, sizeof path, "%s/tipf.safetensors", th_tmpdir());
        CHECK(ca_classifier_save(tipf, path, NULL) == CA_OK);
        ca_classifier *back = ca_classifier_load(path, &st);
        CHECK_MSG(back != NULL, "%s", ca_last_error());
        if (back) CHECK_NEAR(acc_of(back, &te), af, 0);
        ca_classifier_free(back);
    }
    ca_classifier_free(tip); ca_classifier_free(tipf);
    ca_features_free(fs);
}

/* Same seed, same keys; when every view equals the features, views change nothing; another
 * seed shuffles differently. Few epochs keep it quick. */
static void test_tipf_deterministic_and_views(void) {
    ca_featureset *fs = cars();
    if (!fs) return;
    ca_fit_data d = fit_data(fs, "train.2shot");
    ca_fit_params p = ca_fit_default_params();
    p.epochs = 3; p.batch = 64; p.search_steps_beta = 10; p.search_steps_alpha = 5;
    ca_classifier *a = ca_fit("tip-adapter-f", &d, &p, NULL), *b = ca_fit("tip-adapter-f", &d, &p, NULL);
    const int V = 3, N = d.train.n, D = d.dim;
    float *xv = malloc(sizeof(float) * (size_t)V * N * D);
    for (int v = 0; v < V; v++) memcpy(xv + (size_t)v * N * D, d.train.x, sizeof(float) * (size_t)N * D);
    ca_fit_data dv = d;
    dv.train.views = V; dv.train.xv = xv;
    ca_classifier *c = ca_fit("tip-adapter-f", &dv, &p, NULL);
    p.seed = 2;
    ca_classifier *e = ca_fit("tip-adapter-f", &d, &p, NULL);
    CHECK(a && b && c && e);
    if (a && b && c && e) {
        size_t n = (size_t)N * D;
        const float *ka = ca_clf_get_tensor(a, "keys", (int64_t)n), *kb = ca_clf_get_tensor(b, "keys", (int64_t)n);
        const float *kc = ca_clf_get_tensor(c, "keys", (int64_t)n), *ke = ca_clf_get_tensor(e, "keys", (int64_t)n);
        CHECK(memcmp(ka, kb, n * sizeof(float)) == 0);
        CHECK(memcmp(ka, kc, n * sizeof(float)) == 0);
        CHECK(memcmp(ka, ke, n * sizeof(float)) != 0);
        CHECK(memcmp(ka, d.train.x, n * sizeof(float)) != 0); /* training moved the keys */
    }
    ca_classifier_free(a); ca_classifier_free(b); ca_classifier_free(c); ca_classifier_free(e);
    free(xv);
    ca_features_free(fs);
}

/* Tip-Adapter's fit (affinities from keys packed once, block by block) and its logits (the
 * threads' 64-row pieces) against the straightforward forms on stanford_cars: one ca_sgemm of
 * all val rows with the keys then the search, and per 512-row block ca_sgemm + the row kernel;
 * the same pair and bit-identical logits. tip-cache's pruned β search reproduces its val
 * accuracy through its full logits (every class scored). */
static void test_tip_fit_and_logits_straight(void) {
    ca_featureset *fs = cars();
    if (!fs) return;
    ca_fit_data d = fit_data(fs, "train.16shot");
    int n = d.val.n, N = d.train.n, C = d.num_classes, D = d.dim;
    ca_status st;
    ca_classifier *tip = ca_fit("tip-adapter", &d, NULL, &st);
    CHECK_MSG(tip != NULL, "%s", ca_last_error());
    float *clip = malloc(sizeof(float) * (size_t)n * C), *aff = malloc(sizeof(float) * (size_t)n * N);
    float *l1 = malloc(sizeof(float) * (size_t)n * C), *l2 = malloc(sizeof(float) * (size_t)n * C);
    if (tip && clip && aff && l1 && l2) {
        ca_logits_linear(d.val.x, n, d.text_w, C, D, 100.0f, clip);
        ca_sgemm(0, 1, n, N, D, 1.0f, d.val.x, D, d.train.x, D, 0.0f, aff, N);
        ca_tip_search_in in = {.n = n, .N = N, .C = C, .clip = clip, .aff = aff, .key_y = d.train.y, .y = d.val.y};
        ca_fit_params p = ca_fit_default_params();
        ca_tip_choice ch;
        CHECK(ca_tip_search(&in, &p, &ch) == CA_OK);
        CHECK_NEAR(ca_classifier_param(tip, "alpha", -1), ch.alpha, 0);
        CHECK_NEAR(ca_classifier_param(tip, "beta", -1), ch.beta, 0);
        CHECK_NEAR(ca_classifier_param(tip, "search_val_acc", -1), ch.acc, 0);
        float alpha = (float)ch.alpha, beta = (float)ch.beta;
        CHECK(ca_tip_logits(d.val.x, n, d.text_w, d.train.x, d.train.y, N, C, D, alpha, beta, l1) == CA_OK);
        for (int r0 = 0; r0 < n; r0 += 512) {
            int m = n - r0 < 512 ? n - r0 : 512;
            ca_logits_linear(d.val.x + (size_t)r0 * D, m, d.text_w, C, D, 100.0f, clip);
            ca_sgemm(0, 1, m, N, D, 1.0f, d.val.x + (size_t)r0 * D, D, d.train.x, D, 0.0f, aff, N);
            CHECK(ca_tip_logits_from_aff(clip, aff, d.train.y, m, N, C, alpha, beta, l2 + (size_t)r0 * C) == CA_OK);
        }
        CHECK_MSG(memcmp(l1, l2, sizeof(float) * (size_t)n * C) == 0, "tip logits differ from the per-block ca_sgemm form");
    }
    for (int k = 1; k <= 16; k *= 16) {
        char name[32];
        snprintf(name, sizeof name, "train.%dshot", k);
        ca_fit_data dk = fit_data(fs, name);
        ca_classifier *tc = ca_fit("tip-cache", &dk, NULL, &st);
        CHECK_MSG(tc != NULL, "%s", ca_last_error());
        if (tc) CHECK_NEAR(acc_of(tc, &dk.val), ca_classifier_param(tc, "val_acc", -1), 0); /* exact: run.c uses it */
        ca_classifier_free(tc);
    }
    ca_classifier_free(tip);
    free(clip); free(aff); free(l1); free(l2);
    ca_features_free(fs);
}

/* `test_tip --search`: the search, Tip-Adapter and tip-cache checks only (no training), which
 * make test runs again on every other CPU path. */
int main(int argc, char **argv) {
    const int all = !(argc > 1 && strcmp(argv[1], "--search") == 0);
    RUN(test_grid);
    RUN(test_vexp);
    RUN(test_search_matches_oracle);
    RUN(test_search_blocked_exact);
    RUN(test_search_counts_continuous);
    RUN(test_search_skips_exact);
    RUN(test_search_aff_rows);
    RUN(test_vexp_d);
    RUN(test_tc_rows_exact);
    RUN(test_cache_row_runs_exact);
    if (all) {
        RUN(test_gradient_check);
        RUN(test_adamw);
        RUN(test_tipf_deterministic_and_views);
        RUN(test_cars_16shot);
    }
    RUN(test_tip_fit_and_logits_straight);
    TEST_END();
}
