/* methods.h — internal entry points of the trained methods, exposed for the gradient checks in
 * tests/test_adapters.c. Not part of the public API; nothing here is needed to use a method. */
#ifndef CA_METHODS_H
#define CA_METHODS_H

#include "core/core.h"

/* CLIP-Adapter sides: 1 = visual, 2 = text, 3 = both. gate = learnable ratios (hypernetwork). */
size_t ca_clip_adapter_nparams(int sides, int gate, int C, int D, int h);
/* Mean CE loss of the CLIP-Adapter objective on a batch X (B,D), y (B), with the normalised text
 * classifier W0 (C,D), at the parameter block P; writes the gradient into G (same size).
 * Returns NAN when out of memory. */
double ca_clip_adapter_loss(int sides, int gate, float ratio, int C, int D, int h, const float *W0,
                            const float *X, const int32_t *y, int B, const float *P, float *G);
/* The same on the fit's packed-W0 step (large C·D with the gate: W0 packed, AVX-512 kernel;
 * visual side only): equal to ca_clip_adapter_loss to float rounding. NAN where that path does
 * not exist (other sides, no AVX-512) or when out of memory. */
double ca_clip_adapter_loss_packed(int sides, int gate, float ratio, int C, int D, int h, const float *W0,
                                   const float *X, const int32_t *y, int B, const float *P, float *G);
/* The same on the fit's large-C step (clip_adapter_step.c; visual side, fixed ratio, AVX-512)
 * on `threads` threads: equal to ca_clip_adapter_loss to float rounding, and bit for bit the
 * same whatever `threads`. NAN where that path does not exist or when out of memory. */
double ca_clip_adapter_loss_fast(int threads, int sides, int gate, float ratio, int C, int D, int h, const float *W0,
                                 const float *X, const int32_t *y, int B, const float *P, float *G);

/* Linear probe objective: mean CE of logits X·Wᵀ + b plus lambda/2·|W|². theta = [W (C,D), b (C)].
 * Writes the gradient into g (C·(D+1)); scratch: (N,C) floats. Returns the objective. */
double ca_logreg_loss(const float *X, const int32_t *y, int N, int C, int D, double lambda,
                      const float *theta, float *g, float *scratch);

/* LP++ objective (Shakeri et al., CVPR 2024): mean CE of logits X·Wᵀ + b + α ⊙ Z, where
 * Z = X·Tᵀ (N,C) are the zero-shot cosines. theta = [W (C,D), b (C), α (C)]; writes the gradient
 * into g (same layout); scratch: (N,C) floats. Returns the loss. */
double ca_lpp_loss(const float *X, const float *Z, const int32_t *y, int N, int C, int D,
                   const float *theta, float *g, float *scratch);

/* Cosine-prototype objective of ZS-LP, CLAP and TaskRes: mean over the B rows of X (unit-norm)
 * of CE(tau·cos(x_i, w_k)), plus (pen/C)·Σ_k lam_k‖w_k − t_k‖² when lam != NULL (CLAP).
 * W, T: (C,D). Writes dloss/dW into G (C,D). scratch: ca_cosproto_scratch(B,C,D) floats. */
size_t ca_cosproto_scratch(int B, int C, int D);
double ca_cosproto_loss(const float *X, const int32_t *y, int B, int C, int D, float tau,
                        const float *W, const float *T, const float *lam, float pen, float *G,
                        float *scratch);

/* The prototype trainer of zs-lp, clap and taskres (clap.c). The trained tensor P (C,D), updated
 * in place, is the prototypes (scale = 0) or TaskRes's residual (W = T + scale·P). Minibatches of
 * 256 from a fresh shuffle of the pool (every view when the split has views), as many per epoch
 * as the shots fill; one epoch at warm_lr, then cosine from lr. */
#define CA_PROBE_TAU 100.0f
#define CA_PROBE_WARM_LR 1e-5
typedef struct {
    const char *name;
    int adam;             /* 0: SGD momentum 0.9, 1: Adam (β 0.9, 0.999, eps 1e-8) */
    double lr, warm_lr;
    int epochs;
    float scale;          /* taskres residual scale α; 0 = the prototypes are trained directly */
    const float *lam;     /* CLAP multipliers (C) or NULL */
    float pen;            /* weight of CLAP's penalty (see clap.c) */
} ca_probe_recipe;
ca_status ca_probe_train(const ca_fit_data *d, const ca_fit_params *p, const ca_probe_recipe *rc, float *P);
/* out (n,C) = 100·cos(x, W_k) */
ca_status ca_probe_cos_logits(const float *x, int n, const float *W, int C, int D, float *out);

/* TaskRes objective at residual R (C,D): ca_cosproto_loss at prototypes W = T + alpha·R, and
 * dloss/dR = alpha·dloss/dW into G. scratch: ca_cosproto_scratch(B,C,D) + C·D floats. */
double ca_taskres_loss(const float *X, const int32_t *y, int B, int C, int D, float tau,
                       const float *T, float alpha, const float *R, float *G, float *scratch);

/* ProKeR's large-cache path (the one fit takes when the dense double system would not fit its
 * memory bound, e.g. 16,000 shots): float32 system built block by block, val logits by blocks.
 * Exposed so that tests can run it on a small set against the dense path. */
ca_status ca_proker_fit_lean(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p);
/* The dense path's memory bound in bytes (default 768 MiB; 0: always the lean path); returns the
 * previous one. Process-wide: for tests only. */
size_t ca_proker_set_dense_limit(size_t bytes);

#endif
