/* grow.c — growing a fitted classifier without training: a copy of a classifier, one more class
 * (with its text weight where the method keeps text), one more labelled example joining the cache
 * of the training-free methods (tip-adapter, tip-adapter-f, tip-cache, prototype), and the cached
 * examples back out for a refit. It never fits: α, β and every other chosen value stay as fitted.
 */
#include "adapt/adapt.h"

#include <math.h>
#include <string.h>

typedef enum { G_NONE, G_TIP, G_TIPCACHE, G_PROTO, G_ZS } grow_kind;

static grow_kind kind_of(const ca_classifier *c) {
    const char *m = c->m->name;
    if (!strcmp(m, "tip-adapter") || !strcmp(m, "tip-adapter-f")) return G_TIP;
    if (!strcmp(m, "tip-cache")) return G_TIPCACHE;
    if (!strcmp(m, "prototype")) return G_PROTO;
    if (!strcmp(m, "zero-shot")) return G_ZS;
    return G_NONE;
}

static ca_clf_tensor *find_t(ca_classifier *c, const char *name) {
    for (int i = 0; i < c->nt; i++) if (!strcmp(c->t[i].name, name)) return &c->t[i];
    return NULL;
}
static const ca_clf_tensor *find_tc(const ca_classifier *c, const char *name) {
    return find_t((ca_classifier *)c, name);
}

static int64_t row_size(const ca_clf_tensor *t) {
    int64_t n = 1;
    for (int d = 1; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* One more (zeroed) row on the first axis of t; returns the new row. */
static float *add_row(ca_clf_tensor *t) {
    int64_t rs = row_size(t), rows = t->shape[0];
    size_t n;
    if (rows >= INT32_MAX || !ca_mul_size((size_t)(rows + 1), (size_t)rs, &n)) { ca_fail(CA_E_NOMEM, "classifier tensor '%s' too large", t->name); return NULL; }
    float *d = realloc(t->data, n * sizeof(float));
    if (!d) { ca_fail(CA_E_NOMEM, "out of memory growing '%s'", t->name); return NULL; }
    t->data = d;
    t->shape[0] = rows + 1;
    memset(d + rows * rs, 0, (size_t)rs * sizeof(float));
    return d + rows * rs;
}

/* The cache of a tip-family classifier: keys (N, D) and labels (N) tensors. */
static void cache_tensors(const ca_classifier *c, const ca_clf_tensor **keys, const ca_clf_tensor **lab) {
    grow_kind k = kind_of(c);
    *keys = *lab = NULL;
    if (k == G_TIP) { *keys = find_tc(c, "keys"); *lab = find_tc(c, "key_labels"); }
    if (k == G_TIPCACHE) { *keys = find_tc(c, "cache_keys"); *lab = find_tc(c, "cache_labels"); }
}

int ca_classifier_can_grow(const ca_classifier *c) {
    grow_kind k = c ? kind_of(c) : G_NONE;
    return k == G_TIP || k == G_TIPCACHE || k == G_PROTO;
}

int ca_classifier_has_text(const ca_classifier *c) {
    return c && find_tc(c, "text_w") != NULL;
}

int ca_classifier_class_index(const ca_classifier *c, const char *name) {
    if (!c || !name) return -1;
    for (int i = 0; i < c->C; i++) {
        if (c->class_names && c->class_names[i] && !strcmp(c->class_names[i], name)) return i;
        if (!c->class_names || !c->class_names[i]) {
            char buf[32];
            snprintf(buf, sizeof buf, "class %d", i);
            if (!strcmp(buf, name)) return i;
        }
    }
    return -1;
}

ca_classifier *ca_classifier_clone(const ca_classifier *c, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!c) { *st = ca_fail(CA_E_ARG, "ca_classifier_clone: NULL classifier"); return NULL; }
    ca_classifier *o = calloc(1, sizeof *o);
    if (!o) { *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
    memcpy(o, c, sizeof *o);
    o->nt = 0; o->class_names = NULL; o->model_sig = NULL;
    for (int i = 0; i < c->nt; i++) {
        size_t n = 1;
        for (int d = 0; d < c->t[i].ndim; d++) n *= (size_t)c->t[i].shape[d];
        o->t[i] = c->t[i];
        o->t[i].data = ca_malloc2(n ? n : 1, sizeof(float));
        if (!o->t[i].data) goto nomem;
        o->nt = i + 1;
        memcpy(o->t[i].data, c->t[i].data, n * sizeof(float));
    }
    if (c->model_sig && !(o->model_sig = strdup(c->model_sig))) goto nomem;
    if (c->class_names) {
        if (!(o->class_names = calloc((size_t)c->C, sizeof(char *)))) goto nomem;
        for (int i = 0; i < c->C; i++)
            if (c->class_names[i] && !(o->class_names[i] = strdup(c->class_names[i]))) goto nomem;
    }
    *st = CA_OK;
    return o;
nomem:
    ca_classifier_free(o);
    *st = ca_fail(CA_E_NOMEM, "out of memory copying a classifier");
    return NULL;
}

ca_status ca_classifier_add_class(ca_classifier *c, const char *name, const float *text_w) {
    CA_ENTER();
    if (!c || !name || !*name) return ca_fail(CA_E_ARG, "add class: empty class name");
    grow_kind k = kind_of(c);
    if (k == G_NONE)
        return ca_fail(CA_E_UNSUPPORTED, "a %s classifier cannot take a new class without training (refit it)", c->m->name);
    if (ca_classifier_class_index(c, name) >= 0) return ca_fail(CA_E_ARG, "class '%s' already exists", name);
    if (c->C >= 100000) return ca_fail(CA_E_RANGE, "add class: the classifier already has %d classes", c->C);
    ca_clf_tensor *tw = find_t(c, "text_w");
    if (tw && !text_w) return ca_fail(CA_E_ARG, "a %s classifier needs the new class's text weight", c->m->name);
    for (int j = 0; text_w && j < c->D; j++)
        if (!isfinite(text_w[j])) return ca_fail(CA_E_ARG, "add class: the text weight has a non-finite value");
    /* names first: everything after it can only fail for memory, and then c is left consistent
     * only if we grow names last; so reserve the names array before touching tensors. */
    char **names = realloc(c->class_names, sizeof(char *) * (size_t)(c->C + 1));
    if (!names) return ca_fail(CA_E_NOMEM, "out of memory");
    if (!c->class_names) memset(names, 0, sizeof(char *) * (size_t)(c->C + 1));
    c->class_names = names;
    names[c->C] = NULL;
    char *nm = strdup(name);
    if (!nm) return ca_fail(CA_E_NOMEM, "out of memory");
    if (tw) {
        float *r = add_row(tw);
        if (!r) { free(nm); return CA_E_NOMEM; }
        memcpy(r, text_w, sizeof(float) * (size_t)c->D);
        ca_l2_normalize(r, c->D);   /* the stored text classifier has unit rows */
    }
    const char *per_class[] = {"protos", "proto_norms", "class_counts"};
    for (size_t i = 0; i < sizeof per_class / sizeof per_class[0]; i++) {
        ca_clf_tensor *t = find_t(c, per_class[i]);
        if (t && t->shape[0] == c->C && !add_row(t)) { free(nm); return CA_E_NOMEM; }
    }
    names[c->C] = nm;
    c->C++;
    return CA_OK;
}

ca_status ca_classifier_add_example(ca_classifier *c, const float *x, int label) {
    CA_ENTER();
    if (!c || !x) return ca_fail(CA_E_ARG, "add example: NULL argument");
    if (label < 0 || label >= c->C) return ca_fail(CA_E_ARG, "add example: label %d is not a class in [0,%d)", label, c->C);
    for (int j = 0; j < c->D; j++)
        if (!isfinite(x[j])) return ca_fail(CA_E_ARG, "add example: the feature has a non-finite value");
    grow_kind k = kind_of(c);
    if (k == G_TIP || k == G_TIPCACHE) {
        ca_clf_tensor *keys = find_t(c, k == G_TIP ? "keys" : "cache_keys");
        ca_clf_tensor *lab = find_t(c, k == G_TIP ? "key_labels" : "cache_labels");
        if (!keys || !lab || keys->ndim != 2 || keys->shape[1] != c->D || lab->shape[0] != keys->shape[0])
            return ca_fail(CA_E_FORMAT, "%s classifier: cache tensors missing or inconsistent", c->m->name);
        float *r = add_row(keys);
        if (!r) return CA_E_NOMEM;
        float *l = add_row(lab);
        if (!l) { keys->shape[0]--; return CA_E_NOMEM; }
        memcpy(r, x, sizeof(float) * (size_t)c->D);
        ca_l2_normalize(r, c->D);
        *l = (float)label;
        if (k == G_TIP) return ca_clf_set_param(c, "cache_size", (double)keys->shape[0]);
        return CA_OK;
    }
    if (k == G_PROTO) {
        /* the prototype is normalise(sum of the class's features); proto_norms keeps |sum| so a
         * new feature adds with the weight of one example. A file without it counts each
         * stored prototype as one example. */
        ca_clf_tensor *P = find_t(c, "protos");
        if (!P || P->ndim != 2 || P->shape[0] != c->C || P->shape[1] != c->D)
            return ca_fail(CA_E_FORMAT, "prototype classifier: 'protos' missing or of another shape");
        ca_clf_tensor *nt = find_t(c, "proto_norms"), *ct = find_t(c, "class_counts");
        if (!nt) {
            float *nr = ca_clf_add_tensor(c, "proto_norms", 1, (int64_t[]){c->C});
            if (!nr) return CA_E_NOMEM;
            for (int i = 0; i < c->C; i++) {
                const float *p = P->data + (size_t)i * c->D;
                nr[i] = ca_inv_norm(p, c->D) > 0 ? 1.0f : 0.0f;
            }
            nt = find_t(c, "proto_norms");
        }
        if (!ct) {
            float *cn = ca_clf_add_tensor(c, "class_counts", 1, (int64_t[]){c->C});
            if (!cn) return CA_E_NOMEM;
            for (int i = 0; i < c->C; i++) cn[i] = nt->data[i] > 0 ? 1.0f : 0.0f;
            ct = find_t(c, "class_counts");
        }
        if (nt->shape[0] != c->C || ct->shape[0] != c->C)
            return ca_fail(CA_E_FORMAT, "prototype classifier: per-class tensors of another length");
        float *p = P->data + (size_t)label * c->D;
        float *xn = ca_malloc2((size_t)c->D, sizeof(float));
        if (!xn) return CA_E_NOMEM;
        memcpy(xn, x, sizeof(float) * (size_t)c->D);
        ca_l2_normalize(xn, c->D);
        double s = 0;
        for (int j = 0; j < c->D; j++) { p[j] = p[j] * nt->data[label] + xn[j]; s += (double)p[j] * p[j]; }
        free(xn);
        nt->data[label] = (float)sqrt(s);
        ca_l2_normalize(p, c->D);
        ct->data[label] += 1.0f;
        return CA_OK;
    }
    return ca_fail(CA_E_UNSUPPORTED, "a %s classifier cannot take an example without training (refit it)", c->m->name);
}

int ca_classifier_cache_size(const ca_classifier *c) {
    const ca_clf_tensor *keys, *lab;
    if (!c) return 0;
    cache_tensors(c, &keys, &lab);
    return keys && lab && keys->shape[0] == lab->shape[0] ? (int)keys->shape[0] : 0;
}

ca_status ca_classifier_cache_get(const ca_classifier *c, float *keys_out, int32_t *labels_out) {
    CA_ENTER();
    const ca_clf_tensor *keys, *lab;
    if (!c) return ca_fail(CA_E_ARG, "ca_classifier_cache_get: NULL classifier");
    cache_tensors(c, &keys, &lab);
    int n = ca_classifier_cache_size(c);
    for (int i = 0; i < n; i++) {
        float l = lab->data[i];
        if (!(l >= 0 && l < c->C && l == floorf(l))) return ca_fail(CA_E_FORMAT, "%s classifier: cache label %d is not a class", c->m->name, i);
        if (labels_out) labels_out[i] = (int32_t)l;
    }
    if (keys_out && n) memcpy(keys_out, keys->data, sizeof(float) * (size_t)n * c->D);
    return CA_OK;
}

ca_status ca_classifier_class_counts(const ca_classifier *c, int64_t *counts) {
    CA_ENTER();
    if (!c || !counts) return ca_fail(CA_E_ARG, "ca_classifier_class_counts: NULL argument");
    memset(counts, 0, sizeof(int64_t) * (size_t)c->C);
    const ca_clf_tensor *keys, *lab;
    cache_tensors(c, &keys, &lab);
    int n = ca_classifier_cache_size(c);
    for (int i = 0; i < n; i++) {
        float l = lab->data[i];
        if (l >= 0 && l < c->C) counts[(int)l]++;
    }
    const ca_clf_tensor *ct = find_tc(c, "class_counts");
    if (!n && ct && ct->shape[0] == c->C)
        for (int i = 0; i < c->C; i++) counts[i] = (int64_t)ct->data[i];
    return CA_OK;
}

const float *ca_classifier_text_weights(const ca_classifier *c) {
    const ca_clf_tensor *t = c ? find_tc(c, "text_w") : NULL;
    return t && t->ndim == 2 && t->shape[0] == c->C && t->shape[1] == c->D ? t->data : NULL;
}

ca_status ca_classifier_set_param(ca_classifier *c, const char *name, double value) {
    CA_ENTER();
    if (!c || !name || !*name) return ca_fail(CA_E_ARG, "ca_classifier_set_param: bad argument");
    return ca_clf_set_param(c, name, value);
}

ca_status ca_classifier_set_class_name(ca_classifier *c, int i, const char *name) {
    CA_ENTER();
    if (!c || !name || i < 0 || i >= c->C) return ca_fail(CA_E_ARG, "ca_classifier_set_class_name: bad argument");
    if (!c->class_names && !(c->class_names = calloc((size_t)c->C, sizeof(char *)))) return ca_fail(CA_E_NOMEM, "out of memory");
    char *d = strdup(name);
    if (!d) return ca_fail(CA_E_NOMEM, "out of memory");
    free(c->class_names[i]);
    c->class_names[i] = d;
    return CA_OK;
}
