/* classifier.c — the method-agnostic classifier container: named parameters and tensors that a
 * method fills while fitting, the accessors, and logits through the method's own function.
 * Not here: the method table, ca_fit and save/load (registry.c), which call the methods. */
#include "adapt/adapt.h"
#include "model/gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ca_classifier_free(ca_classifier *c) {
    if (!c) return;
    for (int i = 0; i < c->nt; i++) free(c->t[i].data);
    if (c->class_names)
        for (int i = 0; i < c->C; i++) free(c->class_names[i]);
    free(c->class_names);
    free(c->model_sig);
    free(c);
}

ca_status ca_clf_set_param(ca_classifier *c, const char *name, double v) {
    for (int i = 0; i < c->np; i++)
        if (strcmp(c->pname[i], name) == 0) { c->pval[i] = v; return CA_OK; }
    if (c->np == CA_CLF_MAX_PARAMS || strlen(name) >= sizeof c->pname[0])
        return ca_fail(CA_E_INTERNAL, "classifier: cannot store parameter '%s'", name);
    snprintf(c->pname[c->np], sizeof c->pname[0], "%s", name);
    c->pval[c->np++] = v;
    return CA_OK;
}

float *ca_clf_add_tensor(ca_classifier *c, const char *name, int ndim, const int64_t *shape) {
    if (c->nt == CA_CLF_MAX_TENSORS || ndim < 1 || ndim > 4 || strlen(name) >= sizeof c->t[0].name) {
        ca_fail(CA_E_INTERNAL, "classifier: cannot store tensor '%s'", name);
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || !ca_mul_size(n, (size_t)shape[i], &n)) { ca_fail(CA_E_NOMEM, "tensor '%s' too large", name); return NULL; }
    float *d = ca_calloc2(n, sizeof(float));
    if (!d) return NULL;
    ca_clf_tensor *t = &c->t[c->nt++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
    t->data = d;
    return d;
}

const float *ca_clf_get_tensor(const ca_classifier *c, const char *name, int64_t numel) {
    for (int i = 0; i < c->nt; i++) {
        if (strcmp(c->t[i].name, name) != 0) continue;
        int64_t n = 1;
        for (int d = 0; d < c->t[i].ndim; d++) n *= c->t[i].shape[d];
        if (n != numel) {
            ca_fail(CA_E_FORMAT, "classifier tensor '%s' has %lld elements, expected %lld", name, (long long)n, (long long)numel);
            return NULL;
        }
        return c->t[i].data;
    }
    ca_fail(CA_E_FORMAT, "classifier has no tensor '%s' (method %s)", name, c->m->name);
    return NULL;
}

void ca_logits_linear(const float *x, int n, const float *W, int C, int D, float scale, float *out) {
    ca_sgemm(0, 1, n, C, D, scale, x, D, W, D, 0.0f, out, C);
}

const char *ca_classifier_method(const ca_classifier *c) { return c ? c->m->name : NULL; }
int ca_classifier_num_classes(const ca_classifier *c) { return c ? c->C : 0; }
int ca_classifier_dim(const ca_classifier *c) { return c ? c->D : 0; }
int ca_classifier_param_count(const ca_classifier *c) { return c ? c->np : 0; }
const char *ca_classifier_param_name(const ca_classifier *c, int i) {
    return (c && i >= 0 && i < c->np) ? c->pname[i] : NULL;
}
double ca_classifier_param(const ca_classifier *c, const char *name, double fallback) {
    for (int i = 0; c && name && i < c->np; i++)
        if (strcmp(c->pname[i], name) == 0) return c->pval[i];
    return fallback;
}
const char *ca_classifier_class_name(const ca_classifier *c, int i) {
    return (c && c->class_names && i >= 0 && i < c->C) ? c->class_names[i] : NULL;
}

const char *ca_classifier_model_signature(const ca_classifier *c) { return c ? c->model_sig : NULL; }

ca_status ca_classifier_logits(const ca_classifier *c, const float *x, int n, float *out) {
    CA_ENTER();
    if (!c || (n > 0 && (!x || !out)) || n < 0) return ca_fail(CA_E_ARG, "ca_classifier_logits: bad argument");
    if (n == 0) return CA_OK;
    return c->m->logits(c, x, n, out);
}
