/* run.c — one few-shot experiment under a protocol: build the K-shot training set (the stored
 * split, or K per class drawn from the largest split with the seed) and the validation data of
 * the selection regime (all of val, min(K, 4) per class, or none), fit, then score val and test
 * once. Test is touched only here, after fitting, and never fed back into any choice. */
#include "adapt/adapt.h"
#include "data/features.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* RNG streams of the protocol's draws; training streams live in the methods. */
#define STREAM_KSHOT 0x6b73686f7400ull   /* "kshot" + class */
#define STREAM_KVAL 0x6b76616c0000ull    /* "kval" + class */

ca_protocol ca_protocol_default_params(void) {
    ca_protocol p = {.select = CA_SELECT_VAL, .sample = CA_SAMPLE_POOL, .kshot_val_max = 4};
    return p;
}

static const char *const SELECT_NAMES[] = {"val", "kshot-val", "none"};

const char *ca_select_name(int select) {
    return select >= 0 && select < 3 ? SELECT_NAMES[select] : NULL;
}

int ca_select_from_name(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, SELECT_NAMES[i])) return i;
    return -1;
}

/* A split assembled from chosen rows of another; owns its arrays. */
typedef struct { ca_split s; float *x, *xv; int32_t *y; } owned_split;

static void owned_free(owned_split *o) { free(o->x); free(o->xv); free(o->y); memset(o, 0, sizeof *o); }

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Rows of src to keep: per class, a permutation seeded by (seed, stream + class), its first
 * min(k, count) entries; returned in ascending row order (the source's layout). */
static ca_status draw_rows(const ca_split *src, int C, int k, uint64_t seed, uint64_t stream, int **rows, int *n) {
    *rows = NULL; *n = 0;
    int *cnt = ca_calloc2((size_t)C + 1, sizeof(int)), *start = ca_malloc2((size_t)C + 1, sizeof(int));
    int *byc = ca_malloc2((size_t)src->n + 1, sizeof(int)), *out = ca_malloc2((size_t)src->n + 1, sizeof(int));
    if (!cnt || !start || !byc || !out) { free(cnt); free(start); free(byc); free(out); return ca_fail(CA_E_NOMEM, "protocol: out of memory"); }
    for (int i = 0; i < src->n; i++) cnt[src->y[i]]++;
    start[0] = 0;
    for (int c = 0; c < C; c++) start[c + 1] = start[c] + cnt[c];
    memset(cnt, 0, sizeof(int) * (size_t)C);
    for (int i = 0; i < src->n; i++) byc[start[src->y[i]] + cnt[src->y[i]]++] = i;   /* rows of class c, in order */
    int m = 0;
    for (int c = 0; c < C; c++) {
        ca_rng r = ca_rng_make(seed, stream + (uint64_t)c);
        ca_rng_shuffle_int(&r, byc + start[c], cnt[c]);
        int take = cnt[c] < k ? cnt[c] : k;
        memcpy(out + m, byc + start[c], sizeof(int) * (size_t)take);
        m += take;
    }
    qsort(out, (size_t)m, sizeof(int), cmp_int);
    free(cnt); free(start); free(byc);
    *rows = out; *n = m;
    return CA_OK;
}

/* dst = the given rows of src (features, labels, and views when src has them). */
static ca_status gather(const ca_split *src, const int *rows, int n, owned_split *dst) {
    const int D = src->dim, V = src->xv ? src->views : 0;
    memset(dst, 0, sizeof *dst);
    dst->x = ca_malloc2((size_t)n * D + 1, sizeof(float));
    dst->y = ca_malloc2((size_t)n + 1, sizeof(int32_t));
    dst->xv = V ? ca_malloc2((size_t)V * n * D + 1, sizeof(float)) : NULL;
    if (!dst->x || !dst->y || (V && !dst->xv)) { owned_free(dst); return ca_fail(CA_E_NOMEM, "protocol: out of memory"); }
    for (int j = 0; j < n; j++) {
        memcpy(dst->x + (size_t)j * D, src->x + (size_t)rows[j] * D, sizeof(float) * (size_t)D);
        dst->y[j] = src->y[rows[j]];
        for (int v = 0; v < V; v++)
            memcpy(dst->xv + ((size_t)v * n + j) * D, src->xv + ((size_t)v * src->n + rows[j]) * D, sizeof(float) * (size_t)D);
    }
    dst->s = (ca_split){.n = n, .dim = D, .x = dst->x, .y = dst->y, .views = V, .xv = dst->xv};
    return CA_OK;
}

static ca_status draw_split(const ca_split *src, int C, int k, uint64_t seed, uint64_t stream, owned_split *dst) {
    int *rows, n;
    ca_status st = draw_rows(src, C, k, seed, stream, &rows, &n);
    if (st == CA_OK) st = gather(src, rows, n, dst);
    free(rows);
    return st;
}

static ca_status score(const ca_classifier *c, const ca_split *s, double *acc) {
    int C = ca_classifier_num_classes(c);
    float *lg = ca_malloc_big((size_t)s->n, (size_t)C * sizeof(float));
    if (!lg) return CA_E_NOMEM;
    ca_status st = ca_classifier_logits(c, s->x, s->n, lg);
    if (st == CA_OK) *acc = ca_accuracy(lg, s->y, s->n, C);
    free(lg);
    return st;
}

ca_status ca_run_fewshot_protocol(const ca_featureset *fs, const char *method, int shots,
                                  const ca_fit_params *params, const ca_protocol *proto, ca_run_result *out) {
    CA_ENTER();
    if (!fs || !method || !out) return ca_fail(CA_E_ARG, "ca_run_fewshot: NULL argument");
    memset(out, 0, sizeof *out);
    ca_protocol pr = proto ? *proto : ca_protocol_default_params();
    ca_fit_params defaults = ca_fit_default_params();
    if (!params) params = &defaults;
    if (!ca_select_name(pr.select)) return ca_fail(CA_E_ARG, "protocol: unknown selection regime %d", pr.select);
    if (pr.sample != CA_SAMPLE_POOL && pr.sample != CA_SAMPLE_FIXED) return ca_fail(CA_E_ARG, "protocol: unknown sampling %d", pr.sample);
    if (pr.select == CA_SELECT_KSHOT_VAL && pr.kshot_val_max < 1)
        return ca_fail(CA_E_ARG, "protocol: kshot_val_max must be >= 1, got %d", pr.kshot_val_max);
    double t0 = ca_now();
    const int C = ca_features_num_classes(fs);
    ca_fit_data d = {.num_classes = C, .dim = ca_features_dim(fs), .text_w = ca_features_text(fs)};
    ca_split test, val;
    owned_split tr = {0}, vs = {0};
    int resampled = 0;
    char name[48];
    /* val is optional in a feature set: --select none never reads it; the other regimes do */
    ca_status st = ca_features_split(fs, "test", &test);
    if (st != CA_OK) return st;
    if (ca_features_split(fs, "val", &val) != CA_OK) memset(&val, 0, sizeof val);
    ca_clear_error();
    if (val.n == 0 && pr.select != CA_SELECT_NONE)
        return ca_fail(CA_E_ARG, "%s: the feature set has no validation split (no val.features rows): --select %s "
                                 "needs one; --select none uses each method's published fixed values",
                       ca_features_path(fs), ca_select_name(pr.select));
    if (test.n == 0)
        return ca_fail(CA_E_ARG, "the feature set has no test rows (extracted with --test-split 0): nothing to score "
                                 "(fit still trains on it, choosing on val)");
    if (shots < 1) return ca_fail(CA_E_ARG, "protocol: K must be >= 1, got %d", shots);
    /* the K shots: drawn from the largest train split when it is larger (any K below it, stored
     * or not), else the stored train.{K}shot */
    int kmax = 0, nk = ca_features_shots(fs, NULL, 0);
    int *ks = ca_malloc2((size_t)nk + 1, sizeof(int));
    if (!ks) return CA_E_NOMEM;
    ca_features_shots(fs, ks, nk);
    for (int i = 0; i < nk; i++) if (ks[i] > kmax) kmax = ks[i];
    free(ks);
    if (pr.sample == CA_SAMPLE_POOL && kmax > shots) {
        ca_split pool;
        snprintf(name, sizeof name, "train.%dshot", kmax);
        if ((st = ca_features_split(fs, name, &pool)) != CA_OK) return st;
        if ((st = draw_split(&pool, C, shots, params->seed, STREAM_KSHOT, &tr)) != CA_OK) return st;
        d.train = tr.s;
        resampled = 1;
    } else {
        snprintf(name, sizeof name, "train.%dshot", shots);
        if ((st = ca_features_split(fs, name, &d.train)) != CA_OK) return st;
    }
    /* the validation data of the regime */
    if (pr.select == CA_SELECT_VAL) d.val = val;
    else if (pr.select == CA_SELECT_KSHOT_VAL) {
        int kv = shots < pr.kshot_val_max ? shots : pr.kshot_val_max;
        if ((st = draw_split(&val, C, kv, params->seed, STREAM_KVAL, &vs)) != CA_OK) { owned_free(&tr); return st; }
        d.val = vs.s;
    } /* CA_SELECT_NONE: d.val stays empty */
    ca_classifier *c = ca_fit(method, &d, params, &st);
    if (!c) { owned_free(&tr); owned_free(&vs); return st; }
    const char *const *names = ca_method_names();
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], method)) out->method = names[i]; /* static name outlives the call */
    out->shots = shots;
    out->clf = c;
    out->seed = params->seed;
    out->select = pr.select;
    out->resampled = resampled;
    out->train_n = d.train.n;
    out->val_n = d.val.n;
    out->val_acc = NAN;
    /* val's accuracy: the fit's own count when it scored d.val through the same code as the
     * classifier's logits (ca_method.val_acc_param: tip-cache), without a second pass */
    const char *vp = c->m->val_acc_param;
    const double fit_val = vp && d.val.n > 0 ? ca_classifier_param(c, vp, NAN) : NAN;
    if (!isnan(fit_val)) out->val_acc = fit_val;
    else if (d.val.n > 0) st = score(c, &d.val, &out->val_acc);
    if (st == CA_OK) st = score(c, &test, &out->test_acc);   /* the one evaluation on test */
    owned_free(&tr); owned_free(&vs);
    if (st != CA_OK) { ca_run_free(out); return st; }
    out->seconds = ca_now() - t0;
    return CA_OK;
}

ca_status ca_run_fewshot(const ca_featureset *fs, const char *method, int shots,
                         const ca_fit_params *params, ca_run_result *out) {
    CA_ENTER();
    ca_protocol pr = ca_protocol_default_params();
    pr.sample = CA_SAMPLE_FIXED;
    return ca_run_fewshot_protocol(fs, method, shots, params, &pr, out);
}

void ca_run_free(ca_run_result *r) {
    if (!r) return;
    ca_classifier_free(r->clf);
    r->clf = NULL;
}
