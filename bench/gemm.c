/* gemm.c — the encoders' GEMM shapes (y = x·Wᵀ) through OpenBLAS (cblas_sgemm) and through our
 * packed AVX-512 kernel (F32 panels, F16 panels widened in the kernel, BF16), 1 and 2 threads,
 * best of 5 wall-clock runs, in GFLOP/s. Rows: batch 32 of ViT-B/32 (1600 rows, compute bound),
 * then batch 1 (50 rows, where streaming the weights dominates). Shows why the encoders do not
 * call BLAS, and what F16 panels change. */
#include "core/core.h"
#include "model/fastgemm.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int);

enum { NV = 4 }; /* OpenBLAS, F32 panels, F16 panels, BF16 */

int main(void) {
    static const int shapes[][3] = {{1600, 2304, 768}, {1600, 768, 768}, {1600, 3072, 768}, {1600, 768, 3072},
                                    {50, 2304, 768},   {50, 768, 768},   {50, 3072, 768},   {50, 768, 3072}};
    printf("  %-16s %7s %10s %10s %10s %10s\n", "M x N x K", "threads", "OpenBLAS", "ours F32", "ours F16", "ours BF16");
    for (int th = 1; th <= 2; th++) {
        openblas_set_num_threads(th);
        for (int half = 0; half < 2; half++) { /* the four 1600-row shapes, then the 50-row ones */
            double tot[NV] = {0}, flops = 0;
            for (size_t s = 4 * (size_t)half; s < 4 * (size_t)half + 4; s++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                float *A = malloc(sizeof(float) * (size_t)M * K), *W = malloc(sizeof(float) * (size_t)N * K),
                      *C = malloc(sizeof(float) * (size_t)M * N);
                ca_rng r = ca_rng_make(3, s);
                for (long i = 0; i < (long)M * K; i++) A[i] = (float)ca_rng_uniform(&r) - 0.5f;
                /* F16-representable weights, as from an F16 checkpoint */
                for (long i = 0; i < (long)N * K; i++) W[i] = ca_f16_to_f32(ca_f32_to_f16((float)ca_rng_uniform(&r) - 0.5f));
                ca_packed pk[NV];
                memset(pk, 0, sizeof pk);
                int have[NV] = {1, ca_pack_weights_as(&pk[1], W, CA_DT_F32, N, K, K, CA_DT_F32) == CA_OK,
                                ca_pack_weights_as(&pk[2], W, CA_DT_F32, N, K, K, CA_DT_F16) == CA_OK,
                                ca_pack_weights_bf16(&pk[3], W, CA_DT_F32, N, K, K) == CA_OK};
                double best[NV] = {1e30, 1e30, 1e30, 1e30};
                /* interleaved, so a busy moment of the machine hits every variant alike */
                for (int rep = 0; rep < (M < 100 ? 25 : 5); rep++)
                    for (int v = 0; v < NV; v++) {
                        if (!have[v]) continue;
                        double t = ca_now();
                        if (v == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W, K, 0.0f, C, N);
                        else ca_gemm_packed(M, A, K, &pk[v], 1.0f, NULL, CA_EPI_NONE, 0.0f, C, N, th);
                        t = ca_now() - t;
                        if (t < best[v]) best[v] = t;
                    }
                double f = 2.0 * M * N * K;
                printf("  %4dx%4dx%4d   %7d", M, N, K, th);
                for (int v = 0; v < NV; v++) printf(" %10.1f", have[v] ? f / best[v] / 1e9 : 0.0);
                printf("\n");
                for (int v = 0; v < NV; v++) tot[v] += best[v];
                flops += f;
                for (int v = 1; v < NV; v++) ca_packed_free(&pk[v]);
                free(A); free(W); free(C);
            }
            printf("  %-16s %7d", half ? "total (50 rows)" : "total (1600)", th);
            for (int v = 0; v < NV; v++) printf(" %10.1f", flops / tot[v] / 1e9);
            printf("  GFLOP/s\n");
        }
    }
    return 0;
}
