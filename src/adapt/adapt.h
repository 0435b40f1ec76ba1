/* adapt.h — internal contract between the method registry and the methods.
 * A fitted classifier is a method name, named scalar hyper-parameters and named float tensors;
 * that uniform shape is what makes save/load and prediction method-agnostic.
 * To add a method: define a `const ca_method` in its own file and list it in registry.c.
 */
#ifndef CA_ADAPT_H
#define CA_ADAPT_H

#include "core/core.h"

#define CA_CLF_MAX_PARAMS 48
#define CA_CLF_MAX_TENSORS 24

typedef struct {
    char name[48];
    int ndim;
    int64_t shape[4];
    float *data;
} ca_clf_tensor;

typedef struct ca_method ca_method;

struct ca_classifier {
    const ca_method *m;
    int C, D;
    int np;
    char pname[CA_CLF_MAX_PARAMS][40];
    double pval[CA_CLF_MAX_PARAMS];
    int nt;
    ca_clf_tensor t[CA_CLF_MAX_TENSORS];
    char **class_names;     /* C entries or NULL */
    char *model_sig;        /* ca_model_signature of the features' model, or NULL */
};

struct ca_method {
    const char *name;
    const char *help;       /* one line for --help */
    int needs_text;
    /* Fill c (params, tensors) from data; c->m, C, D are already set. */
    ca_status (*fit)(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p);
    /* x: (n, D) -> out: (n, C). Must be thread-safe (read-only on c). */
    ca_status (*logits)(const ca_classifier *c, const float *x, int n, float *out);
    /* Optional: the param in which fit leaves the fitted classifier's own accuracy on d->val, in
     * percent, so that scoring val again after the fit can be skipped (eval/run.c). Only for a
     * method whose fit scores d->val through the very code `logits` runs on the same rows (the
     * same products, blocks and kernel choices: tip-cache's tc_run), so the count is the same;
     * not for Tip-Adapter, whose search computes its val products in other blocks than its
     * logits and so may differ from them by float rounding. tests/test_tip.c checks equality. */
    const char *val_acc_param;
};

const ca_method *ca_method_find(const char *name);

/* Record a scalar (replaces an existing one). */
ca_status ca_clf_set_param(ca_classifier *c, const char *name, double v);
/* Allocate a zeroed tensor owned by c and return its data; NULL on failure (error recorded). */
float *ca_clf_add_tensor(ca_classifier *c, const char *name, int ndim, const int64_t *shape);
/* Tensor by name with its element count checked; NULL and CA_E_FORMAT recorded when absent or
 * of another size (a loaded file may be damaged). */
const float *ca_clf_get_tensor(const ca_classifier *c, const char *name, int64_t numel);

/* logits(n, C) = scale * x(n, D) · W(C, D)ᵀ — the zero-shot / cosine classifier product. */
void ca_logits_linear(const float *x, int n, const float *W, int C, int D, float scale, float *out);

#endif
