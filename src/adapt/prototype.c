/* prototype.c — nearest class mean by cosine: logits = 100·f·Pᵀ with P the L2-normalised mean of
 * each class's training features. No hyper-parameters, no text. */
#include "adapt/adapt.h"
#include "adapt/train.h"

#include <string.h>

static ca_status proto_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    (void)p;
    const int C = c->C, D = c->D;
    float *P = ca_clf_add_tensor(c, "protos", 2, (int64_t[]){C, D});
    /* |sum| and the count per class let ca_classifier_add_example (grow.c) add one more example
     * with the weight of one: the prototype stays the normalised sum of its class's features. */
    float *nrm = P ? ca_clf_add_tensor(c, "proto_norms", 1, (int64_t[]){C}) : NULL;
    float *cnt = nrm ? ca_clf_add_tensor(c, "class_counts", 1, (int64_t[]){C}) : NULL;
    if (!cnt) return CA_E_NOMEM;
    for (int i = 0; i < d->train.n; i++) {
        float *r = P + (size_t)d->train.y[i] * D;
        const float *x = d->train.x + (size_t)i * D;
        for (int k = 0; k < D; k++) r[k] += x[k];
        cnt[d->train.y[i]] += 1.0f;
    }
    ca_l2norm_forward(P, C, D, P, nrm);   /* a class without examples keeps a zero row */
    return CA_OK;
}

static ca_status proto_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const float *P = ca_clf_get_tensor(c, "protos", (int64_t)c->C * c->D);
    if (!P) return CA_E_FORMAT;
    ca_logits_linear(x, n, P, c->C, c->D, 100.0f, out);
    return CA_OK;
}

const ca_method ca_method_prototype = {
    .name = "prototype",
    .help = "cosine similarity to each class's mean training feature (no text, no tuning)",
    .needs_text = 0, .fit = proto_fit, .logits = proto_logits,
};
