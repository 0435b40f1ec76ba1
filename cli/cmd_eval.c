/* cmd_eval.c — `clipadapt eval`: score a saved classifier on a split of a feature set. */
#include "cli.h"
#include "core/core.h" /* ca_outfile: atomic --predictions output */

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: clipadapt eval --classifier CLF --features F [--split test] [--predictions FILE] [--json]\n"
           "                      [--per-class] [--top-k 5] [--confusion FILE.csv] [--plot FILE.svg]\n"
           "\n"
           "Top-1 and top-5 accuracy of a classifier (from `clipadapt fit`) on one split of a feature set,\n"
           "per-class accuracy and the confusion matrix.\n"
           "\n"
           "  --classifier F    classifier file\n"
           "  --features F      feature set with the same feature dimension and classes\n"
           "  --split S         val, test (default) or train.{K}shot\n"
           "  --predictions F   write one line per row: index, true label, predicted label, predicted\n"
           "                    class name, image path (when the feature set records them), tab-separated\n"
           "  --json            print {\"accuracy\", \"top5\" (top-k), \"n\", \"split\", \"method\", \"per_class\":\n"
           "                    [{\"class\", \"n\", \"accuracy\"}, ...]}\n"
           "  --per-class       also print each class's row count and top-1 accuracy (text output)\n"
           "  --top-k K         the k of top-k accuracy (default 5)\n"
           "  --confusion F     write the confusion matrix as CSV: a row per true class, a column per\n"
           "                    predicted class, then the class's row count and accuracy\n"
           "  --plot F          write the confusion matrix as an SVG heatmap\n");
}

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
    int json = 0, per_class = 0;
    long topk = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return CLI_OK; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--per-class")) { per_class = 1; continue; }
        if ((r = cli_take(argc, argv, &i, "--confusion", &v)) != 0) { if (r < 0) return cli_usage("eval", "--confusion needs a file"); conf = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--plot", &v)) != 0) { if (r < 0) return cli_usage("eval", "--plot needs a file"); plot = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--top-k", &v)) != 0) {
            if (r < 0 || cli_int(v, &topk) || topk < 1 || topk > 100000) return cli_usage("eval", "--top-k needs an integer >= 1");
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--classifier", &v)) != 0) { if (r < 0) return cli_usage("eval", "--classifier needs a file"); clf = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--features", &v)) != 0) { if (r < 0) return cli_usage("eval", "--features needs a file"); features = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--split", &v)) != 0) { if (r < 0) return cli_usage("eval", "--split needs a name"); split = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--predictions", &v)) != 0) { if (r < 0) return cli_usage("eval", "--predictions needs a file"); pred = v; continue; }
        return cli_usage("eval", "unknown option '%s'", a);
    }
    if (!clf || !features) return cli_usage("eval", "--classifier and --features are required");
    ca_status st;
    int rc = CLI_FAIL;
    ca_classifier *c = ca_classifier_load(clf, &st);
    if (!c) return cli_status(st);
    ca_featureset *fs = ca_features_load(features, &st);
    float *lg = NULL;
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
    lg = malloc(sizeof(float) * (size_t)sp.n * C + 1);
    if (!lg) { rc = cli_error("out of memory"); goto out; }
    if ((st = ca_classifier_logits(c, sp.x, sp.n, lg)) != CA_OK) { rc = cli_status(st); goto out; }
    if ((st = ca_eval_logits(lg, sp.y, sp.n, C, (int)topk, &rep)) != CA_OK) { rc = cli_status(st); goto out; }
    double acc = rep.top1;
    if (!(names = calloc((size_t)C, sizeof *names))) { rc = cli_error("out of memory"); goto out; }
    for (int k = 0; k < C; k++) names[k] = ca_classifier_class_name(c, k);
    if (conf) {
        if (!(text = ca_confusion_csv(&rep, names)) || (st = ca_write_text(conf, text)) != CA_OK) { rc = cli_status(st); goto out; }
        free(text); text = NULL;
    }
    if (plot) {
        char title[512];
        snprintf(title, sizeof title, "%s on %s of %s", ca_classifier_method(c), split, ca_basename(features));
        if (!(text = ca_confusion_svg(&rep, names, title)) || (st = ca_write_text(plot, text)) != CA_OK) { rc = cli_status(st); goto out; }
        free(text); text = NULL;
    }
    if (pred) {
        const cJSON *paths = split_paths(features, split, sp.n, &pj);
        ca_outfile of;
        if ((st = ca_outfile_open(&of, pred)) != CA_OK) { rc = cli_status(st); goto out; }
        for (int i = 0; i < sp.n; i++) {
            int best;
            ca_top_k(lg + (size_t)i * C, C, 1, &best);
            const char *nm = ca_classifier_class_name(c, best);
            const cJSON *pi = paths ? cJSON_GetArrayItem(paths, i) : NULL;
            fprintf(of.fp, "%d\t%d\t%d\t%s\t%s\n", i, sp.y[i], best, nm ? nm : "", cJSON_IsString(pi) ? pi->valuestring : "");
        }
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
    free(lg);
    ca_features_free(fs);
    ca_classifier_free(c);
    return rc;
}
