/* test_kernels.c — every model kernel against its naive oracle on random data (odd sizes, strides,
 * padding, masks), plus closed-form checks of the activations and pooling. */
#include "core/core.h"
#include "harness.h"
#include "model/kernels.h"

static float *rnd(size_t n, uint64_t seed, double scale) {
    ca_rng r = ca_rng_make(seed, 7);
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(scale * ca_rng_normal(&r));
    return p;
}

static double maxdiff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) { double d = fabs((double)a[i] - b[i]); if (!(d <= m)) m = d; }
    return m;
}

static void test_linear(void) {
    int N = 13, IC = 37, OC = 29;
    float *x = rnd((size_t)N * IC, 1, 1), *w = rnd((size_t)OC * IC, 2, 0.2), *b = rnd(OC, 3, 1);
    float *y = malloc(sizeof(float) * N * OC), *r = malloc(sizeof(float) * N * OC);
    ca_linear(y, x, w, b, N, IC, OC);
    ca_linear_ref(r, x, w, b, N, IC, OC);
    CHECK_NEAR(maxdiff(y, r, (size_t)N * OC), 0, 1e-5);
    ca_linear(y, x, w, NULL, N, IC, OC);
    ca_linear_ref(r, x, w, NULL, N, IC, OC);
    CHECK_NEAR(maxdiff(y, r, (size_t)N * OC), 0, 1e-5);
    /* one hand-computed value: y[0][0] = sum x[0][k] w[0][k] */
    double s = 0;
    for (int k = 0; k < IC; k++) s += (double)x[k] * w[k];
    CHECK_NEAR(y[0], s, 1e-5);
    free(x); free(w); free(b); free(y); free(r);
}

static void test_layernorm(void) {
    int N = 7, C = 130;
    float *x = rnd((size_t)N * C, 4, 3), *w = rnd(C, 5, 1), *b = rnd(C, 6, 1);
    for (int i = 0; i < C; i++) x[i] += 1000.0f; /* a large mean must not lose precision */
    float *y = malloc(sizeof(float) * N * C), *r = malloc(sizeof(float) * N * C);
    ca_layernorm(y, x, w, b, N, C, 1e-5f);
    ca_layernorm_ref(r, x, w, b, N, C, 1e-5f);
    CHECK_NEAR(maxdiff(y, r, (size_t)N * C), 0, 2e-5);
    ca_layernorm(x, x, w, b, N, C, 1e-5f); /* in place */
    CHECK_NEAR(maxdiff(x, r, (size_t)N * C), 0, 2e-5);
    free(x); free(w); free(b); free(y); free(r);
}

static void test_activations(void) {
    float v[4] = {-2, 0, 1, 3};
    ca_quickgelu(v, 4);
    CHECK_NEAR(v[0], -2.0 / (1 + exp(3.404)), 1e-6);
    CHECK_NEAR(v[1], 0, 0);
    CHECK_NEAR(v[3], 3.0 / (1 + exp(-5.106)), 1e-6);
    float g[2] = {1, -1};
    ca_gelu_erf(g, 2);
    CHECK_NEAR(g[0], 0.8413447, 1e-6);
    CHECK_NEAR(g[1], -0.1586553, 1e-6);
    float t[1] = {1};
    ca_gelu_tanh(t, 1);
    CHECK_NEAR(t[0], 0.8411920, 1e-6);
    float r[3] = {-1, 0, 2};
    ca_relu(r, 3);
    CHECK(r[0] == 0 && r[1] == 0 && r[2] == 2);
}

static void test_attention(void) {
    /* self-attention over packed qkv rows, causal and not */
    int B = 3, T = 11, C = 24, NH = 3;
    float *qkv = rnd((size_t)B * T * 3 * C, 7, 1);
    float *o = malloc(sizeof(float) * B * T * C), *r = malloc(sizeof(float) * B * T * C);
    float *s = malloc(sizeof(float) * B * NH * T * T);
    for (int causal = 0; causal < 2; causal++) {
        ca_attention(o, C, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, B, T, T, C, NH, causal, s);
        ca_attention_ref(r, C, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, B, T, T, C, NH, causal);
        CHECK_NEAR(maxdiff(o, r, (size_t)B * T * C), 0, 1e-5);
    }
    /* causal: the first query sees only the first key, so it returns the first value row */
    for (int c = 0; c < C; c++) CHECK_NEAR(o[c], qkv[2 * C + c], 1e-6);
    /* one query against T keys with a query stride spanning a whole sequence (attention pool) */
    ca_attention(o, C, qkv, T * 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, B, 1, T, C, NH, 0, s);
    ca_attention_ref(r, C, qkv, T * 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, B, 1, T, C, NH, 0);
    CHECK_NEAR(maxdiff(o, r, (size_t)B * C), 0, 1e-5);
    free(qkv); free(o); free(r); free(s);
}

static void test_conv2d(void) {
    struct { int N, C, H, OC, K, s, p; } cases[] = {
        {2, 3, 13, 5, 3, 2, 1}, /* stem */
        {2, 4, 9, 6, 3, 1, 1},  /* bottleneck conv2 */
        {3, 7, 5, 9, 1, 1, 0},  /* 1x1: the direct GEMM path */
        {2, 3, 32, 8, 8, 8, 0}, /* ViT patch embedding */
        {1, 2, 10, 3, 4, 3, 0}, /* kernel != stride, edge dropped */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int N = cases[k].N, C = cases[k].C, H = cases[k].H, OC = cases[k].OC, K = cases[k].K;
        int s = cases[k].s, p = cases[k].p, OH = ca_conv_out(H, K, s, p);
        float *x = rnd((size_t)N * C * H * H, 10 + k, 1), *w = rnd((size_t)OC * C * K * K, 20 + k, 0.3);
        size_t on = (size_t)N * OC * OH * OH;
        float *y = malloc(on * sizeof *y), *r = malloc(on * sizeof *r);
        float *col = malloc(sizeof(float) * C * K * K * OH * OH);
        ca_conv2d(y, x, w, N, C, H, H, OC, K, K, s, p, col);
        ca_conv2d_ref(r, x, w, N, C, H, H, OC, K, K, s, p);
        CHECK_MSG(maxdiff(y, r, on) <= 1e-4, "conv case %zu: max diff %g", k, maxdiff(y, r, on));
        free(x); free(w); free(y); free(r); free(col);
    }
}

static void test_batchnorm(void) {
    int N = 2, C = 5, HW = 9;
    float *x = rnd((size_t)N * C * HW, 30, 2), *w = rnd(C, 31, 1), *b = rnd(C, 32, 1), *mean = rnd(C, 33, 1);
    float *var = rnd(C, 34, 1);
    for (int c = 0; c < C; c++) var[c] = var[c] * var[c] + 0.1f;
    float *r = malloc(sizeof(float) * N * C * HW), sc[5], sh[5];
    memcpy(r, x, sizeof(float) * N * C * HW);
    ca_batchnorm_ref(r, w, b, mean, var, N, C, HW, 1e-5f);
    ca_batchnorm_fold(sc, sh, w, b, mean, var, C, 1e-5f);
    float *y = malloc(sizeof(float) * N * C * HW);
    memcpy(y, x, sizeof(float) * N * C * HW);
    ca_channel_affine(y, sc, sh, N, C, HW, 0);
    CHECK_NEAR(maxdiff(y, r, (size_t)N * C * HW), 0, 1e-5);
    memcpy(y, x, sizeof(float) * N * C * HW);
    ca_channel_affine(y, sc, sh, N, C, HW, 1);
    ca_relu(r, (size_t)N * C * HW);
    CHECK_NEAR(maxdiff(y, r, (size_t)N * C * HW), 0, 1e-5);
    free(x); free(w); free(b); free(mean); free(var); free(r); free(y);
}

static void test_avgpool(void) {
    /* 1 image, 1 channel, 5x5 -> 2x2 with k = 2 (last row/column dropped, floor mode) */
    float x[25], y[4];
    for (int i = 0; i < 25; i++) x[i] = (float)i;
    ca_avgpool2d(y, x, 1, 1, 5, 5, 2);
    CHECK_NEAR(y[0], (0 + 1 + 5 + 6) / 4.0, 1e-6);
    CHECK_NEAR(y[1], (2 + 3 + 7 + 8) / 4.0, 1e-6);
    CHECK_NEAR(y[3], (12 + 13 + 17 + 18) / 4.0, 1e-6);
}

int main(void) {
    RUN(test_linear);
    RUN(test_layernorm);
    RUN(test_activations);
    RUN(test_attention);
    RUN(test_conv2d);
    RUN(test_batchnorm);
    RUN(test_avgpool);
    TEST_END();
}
