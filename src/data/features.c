/* features.c — load and validate a feature set (train.{K}shot.*, test.*, optional val.*,
 * text.weights and train.{K}shot.views) into float32/int32 arrays owned by the handle. A set
 * without val.* loads (it serves `--select none`); the regimes that need val refuse it later.
 * It does not compute features; `clipadapt extract` writes files in this schema.
 */
#include "data/features.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#define MAX_SPLITS 32

typedef struct {
    char name[48];
    int shots;              /* K for train splits, 0 for val/test */
    ca_split s;
    float *x, *xv;
    int32_t *y;
} fsplit;

struct ca_featureset {
    char *path;
    int num_classes, dim;
    fsplit sp[MAX_SPLITS];
    int nsp;
    float *text;
    char **class_names;     /* num_classes entries or NULL */
    char *model_sig;        /* metadata "model_signature" or NULL */
};

void ca_features_free(ca_featureset *fs) {
    if (!fs) return;
    for (int i = 0; i < fs->nsp; i++) { free(fs->sp[i].x); free(fs->sp[i].xv); free(fs->sp[i].y); }
    if (fs->class_names)
        for (int i = 0; i < fs->num_classes; i++) free(fs->class_names[i]);
    free(fs->class_names); free(fs->text); free(fs->path); free(fs->model_sig); free(fs);
}

static ca_status check_finite(const char *path, const char *name, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return ca_fail(CA_E_NONFINITE, "%s: tensor '%s': non-finite value at element %zu", path, name, i);
    return CA_OK;
}

/* Load "<prefix>.features" (n, D) and "<prefix>.labels" (n) into sp. D is fixed by the first split.
 * Views come from "<prefix>.views", else from alt_views when given ("train.views" is accepted
 * when the file has exactly one train split, the name the extraction issue uses). */
static ca_status load_split(ca_featureset *fs, const ca_st_file *f, const char *prefix, int shots, const char *alt_views) {
    if (fs->nsp == MAX_SPLITS) return ca_fail(CA_E_FORMAT, "%s: more than %d splits", fs->path, MAX_SPLITS);
    char fn[96], ln[96], vn[96];
    snprintf(fn, sizeof fn, "%s.features", prefix);
    snprintf(ln, sizeof ln, "%s.labels", prefix);
    snprintf(vn, sizeof vn, "%s.views", prefix);
    const ca_tensor_info *tf = ca_st_find(f, fn), *tl = ca_st_find(f, ln);
    if (!tf) return ca_fail(CA_E_NOTFOUND, "%s: tensor '%s' is missing", fs->path, fn);
    if (!tl) return ca_fail(CA_E_NOTFOUND, "%s: tensor '%s' is missing", fs->path, ln);
    /* test may be empty: `extract --test-split 0` keeps every labelled image for train and val;
     * an empty val is a set without validation data, as one without val.* */
    int min_n = strncmp(prefix, "train.", 6) == 0 ? 1 : 0;   /* val may be empty too: no validation data */
    if (tf->ndim != 2 || tf->shape[0] < min_n || tf->shape[1] < 1 || tf->shape[0] > INT32_MAX || tf->shape[1] > 65536)
        return ca_fail(CA_E_SHAPE, "%s: tensor '%s': expected shape [N,D] with N >= %d, D >= 1", fs->path, fn, min_n);
    if (fs->dim == 0) fs->dim = (int)tf->shape[1];
    if (tf->shape[1] != fs->dim)
        return ca_fail(CA_E_SHAPE, "%s: tensor '%s': feature dim %lld, other splits have %d", fs->path, fn, (long long)tf->shape[1], fs->dim);
    if (tl->ndim != 1 || tl->shape[0] != tf->shape[0])
        return ca_fail(CA_E_SHAPE, "%s: tensor '%s': expected shape [%lld] to match '%s'", fs->path, ln, (long long)tf->shape[0], fn);
    switch (tl->dtype) {
    case CA_DT_I64: case CA_DT_I32: case CA_DT_I16: case CA_DT_I8: case CA_DT_U8: break;
    default: return ca_fail(CA_E_SHAPE, "%s: tensor '%s': labels must be integers, found %s", fs->path, ln, ca_dtype_name(tl->dtype));
    }
    fsplit *s = &fs->sp[fs->nsp];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", prefix);
    s->shots = shots;
    int n = (int)tf->shape[0];
    ca_status st = CA_OK;
    s->x = ca_st_load_f32(f, fn, 2, NULL, NULL, &st);
    if (!s->x) return st;
    int64_t *lab = ca_malloc2((size_t)n, sizeof *lab);
    s->y = ca_malloc2((size_t)n, sizeof *s->y);
    fs->nsp++; /* from here on s is owned by fs and freed with it */
    if (!lab || !s->y) { free(lab); return CA_E_NOMEM; }
    if ((st = check_finite(fs->path, fn, s->x, (size_t)n * (size_t)fs->dim)) != CA_OK) { free(lab); return st; }
    st = ca_tensor_to_i64(tl, lab, n);
    for (int i = 0; st == CA_OK && i < n; i++) {
        if (lab[i] < 0 || lab[i] >= 100000) st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': label %lld at row %d out of range", fs->path, ln, (long long)lab[i], i);
        else s->y[i] = (int32_t)lab[i];
    }
    free(lab);
    if (st != CA_OK) return st;
    s->s = (ca_split){.n = n, .dim = fs->dim, .x = s->x, .y = s->y};
    const ca_tensor_info *tv = ca_st_find(f, vn);
    if (!tv && alt_views && (tv = ca_st_find(f, alt_views)) != NULL) snprintf(vn, sizeof vn, "%s", alt_views);
    if (tv) {
        if (tv->ndim != 3 || tv->shape[0] < 1 || tv->shape[0] > 4096 || tv->shape[1] != n || tv->shape[2] != fs->dim)
            return ca_fail(CA_E_SHAPE, "%s: tensor '%s': expected shape [V,%d,%d]", fs->path, vn, n, fs->dim);
        s->xv = ca_st_load_f32(f, vn, 3, NULL, NULL, &st);
        if (!s->xv) return st;
        if ((st = check_finite(fs->path, vn, s->xv, (size_t)tv->numel)) != CA_OK) return st;
        s->s.views = (int)tv->shape[0];
        s->s.xv = s->xv;
    }
    return CA_OK;
}

static ca_status load_class_names(ca_featureset *fs, const ca_st_file *f) {
    const char *js = ca_st_metadata(f, "class_names");
    if (!js) return CA_OK;
    cJSON *a = cJSON_Parse(js);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != fs->num_classes) {
        cJSON_Delete(a);
        return ca_fail(CA_E_FORMAT, "%s: metadata 'class_names' must be a JSON array of %d strings", fs->path, fs->num_classes);
    }
    fs->class_names = calloc((size_t)fs->num_classes, sizeof(char *));
    if (!fs->class_names) { cJSON_Delete(a); return ca_fail(CA_E_NOMEM, "out of memory"); }
    int i = 0;
    for (cJSON *it = a->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) { cJSON_Delete(a); return ca_fail(CA_E_FORMAT, "%s: metadata 'class_names'[%d] is not a string", fs->path, i); }
        if (!(fs->class_names[i] = strdup(it->valuestring))) { cJSON_Delete(a); return ca_fail(CA_E_NOMEM, "out of memory"); }
    }
    cJSON_Delete(a);
    return CA_OK;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

ca_featureset *ca_features_load(const char *path, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    ca_st_file *f = ca_st_open(path, st);
    if (!f) return NULL;
    ca_featureset *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->path = strdup(path))) { free(fs); ca_st_close(f); *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
    /* train.{K}shot splits in ascending K */
    int shots[MAX_SPLITS], ns = 0;
    for (int i = 0; i < ca_st_count(f); i++) {
        const char *nm = ca_st_at(f, i)->name;
        int k, used = 0;
        if (sscanf(nm, "train.%dshot.features%n", &k, &used) == 1 && nm[used] == 0 && k > 0 && ns < MAX_SPLITS - 2)
            shots[ns++] = k;
    }
    qsort(shots, (size_t)ns, sizeof *shots, cmp_int);
    *st = CA_OK;
    for (int i = 0; *st == CA_OK && i < ns; i++) {
        char pre[48];
        snprintf(pre, sizeof pre, "train.%dshot", shots[i]);
        *st = load_split(fs, f, pre, shots[i], ns == 1 ? "train.views" : NULL);
    }
    if (*st == CA_OK && ns == 0) *st = ca_fail(CA_E_NOTFOUND, "%s: no 'train.{K}shot.features' tensor: not a feature set", path);
    /* val is optional: a set made without it still serves every method under `--select none`;
     * half a split (features without labels or the reverse) is still an error in load_split */
    if (*st == CA_OK && (ca_st_find(f, "val.features") || ca_st_find(f, "val.labels")))
        *st = load_split(fs, f, "val", 0, NULL);
    if (*st == CA_OK) *st = load_split(fs, f, "test", 0, NULL);
    if (*st == CA_OK) {
        int maxl = -1;
        for (int i = 0; i < fs->nsp; i++)
            for (int j = 0; j < fs->sp[i].s.n; j++)
                if (fs->sp[i].y[j] > maxl) maxl = fs->sp[i].y[j];
        fs->num_classes = maxl + 1;
        const ca_tensor_info *tw = ca_st_find(f, "text.weights");
        if (tw) {
            if (tw->ndim != 2 || tw->shape[1] != fs->dim || tw->shape[0] < fs->num_classes || tw->shape[0] > 100000)
                *st = ca_fail(CA_E_SHAPE, "%s: tensor 'text.weights': expected shape [C,%d] with C >= %d classes", path, fs->dim, fs->num_classes);
            else {
                fs->num_classes = (int)tw->shape[0];
                fs->text = ca_st_load_f32(f, "text.weights", 2, NULL, NULL, st);
                if (fs->text) *st = check_finite(path, "text.weights", fs->text, (size_t)tw->numel);
            }
        }
    }
    if (*st == CA_OK) {
        const char *nc = ca_st_metadata(f, "num_classes");
        if (nc) {
            int v = atoi(nc);
            if (v < fs->num_classes || v > 100000) *st = ca_fail(CA_E_FORMAT, "%s: metadata num_classes=%s but labels reach %d", path, nc, fs->num_classes - 1);
            else fs->num_classes = v;
        }
    }
    if (*st == CA_OK) *st = load_class_names(fs, f);
    if (*st == CA_OK && ca_st_metadata(f, "model_signature") &&
        !(fs->model_sig = strdup(ca_st_metadata(f, "model_signature"))))
        *st = ca_fail(CA_E_NOMEM, "out of memory");
    ca_st_close(f);
    if (*st != CA_OK) { ca_features_free(fs); return NULL; }
    return fs;
}

const char *ca_features_path(const ca_featureset *fs) { return fs && fs->path ? fs->path : ""; }
int ca_features_num_classes(const ca_featureset *fs) { return fs ? fs->num_classes : 0; }
int ca_features_dim(const ca_featureset *fs) { return fs ? fs->dim : 0; }
const float *ca_features_text(const ca_featureset *fs) { return fs ? fs->text : NULL; }

const char *ca_features_class_name(const ca_featureset *fs, int i) {
    return (fs && fs->class_names && i >= 0 && i < fs->num_classes) ? fs->class_names[i] : NULL;
}

const char *ca_features_model_signature(const ca_featureset *fs) { return fs ? fs->model_sig : NULL; }

int ca_features_shots(const ca_featureset *fs, int *shots, int max) {
    int n = 0;
    for (int i = 0; fs && i < fs->nsp; i++)
        if (fs->sp[i].shots > 0) {
            if (n < max && shots) shots[n] = fs->sp[i].shots;
            n++;
        }
    return n;
}

ca_status ca_features_split(const ca_featureset *fs, const char *name, ca_split *out) {
    CA_ENTER();
    if (!fs || !name || !out) return ca_fail(CA_E_ARG, "ca_features_split: NULL argument");
    for (int i = 0; i < fs->nsp; i++)
        if (strcmp(fs->sp[i].name, name) == 0) { *out = fs->sp[i].s; return CA_OK; }
    return ca_fail(CA_E_NOTFOUND, "%s: no split '%s'", fs->path, name);
}
