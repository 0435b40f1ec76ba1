/* test_eval.c — the evaluation report: top-1 equal to ca_accuracy, top-k, per-class accuracy and
 * the confusion matrix on hand-made logits, a brute-force oracle on random ones, the CSV (quoting)
 * and the SVG heatmap. */
#include "harness.h"
#include "clipadapt.h"
#include "core/core.h"

#include <math.h>

static void test_small_case(void) {
    /* 4 classes, 6 rows; row i's logits rank the classes as written */
    const float lg[6 * 4] = {
        5, 1, 0, 0,   /* true 0 -> 0 */
        1, 5, 4, 0,   /* true 0 -> 1 (0 is third) */
        0, 5, 1, 0,   /* true 1 -> 1 */
        0, 1, 2, 3,   /* true 2 -> 3 (2 second) */
        2, 2, 1, 0,   /* true 1 -> 0 (a tie goes to the lower index) */
        0, 0, 0, 9};  /* true 3 -> 3 */
    const int32_t y[6] = {0, 0, 1, 2, 1, 3};
    ca_eval_report r;
    CHECK_EQ_INT(ca_eval_logits(lg, y, 6, 4, 2, &r), CA_OK);
    CHECK_NEAR(r.top1, 100.0 * 3 / 6, 1e-12);
    CHECK_NEAR(r.top1, ca_accuracy(lg, y, 6, 4), 1e-12);
    CHECK_NEAR(r.topk, 100.0 * 5 / 6, 1e-12); /* all but row 1 have the label in their top 2 */
    CHECK_EQ_INT(r.k, 2);
    CHECK_EQ_INT(r.confusion[0 * 4 + 0], 1); CHECK_EQ_INT(r.confusion[0 * 4 + 1], 1);
    CHECK_EQ_INT(r.confusion[1 * 4 + 1], 1); CHECK_EQ_INT(r.confusion[1 * 4 + 0], 1);
    CHECK_EQ_INT(r.confusion[2 * 4 + 3], 1); CHECK_EQ_INT(r.confusion[3 * 4 + 3], 1);
    CHECK_EQ_INT(r.class_count[0], 2); CHECK_EQ_INT(r.class_count[2], 1);
    CHECK_NEAR(r.class_acc[0], 50, 1e-12); CHECK_NEAR(r.class_acc[2], 0, 1e-12); CHECK_NEAR(r.class_acc[3], 100, 1e-12);
    /* CSV: header, one row per class with counts, n and accuracy; names quoted when needed */
    const char *names[4] = {"cat", "sea lion, grey", "say \"hi\"", NULL};
    char *csv = ca_confusion_csv(&r, names);
    CHECK(csv != NULL);
    if (csv) {
        CHECK(strncmp(csv, "true\\predicted,cat,\"sea lion, grey\",\"say \"\"hi\"\"\",class 3,n,accuracy\n", 66) == 0);
        CHECK(strstr(csv, "\ncat,1,1,0,0,2,50.0000\n") != NULL);
        CHECK(strstr(csv, "\nclass 3,0,0,0,1,1,100.0000\n") != NULL);
        int lines = 0;
        for (const char *p = csv; *p; p++) lines += *p == '\n';
        CHECK_EQ_INT(lines, 5);
    }
    free(csv);
    char *svg = ca_confusion_svg(&r, names, "a <title> & more");
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "</svg>") && strstr(svg, "a &lt;title&gt; &amp; more"));
    CHECK(svg && strstr(svg, "sea lion, grey → cat: 1 of 2 (50.0%)") != NULL); /* a cell's tooltip */
    free(svg);
    ca_eval_report_free(&r);
    ca_eval_report_free(&r); /* twice is harmless */
    /* k larger than the class count is clamped; bad labels and arguments are errors */
    CHECK_EQ_INT(ca_eval_logits(lg, y, 6, 4, 10, &r), CA_OK);
    CHECK_EQ_INT(r.k, 4);
    CHECK_NEAR(r.topk, 100, 1e-12);
    ca_eval_report_free(&r);
    const int32_t bad[6] = {0, 0, 1, 7, 1, 3};
    CHECK_EQ_INT(ca_eval_logits(lg, bad, 6, 4, 5, &r), CA_E_ARG);
    CHECK(strstr(ca_last_error(), "row 3") != NULL);
    CHECK_EQ_INT(ca_eval_logits(lg, y, 0, 4, 5, &r), CA_E_ARG);
    CHECK(ca_confusion_csv(NULL, NULL) == NULL);
}

/* Random logits against a brute-force count: rank of the label among the logits. */
static void test_random_oracle(void) {
    ca_rng g = ca_rng_make(3, 4);
    const int n = 500, C = 13, k = 5;
    float *lg = malloc(sizeof(float) * n * C);
    int32_t *y = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n * C; i++) lg[i] = (float)(int)ca_rng_below(&g, 7); /* many ties */
    for (int i = 0; i < n; i++) y[i] = (int32_t)ca_rng_below(&g, C);
    ca_eval_report r;
    CHECK_EQ_INT(ca_eval_logits(lg, y, n, C, k, &r), CA_OK);
    int hitk = 0, diag = 0;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const float *v = lg + (size_t)i * C;
        int better = 0; /* classes ranked before the label: larger, or equal with a lower index */
        for (int j = 0; j < C; j++) better += v[j] > v[y[i]] || (v[j] == v[y[i]] && j < y[i]);
        hitk += better < k;
    }
    for (int t = 0; t < C; t++) {
        diag += (int)r.confusion[t * C + t];
        int64_t row = 0;
        for (int p = 0; p < C; p++) row += r.confusion[t * C + p];
        CHECK_EQ_INT(row, r.class_count[t]);
        total += row;
    }
    CHECK_EQ_INT(total, n);
    CHECK_NEAR(r.topk, 100.0 * hitk / n, 1e-9);
    CHECK_NEAR(r.top1, 100.0 * diag / n, 1e-9);
    CHECK_NEAR(r.top1, ca_accuracy(lg, y, n, C), 1e-9);
    ca_eval_report_free(&r);
    free(lg); free(y);
}

int main(void) {
    RUN(test_small_case);
    RUN(test_random_oracle);
    TEST_END();
}
