/* gemm.c — the encoders' GEMM shapes (y = x·Wᵀ, batch 32 of ViT-B/32 = 1600 rows) through
 * OpenBLAS (cblas_sgemm) and through our packed AVX-512 kernel (F32 and BF16), 1 and 2 threads,
 * best of 5 wall-clock runs, in GFLOP/s. Shows why the encoders do not call BLAS. */
#include "core/core.h"
#include "model/fastgemm.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int);

int main(void) {
    static const int shapes[][3] = {{1600, 2304, 768}, {1600, 768, 768}, {1600, 3072, 768}, {1600, 768, 3072}};
    printf("  %-16s %7s %10s %10s %10s\n", "M x N x K", "threads", "OpenBLAS", "ours F32", "ours BF16");
    for (int th = 1; th <= 2; th++) {
        openblas_set_num_threads(th);
        double tot[3] = {0}, flops = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = malloc(sizeof(float) * (size_t)M * K), *W = malloc(sizeof(float) * (size_t)N * K),
                  *C = malloc(sizeof(float) * (size_t)M * N);
            ca_rng r = ca_rng_make(3, s);
            for (long i = 0; i < (long)M * K; i++) A[i] = (float)ca_rng_uniform(&r) - 0.5f;
            for (long i = 0; i < (long)N * K; i++) W[i] = (float)ca_rng_uniform(&r) - 0.5f;
            ca_packed pf, pb;
            int have_bf16 = ca_pack_weights(&pf, W, CA_DT_F32, N, K, K) == CA_OK &&
                            ca_pack_weights_bf16(&pb, W, CA_DT_F32, N, K, K) == CA_OK;
            double best[3] = {1e30, 1e30, 1e30};
            for (int rep = 0; rep < 5; rep++) {
                double t = ca_now();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W, K, 0.0f, C, N);
                t = ca_now() - t;
                if (t < best[0]) best[0] = t;
                t = ca_now();
                ca_gemm_packed(M, A, K, &pf, 1.0f, NULL, CA_EPI_NONE, 0.0f, C, N, th);
                t = ca_now() - t;
                if (t < best[1]) best[1] = t;
                if (have_bf16) {
                    t = ca_now();
                    ca_gemm_packed(M, A, K, &pb, 1.0f, NULL, CA_EPI_NONE, 0.0f, C, N, th);
                    t = ca_now() - t;
                    if (t < best[2]) best[2] = t;
                }
            }
            double f = 2.0 * M * N * K;
            printf("  %4dx%4dx%4d   %7d %10.1f %10.1f %10.1f\n", M, N, K, th, f / best[0] / 1e9, f / best[1] / 1e9,
                   have_bf16 ? f / best[2] / 1e9 : 0.0);
            for (int i = 0; i < 3; i++) tot[i] += best[i];
            flops += f;
            ca_packed_free(&pf);
            ca_packed_free(&pb);
            free(A); free(W); free(C);
        }
        printf("  %-16s %7d %10.1f %10.1f %10.1f  GFLOP/s (all four)\n", "total", th, flops / tot[0] / 1e9, flops / tot[1] / 1e9,
               flops / tot[2] / 1e9);
    }
    return 0;
}
