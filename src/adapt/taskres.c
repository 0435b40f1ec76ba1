/* taskres.c — TaskRes (Yu et al., CVPR 2023): prototypes t_k + α·x_k with x learned from zero,
 * on the cosine head τ·cos(f, w_k) (τ = 100), trained by clap.c's prototype trainer with Adam. */
#include "adapt/adapt.h"
#include "adapt/methods.h"
#include "adapt/train.h"

#include <string.h>

/* TaskRes (Yu et al., CVPR 2023): prototypes t_k + α·x_k, x from zero, Adam lr 2e-4 (the
 * official 2e-3 is for raw text embeddings of norm ~10, and Adam's steps do not scale with the
 * gradient), cosine over 100 epochs (K ≤ 4) or 200, α = 0.5. No validation. */
#define TASKRES_ALPHA 0.5f
#define TASKRES_LR 2e-4

static ca_status taskres_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int C = c->C, D = c->D;
    size_t nP = (size_t)C * D;
    float *Wo = ca_clf_add_tensor(c, "proto_w", 2, (int64_t[]){C, D});
    float *R = ca_calloc2(nP, sizeof(float));
    if (!Wo || !R) { free(R); return CA_E_NOMEM; }
    int shots = d->train.n / (C > 0 ? C : 1);
    ca_probe_recipe rc = {"taskres", 1, TASKRES_LR, CA_PROBE_WARM_LR, shots <= 4 ? 100 : 200, TASKRES_ALPHA, NULL, 0.0f};
    ca_gemm_threads saved = ca_train_threads_set(p->threads);
    ca_status st = ca_probe_train(d, p, &rc, R);
    ca_train_threads_restore(saved);
    if (st) { free(R); return st; }
    for (size_t k = 0; k < nP; k++) Wo[k] = d->text_w[k] + TASKRES_ALPHA * R[k];
    free(R);
    double vacc = 0;
    if (d->val.n > 0) {
        float *L = ca_malloc2((size_t)d->val.n * C, sizeof(float));
        if (!L) return CA_E_NOMEM;
        st = ca_probe_cos_logits(d->val.x, d->val.n, Wo, C, D, L);
        vacc = ca_accuracy(L, d->val.y, d->val.n, C);
        free(L);
        if (st) return st;
    }
    st = ca_clf_set_param(c, "residual_scale", TASKRES_ALPHA);
    if (!st) st = ca_clf_set_param(c, "lr", p->lr > 0 ? p->lr : TASKRES_LR);
    if (!st) st = ca_clf_set_param(c, "epochs", p->epochs > 0 ? p->epochs : rc.epochs);
    if (!st) st = ca_clf_set_param(c, "val_acc", vacc);
    return st;
}

static ca_status taskres_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const float *W = ca_clf_get_tensor(c, "proto_w", (int64_t)c->C * c->D);
    if (!W) return CA_E_FORMAT;
    return ca_probe_cos_logits(x, n, W, c->C, c->D, out);
}

const ca_method ca_method_taskres = {
    .name = "taskres",
    .help = "TaskRes: prototypes t_k + 0.5·x_k, x learned from zero with Adam, fixed recipe, no validation (needs text weights)",
    .needs_text = 1, .fit = taskres_fit, .logits = taskres_logits,
};
