/* registry.c — the list of methods, default options, ca_fit, and saving/loading a classifier
 * (the parts that look a method up by name). The container the methods fill lives in
 * classifier.c, so methods depend on it and not on this table. */
#include "adapt/adapt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

extern const ca_method ca_method_zero_shot;
extern const ca_method ca_method_tip_adapter, ca_method_tip_adapter_f;
extern const ca_method ca_method_clip_adapter, ca_method_clip_adapter_text, ca_method_clip_adapter_both;
extern const ca_method ca_method_linear_probe, ca_method_prototype, ca_method_tip_cache;
extern const ca_method ca_method_gda, ca_method_gda_zs;
extern const ca_method ca_method_ape, ca_method_proker;
extern const ca_method ca_method_lpp, ca_method_zs_lp, ca_method_clap, ca_method_taskres;

/* Order is the order of tables and plots: baselines, the Tip family (and its training-free
 * successors), CLIP-Adapter, the text-initialised probes, text-free. */
static const ca_method *const METHODS[] = {
    &ca_method_zero_shot,
    &ca_method_tip_adapter, &ca_method_tip_adapter_f, &ca_method_ape, &ca_method_proker,
    &ca_method_clip_adapter, &ca_method_clip_adapter_text, &ca_method_clip_adapter_both,
    &ca_method_lpp, &ca_method_zs_lp, &ca_method_clap, &ca_method_taskres,
    &ca_method_linear_probe, &ca_method_prototype, &ca_method_tip_cache, &ca_method_gda, &ca_method_gda_zs,
};
#define N_METHODS (sizeof METHODS / sizeof METHODS[0])

const char *const *ca_method_names(void) {
    static const char *names[N_METHODS + 1];
    for (size_t i = 0; i < N_METHODS; i++) names[i] = METHODS[i]->name;
    names[N_METHODS] = NULL;
    return names;
}

const ca_method *ca_method_find(const char *name) {
    for (size_t i = 0; name && i < N_METHODS; i++)
        if (strcmp(METHODS[i]->name, name) == 0) return METHODS[i];
    return NULL;
}

int ca_method_needs_text(const char *method) {
    const ca_method *m = ca_method_find(method);
    return m ? m->needs_text : -1;
}

const char *ca_method_help(const char *method) {
    const ca_method *m = ca_method_find(method);
    return m ? m->help : NULL;
}

/* Parameters whose values are names: stored, printed and reported by name. */
static const struct { const char *param; const char *names[4]; } ENUMS[] = {
    {"optimizer", {"default", "sgd", "adamw", NULL}},
    {"ratio_mode", {"fixed", "search", "learn", NULL}},
    {"covariance", {"tuned", "ks", NULL}},      /* CA_COV_TUNED, CA_COV_KS */
};

const char *ca_fit_param_value_name(const char *param, double value) {
    for (size_t i = 0; param && i < sizeof ENUMS / sizeof ENUMS[0]; i++)
        if (!strcmp(ENUMS[i].param, param))
            for (int k = 0; ENUMS[i].names[k]; k++)
                if (value == k) return ENUMS[i].names[k];
    return NULL;
}

static int enum_value(const char *param, const char *name) {
    for (size_t i = 0; i < sizeof ENUMS / sizeof ENUMS[0]; i++)
        if (!strcmp(ENUMS[i].param, param))
            for (int k = 0; ENUMS[i].names[k]; k++)
                if (!strcmp(ENUMS[i].names[k], name)) return k;
    return -1;
}

ca_fit_params ca_fit_default_params(void) {
    ca_fit_params p;
    memset(&p, 0, sizeof p);
    p.seed = 1;
    p.search_scale_beta = 20; p.search_scale_alpha = 10;
    p.search_steps_beta = 200; p.search_steps_alpha = 20;
    p.init_alpha = 1; p.init_beta = 1;
    p.weight_decay = -1;
    p.reduction = 4;
    p.ratio = 0.2; p.ratio_mode = 0;
    p.warmup_epochs = -1;
    return p;
}

static ca_status check_fit_data(const ca_method *m, const ca_fit_data *d) {
    if (d->num_classes < 2 || d->dim < 1) return ca_fail(CA_E_ARG, "fit: need >= 2 classes and dim >= 1");
    if (m->needs_text && !d->text_w)
        return ca_fail(CA_E_ARG, "method '%s' needs a text classifier (text.weights), and this feature set has none", m->name);
    const ca_split *sp[2] = {&d->train, &d->val};
    for (int s = 0; s < 2; s++) {
        if (sp[s]->n > 0 && (!sp[s]->x || !sp[s]->y || sp[s]->dim != d->dim))
            return ca_fail(CA_E_ARG, "fit: %s split has missing data or dim %d != %d", s ? "val" : "train", sp[s]->dim, d->dim);
        for (int i = 0; i < sp[s]->n; i++)
            if (sp[s]->y[i] < 0 || sp[s]->y[i] >= d->num_classes)
                return ca_fail(CA_E_ARG, "fit: %s label %d out of range [0,%d)", s ? "val" : "train", sp[s]->y[i], d->num_classes);
    }
    return CA_OK;
}

static ca_classifier *clf_new(const ca_method *m, int C, int D, ca_status *st) {
    ca_classifier *c = calloc(1, sizeof *c);
    if (!c) { *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
    c->m = m; c->C = C; c->D = D;
    return c;
}

ca_classifier *ca_fit(const char *method, const ca_fit_data *data, const ca_fit_params *params, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    const ca_method *m = ca_method_find(method);
    if (!m) { *st = ca_fail(CA_E_NOTFOUND, "unknown method '%s'", method ? method : "(null)"); return NULL; }
    if (!data) { *st = ca_fail(CA_E_ARG, "ca_fit: data is NULL"); return NULL; }
    ca_fit_params defaults = ca_fit_default_params();
    if (!params) params = &defaults;
    if ((*st = check_fit_data(m, data)) != CA_OK) return NULL;
    ca_classifier *c = clf_new(m, data->num_classes, data->dim, st);
    if (!c) return NULL;
    if ((*st = m->fit(c, data, params)) != CA_OK) { ca_classifier_free(c); return NULL; }
    /* whatever the method, a classifier holding NaN/Inf never leaves ca_fit */
    for (int i = 0; i < c->np; i++)
        if (!isfinite(c->pval[i])) {
            *st = ca_fail(CA_E_NONFINITE, "%s: training diverged: parameter '%s' is %g (lower --lr)", m->name, c->pname[i], c->pval[i]);
            ca_classifier_free(c);
            return NULL;
        }
    for (int i = 0; i < c->nt; i++) {
        int64_t n = 1;
        for (int k = 0; k < c->t[i].ndim; k++) n *= c->t[i].shape[k];
        for (int64_t j = 0; j < n; j++)
            if (!isfinite(c->t[i].data[j])) {
                *st = ca_fail(CA_E_NONFINITE, "%s: training diverged: tensor '%s' holds non-finite values (lower --lr)", m->name, c->t[i].name);
                ca_classifier_free(c);
                return NULL;
            }
    }
    return c;
}

ca_status ca_classifier_save(const ca_classifier *c, const char *path, const char *const *class_names) {
    CA_ENTER();
    if (!c || !path) return ca_fail(CA_E_ARG, "ca_classifier_save: NULL argument");
    ca_st_writer *w = ca_st_writer_new();
    if (!w) return CA_E_NOMEM;
    char buf[64];
    ca_status st = ca_st_writer_metadata(w, "format", "clipadapt.classifier.v1");
    if (st == CA_OK) st = ca_st_writer_metadata(w, "method", c->m->name);
    snprintf(buf, sizeof buf, "%d", c->C);
    if (st == CA_OK) st = ca_st_writer_metadata(w, "num_classes", buf);
    snprintf(buf, sizeof buf, "%d", c->D);
    if (st == CA_OK) st = ca_st_writer_metadata(w, "dim", buf);
    for (int i = 0; st == CA_OK && i < c->np; i++) {
        char key[64];
        snprintf(key, sizeof key, "param.%s", c->pname[i]);
        const char *vn = ca_fit_param_value_name(c->pname[i], c->pval[i]);
        if (vn) snprintf(buf, sizeof buf, "%s", vn);
        else snprintf(buf, sizeof buf, "%.17g", c->pval[i]);
        st = ca_st_writer_metadata(w, key, buf);
    }
    if (st == CA_OK && c->model_sig) st = ca_st_writer_metadata(w, "model_signature", c->model_sig);
    if (!class_names && c->class_names) class_names = (const char *const *)c->class_names;
    if (st == CA_OK && class_names) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; a && i < c->C; i++) cJSON_AddItemToArray(a, cJSON_CreateString(class_names[i] ? class_names[i] : ""));
        char *js = a ? cJSON_PrintUnformatted(a) : NULL;
        cJSON_Delete(a);
        st = js ? ca_st_writer_metadata(w, "class_names", js) : ca_fail(CA_E_NOMEM, "out of memory");
        free(js);
    }
    for (int i = 0; st == CA_OK && i < c->nt; i++)
        st = ca_st_writer_add(w, c->t[i].name, CA_DT_F32, c->t[i].ndim, c->t[i].shape, c->t[i].data);
    if (st == CA_OK) st = ca_st_writer_save(w, path);
    ca_st_writer_free(w);
    return st;
}

ca_classifier *ca_classifier_load(const char *path, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    ca_st_file *f = ca_st_open(path, st);
    if (!f) return NULL;
    ca_classifier *c = NULL;
    const char *fmt = ca_st_metadata(f, "format"), *mn = ca_st_metadata(f, "method");
    const char *sc = ca_st_metadata(f, "num_classes"), *sd = ca_st_metadata(f, "dim");
    if (!fmt || strcmp(fmt, "clipadapt.classifier.v1") != 0 || !mn || !sc || !sd) {
        *st = ca_fail(CA_E_FORMAT, "%s: not a clipadapt classifier (metadata 'format' missing or unknown)", path);
        goto fail;
    }
    const ca_method *m = ca_method_find(mn);
    if (!m) { *st = ca_fail(CA_E_UNSUPPORTED, "%s: unknown method '%s'", path, mn); goto fail; }
    int C = atoi(sc), D = atoi(sd);
    if (C < 1 || C > 100000 || D < 1 || D > 65536) { *st = ca_fail(CA_E_FORMAT, "%s: bad num_classes/dim", path); goto fail; }
    if (!(c = clf_new(m, C, D, st))) goto fail;
    for (int i = 0; i < ca_st_metadata_count(f); i++) {
        const char *k = ca_st_metadata_key(f, i);
        if (strncmp(k, "param.", 6) != 0) continue;
        char *end;
        const char *v = ca_st_metadata(f, k);
        double d = strtod(v, &end);
        int ev = enum_value(k + 6, v);
        if (ev >= 0) { d = ev; end = (char *)v + strlen(v); }
        if (end == v || *end) { *st = ca_fail(CA_E_FORMAT, "%s: metadata '%s' is not a number", path, k); goto fail; }
        if (!isfinite(d)) { *st = ca_fail(CA_E_NONFINITE, "%s: metadata '%s' is not finite", path, k); goto fail; }
        if ((*st = ca_clf_set_param(c, k + 6, d)) != CA_OK) goto fail;
    }
    for (int i = 0; i < ca_st_count(f); i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        if (t->ndim < 1 || t->ndim > 4) { *st = ca_fail(CA_E_FORMAT, "%s: tensor '%s' has rank %d", path, t->name, t->ndim); goto fail; }
        float *d = ca_clf_add_tensor(c, t->name, t->ndim, t->shape);
        if (!d) { *st = CA_E_FORMAT; goto fail; }
        if ((*st = ca_tensor_to_f32(t, d, t->numel)) != CA_OK) goto fail;
        for (int64_t j = 0; j < t->numel; j++)
            if (!isfinite(d[j])) { *st = ca_fail(CA_E_NONFINITE, "%s: tensor '%s' has a non-finite value", path, t->name); goto fail; }
    }
    const char *ms = ca_st_metadata(f, "model_signature");
    if (ms && !(c->model_sig = strdup(ms))) { *st = ca_fail(CA_E_NOMEM, "out of memory"); goto fail; }
    const char *cn = ca_st_metadata(f, "class_names");
    if (cn) {
        cJSON *a = cJSON_Parse(cn);
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != C) {
            cJSON_Delete(a);
            *st = ca_fail(CA_E_FORMAT, "%s: metadata 'class_names' is not an array of %d strings", path, C);
            goto fail;
        }
        c->class_names = calloc((size_t)C, sizeof(char *));
        int i = 0;
        for (cJSON *it = a->child; c->class_names && it; it = it->next, i++)
            c->class_names[i] = strdup(cJSON_IsString(it) ? it->valuestring : "");
        cJSON_Delete(a);
    }
    /* A trial forward on a zero row validates that every tensor the method needs is present. */
    float *x = calloc((size_t)D, sizeof(float)), *o = calloc((size_t)C, sizeof(float));
    *st = (x && o) ? m->logits(c, x, 1, o) : ca_fail(CA_E_NOMEM, "out of memory");
    free(x); free(o);
    if (*st != CA_OK) { ca_fail(*st, "%s: %s", path, ca_last_error()); goto fail; }
    ca_st_close(f);
    return c;
fail:
    ca_classifier_free(c);
    ca_st_close(f);
    return NULL;
}
