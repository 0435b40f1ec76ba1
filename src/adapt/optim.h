/* optim.h — optimisers for the trainable methods: AdamW exactly as torch.optim.AdamW (decoupled
 * weight decay, bias-corrected moments, eps added after the square root) and the cosine
 * schedule of torch's CosineAnnealingLR (eta_min 0). No autograd: callers bring gradients. */
#ifndef CA_OPTIM_H
#define CA_OPTIM_H

#include "core/core.h"

typedef struct {
    size_t n;
    float *m, *v;            /* first and second moments, (n) each, one block */
    int64_t t;               /* steps taken */
    double beta1, beta2, eps, weight_decay;
} ca_adamw;

/* Zeroed moments for n parameters; betas (0.9, 0.999). Free with ca_adamw_free. */
ca_status ca_adamw_init(ca_adamw *o, size_t n, double eps, double weight_decay);
void ca_adamw_free(ca_adamw *o);
/* One step at learning rate lr: p(n) updated in place from g(n). */
void ca_adamw_step(ca_adamw *o, float *p, const float *g, double lr);

/* Learning rate of step t (0-based) of total under cosine annealing to 0 from base. */
double ca_cosine_lr(double base, int64_t t, int64_t total);

#endif
