/* test_fastfit.c — the fast training steps of the ImageNet-size fits against their naive
 * oracles: ca_gemm_tn_panels against ca_sgemm_ref; Tip-Adapter-F's packed-keys step against
 * ca_tipf_loss_grad (bit-identical where ca_sgemm takes the AVX-512 kernel, whatever the thread
 * count); CLIP-Adapter's packed-W0 step against the plain one and against finite differences,
 * including a planted gradient error that the check must catch; and a CLIP-Adapter fit on the
 * fast path being deterministic. The fast paths exist on AVX-512 only; elsewhere those checks
 * are skipped (said on stderr). */
#include "harness.h"
#define TM_SEED 4242
#pragma GCC diagnostic ignored "-Wunused-function"   /* testmath.h's method helpers, unused here */
#include "testmath.h"
#include "adapt/methods.h"
#include "adapt/tip.h"
#include "adapt/clip_adapter_step.h"
#include "adapt/train.h"
#include "model/fastgemm.h"
#include "model/gemm.h"

#include <string.h>

static float *panels_alloc(int N, int K) {
    size_t n = ca_pack_size(N, K, CA_DT_F32);
    float *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}

/* max |a-b| / max(|b|, floor) over n values */
static double max_rel(const float *a, const float *b, size_t n, double floor_) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), floor_);
        if (!(e <= w)) w = e;   /* NaN counts as worst */
    }
    return w;
}

/* ---- Cp = (Aᵀ·B) in panels ---- */
static void check_tn_panels(int M, int N, int K, int threads) {
    float *A = malloc(sizeof(float) * K * M), *B = malloc(sizeof(float) * K * N);
    float *C = malloc(sizeof(float) * M * N), *got = malloc(sizeof(float) * N * M);
    float *Bp = panels_alloc(N, K), *Cp = panels_alloc(N, M);
    fill(A, (size_t)K * M, 1); fill(B, (size_t)K * N, 1);
    ca_packed bp, cp;
    CHECK(ca_pack_weights_into(&bp, Bp, ca_pack_size(N, K, CA_DT_F32), B, CA_DT_F32, N, K, N, 1, CA_DT_F32) == CA_OK);
    CHECK(ca_gemm_tn_panels(M, N, K, 0.5f, A, M, Bp, Cp, threads) == CA_OK);
    ca_sgemm_ref(1, 0, M, N, K, 0.5f, A, M, B, N, 0.0f, C, N);   /* C (M,N) = 0.5·Aᵀ·B */
    cp = (ca_packed){.N = N, .K = M, .p = Cp, .borrowed = 1};
    CHECK(ca_packed_unpack(&cp, got, M) == CA_OK);               /* (N,M) */
    float *Ct = malloc(sizeof(float) * N * M);
    for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) Ct[(size_t)j * M + i] = C[(size_t)i * N + j];
    double e = max_rel(got, Ct, (size_t)N * M, sqrt((double)K));   /* sums of K unit products */
    CHECK_MSG(e < 1e-5, "tn_panels M=%d N=%d K=%d: max rel err %.3g", M, N, K, e);
    /* the padding columns of the last panel stay 0 */
    int np = (N + 31) / 32, pad = 0;
    for (int k = 0; k < M; k++) for (int j = N - (np - 1) * 32; j < 32; j++) pad |= Cp[((size_t)(np - 1) * M + k) * 32 + j] != 0.0f;
    CHECK(!pad);
    free(A); free(B); free(C); free(got); free(Ct); free(Bp); free(Cp);
}

static void test_gemm_tn_panels(void) {
    check_tn_panels(37, 45, 50, 1);
    check_tn_panels(37, 45, 50, 2);
    check_tn_panels(12, 32, 1, 2);
    check_tn_panels(70, 100, 800, 2);   /* two K blocks */
}

/* ---- Tip-Adapter-F: packed-keys step vs ca_tipf_loss_grad ---- */
/* sorted: key labels in runs (class by class, as few-shot caches are stored), the last keys
 * back in class 0, so one class has two runs; else random labels (runs of about one key) */
static void tipf_compare(int B, int N, int D, int C, int exact, int sorted) {
    float *x = malloc(sizeof(float) * B * D), *keys = malloc(sizeof(float) * N * D), *clip = malloc(sizeof(float) * B * C);
    float *g = malloc(sizeof(float) * N * D), *gp = malloc(sizeof(float) * N * D);
    int32_t *y = malloc(sizeof(int32_t) * B), *ky = malloc(sizeof(int32_t) * N);
    fill(x, (size_t)B * D, 1); normrows(x, B, D);
    fill(keys, (size_t)N * D, 1); normrows(keys, N, D);
    fill(clip, (size_t)B * C, 3);
    for (int i = 0; i < B; i++) y[i] = (int32_t)(urand() * C);
    for (int k = 0; k < N; k++) ky[k] = sorted ? (int32_t)((int64_t)k * C / N) : (int32_t)(urand() * C);
    if (sorted) for (int k = N - N / (2 * C) - 1; k < N; k++) ky[k] = 0;
    float *sc = malloc(sizeof(float) * ca_tipf_scratch_floats(B, N, C));
    float *scp = malloc(sizeof(float) * ca_tipf_packed_scratch_floats(B, N, C));
    float *kp = panels_alloc(N, D), *dkp[2] = {panels_alloc(N, D), panels_alloc(N, D)};
    ca_packed pk;
    CHECK(ca_pack_weights_into(&pk, kp, ca_pack_size(N, D, CA_DT_F32), keys, CA_DT_F32, N, D, D, 0, CA_DT_F32) == CA_OK);
    double l = ca_tipf_loss_grad(x, y, clip, B, keys, ky, N, D, C, 1.3f, 2.1f, g, sc);
    double lp[2];
    for (int t = 0; t < 2; t++) lp[t] = ca_tipf_loss_grad_packed(x, y, clip, B, kp, ky, N, D, C, 1.3f, 2.1f, dkp[t], scp, t + 1);
    ca_packed gv = {.N = N, .K = D, .p = dkp[0], .borrowed = 1};
    CHECK(ca_packed_unpack(&gv, gp, D) == CA_OK);
    CHECK_MSG(memcmp(dkp[0], dkp[1], ca_pack_size(N, D, CA_DT_F32)) == 0 && lp[0] == lp[1],
              "packed step differs between 1 and 2 threads (B=%d N=%d D=%d)", B, N, D);
    if (exact) {
        CHECK_MSG(l == lp[0] && memcmp(g, gp, sizeof(float) * N * D) == 0,
                  "packed step not bit-identical (B=%d N=%d D=%d): loss %.17g vs %.17g, grad max rel %.3g", B, N, D, l, lp[0],
                  max_rel(gp, g, (size_t)N * D, 1e-3));
    } else {
        CHECK_NEAR(lp[0], l, 1e-5 * fabs(l));
        double e = max_rel(gp, g, (size_t)N * D, 1e-4);
        CHECK_MSG(e < 1e-3, "packed gradient max rel err %.3g (B=%d N=%d D=%d)", e, B, N, D);
    }
    /* the comparison can fail: one planted error in the gradient is seen */
    gp[N * D / 2] *= 1.1f;
    CHECK(max_rel(gp, g, (size_t)N * D, 1e-4) > 1e-3 || g[N * D / 2] == 0.0f);
    free(x); free(keys); free(clip); free(g); free(gp); free(y); free(ky); free(sc); free(scp);
    free(kp); free(dkp[0]); free(dkp[1]);
}

static void test_tipf_packed_step(void) {
    if (!ca_fastgemm_avx512()) { fprintf(stderr, "  (no AVX-512: the packed path is not used here)\n"); }
    tipf_compare(5, 45, 19, 4, 0, 0);      /* odd shapes, padded last panel, below the AVX-512 size */
    tipf_compare(33, 70, 40, 7, 0, 1);
    /* B·N·D = 2^24: ca_sgemm takes the AVX-512 kernel, so the steps agree bit for bit, with
     * random labels and with labels in runs (the packed step sums classes run by run) */
    tipf_compare(256, 256, 256, 10, ca_fastgemm_avx512(), 0);
    tipf_compare(256, 256, 256, 10, ca_fastgemm_avx512(), 1);
}

/* ---- the same product, each panel handed to a function as it completes ---- */
typedef struct { float *dst; int M; int calls; } panel_sink;

static void sink_panel(int jp, float *panel, void *user) {
    panel_sink *s = user;
    memcpy(s->dst + (size_t)jp * s->M * 32, panel, sizeof(float) * (size_t)s->M * 32);
    #pragma omp atomic
    s->calls++;
}

static void test_gemm_tn_panels_each(void) {
    static const int shapes[][3] = {{37, 45, 50}, {70, 100, 800}, {512, 200, 256}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2], np = (N + 31) / 32;
        float *B = malloc(sizeof(float) * K * N), *A = malloc(sizeof(float) * K * M);
        float *Bp = panels_alloc(N, K), *Cp = panels_alloc(N, M), *got = panels_alloc(N, M), *got2 = panels_alloc(N, M);
        fill(A, (size_t)K * M, 1); fill(B, (size_t)K * N, 1);
        ca_packed bp;
        CHECK(ca_pack_weights_into(&bp, Bp, ca_pack_size(N, K, CA_DT_F32), B, CA_DT_F32, N, K, N, 1, CA_DT_F32) == CA_OK);
        CHECK(ca_gemm_tn_panels(M, N, K, 0.5f, A, M, Bp, Cp, 2) == CA_OK);
        for (int t = 1; t <= 2; t++) {   /* per-thread buffers (Cp NULL), 1 and 2 threads */
            panel_sink s = {t == 1 ? got : got2, M, 0};
            CHECK(ca_gemm_tn_panels_each(M, N, K, 0.5f, A, M, Bp, NULL, t, sink_panel, &s) == CA_OK);
            CHECK_EQ_INT(s.calls, np);
            CHECK_MSG(memcmp(s.dst, Cp, ca_pack_size(N, M, CA_DT_F32)) == 0, "tn_panels_each differs (M=%d N=%d K=%d, %d threads)", M, N, K, t);
        }
        /* and into the caller's panels, which then hold the same */
        memset(got, 0, ca_pack_size(N, M, CA_DT_F32));
        panel_sink s = {got2, M, 0};
        CHECK(ca_gemm_tn_panels_each(M, N, K, 0.5f, A, M, Bp, got, 2, sink_panel, &s) == CA_OK);
        CHECK(memcmp(got, Cp, ca_pack_size(N, M, CA_DT_F32)) == 0);
        /* the comparison can fail */
        got[(size_t)M * 16] += 1.0f;
        CHECK(memcmp(got, Cp, ca_pack_size(N, M, CA_DT_F32)) != 0);
        free(B); free(A); free(Bp); free(Cp); free(got); free(got2);
    }
    CHECK(ca_gemm_tn_panels_each(4, 4, 4, 1.0f, NULL, 4, NULL, NULL, 1, NULL, NULL) == CA_E_ARG);
}

/* ---- Tip-Adapter-F: the fused step + AdamW against the packed step then ca_optim_step ---- */
static void tipf_fused_compare(int B, int N, int D, int C, int threads) {
    float *x = malloc(sizeof(float) * B * D), *keys = malloc(sizeof(float) * N * D), *clip = malloc(sizeof(float) * B * C);
    int32_t *y = malloc(sizeof(int32_t) * B), *ky = malloc(sizeof(int32_t) * N);
    fill(x, (size_t)B * D, 1); normrows(x, B, D);
    fill(keys, (size_t)N * D, 1); normrows(keys, N, D);
    fill(clip, (size_t)B * C, 3);
    for (int i = 0; i < B; i++) y[i] = (int32_t)(urand() * C);
    for (int k = 0; k < N; k++) ky[k] = (int32_t)(urand() * C);
    size_t pn = ca_pack_size(N, D, CA_DT_F32), nf = pn / sizeof(float);
    float *scp = malloc(sizeof(float) * ca_tipf_packed_scratch_floats(B, N, C));
    float *k1 = panels_alloc(N, D), *k2 = panels_alloc(N, D), *g = panels_alloc(N, D);
    float *m1 = panels_alloc(N, D), *v1 = panels_alloc(N, D), *m2 = panels_alloc(N, D), *v2 = panels_alloc(N, D);
    ca_packed pk;
    CHECK(ca_pack_weights_into(&pk, k1, pn, keys, CA_DT_F32, N, D, D, 0, CA_DT_F32) == CA_OK);
    memcpy(k2, k1, pn);
    const ca_optim opt = {.kind = CA_OPT_ADAMW, .weight_decay = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-4f};
    int same = 1;
    for (int t = 1; t <= 3; t++) {   /* three steps, so the moments matter */
        double la = ca_tipf_loss_grad_packed(x, y, clip, B, k1, ky, N, D, C, 1.3f, 2.1f, g, scp, threads);
        ca_optim_step(&opt, 1e-2, t, k1, g, m1, v1, nf);
        double lb = ca_tipf_step_packed(x, y, clip, B, k2, ky, N, D, C, 1.3f, 2.1f, &opt, 1e-2, t, m2, v2, scp, threads);
        same &= la == lb;
    }
    CHECK_MSG(same && memcmp(k1, k2, pn) == 0 && memcmp(m1, m2, pn) == 0 && memcmp(v1, v2, pn) == 0,
              "fused Tip-F step + AdamW differs from the two calls (B=%d N=%d D=%d, %d threads)", B, N, D, threads);
    /* the keys did move, so the comparison could fail */
    float *k0 = panels_alloc(N, D);
    CHECK(ca_pack_weights_into(&pk, k0, pn, keys, CA_DT_F32, N, D, D, 0, CA_DT_F32) == CA_OK);
    CHECK(memcmp(k0, k2, pn) != 0);
    free(x); free(keys); free(clip); free(y); free(ky); free(scp); free(k0);
    free(k1); free(k2); free(g); free(m1); free(v1); free(m2); free(v2);
}

/* ---- the vectorised AdamW against ca_optim_step, with a tail that is not a whole vector ---- */
static void test_adamw_kernel(void) {
    enum { n = 1000 + 13 };
    float p[n], g[n], m[n], v[n], p2[n], m2[n], v2[n];
    fill(p, n, 1); fill(g, n, 1); fill(m, n, 0.1); fill(v, n, 0.1);
    for (int i = 0; i < n; i++) v[i] = fabsf(v[i]);
    g[7] = 0.0f; g[8] = -0.0f; v[9] = 0.0f;   /* zero gradients and a zero second moment */
    memcpy(p2, p, sizeof p); memcpy(m2, m, sizeof m); memcpy(v2, v, sizeof v);
    const ca_optim opt = {.kind = CA_OPT_ADAMW, .weight_decay = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-4f};
    int same = 1;
    for (int t = 1; t <= 4; t++) {
        double lr = 1e-3 * t, bc1 = 1.0 - pow(opt.beta1, (double)t), bc2 = 1.0 - pow(opt.beta2, (double)t);
        ca_optim_step(&opt, lr, t, p, g, m, v, n);
        ca_adamw_f32(p2, g, m2, v2, n, (float)(1.0 - lr * opt.weight_decay), opt.beta1, opt.beta2, (float)(lr / bc1),
                     (float)sqrt(bc2), opt.eps);
        same &= memcmp(p, p2, sizeof p) == 0 && memcmp(m, m2, sizeof m) == 0 && memcmp(v, v2, sizeof v) == 0;
    }
    CHECK_MSG(same, "ca_adamw_f32 differs from ca_optim_step");
    p2[n - 1] = nextafterf(p2[n - 1], 1e9f);   /* the comparison can fail */
    CHECK(memcmp(p, p2, sizeof p) != 0);
}

/* ---- ca_gather_mul_panels against its loop ---- */
static void test_gather_mul_panels(void) {
    static const int ns[] = {1, 16, 31, 32, 45, 100};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        int n = ns[t], np = (n + 31) / 32;
        size_t stride = 3 * 32;   /* row 0 of panels of 3 rows */
        float a[100], h[7], *got = malloc(sizeof(float) * stride * np), *want = malloc(sizeof(float) * stride * np);
        int32_t idx[100];
        fill(a, (size_t)n, 1); fill(h, 7, 1);
        for (int j = 0; j < n; j++) idx[j] = (int32_t)(urand() * 7);
        for (size_t i = 0; i < stride * np; i++) got[i] = want[i] = 5.0f;   /* other rows stay */
        for (int j = 0; j < np * 32; j++) want[(size_t)(j / 32) * stride + j % 32] = j < n ? h[idx[j]] * a[j] : 0.0f;
        ca_gather_mul_panels(got, stride, a, h, idx, n);
        CHECK_MSG(memcmp(got, want, sizeof(float) * stride * np) == 0, "ca_gather_mul_panels differs at n=%d", n);
        free(got); free(want);
    }
}

static void test_tipf_fused_step(void) {
    tipf_fused_compare(5, 45, 19, 4, 1);
    tipf_fused_compare(33, 70, 40, 7, 2);
    tipf_fused_compare(256, 256, 256, 10, 1);
    tipf_fused_compare(256, 256, 256, 10, 2);
}

/* ---- CLIP-Adapter: the large-C step and the packed-W0 step against the plain one ---- */
/* path 0: plain (oracle), 1: packed W0, 2: large-C step on `threads` threads */
typedef struct { int path, threads, gate, C, D, h, B, plant; const float *W0, *X; const int32_t *y; } ca_ctx;

static double ca_obj(const float *P, float *g, void *u) {
    ca_ctx *c = u;
    double l = c->path == 2 ? ca_clip_adapter_loss_fast(c->threads, 1, c->gate, 0.3f, c->C, c->D, c->h, c->W0, c->X, c->y, c->B, P, g)
             : c->path == 1 ? ca_clip_adapter_loss_packed(1, c->gate, 0.3f, c->C, c->D, c->h, c->W0, c->X, c->y, c->B, P, g)
                            : ca_clip_adapter_loss(1, c->gate, 0.3f, c->C, c->D, c->h, c->W0, c->X, c->y, c->B, P, g);
    if (c->plant) g[c->plant] *= 1.1f;   /* a planted error: 10% on one coordinate */
    return l;
}

/* One shape: the fast path against the plain step (loss, gradient), at 1, 2 and 3 threads
 * (bit-identical among themselves), and with fd, finite differences and a planted error that
 * must show. (On the larger shape the finite differences cross ReLU kinks: the plain step
 * fails them on the same coordinate, so there the comparison with it is the check.) */
static void clip_adapter_compare(int path, int gate, int C, int D, int H, int B, int fd) {
    float *W0 = malloc(sizeof(float) * C * D), *X = malloc(sizeof(float) * B * D);
    int32_t *y = malloc(sizeof(int32_t) * B);
    fill(W0, (size_t)C * D, 1); normrows(W0, C, D);
    fill(X, (size_t)B * D, 1); normrows(X, B, D);
    for (int i = 0; i < B; i++) y[i] = (int32_t)(urand() * C);
    y[B - 1] = C - 1;
    size_t n = ca_clip_adapter_nparams(1, gate, C, D, H);
    float *P = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)), *gf = malloc(n * sizeof(float));
    float *g2 = malloc(n * sizeof(float));
    fill(P, n, 0.5);
    if (gate) P[n - 1] = -0.8f;   /* gate bias: ratio sigmoid(-0.8) plus the q·x term */
    ca_ctx c = {path, 1, gate, C, D, H, B, 0, W0, X, y};
    double lf = ca_obj(P, gf, &c);
    if (!ca_fastgemm_avx512()) {
        CHECK(isnan(lf));   /* no fast path without AVX-512: said, not faked */
        fprintf(stderr, "  (no AVX-512: the fast CLIP-Adapter steps are not used here)\n");
    } else {
        c.path = 0;
        double l = ca_obj(P, g, &c);
        CHECK_NEAR(lf, l, 1e-5 * fabs(l));
        double e = max_rel(gf, g, n, 1e-3);
        CHECK_MSG(e < 1e-3, "fast CLIP-Adapter (path %d, C=%d D=%d h=%d B=%d) gradient max rel err %.3g", path, C, D, H, B, e);
        c.path = path;
        if (path == 2)
            for (int t = 2; t <= 3; t++) {   /* the thread count changes no bit */
                c.threads = t;
                double lt = ca_obj(P, g2, &c);
                CHECK_MSG(lt == lf && memcmp(g2, gf, n * sizeof(float)) == 0,
                          "large-C step differs at %d threads (C=%d D=%d h=%d B=%d): loss %.17g vs %.17g, grad max rel %.3g",
                          t, C, D, H, B, lt, lf, max_rel(g2, gf, n, 1e-3));
            }
        c.threads = 2;
        if (!fd) goto out;
        CHECK_EQ_INT(gradcheck(ca_obj, P, n, 4e-3, 2e-2, 1e-2, &c, "clip-adapter fast"), 0);
        /* the check can fail: the planted error is caught on a coordinate with a real gradient */
        size_t at = 0;
        for (size_t i = 0; i < n; i++) if (fabs(gf[i]) > fabs(gf[at])) at = i;
        c.plant = (int)at;
        CHECK(at > 0 && gradcheck(ca_obj, P, n, 4e-3, 2e-2, 1e-2, &c, "clip-adapter fast, planted error") > 0);
    }
out:
    free(W0); free(X); free(y); free(P); free(g); free(gf); free(g2);
}

static void test_clip_adapter_fast_step(void) {
    /* Its own data whatever ran before (testmath.h's generator is shared by the tests of this
     * file, so a test added earlier changed this one's data). The central differences (h = 4e-3)
     * are only accurate away from the ReLU kinks and the gate's curvature, so the data is fixed to
     * a draw whose probes avoid them; the fast step's equality with the plain one (the oracle,
     * itself gradient-checked in test_adapters.c) is checked on any data. */
    rs = TM_SEED + 7;
    clip_adapter_compare(1, 0, 40, 16, 4, 6, 1);    /* packed W0, fixed ratio */
    clip_adapter_compare(1, 1, 40, 16, 4, 6, 1);    /* packed W0, gate */
    clip_adapter_compare(2, 0, 40, 16, 4, 6, 1);    /* large-C step: one partial column chunk */
    clip_adapter_compare(2, 0, 70, 40, 13, 37, 0);  /* three chunks, partial row tiles, two column tiles */
}

/* The large-C step's update equals ca_optim_step on its gradient, bit for bit, at 1 and 2
 * threads (the update is split over the threads), and a step with a non-finite loss updates
 * nothing. */
static void test_clip_adapter_fast_update(void) {
    enum { C = 50, D = 24, H = 6, B = 20 };
    if (!ca_fastgemm_avx512()) { fprintf(stderr, "  (no AVX-512: skipped)\n"); return; }
    float W0[C * D], X[B * D];
    int32_t y[B];
    fill(W0, C * D, 1); normrows(W0, C, D);
    fill(X, B * D, 1); normrows(X, B, D);
    for (int i = 0; i < B; i++) y[i] = (int32_t)(urand() * C);
    size_t n = ca_clip_adapter_nparams(1, 0, C, D, H);
    float *P0 = malloc(n * sizeof(float)), *P = malloc(n * sizeof(float)), *Q = malloc(n * sizeof(float));
    float *G = malloc(n * sizeof(float)), *M = calloc(n, sizeof(float)), *V = calloc(n, sizeof(float));
    float *M2 = calloc(n, sizeof(float)), *V2 = calloc(n, sizeof(float));
    fill(P0, n, 0.5);
    ca_optim o = {.kind = CA_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    for (int t = 1; t <= 2; t++) {
        ca_castep cs;
        CHECK(ca_castep_init(&cs, W0, C, D, H, B, t) == CA_OK);
        memcpy(P, P0, n * sizeof(float)); memcpy(Q, P0, n * sizeof(float));
        memset(M, 0, n * sizeof(float)); memset(V, 0, n * sizeof(float));
        memset(M2, 0, n * sizeof(float)); memset(V2, 0, n * sizeof(float));
        for (int64_t k = 1; k <= 3; k++) {
            double l = ca_castep_run(&cs, P, X, y, B, 0.2f, G, &o, 1e-2, k, M, V);
            CHECK(isfinite(l));
            ca_optim_step(&o, 1e-2, k, Q, G, M2, V2, n);   /* the oracle update on the same gradient */
        }
        CHECK_MSG(memcmp(P, Q, n * sizeof(float)) == 0 && memcmp(M, M2, n * sizeof(float)) == 0,
                  "fused update differs from ca_optim_step at %d threads (max rel %.3g)", t, max_rel(P, Q, n, 1e-6));
        /* a non-finite input: the loss says so and P stays */
        float Xbad[B * D];
        memcpy(Xbad, X, sizeof Xbad);
        Xbad[5] = NAN;
        memcpy(Q, P, n * sizeof(float));
        CHECK(!isfinite(ca_castep_run(&cs, P, Xbad, y, B, 0.2f, G, &o, 1e-2, 4, M, V)));
        CHECK(memcmp(P, Q, n * sizeof(float)) == 0);
        ca_castep_free(&cs);
    }
    free(P0); free(P); free(Q); free(G); free(M); free(V); free(M2); free(V2);
}

/* A fit whose logits product (32·512·512 = 2^23) takes the fast path: the same at 1 and 2
 * threads. */
static void test_clip_adapter_fast_fit_deterministic(void) {
    /* elsewhere the fit takes the plain step, whose OpenBLAS products depend on the thread count */
    if (!ca_fastgemm_avx512()) { fprintf(stderr, "  (no AVX-512: skipped)\n"); return; }
    synth s;
    synth_make(&s, 512, 512, 1, 2, 1.0);
    ca_fit_params p = ca_fit_default_params();
    p.epochs = 2;
    ca_fit_data d = {.num_classes = s.C, .dim = s.D, .text_w = s.W};
    d.train = (ca_split){.n = s.C * s.K, .dim = s.D, .x = s.x, .y = s.y};
    d.val = (ca_split){.n = s.Nv, .dim = s.D, .x = s.xv, .y = s.yv};
    ca_status st;
    /* the large-C step takes this fit: one thread and two give the same classifier */
    p.threads = 1;
    ca_classifier *a = ca_fit("clip-adapter", &d, &p, &st);
    p.threads = 2;
    ca_classifier *b = ca_fit("clip-adapter", &d, &p, NULL);
    CHECK_MSG(a && b, "%s", ca_last_error());
    if (a && b) {
        float *la = malloc(sizeof(float) * s.Nv * s.C), *lb = malloc(sizeof(float) * s.Nv * s.C);
        CHECK(ca_classifier_logits(a, s.xv, s.Nv, la) == CA_OK && ca_classifier_logits(b, s.xv, s.Nv, lb) == CA_OK);
        CHECK(memcmp(la, lb, sizeof(float) * s.Nv * s.C) == 0);
        int finite = 1;
        for (int i = 0; i < s.Nv * s.C; i++) finite &= isfinite(la[i]) != 0;
        CHECK(finite);
        free(la); free(lb);
    }
    ca_classifier_free(a); ca_classifier_free(b);
    synth_free(&s);
}

/* Tip-Adapter-F's BF16 val screen: on the fast path (AVX512-BF16 CPUs) the fit with the screen
 * gives the classifier of the fit without it (the same keys, α, β, best epoch and val
 * accuracy), having left some rows to the exact pass and settled the others. Half the val rows
 * are near ties (x = k_a + k_b normalised, with zero text weights and a learning rate too small
 * to move the keys, so the two classes' logits differ by F32 rounding while BF16 moves them by
 * ~1e-3): a screen that trusts BF16 blindly (bound scaled to ~0) must then change the
 * selection's val accuracy, or this check could not notice a wrong bound. */
static ca_classifier *tipf_fit_scaled(const ca_fit_data *d, double scale) {
    double old = ca_tipf_set_screen_scale(scale);
    ca_fit_params p = ca_fit_default_params();
    p.epochs = 2;
    p.lr = 1e-7;
    ca_classifier *c = ca_fit("tip-adapter-f", d, &p, NULL);
    ca_tipf_set_screen_scale(old);
    return c;
}

static void test_tipf_val_screen(void) {
    if (!ca_fastgemm_avx512() || !ca_fastgemm_bf16()) { fprintf(stderr, "  (no AVX512-BF16: skipped)\n"); return; }
    enum { C = 256, D = 512, NV = 2000 };
    float *k = malloc(sizeof(float) * C * D), *xv = malloc(sizeof(float) * NV * D), *W = calloc((size_t)C * D, sizeof(float));
    int32_t *y = malloc(sizeof(int32_t) * C), *yv = malloc(sizeof(int32_t) * NV);
    fill(k, (size_t)C * D, 1);
    normrows(k, C, D);
    for (int c = 0; c < C; c++) y[c] = c;
    for (int i = 0; i < NV; i++) {
        int a = (int)(urand() * C) % C, b = (a + 1 + (int)(urand() * (C - 1)) % (C - 1)) % C;
        float *r = xv + (size_t)i * D;
        for (int j = 0; j < D; j++)
            r[j] = i % 2 ? k[(size_t)a * D + j] + k[(size_t)b * D + j] : k[(size_t)a * D + j] + (float)(0.05 * nrand());
        normrows(r, 1, D);
        yv[i] = a;
    }
    ca_fit_data d = {.num_classes = C, .dim = D, .text_w = W};
    d.train = (ca_split){.n = C, .dim = D, .x = k, .y = y};
    d.val = (ca_split){.n = NV, .dim = D, .x = xv, .y = yv};
    ca_classifier *ex = tipf_fit_scaled(&d, 0), *sc = tipf_fit_scaled(&d, 1), *blind = tipf_fit_scaled(&d, 1e-9);
    CHECK_MSG(ex && sc && blind, "%s", ca_last_error());
    if (ex && sc && blind) {
        double rows = ca_classifier_param(sc, "select_exact_rows", -2);
        fprintf(stderr, "  screen: %g of %d val rows recomputed in F32 over 2 epochs; val accuracy exact %.2f, blind screen %.2f\n",
                rows, 2 * NV, ca_classifier_param(ex, "select_val_acc", -1), ca_classifier_param(blind, "select_val_acc", -1));
        CHECK(ca_classifier_param(ex, "select_exact_rows", -2) == -1);
        CHECK(rows > 0 && rows < 2 * NV);   /* both branches ran */
        const char *same[] = {"best_epoch", "select_val_acc", "alpha", "beta", "search_val_acc", "train_loss"};
        for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
            CHECK_MSG(ca_classifier_param(ex, same[i], -1) == ca_classifier_param(sc, same[i], -2), "%s differs with the screen", same[i]);
        float *la = malloc(sizeof(float) * NV * C), *lb = malloc(sizeof(float) * NV * C);
        CHECK(ca_classifier_logits(ex, xv, NV, la) == CA_OK && ca_classifier_logits(sc, xv, NV, lb) == CA_OK);
        CHECK_MSG(memcmp(la, lb, sizeof(float) * NV * C) == 0, "logits differ with the screen");
        free(la); free(lb);
        CHECK_MSG(ca_classifier_param(blind, "select_val_acc", -1) != ca_classifier_param(ex, "select_val_acc", -2),
                  "a blind screen went unnoticed");
    }
    ca_classifier_free(ex); ca_classifier_free(sc); ca_classifier_free(blind);
    free(k); free(xv); free(W); free(y); free(yv);
}

int main(void) {
    RUN(test_gemm_tn_panels);
    RUN(test_tipf_packed_step);
    RUN(test_clip_adapter_fast_step);
    RUN(test_clip_adapter_fast_update);
    RUN(test_clip_adapter_fast_fit_deterministic);
    /* after the CLIP-Adapter checks, whose finite differences were tuned on the random stream
     * they draw when they run in this order */
    RUN(test_gemm_tn_panels_each);
    RUN(test_tipf_fused_step);
    RUN(test_adamw_kernel);
    RUN(test_gather_mul_panels);
    RUN(test_tipf_val_screen);
    TEST_END();
}
