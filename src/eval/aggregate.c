/* aggregate.c — group few-shot runs by (method, K) and summarise them over seeds (mean, sample
 * standard deviation). The summation runs in the runs' order, so the same runs always give the
 * same bits. */
#include "eval/aggregate.h"

#include <math.h>
#include <string.h>

void ca_agg_free(ca_agg *a) {
    if (!a) return;
    free(a->methods); free(a->shots); free(a->cells); free(a->seeds);
    memset(a, 0, sizeof *a);
}

/* mean and sample std of v[0..n) into *m, *s (NAN when undefined) */
static void mean_std(const double *v, int n, double *m, double *s) {
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    *m = n > 0 ? sum / n : NAN;
    for (int i = 0; i < n; i++) ss += (v[i] - *m) * (v[i] - *m);
    *s = n > 1 ? sqrt(ss / (n - 1)) : NAN;
}

ca_status ca_agg_build(const ca_run_result *r, int n, ca_agg *a) {
    memset(a, 0, sizeof *a);
    a->methods = ca_malloc2((size_t)n + 1, sizeof *a->methods);
    a->shots = ca_malloc2((size_t)n + 1, sizeof *a->shots);
    a->seeds = ca_malloc2((size_t)n + 1, sizeof *a->seeds);
    double *tv = ca_malloc2((size_t)n + 1, sizeof(double)), *vv = ca_malloc2((size_t)n + 1, sizeof(double));
    if (!a->methods || !a->shots || !a->seeds || !tv || !vv) { free(tv); free(vv); ca_agg_free(a); return ca_fail(CA_E_NOMEM, "report: out of memory"); }
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < a->nm && strcmp(a->methods[j], r[i].method)) j++;
        if (j == a->nm) a->methods[a->nm++] = r[i].method;
        j = 0;
        while (j < a->nk && a->shots[j] != r[i].shots) j++;
        if (j == a->nk) {
            int k = a->nk++;
            while (k > 0 && a->shots[k - 1] > r[i].shots) { a->shots[k] = a->shots[k - 1]; k--; }
            a->shots[k] = r[i].shots;
        }
        j = 0;
        while (j < a->nseeds && a->seeds[j] != r[i].seed) j++;
        if (j == a->nseeds) a->seeds[a->nseeds++] = r[i].seed;
    }
    a->ncell = a->nm * a->nk;
    a->cells = ca_calloc2((size_t)a->ncell + 1, sizeof *a->cells);
    if (!a->cells) { free(tv); free(vv); ca_agg_free(a); return ca_fail(CA_E_NOMEM, "report: out of memory"); }
    for (int m = 0; m < a->nm; m++)
        for (int k = 0; k < a->nk; k++) {
            ca_agg_cell *c = &a->cells[(size_t)m * a->nk + k];
            int nt = 0, nv = 0;
            c->method = a->methods[m]; c->shots = a->shots[k]; c->first = -1;
            for (int i = 0; i < n; i++) {
                if (r[i].shots != c->shots || strcmp(r[i].method, c->method)) continue;
                if (c->first < 0) c->first = i;
                tv[nt++] = r[i].test_acc;
                if (isfinite(r[i].val_acc)) vv[nv++] = r[i].val_acc;
            }
            c->n = nt;
            mean_std(tv, nt, &c->test_mean, &c->test_std);
            mean_std(vv, nv, &c->val_mean, &c->val_std);
            if (nt > a->max_n) a->max_n = nt;
        }
    free(tv); free(vv);
    return CA_OK;
}
