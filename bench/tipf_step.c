/* tipf_step.c — the phases of one Tip-Adapter-F epoch at ImageNet size (B = 256 rows per step,
 * N = 16,000 keys, D = 512, C = 1000, 10,000 val rows), each timed alone on random unit features:
 * the forward affinities (ca_gemm_packed, B x N x D); the key gradient (ca_gemm_tn_panels,
 * D x N x B); the packed step (ca_tipf_loss_grad_packed: both products and the per-row exp,
 * class sums and softmax gradient); that step then AdamW as a separate pass over the keys (as
 * the fit ran it before) and both fused (ca_tipf_step_packed, as it runs now); AdamW on one
 * gradient panel (the oracle ca_optim_step against ca_adamw_f32, 10 FLOP per element); the val
 * pass's affinities in blocks of 2048 rows (before) and 288 (now), and in BF16 (the fit's
 * val screen, keys converted per pass). Prints best and median ms of
 * REPS runs and GFLOP/s (2·M·N·K per product; the steps count their two products).
 * TIPF_STEP_ONLY=1 skips the val part. Not a test: the values are checked in test_fastfit.c.
 * Usage: tipf_step [THREADS] [REPS] */
#include "adapt/tip.h"
#include "adapt/train.h"
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
    printf("  %-36s best %9.3f ms  median %9.3f ms  %6.1f GFLOP/s (best)\n", name, 1e3 * t[0], 1e3 * t[reps / 2], flops / t[0] / 1e9);
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
    /* the step of the fit: the packed step with AdamW fused into the key-gradient product */
    {
        float *m = aligned_alloc(64, pn), *v = aligned_alloc(64, pn);
        if (!m || !v) { fprintf(stderr, "tipf_step: out of memory\n"); return 1; }
        memset(m, 0, pn); memset(v, 0, pn);
        const ca_optim opt = {.kind = CA_OPT_ADAMW, .weight_decay = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-4f};
        /* before: the step, then ca_optim_step over the whole (N,D) gradient in 64 Ki chunks on
         * the threads, as the fit did */
        const size_t kn = pn / sizeof(float), chunk = 1 << 16, nch = (kn + chunk - 1) / chunk;
        for (int i = 0; i < reps; i++) {
            double t0 = ca_now();
            ca_tipf_loss_grad_packed(x, y, clip, B, kp, ky, N, D, C, 1.0f, 1.0f, dk, sc, threads);
            #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
            for (size_t q = 0; q < nch; q++) {
                size_t o = q * chunk, n = kn - o < chunk ? kn - o : chunk;
                ca_optim_step(&opt, 1e-3, i + 1, kp + o, dk + o, m + o, v + o, n);
            }
            t[i] = ca_now() - t0;
        }
        report("step, then separate AdamW pass", t, reps, 2 * fwd);
        memset(m, 0, pn); memset(v, 0, pn);
        for (int i = 0; i < reps; i++) {
            double t0 = ca_now();
            ca_tipf_step_packed(x, y, clip, B, kp, ky, N, D, C, 1.0f, 1.0f, &opt, 1e-3, i + 1, m, v, sc, threads);
            t[i] = ca_now() - t0;
        }
        report("step + AdamW, fused (the fit's)", t, reps, 2 * fwd);
        /* AdamW on one cache-resident (D,32) gradient panel, as the fused step applies it:
         * ca_optim_step (the oracle, compiled for the baseline ISA) against ca_adamw_f32 */
        const size_t pf = (size_t)D * 32;
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < reps; i++) {
                double t0 = ca_now();
                for (int r = 0; r < 200; r++) {
                    if (k == 0) ca_optim_step(&opt, 1e-3, r + 1, kp, dk, m, v, pf);
                    else ca_adamw_f32(kp, dk, m, v, pf, 0.99999f, 0.9f, 0.999f, 1e-2f, 0.5f, 1e-4f);
                }
                t[i] = (ca_now() - t0) / 200;
            }
            report(k ? "AdamW, one panel: ca_adamw_f32" : "AdamW, one panel: ca_optim_step", t, reps, 10.0 * pf);
        }
        free(m); free(v);
    }
    static const int vb[] = {VAL, 288};
    if (getenv("TIPF_STEP_ONLY")) goto out;
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
    /* the val screen's product (keys and rows in BF16), 288-row blocks, keys converted per pass
     * as the fit does once per epoch */
    size_t bn = ca_pack_bf16_size(N, D);
    void *kbf = ca_fastgemm_bf16() && bn ? aligned_alloc(64, (bn + 63) & ~(size_t)63) : NULL;
    if (kbf) {
        ca_packed kb;
        for (int i = 0; i < reps; i++) {
            double t0 = ca_now();
            ca_packed_bf16_into(&kb, kbf, bn, &pk);
            for (int r0 = 0; r0 < NV; r0 += 288) {
                int m = NV - r0 < 288 ? NV - r0 : 288;
                ca_gemm_packed(m, xv + (size_t)r0 * D, D, &kb, 1.0f, NULL, CA_EPI_NONE, 0.0f, aff, N, threads);
            }
            t[i] = ca_now() - t0;
        }
        report("val affinities, BF16 screen, 288", t, reps, 2.0 * NV * N * D);
    }
    free(kbf);
out:
    free(x); free(keys); free(clip); free(xv); free(aff); free(y); free(ky); free(kp); free(dk); free(sc); free(t);
    return 0;
}
