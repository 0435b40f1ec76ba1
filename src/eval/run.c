/* run.c — one few-shot experiment: fit a method on a K-shot split, score val and test once.
 * Test is touched only here, after fitting, and never fed back into any choice. */
#include "core/core.h"

#include <stdio.h>
#include <string.h>

static ca_status score(const ca_classifier *c, const ca_split *s, double *acc) {
    int C = ca_classifier_num_classes(c);
    float *lg = ca_malloc2((size_t)s->n, (size_t)C * sizeof(float));
    if (!lg) return CA_E_NOMEM;
    ca_status st = ca_classifier_logits(c, s->x, s->n, lg);
    if (st == CA_OK) *acc = ca_accuracy(lg, s->y, s->n, C);
    free(lg);
    return st;
}

ca_status ca_run_fewshot(const ca_featureset *fs, const char *method, int shots,
                         const ca_fit_params *params, ca_run_result *out) {
    CA_ENTER();
    if (!fs || !method || !out) return ca_fail(CA_E_ARG, "ca_run_fewshot: NULL argument");
    memset(out, 0, sizeof *out);
    double t0 = ca_now();
    char name[48];
    snprintf(name, sizeof name, "train.%dshot", shots);
    ca_fit_data d = {.num_classes = ca_features_num_classes(fs), .dim = ca_features_dim(fs),
                     .text_w = ca_features_text(fs)};
    ca_split test;
    ca_status st = ca_features_split(fs, name, &d.train);
    if (st == CA_OK) st = ca_features_split(fs, "val", &d.val);
    if (st == CA_OK) st = ca_features_split(fs, "test", &test);
    if (st != CA_OK) return st;
    ca_classifier *c = ca_fit(method, &d, params, &st);
    if (!c) return st;
    const char *const *names = ca_method_names();
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], method)) out->method = names[i]; /* static name outlives the call */
    out->shots = shots;
    out->clf = c;
    if ((st = score(c, &d.val, &out->val_acc)) == CA_OK) st = score(c, &test, &out->test_acc);
    if (st != CA_OK) { ca_run_free(out); return st; }
    out->seconds = ca_now() - t0;
    return CA_OK;
}

void ca_run_free(ca_run_result *r) {
    if (!r) return;
    ca_classifier_free(r->clf);
    r->clf = NULL;
}
