/* cmd_predict.c — `clipadapt predict`: classify image files with a CLIP model and a fitted
 * classifier; prints the top-k classes with probabilities as a table or JSON. */
#include "cli.h"
#include "core/core.h" /* ca_fail: a detail for the per-image error line */

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_predict(int argc, char **argv) {
    const char *model_path = NULL, *config = NULL, *clf_path = NULL;
    int topk = 5, json = 0, nimg = 0, bf16 = 0, threads = 0, skip_bad = 0, act = CA_ACTIVATION_AUTO;
    const char **images = calloc((size_t)argc + 1, sizeof(char *));
    if (!images) return cli_error("out of memory");
    cli_opt t[] = {
        cli_opt_str("--model", &model_path, "W", "CLIP checkpoint (any format `info` reads) the features were extracted with (required)"),
        cli_opt_str("--config", &config, "C", "Hugging Face config.json or OpenCLIP open_clip_config.json (optional)"),
        cli_opt_act(&act),
        cli_opt_str("--classifier", &clf_path, "FILE", "classifier from `clipadapt fit` (required)"),
        cli_opt_int("--top-k", &topk, 1, 1000000, "K", "classes shown per image (default 5)"),
        cli_opt_flag("--json", &json, "one JSON array: [{\"image\", \"top\": [{\"class\", \"index\", \"prob\"}, ...]}]"),
        cli_opt_flag("--bf16", &bf16, "BF16 image encoder (AVX512-BF16; faster, features within ~1% of float32)"),
        cli_opt_int("--threads", &threads, 0, 4096, "N", "threads (default: all cores)"),
        cli_opt_flag("--skip-bad", &skip_bad, "name each image that cannot be decoded on stderr, classify the others, and "
                                              "print a count at the end (exit 1 only when no image could be read); without "
                                              "it the first such image stops the command with nothing printed"),
    };
    cli_cmd cmd = {"predict", "--model W --classifier CLF [--top-k 5] [--json] [--bf16] [--skip-bad] IMAGE...",
                   "Classify images: CLIP preprocessing (bicubic resize, centre crop), image encoder, L2\n"
                   "normalisation, the classifier's logits, softmax. The model must be the one the features\n"
                   "were extracted with (a classifier of another model is refused before any image).",
                   "Table output: one line per image and rank: image, rank, probability, class index, class name\n"
                   "(tab-separated). Every image is decoded before anything is printed: an image that cannot be\n"
                   "decoded stops the command with nothing printed, unless --skip-bad.\n",
                   t, (int)(sizeof t / sizeof t[0]), NULL};
    int r = cli_parse(&cmd, argc, argv, images, &nimg);
    if (r) { free(images); return r == CLI_HELP ? CLI_OK : r; }
    if (!model_path || !clf_path) { free(images); return cli_usage("predict", "--model and --classifier are required"); }
    if (nimg == 0) { free(images); return cli_usage("predict", "no images given"); }

    ca_status st;
    int rc = CLI_FAIL, failed = 0;
    ca_model *m = NULL;
    float *probs = NULL;
    int *idx = NULL;
    cJSON *out = NULL;
    char *table = NULL;
    size_t table_len = 0;
    FILE *tf = NULL;   /* the table is held back until every image is classified: no partial output */
    ca_classifier *c = ca_classifier_load(clf_path, &st);
    if (!c) { rc = cli_status(st); goto done; }
    ca_model_params mp = ca_model_default_params();
    mp.load_text = 0;
    mp.config_path = config;
    mp.activation = act;
    mp.threads = threads;
    if (!(m = cli_load_model(model_path, &mp, bf16, &rc))) goto done;
    int C = ca_classifier_num_classes(c), k = topk < C ? (int)topk : C;
    /* a classifier of another model is refused once, not once per image */
    ca_model_info info;
    char sig[512];
    if ((st = ca_model_get_info(m, &info)) != CA_OK) { rc = cli_status(st); goto done; }
    if (info.embed_dim != ca_classifier_dim(c)) {
        rc = cli_error("%s: expects %d-d features but %s gives %d-d (fit on features of another model)", clf_path,
                       ca_classifier_dim(c), model_path, info.embed_dim);
        goto done;
    }
    if (ca_classifier_model_signature(c) && ca_model_signature(m, sig, sizeof sig) == CA_OK &&
        !ca_model_signature_match(ca_classifier_model_signature(c), sig)) {
        rc = cli_error("%s: fit on features of another model than %s (image projections differ); predict with the "
                       "model used for extract", clf_path, model_path);
        goto done;
    }
    probs = malloc(sizeof(float) * (size_t)C);
    idx = malloc(sizeof(int) * (size_t)k);
    out = json ? cJSON_CreateArray() : NULL;
    tf = json ? NULL : open_memstream(&table, &table_len);
    if (!probs || !idx || (json && !out) || (!json && !tf)) { rc = cli_error("out of memory"); goto done; }
    ca_image_params ip = ca_image_default_params();
    for (int i = 0; i < nimg; i++) {
        ca_image *img = ca_image_load(images[i], &ip, &st);
        if (!img) {   /* an undecodable image: skipped with --skip-bad, else the end of the run */
            const char *d = ca_last_error();
            char line[1024];
            if (d && strstr(d, images[i])) snprintf(line, sizeof line, "%s", d);
            else snprintf(line, sizeof line, "%s: %s", images[i], d && *d ? d : ca_strerror(st));
            if (!skip_bad) { rc = cli_error("%s", line); goto done; }
            fprintf(stderr, "clipadapt: skipped: %s\n", line);
            failed++;
            continue;
        }
        st = ca_classify_image(m, c, img, probs);
        ca_image_free(img);
        for (int j = 0; st == CA_OK && j < C; j++)
            if (!isfinite(probs[j])) st = ca_fail(CA_E_NONFINITE, "%s: non-finite class probabilities (NaN or infinity in the model or classifier)", images[i]);
        if (st != CA_OK) { rc = cli_status(st); goto done; } /* model/classifier problems hold for every image */
        ca_top_k(probs, C, k, idx);
        cJSON *top = json ? cJSON_CreateArray() : NULL;
        for (int j = 0; j < k; j++) {
            const char *nm = ca_classifier_class_name(c, idx[j]);
            char fallback[32];
            if (!nm) { snprintf(fallback, sizeof fallback, "class %d", idx[j]); nm = fallback; }
            if (json) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "class", nm);
                cJSON_AddNumberToObject(e, "index", idx[j]);
                cJSON_AddNumberToObject(e, "prob", probs[idx[j]]);
                cJSON_AddItemToArray(top, e);
            } else {
                fprintf(tf, "%s\t%d\t%.6f\t%d\t%s\n", images[i], j + 1, probs[idx[j]], idx[j], nm);
            }
        }
        if (json) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "image", images[i]);
            cJSON_AddItemToObject(e, "top", top);
            cJSON_AddItemToArray(out, e);
        }
    }
    if (failed == nimg) { rc = cli_error("predict: none of the %d images could be decoded", nimg); goto done; }
    if (json) {
        char *s = cJSON_Print(out);
        if (s) puts(s);
        free(s);
    } else {
        fclose(tf);
        tf = NULL;
        fwrite(table, 1, table_len, stdout);
    }
    if (failed) fprintf(stderr, "clipadapt: predict: skipped %d of %d images that could not be decoded\n", failed, nimg);
    rc = CLI_OK;
done:
    if (tf) fclose(tf);
    free(table);
    cJSON_Delete(out);
    free(probs); free(idx); free(images);
    ca_model_free(m);
    ca_classifier_free(c);
    return rc;
}
