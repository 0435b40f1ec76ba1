/* test_fastpath.c — the fast CPU paths (issue 8) against their naive oracles: the AVX-512 GEMM (every edge
 * shape, transposes, alpha/beta, fused bias + activation, F16/BF16 packed weights, F16 panels,
 * 1 and 2 threads), vector exp and QuickGELU, and the dropping/restoring of the float32 weights
 * once packed. */
#include "core/core.h"
#include "harness.h"
#include "model/fast.h"
#include "model/fastgemm.h"
#include "model/fastops.h"
#include "model/gemm.h"
#include "model/model.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

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
                   const float *B, int ldb, const float *bias, ca_epi act, float beta, float *C, int ldc) {
    float *P = calloc((size_t)M * N + 1, sizeof(float));
    ca_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, P, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * ldc + j];
            float x = P[(size_t)i * N + j] + (beta != 0.0f ? beta * *c : 0.0f) + (bias ? bias[j] : 0.0f);
            *c = ca_epi_ref(act, x);
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
                    ca_epi act = (ca_epi)((s + ta + tb) % 3);
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

/* A read in place (the direct kernel; up to 288 rows as one block) against A transposed and
 * packed (blocks of 144 rows): the same FMA sequence per element, so bit-identical, with every
 * epilogue, at 1 and 2 threads. */
static void test_gemm_direct_vs_packed_a(void) {
    static const int shapes[][3] = {{96, 64, 257}, {145, 40, 513}, {256, 100, 512}, {300, 33, 768}, {97, 64, 1000}, {120, 32, 1537}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int th = 1; th <= 2; th++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = rnd((long)M * K, 11 + s), *At = malloc(sizeof(float) * (size_t)M * K), *B = rnd((long)N * K, 21 + s);
            float *C1 = rnd((long)M * N, 31 + s), *C2 = malloc(sizeof(float) * (size_t)M * N), *bias = rnd(N, 41 + s);
            memcpy(C2, C1, sizeof(float) * (size_t)M * N);
            for (int i = 0; i < M; i++)
                for (int k = 0; k < K; k++) At[(size_t)k * M + i] = A[(size_t)i * K + k];
            ca_epi act = (ca_epi)(s % 3);
            float alpha = s % 2 ? 1.0f : 0.75f, beta = s % 3 ? 0.0f : 0.5f;
            CHECK(ca_gemm_ex(0, 1, M, N, K, alpha, A, K, B, K, bias, act, beta, C1, N, th) == CA_OK);
            CHECK(ca_gemm_ex(1, 1, M, N, K, alpha, At, M, B, K, bias, act, beta, C2, N, th) == CA_OK);
            CHECK_MSG(memcmp(C1, C2, sizeof(float) * (size_t)M * N) == 0, "M=%d N=%d K=%d th=%d: direct and packed A differ", M, N, K, th);
            free(A); free(At); free(B); free(C1); free(C2); free(bias);
        }
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
        CHECK(ca_gemm_packed(M, A, K, &P, 1.0f, bias, CA_EPI_QUICKGELU, 0.0f, C, N, 2) == CA_OK);
        oracle(0, 1, M, N, K, 1.0f, A, K, wide[d], K, bias, CA_EPI_QUICKGELU, 0.0f, R, N);
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

/* A column view of packed weights multiplies like the matching rows of W alone (F32 and BF16
 * panels); views that do not start on a panel boundary or overrun are refused. */
static void test_packed_cols(void) {
    int M = 29, N = 96, K = 77;
    float *A = rnd((long)M * K, 21), *W = rnd((long)N * K, 22), *bias = rnd(N, 23), *scale = rnd(N, 24);
    const char *what[4] = {"F32", "BF16", "F16", "F32 + column scale"};
    for (int mode = 0; mode < 4; mode++) {
        if (mode == 1 && !ca_fastgemm_bf16()) continue;
        ca_dtype panel = mode == 2 ? CA_DT_F16 : CA_DT_F32;
        ca_packed P, V, S;
        CHECK(ca_pack_weights_as(&P, W, CA_DT_F32, N, K, K, panel) == CA_OK);
        CHECK(ca_pack_weights_as(&S, W + (size_t)32 * K, CA_DT_F32, 64, K, K, panel) == CA_OK); /* rows 32..95 alone */
        if (mode == 1) CHECK(ca_packed_to_bf16(&P) == CA_OK && ca_packed_to_bf16(&S) == CA_OK);
        if (mode == 3) CHECK(ca_packed_set_scale(&P, scale) == CA_OK && ca_packed_set_scale(&S, scale + 32) == CA_OK);
        CHECK(ca_packed_cols(&P, 32, 64, &V) == CA_OK);
        float *C = calloc((size_t)M * 64, sizeof(float)), *R = calloc((size_t)M * 64, sizeof(float));
        CHECK(ca_gemm_packed(M, A, K, &V, 1.0f, bias + 32, CA_EPI_NONE, 0.0f, C, 64, 1) == CA_OK);
        CHECK(ca_gemm_packed(M, A, K, &S, 1.0f, bias + 32, CA_EPI_NONE, 0.0f, R, 64, 1) == CA_OK);
        CHECK_MSG(memcmp(C, R, sizeof(float) * M * 64) == 0, "%s view differs from packing the rows alone", what[mode]);
        CHECK(ca_packed_cols(&P, 16, 32, &V) == CA_E_ARG);  /* not on a panel boundary */
        CHECK(ca_packed_cols(&P, 64, 64, &V) == CA_E_ARG);  /* past N */
        CHECK(ca_packed_cols(&P, 0, 0, &V) == CA_E_ARG);
        ca_packed_free(&P);
        ca_packed_free(&S);
        free(C); free(R);
    }
    free(A); free(W); free(bias); free(scale);
}

/* BF16 compute: with A and W already rounded to BF16, the products are exact in float32, so the
 * oracle on the rounded inputs must agree to float32 accumulation error (odd K: zero partner). */
static void test_bf16_gemm(void) {
    if (!ca_fastgemm_bf16()) { fprintf(stderr, "  (no AVX512-BF16 in this build: skipped)\n"); return; }
    static const int shapes[][3] = {{1, 1, 1}, {13, 33, 7}, {50, 96, 768}, {145, 70, 1025}, {30, 64, 770}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = rnd((long)M * K, 500 + s), *W = rnd((long)N * K, 600 + s), *bias = rnd(N, 700 + s);
        for (long i = 0; i < (long)M * K; i++) A[i] = ca_bf16_to_f32(ca_f32_to_bf16(A[i]));
        for (long i = 0; i < (long)N * K; i++) W[i] = ca_bf16_to_f32(ca_f32_to_bf16(W[i]));
        ca_packed P;
        CHECK(ca_pack_weights_bf16(&P, W, CA_DT_F32, N, K, K) == CA_OK);
        CHECK(P.pb != NULL && P.p == NULL);
        float *C = rnd((long)M * N, 800 + s), *R = malloc(sizeof(float) * (size_t)M * N);
        memcpy(R, C, sizeof(float) * (size_t)M * N);
        ca_epi act = (ca_epi)(s % 3);
        CHECK(ca_gemm_packed(M, A, K, &P, 1.0f, bias, act, 1.0f, C, N, 2) == CA_OK);
        oracle(0, 1, M, N, K, 1.0f, A, K, W, K, bias, act, 1.0f, R, N);
        double tol = 1e-6 + 5e-8 * K, e = cmp("bf16 gemm", C, R, (long)M * N, tol);
        CHECK_MSG(e <= tol, "M=%d N=%d K=%d: rel err %.3g", M, N, K, e);
        ca_packed_free(&P);
        free(A); free(W); free(bias); free(C); free(R);
    }
}

/* BF16 convolutions (pointer-table kernel for even Cin, gather for odd) on BF16-exact data */
static void test_bf16_conv(void) {
    if (!ca_fastgemm_bf16()) { fprintf(stderr, "  (no AVX512-BF16 in this build: skipped)\n"); return; }
    static const int cfg[][8] = {{2, 9, 9, 6, 33, 3, 1, 1}, {1, 11, 10, 3, 8, 3, 2, 1}, {1, 7, 7, 64, 40, 3, 1, 1}, {1, 6, 6, 20, 12, 1, 1, 0}};
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        int N = cfg[c][0], H = cfg[c][1], W = cfg[c][2], Ci = cfg[c][3], Co = cfg[c][4], K = cfg[c][5], s = cfg[c][6], p = cfg[c][7];
        int Ho = (H + 2 * p - K) / s + 1, Wo = (W + 2 * p - K) / s + 1;
        long ni = (long)N * H * W * Ci, nw = (long)Co * Ci * K * K, no = (long)N * Ho * Wo * Co;
        float *in = rnd(ni, 900 + c), *w = rnd(nw, 910 + c), *bias = rnd(Co, 920 + c);
        for (long i = 0; i < ni; i++) in[i] = ca_bf16_to_f32(ca_f32_to_bf16(in[i]));
        for (long i = 0; i < nw; i++) w[i] = ca_bf16_to_f32(ca_f32_to_bf16(w[i]));
        float *o = rnd(no, 4), *r = malloc(sizeof(float) * (size_t)no);
        memcpy(r, o, sizeof(float) * (size_t)no);
        ca_conv cv;
        CHECK(ca_conv_pack_weights(&cv, w, CA_DT_F32, Co, Ci, K, K, s, p, NULL, CA_DT_F32) == CA_OK);
        CHECK(ca_packed_to_bf16(&cv.W) == CA_OK);
        CHECK(ca_conv2d_nhwc(&cv, in, N, H, W, bias, CA_EPI_RELU, 1.0f, o, 2) == CA_OK);
        ca_conv2d_nhwc_ref(in, N, H, W, Ci, w, Co, K, K, s, p, bias, CA_EPI_RELU, 1.0f, r);
        double tol = 1e-6 + 5e-8 * Ci * K * K, e = cmp("bf16 conv", o, r, no, tol);
        CHECK_MSG(e <= tol, "bf16 conv cfg %zu: rel err %.3g", c, e);
        ca_conv_free(&cv);
        free(in); free(w); free(bias); free(o); free(r);
    }
}

static float *f16_rounded(long n, uint64_t seed) {
    float *x = rnd(n, seed);
    for (long i = 0; i < n; i++) x[i] = ca_f16_to_f32(ca_f32_to_f16(x[i]));
    return x;
}

/* F16 panels on F16-representable weights: bit for bit the F32 panels' results (the kernel
 * widens exactly and accumulates in the same order), the oracle's within tolerance, half the
 * bytes; unpacking gives the weights back exactly; BF16 from either is the same. Edge tiles
 * (M, N off the 12 x 32 tile), odd K, K over one 768 block, alpha/beta/bias/act, 1-2 threads. */
static void test_f16_panels(void) {
    static const int shapes[][3] = {{1, 1, 1}, {13, 33, 7}, {12, 32, 256}, {37, 70, 129}, {50, 96, 768}, {145, 40, 1025}, {25, 65, 1537}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int th = 1; th <= 2; th++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ldc = N + 3;
            float *A = rnd((long)M * K, 1000 + s), *W = f16_rounded((long)N * K, 1100 + s), *bias = rnd(N, 1200 + s);
            float *C32 = rnd((long)M * ldc, 1300 + s), *C16 = malloc(sizeof(float) * (size_t)M * ldc), *R = malloc(sizeof(float) * (size_t)M * ldc);
            memcpy(C16, C32, sizeof(float) * (size_t)M * ldc);
            memcpy(R, C32, sizeof(float) * (size_t)M * ldc);
            ca_packed P32, P16;
            CHECK(ca_pack_weights_as(&P32, W, CA_DT_F32, N, K, K, CA_DT_F32) == CA_OK);
            CHECK(ca_pack_weights_as(&P16, W, CA_DT_F32, N, K, K, CA_DT_F16) == CA_OK);
            if (ca_fastgemm_avx512()) {
                CHECK(P16.ph && !P16.p && !P16.pb);
                CHECK_EQ_INT(2 * ca_packed_bytes(&P16), ca_packed_bytes(&P32));
            }
            ca_epi act = (ca_epi)(s % 3);
            float alpha = 0.75f, beta = (s & 1) ? 1.0f : 0.0f;
            CHECK(ca_gemm_packed(M, A, K, &P32, alpha, bias, act, beta, C32, ldc, th) == CA_OK);
            CHECK(ca_gemm_packed(M, A, K, &P16, alpha, bias, act, beta, C16, ldc, th) == CA_OK);
            CHECK_MSG(memcmp(C32, C16, sizeof(float) * (size_t)M * ldc) == 0, "M=%d N=%d K=%d th=%d: F16 panels differ from F32", M, N, K, th);
            oracle(0, 1, M, N, K, alpha, A, K, W, K, bias, act, beta, R, ldc);
            double tol = 1e-6 + 5e-8 * K, e = cmp("f16 panels", C16, R, (long)M * ldc, tol);
            CHECK_MSG(e <= tol, "M=%d N=%d K=%d th=%d: rel err %.3g", M, N, K, th, e);
            float *U = malloc(sizeof(float) * (size_t)N * (K + 2));
            for (int d = 0; d < 2; d++) {
                CHECK(ca_packed_unpack(d ? &P16 : &P32, U, K + 2) == CA_OK);
                int same = 1;
                for (int n = 0; n < N; n++) same &= !memcmp(U + (size_t)n * (K + 2), W + (size_t)n * K, sizeof(float) * K);
                CHECK_MSG(same, "unpack of %s panels, N=%d K=%d", d ? "F16" : "F32", N, K);
            }
            if (ca_fastgemm_bf16() && th == 1) {
                CHECK(ca_packed_to_bf16(&P32) == CA_OK && ca_packed_to_bf16(&P16) == CA_OK);
                CHECK(P16.pb && !P16.ph && ca_packed_bytes(&P16) == ca_packed_bytes(&P32));
                CHECK(memcmp(P16.pb, P32.pb, ca_packed_bytes(&P32)) == 0);
                CHECK(ca_packed_unpack(&P16, U, K) == CA_E_UNSUPPORTED);
            }
            ca_packed_free(&P32);
            ca_packed_free(&P16);
            free(A); free(W); free(bias); free(C32); free(C16); free(R); free(U);
        }
}

/* Convolution shapes of test_f16_conv and test_conv: N, H, W, Cin, Cout, K, stride, pad (odd
 * channel counts, strides, 1x1 / 3x3 / 7x7, Cin beyond one K block). */
static const int conv_cfg[][8] = {{2, 9, 9, 5, 33, 3, 1, 1}, {1, 11, 10, 3, 8, 3, 2, 1}, {2, 6, 6, 40, 20, 1, 1, 0},
                                  {1, 8, 8, 16, 12, 1, 2, 0}, {1, 14, 14, 3, 17, 7, 2, 3}, {1, 5, 7, 300, 31, 3, 1, 1}};

/* F16-panel convolutions (pointer-table kernel; 1x1 stride 1 goes through the GEMM) with a
 * folded BatchNorm scale: equal to the F32 panels bit for bit, to the oracle within tolerance,
 * and the weights unpack exactly (the scale stays out of the panels). */
static void test_f16_conv(void) {
    for (size_t c = 0; c < sizeof conv_cfg / sizeof *conv_cfg; c++) {
        const int *g = conv_cfg[c];
        int N = g[0], H = g[1], W = g[2], Ci = g[3], Co = g[4], K = g[5], s = g[6], p = g[7];
        int Ho = (H + 2 * p - K) / s + 1, Wo = (W + 2 * p - K) / s + 1;
        long ni = (long)N * H * W * Ci, nw = (long)Co * Ci * K * K, no = (long)N * Ho * Wo * Co;
        float *in = rnd(ni, 1400 + c), *w = f16_rounded(nw, 1410 + c), *scale = rnd(Co, 1420 + c), *bias = rnd(Co, 1430 + c);
        float *o32 = rnd(no, 5), *o16 = malloc(sizeof(float) * (size_t)no), *r = malloc(sizeof(float) * (size_t)no);
        float *ws = malloc(sizeof(float) * (size_t)nw), *u = malloc(sizeof(float) * (size_t)nw);
        memcpy(o16, o32, sizeof(float) * (size_t)no);
        memcpy(r, o32, sizeof(float) * (size_t)no);
        for (long i = 0; i < nw; i++) ws[i] = w[i] * scale[i / ((long)Ci * K * K)];
        ca_conv c32, c16;
        CHECK(ca_conv_pack_weights(&c32, w, CA_DT_F32, Co, Ci, K, K, s, p, scale, CA_DT_F32) == CA_OK);
        CHECK(ca_conv_pack_weights(&c16, w, CA_DT_F32, Co, Ci, K, K, s, p, scale, CA_DT_F16) == CA_OK);
        if (ca_fastgemm_avx512()) CHECK(c16.W.ph != NULL);
        ca_epi act = (ca_epi)(c % 3);
        float beta = (c & 1) ? 1.0f : 0.0f;
        CHECK(ca_conv2d_nhwc(&c32, in, N, H, W, bias, act, beta, o32, 2) == CA_OK);
        CHECK(ca_conv2d_nhwc(&c16, in, N, H, W, bias, act, beta, o16, 2) == CA_OK);
        CHECK_MSG(memcmp(o32, o16, sizeof(float) * (size_t)no) == 0, "conv cfg %zu: F16 panels differ from F32", c);
        ca_conv2d_nhwc_ref(in, N, H, W, Ci, ws, Co, K, K, s, p, bias, act, beta, r);
        double tol = 1e-6 + 5e-8 * Ci * K * K, e = cmp("f16 conv", o16, r, no, tol);
        CHECK_MSG(e <= tol, "conv cfg %zu: rel err %.3g", c, e);
        CHECK(ca_conv_unpack_weights(&c16, u) == CA_OK && memcmp(u, w, sizeof(float) * (size_t)nw) == 0);
        CHECK(ca_conv_unpack_weights(&c32, u) == CA_OK && memcmp(u, w, sizeof(float) * (size_t)nw) == 0);
        ca_conv_free(&c32);
        ca_conv_free(&c16);
        free(in); free(w); free(scale); free(bias); free(o32); free(o16); free(r); free(ws); free(u);
    }
}

static void encode_both(const ca_model *m, const float *img, int n, const int64_t *tok, int nt, float *fi, float *ft) {
    CHECK_MSG(ca_model_encode_images(m, img, n, fi) == CA_OK, "%s", ca_last_error());
    CHECK_MSG(ca_model_encode_text(m, tok, nt, ft) == CA_OK, "%s", ca_last_error());
}

static ca_model *load_mode(const char *path, int compute) {
    ca_model_params p = ca_model_default_params();
    p.compute = compute;
    ca_status st;
    return ca_model_load(path, &p, &st);
}

/* The compute path is fixed at load: the fast path packs every matrix straight from the file
 * (F16-stored as F16 panels, F32 as F32) and keeps no float32 copy of it; the reference path
 * keeps float32 weights and no panels. Both meet the goldens, two loads agree bit for bit, and
 * encoding never writes to the model. */
static void test_load_modes(void) {
    const char *names[2] = {"vit-tiny", "rn-tiny"};
    ca_dtype stored[2] = {CA_DT_F16, CA_DT_F32};
    for (int k = 0; k < 2; k++) {
        char mp[128], gp[128];
        snprintf(mp, sizeof mp, "testdata/models/%s.safetensors", names[k]);
        snprintf(gp, sizeof gp, "testdata/models/%s-golden.safetensors", names[k]);
        ca_status st;
        ca_model *m = load_mode(th_shared(mp), CA_COMPUTE_FAST), *again = load_mode(th_shared(mp), CA_COMPUTE_FAST);
        ca_model *ref = load_mode(th_shared(mp), CA_COMPUTE_REFERENCE);
        ca_st_file *g = ca_st_open(th_shared(gp), &st);
        CHECK_MSG(m && again && ref && g, "%s: %s", names[k], ca_last_error());
        if (!m || !again || !ref || !g) { ca_model_free(m); ca_model_free(again); ca_model_free(ref); ca_st_close(g); continue; }
        int64_t ish[4];
        float *img = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
        float *gi = ca_st_load_f32(g, "output.image_features", 2, NULL, NULL, &st);
        float *gt = ca_st_load_f32(g, "output.text_features", 2, NULL, NULL, &st);
        const ca_tensor_info *ti = ca_st_find(g, "input.tokens");
        int64_t *tok = malloc(sizeof(int64_t) * (size_t)ti->numel);
        ca_tensor_to_i64(ti, tok, ti->numel);
        ca_model_info in;
        ca_model_get_info(m, &in);
        int n = (int)ish[0], nt = (int)ti->shape[0], E = in.embed_dim;
        size_t si = sizeof(float) * (size_t)n * E, stx = sizeof(float) * (size_t)nt * E;
        float *fi[3], *ft[3];
        for (int i = 0; i < 3; i++) { fi[i] = malloc(si); ft[i] = malloc(stx); }
        const ca_block *b = &m->txt.tf.blocks[0];
        CHECK(b->fc_w == NULL && b->qkv_w == NULL);               /* no float32 copy kept */
        /* F16-stored weights are kept as F16 panels where the kernels widen them (the avx512
         * path); elsewhere the same F16-rounded values are packed as F32 */
        const char *path = ca_cpu_path(NULL);
        int half = stored[k] == CA_DT_F16 && path && !strcmp(path, "avx512");
        CHECK(half ? (b->fc.ph && !b->fc.p) : (b->fc.p && !b->fc.ph));
        CHECK(ref->txt.tf.blocks[0].fc_w != NULL && !ref->txt.tf.blocks[0].fc.p && !ref->txt.tf.blocks[0].fc.ph);
        CHECK_EQ_INT(ca_model_compute(ref), CA_COMPUTE_REFERENCE);
        uint64_t h0 = ca_model_weights_hash(m), h1 = ca_model_weights_hash(ref);
        encode_both(m, img, n, tok, nt, fi[0], ft[0]);
        encode_both(again, img, n, tok, nt, fi[1], ft[1]);
        encode_both(ref, img, n, tok, nt, fi[2], ft[2]);
        CHECK(ca_model_weights_hash(m) == h0);
        CHECK(ca_model_weights_hash(ref) == h1);
        CHECK(!memcmp(fi[0], fi[1], si) && !memcmp(ft[0], ft[1], stx));
        CHECK_MSG(cmp("fast images vs golden", fi[0], gi, (long)n * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK_MSG(cmp("fast text vs golden", ft[0], gt, (long)nt * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK_MSG(cmp("reference images vs golden", fi[2], gi, (long)n * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK_MSG(cmp("reference text vs golden", ft[2], gt, (long)nt * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK(ca_model_weight_bytes(m) > 0 && ca_model_weight_bytes(ref) > 0);
        if (ca_fastgemm_bf16()) {
            ca_model *mb = load_mode(th_shared(mp), CA_COMPUTE_BF16);
            CHECK(mb && mb->txt.tf.blocks[0].fc.pb && !mb->txt.tf.blocks[0].fc.p);
            if (mb) {
                encode_both(mb, img, n, tok, nt, fi[1], ft[1]);
                CHECK_MSG(cmp("bf16 vs fast", fi[1], fi[0], (long)n * E, 2e-2) <= 2e-2, "%s", names[k]);
            }
            ca_model_free(mb);
        } else {
            CHECK(load_mode(th_shared(mp), CA_COMPUTE_BF16) == NULL);
        }
        CHECK(load_mode(th_shared(mp), 7) == NULL);
        for (int i = 0; i < 3; i++) { free(fi[i]); free(ft[i]); }
        free(img); free(gi); free(gt); free(tok);
        ca_model_free(m);
        ca_model_free(again);
        ca_model_free(ref);
        ca_st_close(g);
    }
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
        double r = ca_epi_ref(CA_EPI_QUICKGELU, x[i]), d = fabs(y[i] - r) / (1 + fabs(r));
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 1e-6, "quickgelu rel err %.3g", worst);
    free(x); free(y);
}

static void test_attention(void) {
    static const int cfg[][4] = {{1, 1, 2, 64}, {2, 5, 2, 64}, {2, 50, 3, 64}, {1, 77, 2, 64}, {2, 7, 2, 8}, {1, 197, 1, 32}};
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++)
        for (int causal = 0; causal < 2; causal++)
            for (int th = 1; th <= 2; th++) {
                int B = cfg[c][0], T = cfg[c][1], H = cfg[c][2], hd = cfg[c][3], C = H * hd;
                long nq = (long)B * T * 3 * C, no = (long)B * T * C;
                float *qkv = rnd(nq, 40 + c), *o = rnd(no, 1), *r = rnd(no, 2);
                for (long i = 0; i < nq; i++) qkv[i] *= 3.0f; /* peaky softmax */
                CHECK(ca_mha_packed(qkv, B, T, H, hd, causal, o, th) == CA_OK);
                ca_mha_packed_ref(qkv, B, T, H, hd, causal, r);
                double e = cmp("attention", o, r, no, 1e-5);
                CHECK_MSG(e <= 1e-5, "B=%d T=%d H=%d hd=%d causal=%d th=%d: rel err %.3g", B, T, H, hd, causal, th, e);
                free(qkv); free(o); free(r);
            }
}

static void test_layernorm(void) {
    int Cs[] = {768, 13, 512};
    for (int ci = 0; ci < 3; ci++) {
        int rows = 37, C = Cs[ci], ld = C + 5;
        float *x = rnd((long)rows * ld, 50 + ci), *w = rnd(C, 51), *b = rnd(C, 52);
        float *y = calloc((size_t)rows * ld, sizeof(float)), *r = calloc((size_t)rows * ld, sizeof(float));
        for (long i = 0; i < (long)rows * ld; i++) x[i] = 4.0f * x[i] + 1.5f; /* non-zero mean */
        ca_ln_rows(x, ld, rows, C, w, b, y, ld, 2);
        ca_ln_rows_ref(x, ld, rows, C, w, b, r, ld);
        CHECK_MSG(cmp("layernorm", y, r, (long)rows * ld, 2e-6) <= 2e-6, "C=%d", C);
        ca_ln_rows(x, ld, rows, C, w, b, x, ld, 1); /* in place (padding columns untouched) */
        for (int i = 0; i < rows; i++)
            CHECK(cmp("layernorm in place", x + (size_t)i * ld, r + (size_t)i * ld, C, 2e-6) <= 2e-6);
        free(x); free(w); free(b); free(y); free(r);
    }
}

static void test_conv(void) {
    for (size_t c = 0; c < sizeof conv_cfg / sizeof *conv_cfg; c++) {
        const int *g = conv_cfg[c];
        int N = g[0], H = g[1], W = g[2], Ci = g[3], Co = g[4], K = g[5], s = g[6], p = g[7];
        int Ho = (H + 2 * p - K) / s + 1, Wo = (W + 2 * p - K) / s + 1;
        long ni = (long)N * H * W * Ci, nw = (long)Co * Ci * K * K, no = (long)N * Ho * Wo * Co;
        float *in = rnd(ni, 60 + c), *w = rnd(nw, 70 + c), *scale = rnd(Co, 80 + c), *bias = rnd(Co, 90 + c);
        float *o = rnd(no, 3), *r = malloc(sizeof(float) * (size_t)no), *ws = malloc(sizeof(float) * (size_t)nw);
        memcpy(r, o, sizeof(float) * (size_t)no);
        for (long i = 0; i < nw; i++) ws[i] = w[i] * scale[i / ((long)Ci * K * K)];
        ca_conv cv;
        CHECK(ca_conv_pack_weights(&cv, w, CA_DT_F32, Co, Ci, K, K, s, p, scale, CA_DT_F32) == CA_OK);
        ca_epi act = (ca_epi)(c % 3);
        float beta = (c & 1) ? 1.0f : 0.0f;
        CHECK(ca_conv2d_nhwc(&cv, in, N, H, W, bias, act, beta, o, 2) == CA_OK);
        ca_conv2d_nhwc_ref(in, N, H, W, Ci, ws, Co, K, K, s, p, bias, act, beta, r);
        double tol = 1e-6 + 5e-8 * Ci * K * K, e = cmp("conv", o, r, no, tol);
        CHECK_MSG(e <= tol, "conv cfg %zu: rel err %.3g", c, e);
        ca_conv_free(&cv);
        free(in); free(w); free(scale); free(bias); free(o); free(r); free(ws);
    }
    float px[2 * 4 * 4], out[2 * 2 * 2];
    for (int i = 0; i < 32; i++) px[i] = (float)i;
    ca_avgpool_nhwc(px, 1, 4, 4, 2, 2, out, 1); /* channel 0 of the top-left window: 0,2,8,10 */
    CHECK_NEAR(out[0], (0 + 2 + 8 + 10) / 4.0, 1e-6);
    CHECK_NEAR(out[7], (21 + 23 + 29 + 31) / 4.0, 1e-6); /* channel 1, bottom-right window */
}

/* The whole fast forward path against the plain one (and the goldens) on the tiny models, without
 * a debug tap, so text runs cut at its end tokens. */
static void test_fast_vs_reference_model(void) {
    const char *names[2] = {"vit-tiny", "rn-tiny"};
    for (int k = 0; k < 2; k++) {
        char mp[128], gp[128];
        snprintf(mp, sizeof mp, "testdata/models/%s.safetensors", names[k]);
        snprintf(gp, sizeof gp, "testdata/models/%s-golden.safetensors", names[k]);
        ca_status st;
        ca_model *m = load_mode(th_shared(mp), CA_COMPUTE_FAST), *ref = load_mode(th_shared(mp), CA_COMPUTE_REFERENCE);
        ca_st_file *g = ca_st_open(th_shared(gp), &st);
        CHECK_MSG(m && ref && g, "%s: %s", names[k], ca_last_error());
        if (!m || !ref || !g) { ca_model_free(m); ca_model_free(ref); ca_st_close(g); continue; }
        int64_t ish[4], tsh[2];
        float *img = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
        float *gi = ca_st_load_f32(g, "output.image_features", 2, NULL, NULL, &st);
        float *gt = ca_st_load_f32(g, "output.text_features", 2, NULL, NULL, &st);
        const ca_tensor_info *ti = ca_st_find(g, "input.tokens");
        tsh[0] = ti->shape[0]; tsh[1] = ti->shape[1];
        int64_t *tok = malloc(sizeof(int64_t) * (size_t)ti->numel);
        ca_tensor_to_i64(ti, tok, ti->numel);
        ca_model_info in;
        ca_model_get_info(m, &in);
        int n = (int)ish[0], nt = (int)tsh[0], E = in.embed_dim;
        /* mode 2: the fast path again, with the pruned last block's whole-QKV fallback */
        float *fi[3], *ft[3];
        for (int mode = 0; mode < 3; mode++) {
            fi[mode] = malloc(sizeof(float) * n * E);
            ft[mode] = malloc(sizeof(float) * nt * E);
            ca_session *ss = ca_session_new(mode == 1 ? ref : m, NULL, &st);
            CHECK(ss != NULL);
            if (!ss) continue;
            ss->no_col_views = mode == 2;
            CHECK(ca_session_encode_images(ss, img, n, fi[mode]) == CA_OK);
            CHECK(ca_session_encode_text(ss, tok, nt, ft[mode]) == CA_OK);
            ca_session_free(ss);
        }
        CHECK_MSG(cmp("fast (fallback) images vs plain", fi[2], fi[1], (long)n * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK_MSG(cmp("fast (fallback) text vs plain", ft[2], ft[1], (long)nt * E, 1e-4) <= 1e-4, "%s", names[k]);
        /* golden tolerance of test_model.c: 1e-4 relative to (1 + |ref|) */
        CHECK_MSG(cmp("fast images vs plain", fi[0], fi[1], (long)n * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK_MSG(cmp("fast text vs plain", ft[0], ft[1], (long)nt * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK_MSG(cmp("fast images vs golden", fi[0], gi, (long)n * E, 1e-4) <= 1e-4, "%s", names[k]);
        CHECK_MSG(cmp("fast text vs golden", ft[0], gt, (long)nt * E, 1e-4) <= 1e-4, "%s", names[k]);
        for (int mode = 0; mode < 3; mode++) { free(fi[mode]); free(ft[mode]); }
        free(img); free(gi); free(gt); free(tok);
        ca_model_free(m);
        ca_model_free(ref);
        ca_st_close(g);
    }
}

/* BF16 compute on the tiny models: features close to float32 (cosine), never identical-by-accident
 * (a BF16 path silently running float32 would be a bug too). */
static void test_bf16_model(void) {
    if (!ca_fastgemm_bf16()) { fprintf(stderr, "  (no AVX512-BF16 in this build: skipped)\n"); return; }
    const char *names[2] = {"vit-tiny", "rn-tiny"};
    for (int k = 0; k < 2; k++) {
        char mp[128], gp[128];
        snprintf(mp, sizeof mp, "testdata/models/%s.safetensors", names[k]);
        snprintf(gp, sizeof gp, "testdata/models/%s-golden.safetensors", names[k]);
        ca_status st;
        ca_model *m = load_mode(th_shared(mp), CA_COMPUTE_FAST), *mb = load_mode(th_shared(mp), CA_COMPUTE_BF16);
        ca_st_file *g = ca_st_open(th_shared(gp), &st);
        CHECK(m && mb && g);
        if (!m || !mb || !g) { ca_model_free(m); ca_model_free(mb); ca_st_close(g); continue; }
        int64_t ish[4];
        float *img = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
        const ca_tensor_info *ti = ca_st_find(g, "input.tokens");
        int64_t *tok = malloc(sizeof(int64_t) * (size_t)ti->numel);
        ca_tensor_to_i64(ti, tok, ti->numel);
        ca_model_info in;
        ca_model_get_info(m, &in);
        int n = (int)ish[0], nt = (int)ti->shape[0], E = in.embed_dim;
        float *f[2], *t[2];
        for (int mode = 0; mode < 2; mode++) {
            f[mode] = malloc(sizeof(float) * n * E);
            t[mode] = malloc(sizeof(float) * nt * E);
            CHECK(ca_model_encode_images(mode ? mb : m, img, n, f[mode]) == CA_OK);
            CHECK(ca_model_encode_text(mode ? mb : m, tok, nt, t[mode]) == CA_OK);
        }
        double worst = 1, diff = 0;
        for (int which = 0; which < 2; which++) {
            float **x = which ? t : f;
            int rows = which ? nt : n;
            for (int i = 0; i < rows; i++) {
                double ab = 0, aa = 0, bb = 0;
                for (int j = 0; j < E; j++) {
                    double a = x[0][(size_t)i * E + j], b = x[1][(size_t)i * E + j];
                    ab += a * b; aa += a * a; bb += b * b;
                    diff = fmax(diff, fabs(a - b));
                }
                worst = fmin(worst, ab / sqrt(aa * bb));
            }
        }
        fprintf(stderr, "  %s: BF16 vs F32 features: min cosine %.6f, max |diff| %.3g\n", names[k], worst, diff);
        CHECK_MSG(worst > 0.999, "%s: cosine %.6f", names[k], worst);
        CHECK(diff > 0); /* it really ran in BF16 */
        for (int mode = 0; mode < 2; mode++) { free(f[mode]); free(t[mode]); }
        free(img); free(tok);
        ca_model_free(m);
        ca_model_free(mb);
        ca_st_close(g);
    }
}

/* Threads over the batch (each thread whole forward passes on its share) must give the same
 * features as one thread doing everything: batches big enough to take that path. */
static void test_batch_split(void) {
    const char *names[2] = {"vit-tiny", "rn-tiny"};
    for (int k = 0; k < 2; k++) {
        char mp[128], gp[128];
        snprintf(mp, sizeof mp, "testdata/models/%s.safetensors", names[k]);
        snprintf(gp, sizeof gp, "testdata/models/%s-golden.safetensors", names[k]);
        ca_status st;
        ca_model_params p1 = ca_model_default_params(), p2 = p1;
        p1.threads = 1;
        p2.threads = 2;
        ca_model *m1 = ca_model_load(th_shared(mp), &p1, &st), *m2 = ca_model_load(th_shared(mp), &p2, &st);
        ca_st_file *g = ca_st_open(th_shared(gp), &st);
        CHECK(m1 && m2 && g);
        if (!m1 || !m2 || !g) { ca_model_free(m1); ca_model_free(m2); ca_st_close(g); continue; }
        int64_t ish[4];
        float *img = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
        const ca_tensor_info *ti = ca_st_find(g, "input.tokens");
        ca_model_info in;
        ca_model_get_info(m1, &in);
        int n0 = (int)ish[0], nt0 = (int)ti->shape[0], T = (int)ti->shape[1], E = in.embed_dim, rep = 12;
        size_t isz = (size_t)3 * ish[2] * ish[3];
        int n = n0 * rep, nt = nt0 * rep;
        float *imgs = malloc(sizeof(float) * isz * n);
        int64_t *tok0 = malloc(sizeof(int64_t) * (size_t)ti->numel), *tok = malloc(sizeof(int64_t) * (size_t)nt * T);
        ca_tensor_to_i64(ti, tok0, ti->numel);
        for (int r = 0; r < rep; r++) {
            memcpy(imgs + (size_t)r * n0 * isz, img, sizeof(float) * isz * n0);
            memcpy(tok + (size_t)r * nt0 * T, tok0, sizeof(int64_t) * (size_t)nt0 * T);
        }
        float *a = malloc(sizeof(float) * (size_t)(n > nt ? n : nt) * E), *b = malloc(sizeof(float) * (size_t)(n > nt ? n : nt) * E);
        CHECK(ca_model_encode_images(m1, imgs, n, a) == CA_OK);
        CHECK(ca_model_encode_images(m2, imgs, n, b) == CA_OK);
        CHECK_MSG(cmp("split images", b, a, (long)n * E, 1e-6) <= 1e-6, "%s", names[k]);
        CHECK(ca_model_encode_text(m1, tok, nt, a) == CA_OK);
        CHECK(ca_model_encode_text(m2, tok, nt, b) == CA_OK);
        CHECK_MSG(cmp("split text", b, a, (long)nt * E, 1e-6) <= 1e-6, "%s", names[k]);
        /* an error inside a worker thread reaches the caller */
        tok[(size_t)(nt - 1) * T + 3] = 1 << 20;
        CHECK(ca_model_encode_text(m2, tok, nt, b) == CA_E_RANGE);
        free(img); free(imgs); free(tok0); free(tok); free(a); free(b);
        ca_model_free(m1);
        ca_model_free(m2);
        ca_st_close(g);
    }
}

static void test_f16_tensor_conversion(void) {
    /* every half bit pattern through ca_tensor_to_f32 (SIMD path) equals the scalar conversion */
    uint16_t *h = malloc(2 * 65536);
    float *f = malloc(4 * 65536);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    ca_tensor_info t;
    memset(&t, 0, sizeof t);
    t.name = "all-halves"; t.dtype = CA_DT_F16; t.ndim = 1; t.shape[0] = 65536; t.numel = 65536;
    t.data = h; t.nbytes = 2 * 65536;
    CHECK(ca_tensor_to_f32(&t, f, 65536) == CA_OK);
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        float r = ca_f16_to_f32(h[i]);
        if (isnan(r) ? !isnan(f[i]) : memcmp(&r, &f[i], 4) != 0) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(h); free(f);
}

int main(void) {
    fprintf(stderr, "fast kernels: %s\n", ca_fastgemm_avx512() ? "AVX-512" : "scalar fallback");
    RUN(test_gemm_ex_shapes);
    RUN(test_gemm_direct_vs_packed_a);
    RUN(test_sgemm_dispatch);
    RUN(test_packed_half_weights);
    RUN(test_packed_cols);
    RUN(test_bf16_gemm);
    RUN(test_bf16_conv);
    RUN(test_f16_panels);
    RUN(test_f16_conv);
    RUN(test_exp_quickgelu);
    RUN(test_attention);
    RUN(test_layernorm);
    RUN(test_conv);
    RUN(test_fast_vs_reference_model);
    RUN(test_f16_tensor_conversion);
    RUN(test_bf16_model);
    RUN(test_batch_split);
    RUN(test_load_modes);
    TEST_END();
}
