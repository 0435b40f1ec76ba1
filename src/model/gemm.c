/* gemm.c — row-major SGEMM: our AVX-512 kernel (fastgemm.c) for products big enough to pay for
 * packing, OpenBLAS's CBLAS otherwise; plus the naive oracle used by tests. */
#include "model/gemm.h"

#include "core/core.h"
#include "model/fastgemm.h"

#include <cblas.h>

int ca_sgemm_set_threads(int n) {
    int old = ca_budget_enter(n);
    if (n <= 0) ca_budget_exit(0);
    return old;
}

void ca_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    /* OpenBLAS runs its AVX2 kernels on this CPU; ours reaches about 1.7x their throughput on
     * large products. It packs op(B) and allocates per call, so products below 2^24 multiply-adds
     * (the training steps of CLIP-Adapter and the linear probe: ~2-3M) stay on BLAS, where they
     * were measured 3x faster; an allocation failure falls back too. */
    if (ca_fastgemm_avx512() && (double)M * N * K >= 16777216.0 &&
        ca_gemm_ex(transA, transB, M, N, K, alpha, A, lda, B, ldb, NULL, CA_EPI_NONE, beta, C, ldc, ca_kernel_threads(0)) == CA_OK)
        return;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ca_sgemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(long)k * lda + i] : A[(long)i * lda + k];
                float b = transB ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(long)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}
