/* predict.c — classify decoded images with a CLIP model and a fitted classifier: CLIP's centre
 * crop, encode, L2-normalise, classifier logits, softmax. Batch evaluation on stored features
 * lives in metrics.c; fitting in adapt/.
 */
#include "core/core.h"

#include <math.h>
#include <string.h>

/* The one-call forms: a session for the call. */
ca_status ca_image_features(const ca_model *m, const ca_image *img, float *out) {
    CA_ENTER();
    if (!m) return ca_fail(CA_E_ARG, "ca_image_features: NULL argument");
    ca_status st;
    ca_session *s = ca_session_new(m, NULL, &st);
    if (!s) return st;
    st = ca_session_image_features(s, img, out);
    ca_session_free(s);
    return st;
}

ca_status ca_classify_image(const ca_model *m, const ca_classifier *c, const ca_image *img, float *probs_out) {
    CA_ENTER();
    if (!m) return ca_fail(CA_E_ARG, "ca_classify_image: NULL argument");
    ca_status st;
    ca_session *s = ca_session_new(m, NULL, &st);
    if (!s) return st;
    st = ca_session_classify_image(s, c, img, probs_out);
    ca_session_free(s);
    return st;
}

ca_status ca_session_image_features(ca_session *s, const ca_image *img, float *out) {
    CA_ENTER();
    const ca_model *m = s ? ca_session_model(s) : NULL;
    if (!m || !img || !out) return ca_fail(CA_E_ARG, "ca_image_features: NULL argument");
    ca_model_info info;
    ca_status st = ca_model_get_info(m, &info);
    if (st != CA_OK) return st;
    if (!info.has_vision) return ca_fail(CA_E_ARG, "image features: the model has no vision tower");
    int R = info.image_size, D = info.embed_dim;
    float *in = ca_malloc2((size_t)3 * R, (size_t)R * sizeof(float));
    if (!in) return CA_E_NOMEM;
    st = ca_preprocess(img, R, in);
    if (st == CA_OK) st = ca_session_encode_images(s, in, 1, out);
    free(in);
    if (st != CA_OK) return st;
    ca_l2_normalize(out, D); /* the same normalisation as extraction, so predict == eval */
    return CA_OK;
}

/* probs (n) = softmax(logits), computed stably in double. */
static void softmax(const float *logits, int n, float *probs) {
    double mx = logits[0], s = 0;
    for (int i = 1; i < n; i++) if (logits[i] > mx) mx = logits[i];
    for (int i = 0; i < n; i++) s += exp((double)logits[i] - mx);
    for (int i = 0; i < n; i++) probs[i] = (float)(exp((double)logits[i] - mx) / s);
}

ca_status ca_session_classify_image(ca_session *s, const ca_classifier *c, const ca_image *img, float *probs_out) {
    CA_ENTER();
    const ca_model *m = s ? ca_session_model(s) : NULL;
    if (!m || !c || !img || !probs_out) return ca_fail(CA_E_ARG, "ca_classify_image: NULL argument");
    ca_model_info info;
    ca_status st = ca_model_get_info(m, &info);
    if (st != CA_OK) return st;
    int D = ca_classifier_dim(c), C = ca_classifier_num_classes(c);
    if (info.embed_dim != D)
        return ca_fail(CA_E_SHAPE, "classifier expects %d-d features but the model gives %d-d: fitted with another model?", D, info.embed_dim);
    char sig[512];
    const char *want = ca_classifier_model_signature(c);
    if (want && ca_model_signature(m, sig, sizeof sig) == CA_OK && !ca_model_signature_match(want, sig))
        return ca_fail(CA_E_ARG, "classifier was fit on features of another model (its image projection differs; "
                                 "extract with this model, or predict with the one used for extract)");
    float *f = ca_malloc2((size_t)D, sizeof(float)), *lg = ca_malloc2((size_t)C, sizeof(float));
    st = (f && lg) ? ca_session_image_features(s, img, f) : CA_E_NOMEM;
    if (st == CA_OK) st = ca_classifier_logits(c, f, 1, lg);
    if (st == CA_OK) softmax(lg, C, probs_out);
    free(f); free(lg);
    return st;
}
