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

/* Linear probe objective: mean CE of logits X·Wᵀ + b plus lambda/2·|W|². theta = [W (C,D), b (C)].
 * Writes the gradient into g (C·(D+1)); scratch: (N,C) floats. Returns the objective. */
double ca_logreg_loss(const float *X, const int32_t *y, int N, int C, int D, double lambda,
                      const float *theta, float *g, float *scratch);

#endif
