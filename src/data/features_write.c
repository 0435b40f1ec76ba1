/* features_write.c — write a feature set in the schema features.c reads: train.{K}shot.*, val.*,
 * test.* (features, labels, optional views), text.weights and the metadata a reader needs.
 * It checks what it is given, so every file it saves loads back; it does not compute features
 * (`clipadapt extract` does, through ca_encode_images).
 */
#include "core/core.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same bounds as the reader's, so a file we write never fails to load. */
#define MAX_CLASSES 100000
#define MAX_DIM 65536
#define MAX_VIEWS 4096
#define MAX_TRAIN 30 /* features.c keeps 32 splits: train ones, val and test */

struct ca_features_writer {
    ca_features_writer_params p;
    ca_st_writer *st;
    cJSON *paths;        /* split name -> array of image paths */
    int ntrain, has_val, has_test, has_text, has_names, views;
};

ca_features_writer_params ca_features_writer_default_params(void) {
    ca_features_writer_params p;
    memset(&p, 0, sizeof p);
    return p;
}

ca_features_writer *ca_features_writer_new(const ca_features_writer_params *p, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!p || p->num_classes < 1 || p->num_classes > MAX_CLASSES || p->dim < 1 || p->dim > MAX_DIM) {
        *st = ca_fail(CA_E_ARG, "ca_features_writer_new: need 1 <= num_classes <= %d and 1 <= dim <= %d (got %d, %d)",
                      MAX_CLASSES, MAX_DIM, p ? p->num_classes : 0, p ? p->dim : 0);
        return NULL;
    }
    ca_features_writer *w = calloc(1, sizeof *w);
    if (w) w->st = ca_st_writer_new();
    if (w) w->paths = cJSON_CreateObject();
    if (!w || !w->st || !w->paths) {
        ca_features_writer_free(w);
        *st = ca_fail(CA_E_NOMEM, "out of memory");
        return NULL;
    }
    w->p = *p;
    *st = CA_OK;
    return w;
}

void ca_features_writer_free(ca_features_writer *w) {
    if (!w) return;
    ca_st_writer_free(w->st);
    cJSON_Delete(w->paths);
    free(w);
}

static ca_status check_finite(const char *what, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return ca_fail(CA_E_ARG, "%s: non-finite value at element %zu", what, i);
    return CA_OK;
}

/* Features (float32 or half, as asked) under name; shape given by ndim/shape, n floats. */
static ca_status add_floats(ca_features_writer *w, const char *name, int ndim, const int64_t *shape,
                            const float *x, size_t n) {
    if (!w->p.f16) return ca_st_writer_add(w->st, name, CA_DT_F32, ndim, shape, x);
    uint16_t *h = ca_malloc2(n, sizeof *h);
    if (!h) return ca_fail(CA_E_NOMEM, "out of memory for '%s'", name);
    for (size_t i = 0; i < n; i++) h[i] = ca_f32_to_f16(x[i]);
    ca_status st = ca_st_writer_add(w->st, name, CA_DT_F16, ndim, shape, h);
    free(h);
    return st;
}

ca_status ca_features_writer_add_split(ca_features_writer *w, const char *name, const float *x, const int32_t *y,
                                       int n, const float *xv, int views, const char *const *paths) {
    CA_ENTER();
    /* test alone may be empty: `extract --test-split 0` keeps every labelled image for train and val */
    int min_n = name && !strcmp(name, "test") ? 0 : 1;
    if (!w || !name || (n > 0 && (!x || !y)) || n < min_n || views < 0 || (views > 0) != (xv != NULL))
        return ca_fail(CA_E_ARG, "ca_features_writer_add_split: need a name, n >= 1 rows of features and labels (test: "
                                 "n >= 0), and views > 0 exactly when view features are given");
    int k = 0, used = 0, train = sscanf(name, "train.%dshot%n", &k, &used) == 1 && name[used] == 0 && k > 0;
    if (!train && strcmp(name, "val") != 0 && strcmp(name, "test") != 0)
        return ca_fail(CA_E_ARG, "feature set split '%s': the name must be train.{K}shot (K >= 1), val or test", name);
    if (views && !train) return ca_fail(CA_E_ARG, "feature set split '%s': only train splits carry views", name);
    if (views > MAX_VIEWS) return ca_fail(CA_E_ARG, "feature set split '%s': %d views, at most %d", name, views, MAX_VIEWS);
    if (train && w->ntrain == MAX_TRAIN) return ca_fail(CA_E_ARG, "feature set: more than %d train splits", MAX_TRAIN);
    if (cJSON_GetObjectItemCaseSensitive(w->paths, name) || (!train && (name[0] == 'v' ? w->has_val : w->has_test)))
        return ca_fail(CA_E_ARG, "feature set split '%s' added twice", name);
    int D = w->p.dim, C = w->p.num_classes;
    size_t nx, nv;
    if (!ca_mul_size((size_t)n, (size_t)D, &nx) || !ca_mul_size(nx, (size_t)views, &nv))
        return ca_fail(CA_E_NOMEM, "feature set split '%s': %d rows of %d floats overflow", name, n, D);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= C)
            return ca_fail(CA_E_ARG, "feature set split '%s': label %d at row %d is outside [0, %d)", name, y[i], i, C);
    char tn[96];
    snprintf(tn, sizeof tn, "%s.features", name);
    ca_status st = check_finite(tn, x, nx);
    if (st == CA_OK && views) {
        snprintf(tn, sizeof tn, "%s.views", name);
        st = check_finite(tn, xv, nv);
    }
    if (st != CA_OK) return st;

    cJSON *pa = NULL;
    if (paths) {
        pa = cJSON_CreateArray();
        for (int i = 0; pa && i < n; i++) {
            cJSON *s = cJSON_CreateString(paths[i] ? paths[i] : "");
            if (!s) { cJSON_Delete(pa); pa = NULL; break; }
            cJSON_AddItemToArray(pa, s);
        }
        if (!pa) return ca_fail(CA_E_NOMEM, "out of memory");
    }
    int64_t *lab = ca_malloc2((size_t)n, sizeof *lab);
    if (!lab) { cJSON_Delete(pa); return ca_fail(CA_E_NOMEM, "out of memory"); }
    for (int i = 0; i < n; i++) lab[i] = y[i];
    snprintf(tn, sizeof tn, "%s.features", name);
    st = add_floats(w, tn, 2, (int64_t[]){n, D}, x, nx);
    snprintf(tn, sizeof tn, "%s.labels", name);
    if (st == CA_OK) st = ca_st_writer_add(w->st, tn, CA_DT_I64, 1, (int64_t[]){n}, lab);
    snprintf(tn, sizeof tn, "%s.views", name);
    if (st == CA_OK && views) st = add_floats(w, tn, 3, (int64_t[]){views, n, D}, xv, nv);
    free(lab);
    /* A failure above leaves tensors the writer cannot take back: the writer is then unusable,
     * which only happens on out-of-memory. */
    if (st != CA_OK) { cJSON_Delete(pa); return st; }
    /* An entry per split, even without paths, so a repeated name is caught above. */
    cJSON_AddItemToObject(w->paths, name, pa ? pa : cJSON_CreateNull());
    if (train) { w->ntrain++; if (views > w->views) w->views = views; }
    else if (name[0] == 'v') w->has_val = 1;
    else w->has_test = 1;
    return CA_OK;
}

ca_status ca_features_writer_set_text(ca_features_writer *w, const float *text) {
    CA_ENTER();
    if (!w || !text) return ca_fail(CA_E_ARG, "ca_features_writer_set_text: NULL argument");
    if (w->has_text) return ca_fail(CA_E_ARG, "feature set: text.weights set twice");
    size_t n = (size_t)w->p.num_classes * (size_t)w->p.dim; /* both bounded at construction */
    ca_status st = check_finite("text.weights", text, n);
    if (st == CA_OK)
        st = ca_st_writer_add(w->st, "text.weights", CA_DT_F32, 2, (int64_t[]){w->p.num_classes, w->p.dim}, text);
    if (st == CA_OK) w->has_text = 1;
    return st;
}

ca_status ca_features_writer_set_class_names(ca_features_writer *w, const char *const *names) {
    CA_ENTER();
    if (!w || !names) return ca_fail(CA_E_ARG, "ca_features_writer_set_class_names: NULL argument");
    cJSON *a = cJSON_CreateArray();
    for (int c = 0; a && c < w->p.num_classes; c++) {
        if (!names[c]) { cJSON_Delete(a); return ca_fail(CA_E_ARG, "feature set: class name %d is NULL", c); }
        cJSON *s = cJSON_CreateString(names[c]);
        if (!s) { cJSON_Delete(a); a = NULL; break; }
        cJSON_AddItemToArray(a, s);
    }
    char *js = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    if (!js) return ca_fail(CA_E_NOMEM, "out of memory");
    ca_status st = ca_st_writer_metadata(w->st, "class_names", js);
    free(js);
    if (st == CA_OK) w->has_names = 1;
    return st;
}

static const char *const RESERVED[] = {"format", "num_classes", "class_names", "image_paths", "views"};

ca_status ca_features_writer_metadata(ca_features_writer *w, const char *key, const char *value) {
    CA_ENTER();
    if (!w || !key || !value) return ca_fail(CA_E_ARG, "ca_features_writer_metadata: NULL argument");
    for (size_t i = 0; i < sizeof RESERVED / sizeof RESERVED[0]; i++)
        if (strcmp(key, RESERVED[i]) == 0)
            return ca_fail(CA_E_ARG, "feature set metadata '%s' is written by the writer itself", key);
    return ca_st_writer_metadata(w->st, key, value);
}

ca_status ca_features_writer_save(ca_features_writer *w, const char *path) {
    CA_ENTER();
    if (!w || !path) return ca_fail(CA_E_ARG, "ca_features_writer_save: NULL argument");
    if (!w->ntrain || !w->has_val || !w->has_test)
        return ca_fail(CA_E_ARG, "%s: a feature set needs a train.{K}shot split, val and test (missing %s)", path,
                       !w->ntrain ? "train" : !w->has_val ? "val" : "test");
    char buf[32];
    ca_status st = ca_st_writer_metadata(w->st, "format", "clipadapt.features.v1");
    snprintf(buf, sizeof buf, "%d", w->p.num_classes);
    if (st == CA_OK) st = ca_st_writer_metadata(w->st, "num_classes", buf);
    snprintf(buf, sizeof buf, "%d", w->views);
    if (st == CA_OK) st = ca_st_writer_metadata(w->st, "views", buf);
    /* image_paths only when every split recorded its paths (a partial map would mislead) */
    int all = 1;
    for (cJSON *it = w->paths->child; it; it = it->next) all &= cJSON_IsArray(it);
    if (st == CA_OK && all) {
        char *js = cJSON_PrintUnformatted(w->paths);
        st = js ? ca_st_writer_metadata(w->st, "image_paths", js) : ca_fail(CA_E_NOMEM, "out of memory");
        free(js);
    }
    if (st == CA_OK) st = ca_st_writer_save(w->st, path);
    return st;
}
