/* clip_adapter_step.h — CLIP-Adapter's training step for large class counts (the ImageNet-size
 * sets): the visual adapter with a fixed ratio against a frozen text classifier, loss, gradient
 * and AdamW/SGD update in one OpenMP region, on our own AVX-512 tiles (no BLAS, no allocation
 * per step). Not the shipped sets' step: clip_adapter.c keeps its plain step (and the oracle,
 * ca_clip_adapter_loss) for them. Each output element is one sequential k sum whichever thread
 * computes it, so results do not depend on the thread count. */
#ifndef CA_CLIP_ADAPTER_STEP_H
#define CA_CLIP_ADAPTER_STEP_H

#include "adapt/train.h"

/* Per-fit state: W0ᵀ and the step's activations, stored feature-major (rows = features,
 * columns = the batch, stride ldb = the batch rounded up to 16). */
typedef struct {
    int C, D, h, B, ldb, threads;
    const float *W0;           /* (C,D) normalised text classifier, borrowed */
    float *W0t;                /* (D,C) */
    float *Xt, *H1t, *H1, *At, *Fnt, *norm, *Lt, *dFt, *dZ1t;  /* see clip_adapter_step.c */
    float *X;                  /* 2 x (B,D): the steps' batches, row-major, used in turn */
    int32_t *y;                /* (B) */
    double *closs;             /* per-column loss */
    void *mem;
} ca_castep;

/* 1 when this CPU path has the step (AVX-512); else ca_castep_init returns CA_E_UNSUPPORTED. */
int ca_castep_available(void);
/* W0: (C,D), kept by pointer (must outlive st). B: the largest batch. threads >= 1.
 * CA_E_NOMEM, CA_E_ARG, CA_E_UNSUPPORTED. Free with ca_castep_free (NULL-safe on zeroed). */
ca_status ca_castep_init(ca_castep *st, const float *W0, int C, int D, int h, int B, int threads);
void ca_castep_free(ca_castep *st);

/* One step on the batch X (nb,D) row-major, labels y (nb): the mean CE loss of
 * 100·norm(r·A + (1-r)·X)·W0ᵀ, A = ReLU(ReLU(X·W1ᵀ)·W2ᵀ), at P = [W1 (h,D) | W2 (D,h)], the
 * gradient into G (same layout), then — when opt != NULL and the loss is finite — the update
 * ca_optim_step(opt, lr, step, P, G, M, V, 2hD), split over the threads (element-wise, so the
 * same values). Returns the loss (NaN/Inf: nothing updated). */
double ca_castep_run(ca_castep *st, float *P, const float *X, const int32_t *y, int nb, float ratio, float *G,
                     const ca_optim *opt, double lr, int64_t step, float *M, float *V);

/* The batch of step i (0-based) of an epoch: called on one thread before that step; writes the
 * rows into X (nb,D) and their labels into y, the step's learning rate into *lr and its 1-based
 * optimiser step into *step; returns nb (1..B). */
typedef int (*ca_castep_batch_fn)(void *user, int i, float *X, int32_t *y, double *lr, int64_t *step);

/* Steps i0 .. i0+nsteps-1 of an epoch (ca_castep_run each) in one parallel region on
 * st->threads threads, batches from next(). Stops at the first non-finite loss (that step
 * updates nothing): returns it, with *bad_step = its index; else returns the last loss,
 * *bad_step = -1. */
double ca_castep_epoch(ca_castep *st, int i0, int nsteps, ca_castep_batch_fn next, void *user, float ratio, float *P,
                       float *G, const ca_optim *opt, float *M, float *V, int *bad_step);

#endif
