/* fit_features.c — fit a method directly on a loaded feature set (train.{K}shot, val, text
 * weights), keeping the set's class names in the classifier so that predictions are named. */
#include "adapt/adapt.h"

#include <string.h>

ca_classifier *ca_fit_features(const char *method, const ca_featureset *fs, int shots,
                               const ca_fit_params *p, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!fs) { *st = ca_fail(CA_E_ARG, "ca_fit_features: feature set is NULL"); return NULL; }
    char name[48];
    snprintf(name, sizeof name, "train.%dshot", shots);
    ca_fit_data d;
    memset(&d, 0, sizeof d);
    d.num_classes = ca_features_num_classes(fs);
    d.dim = ca_features_dim(fs);
    d.text_w = ca_features_text(fs);
    if ((*st = ca_features_split(fs, name, &d.train)) != CA_OK) return NULL;
    if (ca_features_split(fs, "val", &d.val) != CA_OK) memset(&d.val, 0, sizeof d.val);
    ca_clear_error();
    ca_classifier *c = ca_fit(method, &d, p, st);
    if (c && ca_features_model_signature(fs) && !(c->model_sig = strdup(ca_features_model_signature(fs)))) {
        ca_classifier_free(c);
        *st = ca_fail(CA_E_NOMEM, "out of memory");
        return NULL;
    }
    if (!c || !ca_features_class_name(fs, 0)) return c;
    c->class_names = calloc((size_t)c->C, sizeof(char *));
    for (int i = 0; c->class_names && i < c->C; i++) {
        const char *n = ca_features_class_name(fs, i);
        if (!(c->class_names[i] = strdup(n ? n : ""))) {
            ca_classifier_free(c);
            *st = ca_fail(CA_E_NOMEM, "out of memory");
            return NULL;
        }
    }
    if (!c->class_names) { ca_classifier_free(c); *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
    return c;
}
