/* tipf_step.c — the phases of one Tip-Adapter-F epoch at ImageNet size (B = 256 rows per step,
 * N = 16,000 keys, D = 512, C = 1000, 10,000 val rows), each timed alone on random unit features:
 * the forward affinities (ca_gemm_packed, B x N x D), the whole packed step
 * (ca_tipf_loss_grad_packed: forward, per-row exp/class sums/softmax gradient, key gradient), the
 * key gradient alone (ca_gemm_tn_panels, D x N x B) and the val pass's affinities (ca_gemm_packed
 * in blocks of VAL rows). Prints best and median seconds of REPS runs and GFLOP/s (2·M·N·K per
 * product; the step counts its two products). Not a test: the numbers are checked elsewhere
 * (tests/test_fastfit.c). Usage: tipf_step [THREADS] [REPS] */
#include "adapt/tip.h"
#include "core/core.h"
#include "model/fastgemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 256, N = 16000, D = 512, C = 1000, NV = 10000, VAL = 2048 };

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fill_unit(float *x, int rows, int d, ca_rng *r) {
    for (int i = 0; i < rows; i++) {
        double s = 0;
        float *p = x + (size_t)i * d;
        for (int j = 0; j < d; j++) { p[j] = (float)ca_rng_uniform(r) - 0.5f; s += (double)p[j] * p[j]; }
        for (int j = 0; j < d; j++) p[j] = (float)(p[j] / sqrt(s));
    }
}

static void report(const char *name, double *t, int reps, double flops) {
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    printf("  %-34s best %8.4f s  median %8.4f s  %6.1f GFLOP/s (best)\n", name, t[0], t[reps / 2], flops / t[0] / 1e9);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 5;
    if (threads < 1 || threads > 64 || reps < 1 || reps > 100) { fprintf(stderr, "usage: tipf_step [THREADS 1..64] [REPS 1..100]\n"); return 2; }
    ca_rng r = ca_rng_make(7, 1);
    float *x = malloc(sizeof(float) * B * D), *keys = malloc(sizeof(float) * (size_t)N * D), *clip = malloc(sizeof(float) * B * C);
    float *xv = malloc(sizeof(float) * (size_t)NV * D), *aff = malloc(sizeof(float) * (size_t)VAL * N);
    int32_t *y = malloc(sizeof(int32_t) * B), *ky = malloc(sizeof(int32_t) * N);
    size_t pn = ca_pack_size(N, D, CA_DT_F32);
    float *kp = aligned_alloc(64, pn), *dk = aligned_alloc(64, pn);
    float *sc = malloc(sizeof(float) * ca_tipf_packed_scratch_floats(B, N, C));
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!x || !keys || !clip || !xv || !aff || !y || !ky || !kp || !dk || !sc || !t) { fprintf(stderr, "tipf_step: out of memory\n"); return 1; }
    fill_unit(x, B, D, &r); fill_unit(keys, N, D, &r); fill_unit(xv, NV, D, &r);
    for (int i = 0; i < B * C; i++) clip[i] = 20.0f * (float)ca_rng_uniform(&r);
    for (int i = 0; i < B; i++) y[i] = (int32_t)ca_rng_below(&r, C);
    for (int i = 0; i < N; i++) ky[i] = i / (N / C);
    ca_packed pk;
    if (ca_pack_weights_into(&pk, kp, pn, keys, CA_DT_F32, N, D, D, 0, CA_DT_F32) != CA_OK) { fprintf(stderr, "tipf_step: %s\n", ca_last_error()); return 1; }
    memset(dk, 0, pn);
    printf("== Tip-Adapter-F step phases: B=%d N=%d D=%d C=%d, %d threads, %d reps\n", B, N, D, C, threads, reps);
    const double fwd = 2.0 * B * N * D;
    for (int i = 0; i < reps; i++) {
        double t0 = ca_now();
        ca_gemm_packed(B, x, D, &pk, 1.0f, NULL, CA_EPI_NONE, 0.0f, aff, N, threads);
        t[i] = ca_now() - t0;
    }
    report("forward affinities (BxNxD)", t, reps, fwd);
    /* dA-shaped panels: reuse the affinity buffer as the B operand (values do not matter) */
    for (int i = 0; i < reps; i++) {
        double t0 = ca_now();
        ca_gemm_tn_panels(D, N, B, 1.0f, x, D, (const float *)(((uintptr_t)aff + 63) & ~(uintptr_t)63), dk, threads);
        t[i] = ca_now() - t0;
    }
    report("key gradient (DxNxB, tn_panels)", t, reps, fwd);
    for (int i = 0; i < reps; i++) {
        double t0 = ca_now();
        ca_tipf_loss_grad_packed(x, y, clip, B, kp, ky, N, D, C, 1.0f, 1.0f, dk, sc, threads);
        t[i] = ca_now() - t0;
    }
    report("whole packed step (2 products)", t, reps, 2 * fwd);
    static const int vb[] = {VAL, 288, 256, 144};
    for (size_t v = 0; v < sizeof vb / sizeof vb[0]; v++) {
        for (int i = 0; i < reps; i++) {
            double t0 = ca_now();
            for (int r0 = 0; r0 < NV; r0 += vb[v]) {
                int m = NV - r0 < vb[v] ? NV - r0 : vb[v];
                ca_gemm_packed(m, xv + (size_t)r0 * D, D, &pk, 1.0f, NULL, CA_EPI_NONE, 0.0f, aff, N, threads);
            }
            t[i] = ca_now() - t0;
        }
        char name[64];
        snprintf(name, sizeof name, "val affinities, %d-row blocks", vb[v]);
        report(name, t, reps, 2.0 * NV * N * D);
    }
    free(x); free(keys); free(clip); free(xv); free(aff); free(y); free(ky); free(kp); free(dk); free(sc); free(t);
    return 0;
}
