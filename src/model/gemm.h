/* gemm.h — the one BLAS entry point (row-major) and its naive reference (the test oracle). */
#ifndef CA_GEMM_H
#define CA_GEMM_H

#include "model/fastgemm.h"

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

/* Many products C = A·Wᵀ against one W (N, K) (row stride ldw), e.g. queries against a cache of
 * keys: W is packed once instead of per call. Each product is, bit for bit, what
 * ca_sgemm(0, 1, M, N, K, 1, A, lda, W, ldw, 0, C, ldc) gives for the same M (the same choice
 * between our kernel and BLAS), so row blocks of a former single call reproduce it exactly when
 * ca_sgemm_bt_fast says the whole call took our kernel. max_rows: the largest M a call will use
 * (W is packed only when some product takes our kernel). Free with ca_sgemm_bt_free (NULL-safe
 * on a zeroed plan). A plan is read-only after init: many threads may use it at once. */
typedef struct {
    const float *W;
    int N, K, ldw;
    int packed;       /* 1: pk holds W's panels */
    ca_packed pk;
} ca_sgemm_bt_plan;
ca_status ca_sgemm_bt_init(ca_sgemm_bt_plan *p, const float *W, int N, int K, int ldw, int64_t max_rows);
/* 1 when ca_sgemm would run a product of M rows on our packed kernel (and the plan holds the
 * panels): then any row split of it gives the same values. */
int ca_sgemm_bt_fast(const ca_sgemm_bt_plan *p, int64_t M);
/* C(M,N) = A(M,K)·Wᵀ on up to `threads` threads (0: the call's budget; 1 inside a parallel
 * region, where only the packed kernel may run: BLAS is not called from worker threads). */
void ca_sgemm_bt(const ca_sgemm_bt_plan *p, int M, const float *A, int lda, float *C, int ldc, int threads);
/* ca_sgemm_bt for rows of a product that ca_sgemm_bt_fast chose as a whole (e.g. several of its
 * row blocks at once): the packed kernel at any M when the plan holds the panels, so the values
 * are those of the chosen product whatever the row split; BLAS only on a plan without panels. */
void ca_sgemm_bt_rows(const ca_sgemm_bt_plan *p, int M, const float *A, int lda, float *C, int ldc, int threads);
void ca_sgemm_bt_free(ca_sgemm_bt_plan *p);

#endif
