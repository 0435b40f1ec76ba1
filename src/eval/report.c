/* report.c — text reports of few-shot runs: the methods × K accuracy table and the JSON
 * records, plus the atomic text writer the CLI uses for them. The SVG plot is in plot.c. */
#include "eval/sbuf.h"

#include <cjson/cJSON.h>
#include <math.h>

/* Distinct methods (first-seen order) and distinct K (ascending) of the runs. */
static int distinct(const ca_run_result *r, int n, const char **methods, int *shots, int *nk) {
    int nm = 0;
    *nk = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < nm && strcmp(methods[j], r[i].method)) j++;
        if (j == nm) methods[nm++] = r[i].method;
        j = 0;
        while (j < *nk && shots[j] != r[i].shots) j++;
        if (j == *nk) {
            int k = (*nk)++;
            while (k > 0 && shots[k - 1] > r[i].shots) { shots[k] = shots[k - 1]; k--; }
            shots[k] = r[i].shots;
        }
    }
    return nm;
}

char *ca_report_table(const ca_run_result *r, int n) {
    CA_ENTER();
    if (!r || n < 1) { ca_fail(CA_E_ARG, "report: no runs"); return NULL; }
    const char **methods = ca_malloc2((size_t)n, sizeof *methods);
    int *shots = ca_malloc2((size_t)n, sizeof *shots);
    if (!methods || !shots) { free(methods); free(shots); return NULL; }
    int nk, nm = distinct(r, n, methods, shots, &nk);
    int w = 6; /* the method column fits the longest name */
    for (int m = 0; m < nm; m++)
        if ((int)strlen(methods[m]) > w) w = (int)strlen(methods[m]);
    ca_sbuf b = {0};
    ca_sbuf_printf(&b, "test accuracy %% (val accuracy %%)\n%-*s", w, "method");
    for (int k = 0; k < nk; k++) {
        char h[32];
        snprintf(h, sizeof h, "K=%d", shots[k]);
        ca_sbuf_printf(&b, " %15s", h);
    }
    ca_sbuf_printf(&b, "\n");
    for (int m = 0; m < nm; m++) {
        ca_sbuf_printf(&b, "%-*s", w, methods[m]);
        for (int k = 0; k < nk; k++) {
            const ca_run_result *hit = NULL;
            for (int i = 0; i < n; i++)
                if (r[i].shots == shots[k] && !strcmp(r[i].method, methods[m])) hit = &r[i];
            if (hit) ca_sbuf_printf(&b, "  %6.2f (%6.2f)", hit->test_acc, hit->val_acc);
            else ca_sbuf_printf(&b, " %15s", "-");
        }
        ca_sbuf_printf(&b, "\n");
    }
    free(methods); free(shots);
    return ca_sbuf_take(&b);
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *run_json(const ca_run_result *r, const char *features_path) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_CreateObject();
    if (!o || !p) { cJSON_Delete(o); cJSON_Delete(p); return NULL; }
    cJSON_AddStringToObject(o, "method", r->method);
    cJSON_AddNumberToObject(o, "shots", r->shots);
    cJSON_AddNumberToObject(o, "val_acc", r->val_acc);
    cJSON_AddNumberToObject(o, "test_acc", r->test_acc);
    /* alpha/beta are null for methods that have none, so every record has the same keys */
    cJSON_AddItemToObject(o, "alpha", num_or_null(ca_classifier_param(r->clf, "alpha", NAN)));
    cJSON_AddItemToObject(o, "beta", num_or_null(ca_classifier_param(r->clf, "beta", NAN)));
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    if (features_path) cJSON_AddStringToObject(o, "features", features_path);
    for (int i = 0; i < ca_classifier_param_count(r->clf); i++) {
        const char *k = ca_classifier_param_name(r->clf, i);
        cJSON_AddItemToObject(p, k, num_or_null(ca_classifier_param(r->clf, k, NAN)));
    }
    cJSON_AddItemToObject(o, "params", p);
    return o;
}

char *ca_report_json(const ca_run_result *r, int n, const char *features_path) {
    CA_ENTER();
    if (!r || n < 1) { ca_fail(CA_E_ARG, "report: no runs"); return NULL; }
    cJSON *root = n == 1 ? run_json(&r[0], features_path) : cJSON_CreateArray();
    for (int i = 0; n > 1 && root && i < n; i++) {
        cJSON *o = run_json(&r[i], features_path);
        if (!o) { cJSON_Delete(root); root = NULL; break; }
        cJSON_AddItemToArray(root, o);
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

ca_status ca_write_text(const char *path, const char *text) {
    CA_ENTER();
    if (!path || !text) return ca_fail(CA_E_ARG, "ca_write_text: NULL argument");
    ca_outfile o;
    ca_status st = ca_outfile_open(&o, path);
    if (st != CA_OK) return st;
    size_t len = strlen(text);
    if (fwrite(text, 1, len, o.fp) != len) {
        ca_outfile_abort(&o);
        return ca_fail(CA_E_IO, "%s: write failed", path);
    }
    return ca_outfile_commit(&o);
}
