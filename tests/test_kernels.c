/* test_kernels.c — the fast CPU paths against their naive oracles: the AVX-512 GEMM (every edge
 * shape, transposes, alpha/beta, fused bias + activation, F16/BF16 packed weights, 1 and 2
 * threads), vector exp and QuickGELU. */
#include "core/core.h"
#include "harness.h"
#include "model/fastgemm.h"
#include "model/gemm.h"

#include <stdint.h>

static float *rnd(long n, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ca_rng r = ca_rng_make(seed, 0);
    for (long i = 0; i < n; i++) x[i] = (float)(ca_rng_uniform(&r) * 2 - 1);
    return x;
}

/* max |a-b| / (1 + |b|) over n, printing the first few mismatches above tol */
static double cmp(const char *what, const float *a, const float *b, long n, double tol) {
    double worst = 0;
    int shown = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= tol) && shown++ < 3) fprintf(stderr, "  %s[%ld]: fast %.9g ref %.9g\n", what, i, a[i], b[i]);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

/* oracle: C = act(alpha·op(A)op(B) + bias + beta·C0) with the naive GEMM */
static void oracle(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, const float *bias, ca_act act, float beta, float *C, int ldc) {
    float *P = calloc((size_t)M * N + 1, sizeof(float));
    ca_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, P, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * ldc + j];
            float x = P[(size_t)i * N + j] + (beta != 0.0f ? beta * *c : 0.0f) + (bias ? bias[j] : 0.0f);
            *c = ca_act_ref(act, x);
        }
    free(P);
}

static void test_gemm_ex_shapes(void) {
    static const int shapes[][3] = {{1, 1, 1}, {1, 33, 7}, {12, 32, 256}, {13, 31, 257}, {25, 65, 300},
                                    {50, 96, 768}, {145, 40, 513}, {3, 5, 0}, {200, 97, 64}};
    int n = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int th = 1; th <= 2; th++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
                    long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc;
                    float *A = rnd(na, 1 + s), *B = rnd(nb, 100 + s), *C = rnd(nc, 200 + s);
                    float *R = malloc(sizeof(float) * (size_t)nc), *bias = rnd(N, 300 + s);
                    memcpy(R, C, sizeof(float) * (size_t)nc);
                    ca_act act = (ca_act)((s + ta + tb) % 3);
                    float alpha = 0.5f + ta, beta = tb ? 1.0f : 0.25f * (float)th;
                    const float *bb = (s & 1) ? bias : NULL;
                    CHECK(ca_gemm_ex(ta, tb, M, N, K, alpha, A, lda, B, ldb, bb, act, beta, C, ldc, th) == CA_OK);
                    oracle(ta, tb, M, N, K, alpha, A, lda, B, ldb, bb, act, beta, R, ldc);
                    /* float32 accumulation error grows with K; the oracle accumulates in double */
                    double tol = 1e-6 + 5e-8 * K, e = cmp("gemm_ex", C, R, nc, tol);
                    CHECK_MSG(e <= tol, "M=%d N=%d K=%d ta=%d tb=%d th=%d act=%d: rel err %.3g", M, N, K,
                              ta, tb, th, (int)act, e);
                    n++;
                    free(A); free(B); free(C); free(R); free(bias);
                }
    CHECK(n == 9 * 8);
}

static void test_sgemm_dispatch(void) {
    /* ca_sgemm may route big products to the fast kernel: it must still equal the oracle */
    int M = 70, N = 130, K = 600;
    float *A = rnd((long)M * K, 7), *B = rnd((long)N * K, 8), *C = rnd((long)M * N, 9), *R = malloc(sizeof(float) * M * N);
    memcpy(R, C, sizeof(float) * M * N);
    ca_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.5f, C, N);
    ca_sgemm_ref(0, 1, M, N, K, 1.0f, A, K, B, K, 0.5f, R, N);
    CHECK(cmp("sgemm", C, R, (long)M * N, 1e-5) <= 1e-5);
    free(A); free(B); free(C); free(R);
}

static void test_packed_half_weights(void) {
    int M = 37, N = 70, K = 129;
    float *A = rnd((long)M * K, 11), *W = rnd((long)N * K, 12), *bias = rnd(N, 13);
    uint16_t *h = malloc(2 * (size_t)N * K), *bf = malloc(2 * (size_t)N * K);
    float *wh = malloc(sizeof(float) * N * K), *wb = malloc(sizeof(float) * N * K);
    for (long i = 0; i < (long)N * K; i++) {
        h[i] = ca_f32_to_f16(W[i]);
        bf[i] = ca_f32_to_bf16(W[i]);
        wh[i] = ca_f16_to_f32(h[i]);
        wb[i] = ca_bf16_to_f32(bf[i]);
    }
    const void *src[3] = {W, h, bf};
    const float *wide[3] = {W, wh, wb};
    ca_dtype dt[3] = {CA_DT_F32, CA_DT_F16, CA_DT_BF16};
    for (int d = 0; d < 3; d++) {
        ca_packed P;
        CHECK(ca_pack_weights(&P, src[d], dt[d], N, K, K) == CA_OK);
        float *C = calloc((size_t)M * N, sizeof(float)), *R = calloc((size_t)M * N, sizeof(float));
        CHECK(ca_gemm_packed(M, A, K, &P, 1.0f, bias, CA_ACT_QUICKGELU, 0.0f, C, N, 2) == CA_OK);
        oracle(0, 1, M, N, K, 1.0f, A, K, wide[d], K, bias, CA_ACT_QUICKGELU, 0.0f, R, N);
        CHECK_MSG(cmp("packed", C, R, (long)M * N, 1e-5) <= 1e-5, "dtype %s", ca_dtype_name(dt[d]));
        ca_packed_free(&P);
        free(C); free(R);
    }
    ca_packed P;
    CHECK(ca_pack_weights(&P, W, CA_DT_I32, N, K, K) == CA_E_UNSUPPORTED);
    ca_packed_free(&P);
    ca_packed_free(NULL);
    free(A); free(W); free(bias); free(h); free(bf); free(wh); free(wb);
}

static void test_exp_quickgelu(void) {
    long n = 20011;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) x[i] = -90.0f + 180.0f * (float)i / (float)(n - 1);
    ca_exp_fast(x, y, n);
    double worst = 0;
    for (long i = 0; i < n; i++) {
        if (x[i] < -87.0f || x[i] > 88.0f) continue;
        double r = exp((double)x[i]), d = fabs(y[i] - r) / r;
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 4e-7, "exp rel err %.3g", worst);
    for (long i = 0; i < n; i++) x[i] = -30.0f + 60.0f * (float)i / (float)(n - 1);
    ca_quickgelu_fast(x, y, n - 3); /* odd length: the masked tail */
    worst = 0;
    for (long i = 0; i < n - 3; i++) {
        double r = ca_act_ref(CA_ACT_QUICKGELU, x[i]), d = fabs(y[i] - r) / (1 + fabs(r));
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 1e-6, "quickgelu rel err %.3g", worst);
    free(x); free(y);
}

int main(void) {
    fprintf(stderr, "fast kernels: %s\n", ca_fastgemm_avx512() ? "AVX-512" : "scalar fallback");
    RUN(test_gemm_ex_shapes);
    RUN(test_sgemm_dispatch);
    RUN(test_packed_half_weights);
    RUN(test_exp_quickgelu);
    TEST_END();
}
