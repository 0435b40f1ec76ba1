/* zeroshot.c — CLIP's zero-shot classifier: logits = 100 · f · Wᵀ with W the text classifier. */
#include "adapt/adapt.h"

#include <string.h>

static ca_status zs_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    (void)p;
    float *w = ca_clf_add_tensor(c, "text_w", 2, (int64_t[]){c->C, c->D});
    if (!w) return CA_E_NOMEM;
    memcpy(w, d->text_w, sizeof(float) * (size_t)c->C * (size_t)c->D);
    return CA_OK;
}

static ca_status zs_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const float *w = ca_clf_get_tensor(c, "text_w", (int64_t)c->C * c->D);
    if (!w) return CA_E_FORMAT;
    ca_logits_linear(x, n, w, c->C, c->D, 100.0f, out);
    return CA_OK;
}

const ca_method ca_method_zero_shot = {
    .name = "zero-shot",
    .help = "CLIP's zero-shot classifier, 100·f·Wᵀ (needs text weights; no training)",
    .needs_text = 1,
    .fit = zs_fit,
    .logits = zs_logits,
};
