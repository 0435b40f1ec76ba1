/* train.h — shared pieces for the trained methods (CLIP-Adapter, its hypernetwork, linear
 * probe, and any other method that wants them): optimisers, learning-rate schedule, softmax
 * cross-entropy, row L2-normalisation, ReLU, minibatch order. Plain functions on float*; forward
 * and backward side by side. Not a framework: no autograd, no allocation inside these calls.
 */
#ifndef CA_TRAIN_H
#define CA_TRAIN_H

#include "core/core.h"

enum { CA_OPT_SGD = 1, CA_OPT_ADAMW = 2 };

typedef struct {
    int kind;             /* CA_OPT_SGD (momentum, PyTorch semantics) or CA_OPT_ADAMW */
    float momentum;       /* SGD, e.g. 0.9 */
    float weight_decay;   /* SGD: L2 added to the gradient; AdamW: decoupled decay */
    float beta1, beta2, eps;  /* AdamW */
} ca_optim;

/* One update of n parameters p with gradient g at learning rate lr. m (and v for AdamW) are the
 * optimiser state, zero-initialised by the caller; step counts from 1 (AdamW bias correction). */
void ca_optim_step(const ca_optim *o, double lr, int64_t step, float *p, const float *g, float *m,
                   float *v, size_t n);

/* Linear warm-up from ~0 over `warmup` steps, then cosine decay from base to 0 at `total`. */
double ca_lr_cosine(double base, int64_t step, int64_t total, int64_t warmup);

/* Softmax cross-entropy, mean over the B rows. logits: (B,C); y: (B). Returns the mean loss and,
 * when dlogits != NULL, writes d(loss)/d(logits) = (softmax - onehot) / B. dlogits may alias
 * logits. */
double ca_softmax_ce(const float *logits, const int32_t *y, int B, int C, float *dlogits);

/* Row L2-normalisation. x: (n,D) -> y: (n,D), norm: (n) (the norms, floored at 1e-12). */
void ca_l2norm_forward(const float *x, int n, int D, float *y, float *norm);
/* dx = (dy - y·(y·dy)) / norm, from the forward's y and norm. dx may alias dy. */
void ca_l2norm_backward(const float *y, const float *norm, const float *dy, int n, int D, float *dx);

/* In-place ReLU on n values, and its backward: dx[i] = 0 where the forward output y[i] <= 0. */
void ca_relu_forward(float *x, size_t n);
void ca_relu_backward(const float *y, float *dx, size_t n);

/* A fresh random order of 0..n-1 in perm (one epoch's minibatch order). */
void ca_epoch_order(ca_rng *r, int *perm, int n);

/* PyTorch's default nn.Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for n values. */
void ca_init_uniform(ca_rng *r, float *w, size_t n, int fan_in);

/* Thread budget of the GEMMs in a training loop: OpenBLAS's thread count and ca_sgemm's own
 * kernel budget, saved so that they can be restored exactly after the fit.
 * Training GEMMs are small (batch 32): a second BLAS thread gains ~25% on an idle 2-core machine
 * and loses ~3x when the cores are shared with other work; trained methods use all cores unless
 * ca_fit_params.threads asks otherwise. Process-wide: not thread-safe against concurrent fits. */
typedef struct { int blas, sgemm; } ca_gemm_threads;
/* Set both budgets to n (n <= 0: all cores) and return the previous ones. */
ca_gemm_threads ca_train_threads_set(int n);
void ca_train_threads_restore(ca_gemm_threads saved);

#endif
