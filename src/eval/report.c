/* report.c — text reports of few-shot runs: the methods × K accuracy table (one seed: "test
 * (val)"; several: "mean ± std" over seeds) and the JSON records with their aggregate, plus the
 * atomic text writer the CLI uses for them. The SVG plot is in plot.c. */
#include "eval/aggregate.h"
#include "eval/sbuf.h"

#include <cjson/cJSON.h>
#include <math.h>

ca_report_params ca_report_default_params(void) {
    ca_report_params p = {.features_path = NULL, .timings = 1, .aggregate = 0};
    return p;
}

char *ca_report_table(const ca_run_result *r, int n) {
    CA_ENTER();
    if (!r || n < 1) { ca_fail(CA_E_ARG, "report: no runs"); return NULL; }
    ca_agg a;
    if (ca_agg_build(r, n, &a) != CA_OK) return NULL;
    const int multi = a.max_n > 1;
    int w = 6; /* the method column fits the longest name */
    for (int m = 0; m < a.nm; m++)
        if ((int)strlen(a.methods[m]) > w) w = (int)strlen(a.methods[m]);
    ca_sbuf b = {0};
    const char *sel = ca_select_name(r[0].select);
    if (multi) {
        ca_sbuf_printf(&b, "test accuracy %%: mean ± sample std over %d seeds (", a.nseeds);
        for (int s = 0; s < a.nseeds; s++) ca_sbuf_printf(&b, "%s%llu", s ? "," : "", (unsigned long long)a.seeds[s]);
        ca_sbuf_printf(&b, ")");
    } else {
        ca_sbuf_printf(&b, "test accuracy %% (val accuracy %%)");
    }
    if (r[0].select != CA_SELECT_VAL && sel) ca_sbuf_printf(&b, "; selection: %s", sel);
    int any_resampled = 0;
    for (int i = 0; i < n; i++) any_resampled |= r[i].resampled;
    if (any_resampled) ca_sbuf_printf(&b, "; K-shot samples drawn per seed from the largest train split (resampled)");
    ca_sbuf_printf(&b, "\n%-*s", w, "method");
    for (int k = 0; k < a.nk; k++) {
        char h[32];
        snprintf(h, sizeof h, "K=%d", a.shots[k]);
        ca_sbuf_printf(&b, " %15s", h);
    }
    ca_sbuf_printf(&b, "\n");
    for (int m = 0; m < a.nm; m++) {
        ca_sbuf_printf(&b, "%-*s", w, a.methods[m]);
        for (int k = 0; k < a.nk; k++) {
            const ca_agg_cell *c = ca_agg_at(&a, m, k);
            if (c->n == 0) ca_sbuf_printf(&b, " %15s", "-");
            else if (multi && isfinite(c->test_std)) ca_sbuf_printf(&b, "  %6.2f ± %5.2f", c->test_mean, c->test_std);
            else if (multi) ca_sbuf_printf(&b, "  %6.2f ± %5s", c->test_mean, "-");
            else if (isfinite(r[c->first].val_acc)) ca_sbuf_printf(&b, "  %6.2f (%6.2f)", c->test_mean, r[c->first].val_acc);
            else ca_sbuf_printf(&b, "  %6.2f (%6s)", c->test_mean, "-");
        }
        ca_sbuf_printf(&b, "\n");
    }
    ca_agg_free(&a);
    return ca_sbuf_take(&b);
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static int is_timing(const char *key) {
    size_t n = strlen(key);
    return !strcmp(key, "seconds") || (n >= 8 && !strcmp(key + n - 8, "_seconds"));
}

static cJSON *run_json(const ca_run_result *r, const ca_report_params *rp, int with_features) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_CreateObject();
    if (!o || !p) { cJSON_Delete(o); cJSON_Delete(p); return NULL; }
    cJSON_AddStringToObject(o, "method", r->method);
    cJSON_AddNumberToObject(o, "shots", r->shots);
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    cJSON_AddStringToObject(o, "select", ca_select_name(r->select) ? ca_select_name(r->select) : "?");
    cJSON_AddBoolToObject(o, "resampled", r->resampled != 0);
    cJSON_AddNumberToObject(o, "train_n", r->train_n);
    cJSON_AddNumberToObject(o, "val_n", r->val_n);
    cJSON_AddItemToObject(o, "val_acc", num_or_null(r->val_acc));
    cJSON_AddNumberToObject(o, "test_acc", r->test_acc);
    /* alpha/beta are null for methods that have none, so every record has the same keys */
    cJSON_AddItemToObject(o, "alpha", num_or_null(ca_classifier_param(r->clf, "alpha", NAN)));
    cJSON_AddItemToObject(o, "beta", num_or_null(ca_classifier_param(r->clf, "beta", NAN)));
    if (rp->timings) cJSON_AddNumberToObject(o, "seconds", r->seconds);
    if (with_features && rp->features_path) cJSON_AddStringToObject(o, "features", rp->features_path);
    for (int i = 0; i < ca_classifier_param_count(r->clf); i++) {
        const char *k = ca_classifier_param_name(r->clf, i);
        if (!rp->timings && is_timing(k)) continue;
        double v = ca_classifier_param(r->clf, k, NAN);
        const char *vn = ca_fit_param_value_name(k, v);   /* "optimizer": "adamw", not 2 */
        cJSON_AddItemToObject(p, k, vn ? cJSON_CreateString(vn) : num_or_null(v));
    }
    cJSON_AddItemToObject(o, "params", p);
    return o;
}

static cJSON *aggregate_json(const ca_run_result *r, int n, const ca_report_params *rp) {
    ca_agg a;
    if (ca_agg_build(r, n, &a) != CA_OK) return NULL;
    cJSON *root = cJSON_CreateObject(), *seeds = cJSON_CreateArray(), *runs = cJSON_CreateArray(), *agg = cJSON_CreateArray();
    int ok = root && seeds && runs && agg;
    if (ok && rp->features_path) cJSON_AddStringToObject(root, "features", rp->features_path);
    if (ok) cJSON_AddStringToObject(root, "select", ca_select_name(r[0].select) ? ca_select_name(r[0].select) : "?");
    if (ok) cJSON_AddStringToObject(root, "std", "sample (n-1) standard deviation over seeds");
    for (int s = 0; ok && s < a.nseeds; s++) cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)a.seeds[s]));
    for (int i = 0; ok && i < n; i++) {
        cJSON *o = run_json(&r[i], rp, 0);
        if (!o) ok = 0;
        else cJSON_AddItemToArray(runs, o);
    }
    for (int c = 0; ok && c < a.ncell; c++) {
        const ca_agg_cell *ce = &a.cells[c];
        if (ce->n == 0) continue;
        cJSON *o = cJSON_CreateObject(), *accs = cJSON_CreateArray();
        if (!o || !accs) { cJSON_Delete(o); cJSON_Delete(accs); ok = 0; break; }
        cJSON_AddStringToObject(o, "method", ce->method);
        cJSON_AddNumberToObject(o, "shots", ce->shots);
        cJSON_AddNumberToObject(o, "n_seeds", ce->n);
        cJSON_AddItemToObject(o, "test_mean", num_or_null(ce->test_mean));
        cJSON_AddItemToObject(o, "test_std", num_or_null(ce->test_std));
        cJSON_AddItemToObject(o, "val_mean", num_or_null(ce->val_mean));
        cJSON_AddItemToObject(o, "val_std", num_or_null(ce->val_std));
        for (int i = 0; i < n; i++)
            if (r[i].shots == ce->shots && !strcmp(r[i].method, ce->method)) cJSON_AddItemToArray(accs, cJSON_CreateNumber(r[i].test_acc));
        cJSON_AddItemToObject(o, "test_accs", accs);
        cJSON_AddItemToArray(agg, o);
    }
    ca_agg_free(&a);
    if (!ok) { cJSON_Delete(root); cJSON_Delete(seeds); cJSON_Delete(runs); cJSON_Delete(agg); return NULL; }
    cJSON_AddItemToObject(root, "seeds", seeds);
    cJSON_AddItemToObject(root, "runs", runs);
    cJSON_AddItemToObject(root, "aggregate", agg);
    return root;
}

char *ca_report_json_ex(const ca_run_result *r, int n, const ca_report_params *rp) {
    CA_ENTER();
    if (!r || n < 1) { ca_fail(CA_E_ARG, "report: no runs"); return NULL; }
    ca_report_params defaults = ca_report_default_params();
    if (!rp) rp = &defaults;
    int several = 0;
    for (int i = 1; i < n; i++) several |= r[i].seed != r[0].seed;
    cJSON *root = NULL;
    if (rp->aggregate || several) root = aggregate_json(r, n, rp);
    else {
        root = n == 1 ? run_json(&r[0], rp, 1) : cJSON_CreateArray();
        for (int i = 0; n > 1 && root && i < n; i++) {
            cJSON *o = run_json(&r[i], rp, 1);
            if (!o) { cJSON_Delete(root); root = NULL; break; }
            cJSON_AddItemToArray(root, o);
        }
    }
    char *s = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!s) { ca_fail(CA_E_NOMEM, "report: out of memory"); return NULL; }
    /* hand back malloc'd memory with a trailing newline (cJSON's allocator is malloc here) */
    size_t len = strlen(s);
    char *t = realloc(s, len + 2);
    if (!t) { free(s); ca_fail(CA_E_NOMEM, "report: out of memory"); return NULL; }
    t[len] = '\n'; t[len + 1] = 0;
    return t;
}

char *ca_report_json(const ca_run_result *r, int n, const char *features_path) {
    CA_ENTER();
    ca_report_params p = ca_report_default_params();
    p.features_path = features_path;
    return ca_report_json_ex(r, n, &p);
}

ca_status ca_write_text(const char *path, const char *text) {
    CA_ENTER();
    if (!path || !text) return ca_fail(CA_E_ARG, "ca_write_text: NULL argument");
    ca_outfile o;
    ca_status st = ca_outfile_open(&o, path);
    if (st != CA_OK) return st;
    if ((st = ca_outfile_write(&o, text, strlen(text))) != CA_OK) { ca_outfile_abort(&o); return st; }
    return ca_outfile_commit(&o);
}
