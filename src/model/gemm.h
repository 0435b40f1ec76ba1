/* gemm.h — the one BLAS entry point (row-major) and its naive reference (the test oracle). */
#ifndef CA_GEMM_H
#define CA_GEMM_H

/* C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C, row-major, op = transpose when trans != 0.
 * lda/ldb/ldc are row strides of the stored matrices. */
void ca_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
/* Threads ca_sgemm may use on its own kernel (0 = the default); returns the previous value.
 * This is the calling thread's budget (ca_budget_enter), not a process-wide setting: training
 * loops set it beside OpenBLAS's count and restore both (ca_train_threads_set/restore). */
int ca_sgemm_set_threads(int n);
/* Same contract, plain triple loop with double accumulation: the oracle for ca_sgemm. */
void ca_sgemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

#endif
