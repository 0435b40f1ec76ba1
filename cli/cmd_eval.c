/* cmd_eval.c — `clipadapt eval`: score a saved classifier on a split of a feature set. */
#include "cli.h"
#include "core/core.h" /* ca_outfile: atomic --predictions output */

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* image_paths metadata {"test": [...], ...} entry for split, or NULL; *out owns the parsed JSON. */
static const cJSON *split_paths(const char *features, const char *split, int n, cJSON **out) {
    *out = NULL;
    ca_status st;
    ca_st_file *f = ca_st_open(features, &st);
    if (!f) return NULL;
    const char *js = ca_st_metadata(f, "image_paths");
    *out = js ? cJSON_Parse(js) : NULL;
    ca_st_close(f);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(*out, split);
    return cJSON_IsArray(a) && cJSON_GetArraySize(a) == n ? a : NULL;
}

int cmd_eval(int argc, char **argv) {
    const char *clf = NULL, *features = NULL, *split = "test", *pred = NULL, *conf = NULL, *plot = NULL;
    int json = 0, per_class = 0, topk = 5;
    cli_opt t[] = {
        cli_opt_str("--classifier", &clf, "FILE", "classifier from `clipadapt fit` (required)"),
        cli_opt_str("--features", &features, "FILE", "feature set with the same feature dimension and classes (required)"),
        cli_opt_str("--split", &split, "NAME", "val, test (default) or train.{K}shot"),
        cli_opt_str("--predictions", &pred, "FILE|-", "write one line per row: index, true label, predicted label, predicted "
                                                       "class name, image path (when the feature set records them), tab-separated; "
                                                       "'-' is standard output"),
        cli_opt_flag("--json", &json, "print {\"method\", \"split\", \"n\", \"accuracy\", \"top5\" (top-k), \"per_class\": "
                                      "[{\"class\", \"n\", \"accuracy\"}, ...]} instead of the sentence"),
        cli_opt_flag("--per-class", &per_class, "also print each class's row count and top-1 accuracy (text output)"),
        cli_opt_int("--top-k", &topk, 1, 100000, "K", "the k of top-k accuracy (default 5)"),
        cli_opt_str("--confusion", &conf, "FILE", "write the confusion matrix as CSV: a row per true class, a column per "
                                                     "predicted class, then the class's row count and accuracy"),
        cli_opt_str("--plot", &plot, "FILE", "write the confusion matrix as an SVG heatmap"),
    };
    cli_cmd cmd = {"eval", "--classifier CLF --features F [--split test] [--predictions FILE] [--json]\n"
                           "                      [--per-class] [--top-k 5] [--confusion FILE.csv] [--plot FILE.svg]",
                   "Top-1 and top-k accuracy of a classifier (from `clipadapt fit`) on one split of a feature set,\n"
                   "per-class accuracy and the confusion matrix. Classes are matched by name: a feature set listing\n"
                   "the same classes in another order is remapped (labels are the classifier's indices), one with\n"
                   "other classes is refused.",
                   NULL, t, (int)(sizeof t / sizeof t[0]), NULL};
    int r = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (r) return r == CLI_HELP ? CLI_OK : r;
    if (!clf || !features) return cli_usage("eval", "--classifier and --features are required");
    cli_file in[] = {{"--classifier", clf, 0}, {"--features", features, 0}},
             out[] = {{"--predictions", pred, 0}, {"--confusion", conf, 0}, {"--plot", plot, 0}};
    int rc = cli_check_outputs(in, 2, out, 3);
    if (rc) return rc;
    ca_status st;
    rc = CLI_FAIL;
    ca_classifier *c = ca_classifier_load(clf, &st);
    if (!c) return cli_status(st);
    ca_featureset *fs = ca_features_load(features, &st);
    float *lg = NULL;
    int32_t *lab = NULL;
    cJSON *pj = NULL;
    ca_eval_report rep;
    memset(&rep, 0, sizeof rep);
    const char **names = NULL;
    char *text = NULL;
    if (!fs) { rc = cli_status(st); goto out; }
    ca_split sp;
    if ((st = ca_features_split(fs, split, &sp)) != CA_OK) { rc = cli_status(st); goto out; }
    int C = ca_classifier_num_classes(c);
    if (ca_classifier_dim(c) != sp.dim) { rc = cli_error("%s: %d-d features, but %s expects %d-d", features, sp.dim, clf, ca_classifier_dim(c)); goto out; }
    if (ca_classifier_model_signature(c) && ca_features_model_signature(fs) &&
        !ca_model_signature_match(ca_classifier_model_signature(c), ca_features_model_signature(fs))) {
        rc = cli_error("%s: features of another model than the one %s was fit on (metadata model_signature differs)", features, clf);
        goto out;
    }
    if (ca_features_num_classes(fs) != C) { rc = cli_error("%s: %d classes, but %s has %d", features, ca_features_num_classes(fs), clf, C); goto out; }
    if (sp.n == 0) { rc = cli_error("%s: split '%s' has no rows (extracted with a zero split?)", features, split); goto out; }
    /* classes are matched by name: the same names in another order are remapped, other names
     * refused, so labels are never scored against the wrong class */
    lab = malloc(sizeof(int32_t) * (size_t)sp.n + 1);
    int *map = malloc(sizeof(int) * (size_t)C + 1);
    if (!lab || !map) { free(map); rc = cli_error("out of memory"); goto out; }
    int reordered = 0;
    for (int k = 0; k < C; k++) {
        const char *fn = ca_features_class_name(fs, k);
        map[k] = k;
        if (!fn || !ca_classifier_class_name(c, k)) continue;
        map[k] = -1;
        for (int j = 0; j < C && map[k] < 0; j++) {
            const char *cn = ca_classifier_class_name(c, j);
            if (cn && !strcmp(cn, fn)) map[k] = j;
        }
        if (map[k] < 0) {
            free(map);
            rc = cli_error("%s: class '%s' is not one of the classes of %s (classifier and features come from different datasets)", features, fn, clf);
            goto out;
        }
        reordered |= map[k] != k;
    }
    for (int i = 0; i < sp.n; i++) lab[i] = map[sp.y[i]];
    free(map);
    if (reordered) fprintf(stderr, "clipadapt: note: %s lists the classes in another order than %s; matched by name\n", features, clf);
    lg = malloc(sizeof(float) * (size_t)sp.n * C + 1);
    if (!lg) { rc = cli_error("out of memory"); goto out; }
    if ((st = ca_classifier_logits(c, sp.x, sp.n, lg)) != CA_OK) { rc = cli_status(st); goto out; }
    /* labels are the classifier's indices (lab, remapped by name above), never the feature set's */
    if ((st = ca_eval_logits(lg, lab, sp.n, C, topk, &rep)) != CA_OK) { rc = cli_status(st); goto out; }
    double acc = rep.top1;
    if (!(names = calloc((size_t)C, sizeof *names))) { rc = cli_error("out of memory"); goto out; }
    for (int k = 0; k < C; k++) names[k] = ca_classifier_class_name(c, k);
    if (conf) {
        if (!(text = ca_confusion_csv(&rep, names))) { rc = cli_error("out of memory"); goto out; }
        if ((st = ca_write_text(conf, text)) != CA_OK) { rc = cli_status(st); goto out; }
        free(text); text = NULL;
    }
    if (plot) {
        char title[512];
        snprintf(title, sizeof title, "%s on %s of %s", ca_classifier_method(c), split, ca_basename(features));
        if (!(text = ca_confusion_svg(&rep, names, title))) { rc = cli_error("out of memory"); goto out; }
        if ((st = ca_write_text(plot, text)) != CA_OK) { rc = cli_status(st); goto out; }
        free(text); text = NULL;
    }
    if (pred) {
        const cJSON *paths = split_paths(features, split, sp.n, &pj);
        ca_outfile of;
        if ((st = ca_outfile_open(&of, pred)) != CA_OK) { rc = cli_status(st); goto out; }
        for (int i = 0; st == CA_OK && i < sp.n; i++) {
            int best;
            ca_top_k(lg + (size_t)i * C, C, 1, &best);
            const char *nm = ca_classifier_class_name(c, best);
            const cJSON *pi = paths ? cJSON_GetArrayItem(paths, i) : NULL;
            st = ca_outfile_printf(&of, "%d\t%d\t%d\t%s\t%s\n", i, lab[i], best, nm ? nm : "", cJSON_IsString(pi) ? pi->valuestring : "");
        }
        if (st != CA_OK) { ca_outfile_abort(&of); rc = cli_status(st); goto out; }
        if ((st = ca_outfile_commit(&of)) != CA_OK) { rc = cli_status(st); goto out; }
    }
    if (json) { /* the top-level keys as before ("key": value), then the per-class array */
        cJSON *pc = cJSON_CreateArray(), *jm = cJSON_CreateString(ca_classifier_method(c)), *js = cJSON_CreateString(split);
        for (int k = 0; pc && k < C; k++) {
            cJSON *e = cJSON_CreateObject();
            char nb[32];
            snprintf(nb, sizeof nb, "class %d", k);
            cJSON_AddStringToObject(e, "class", names[k] ? names[k] : nb);
            cJSON_AddNumberToObject(e, "n", rep.class_count[k]);
            if (rep.class_count[k]) cJSON_AddNumberToObject(e, "accuracy", round(rep.class_acc[k] * 1e4) / 1e4);
            else cJSON_AddNullToObject(e, "accuracy");
            cJSON_AddItemToArray(pc, e);
        }
        char *spc = cJSON_PrintUnformatted(pc), *sm = cJSON_PrintUnformatted(jm), *ss = cJSON_PrintUnformatted(js);
        cJSON_Delete(pc); cJSON_Delete(jm); cJSON_Delete(js);
        if (spc && sm && ss)
            printf("{\"method\": %s, \"split\": %s, \"n\": %d, \"accuracy\": %.4f, \"top%d\": %.4f, \"per_class\": %s}\n", sm, ss,
                   sp.n, acc, rep.k, rep.topk, spc);
        free(spc); free(sm); free(ss);
        if (!spc || !sm || !ss) { rc = cli_error("out of memory"); goto out; }
    } else {
        printf("%s on %s (%d images): top-1 accuracy %.2f%%, top-%d %.2f%%\n", ca_classifier_method(c), split, sp.n, acc,
               rep.k, rep.topk);
        for (int k = 0; per_class && k < C; k++) {
            char nb[32];
            snprintf(nb, sizeof nb, "class %d", k);
            if (rep.class_count[k]) printf("  %6.2f%%  %5d  %s\n", rep.class_acc[k], rep.class_count[k], names[k] ? names[k] : nb);
            else printf("  %7s  %5d  %s\n", "-", 0, names[k] ? names[k] : nb);
        }
    }
    rc = CLI_OK;
out:
    ca_eval_report_free(&rep);
    free(names); free(text);
    cJSON_Delete(pj);
    free(lg); free(lab);
    ca_features_free(fs);
    ca_classifier_free(c);
    return rc;
}
