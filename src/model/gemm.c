/* gemm.c — row-major SGEMM: our AVX-512 kernel (fastgemm.c) for products big enough to pay for
 * packing, OpenBLAS's CBLAS otherwise; plus the naive oracle used by tests. */
#include "model/gemm.h"

#include "core/core.h"
#include "model/fastgemm.h"

#include <cblas.h>
#include <string.h>

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

/* ca_sgemm's rule: our kernel for products of at least 2^24 multiply-adds on the AVX-512 path */
static int fast_product(double M, int N, int K) { return ca_fastgemm_avx512() && M * N * K >= 16777216.0; }

ca_status ca_sgemm_bt_init(ca_sgemm_bt_plan *p, const float *W, int N, int K, int ldw, int64_t max_rows) {
    memset(p, 0, sizeof *p);
    p->W = W; p->N = N; p->K = K; p->ldw = ldw;
    if (N > 0 && K > 0 && fast_product((double)max_rows, N, K)) {
        ca_status st = ca_pack_weights(&p->pk, W, CA_DT_F32, N, K, ldw);
        if (st != CA_OK) return st;
        p->packed = 1;
    }
    return CA_OK;
}

int ca_sgemm_bt_fast(const ca_sgemm_bt_plan *p, int64_t M) { return p->packed && fast_product((double)M, p->N, p->K); }

void ca_sgemm_bt(const ca_sgemm_bt_plan *p, int M, const float *A, int lda, float *C, int ldc, int threads) {
    if (M <= 0 || p->N <= 0) return;
    /* the same panels and kernel as ca_sgemm's ca_gemm_ex(0, 1, ...), which packs W per call */
    if (ca_sgemm_bt_fast(p, M)) { ca_sgemm_bt_rows(p, M, A, lda, C, ldc, threads); return; }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, p->N, p->K, 1.0f, A, lda, p->W, p->ldw, 0.0f, C, ldc);
}

void ca_sgemm_bt_rows(const ca_sgemm_bt_plan *p, int M, const float *A, int lda, float *C, int ldc, int threads) {
    if (M <= 0 || p->N <= 0) return;
    if (p->packed && ca_gemm_packed(M, A, lda, &p->pk, 1.0f, NULL, CA_EPI_NONE, 0.0f, C, ldc, ca_kernel_threads(threads)) == CA_OK)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, p->N, p->K, 1.0f, A, lda, p->W, p->ldw, 0.0f, C, ldc);
}

void ca_sgemm_bt_free(ca_sgemm_bt_plan *p) {
    if (!p) return;
    ca_packed_free(&p->pk);
    memset(p, 0, sizeof *p);
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
