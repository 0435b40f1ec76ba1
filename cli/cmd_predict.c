/* cmd_predict.c — `clipadapt predict`: classify image files with a CLIP model and a fitted
 * classifier; prints the top-k classes with probabilities as a table or JSON. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: clipadapt predict --model W --classifier CLF [--top-k 5] [--json] [--bf16] IMAGE...\n"
           "\n"
           "Classify images: CLIP preprocessing (bicubic resize, centre crop), image encoder, L2\n"
           "normalisation, the classifier's logits, softmax. The model must be the one the features\n"
           "were extracted with.\n"
           "\n"
           "  --model W         CLIP checkpoint (safetensors)\n"
           "  --config C        Hugging Face config.json or OpenCLIP open_clip_config.json (optional)\n"
           "  --act A           MLP activation quickgelu|gelu (default: from the config or format)\n"
           "  --classifier F    classifier from `clipadapt fit`\n"
           "  --top-k K         classes shown per image (default 5)\n"
           "  --json            one JSON array: [{\"image\", \"top\": [{\"class\", \"index\", \"prob\"}, ...]}]\n"
           "  --bf16            BF16 image encoder (AVX512-BF16; faster, features within ~1%% of float32)\n"
           "\n"
           "Table output: one line per image and rank: image, rank, probability, class index, class name\n"
           "(tab-separated). Exit status 1 when any image fails (the others are still printed).\n");
}

int cmd_predict(int argc, char **argv) {
    const char *model_path = NULL, *config = NULL, *clf_path = NULL;
    long topk = 5;
    int json = 0, nimg = 0, bf16 = 0, act = CA_ACTIVATION_AUTO;
    const char **images = calloc((size_t)argc + 1, sizeof(char *));
    if (!images) return cli_error("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { free(images); help(); return CLI_OK; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--bf16")) { bf16 = 1; continue; }
        if (!strcmp(a, "--")) { while (++i < argc) images[nimg++] = argv[i]; break; }
        if ((r = cli_take(argc, argv, &i, "--model", &v)) != 0) { if (r < 0) goto missing; model_path = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--config", &v)) != 0) { if (r < 0) goto missing; config = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--act", &v)) != 0) {
            if (r < 0 || cli_act(v, &act)) { free(images); return cli_usage("predict", "--act needs quickgelu or gelu"); }
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--classifier", &v)) != 0) { if (r < 0) goto missing; clf_path = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--top-k", &v)) != 0) {
            if (r < 0 || cli_int(v, &topk) || topk < 1) { free(images); return cli_usage("predict", "--top-k needs an integer >= 1"); }
            continue;
        }
        if (a[0] == '-' && a[1]) { free(images); return cli_usage("predict", "unknown option '%s'", a); }
        images[nimg++] = a;
        continue;
    missing:
        free(images);
        return cli_usage("predict", "%s needs a value", a);
    }
    if (!model_path || !clf_path) { free(images); return cli_usage("predict", "--model and --classifier are required"); }
    if (nimg == 0) { free(images); return cli_usage("predict", "no images given"); }

    ca_status st;
    int rc = CLI_FAIL, failed = 0;
    ca_model *m = NULL;
    float *probs = NULL;
    int *idx = NULL;
    cJSON *out = NULL;
    ca_classifier *c = ca_classifier_load(clf_path, &st);
    if (!c) { rc = cli_status(st); goto done; }
    ca_model_params mp = ca_model_default_params();
    mp.load_text = 0;
    mp.config_path = config;
    mp.activation = act;
    if (!(m = ca_model_load(model_path, &mp, &st))) { rc = cli_status(st); goto done; }
    if (bf16 && (rc = cli_use_bf16(m))) goto done;
    int C = ca_classifier_num_classes(c), k = topk < C ? (int)topk : C;
    probs = malloc(sizeof(float) * (size_t)C);
    idx = malloc(sizeof(int) * (size_t)k);
    out = json ? cJSON_CreateArray() : NULL;
    if (!probs || !idx || (json && !out)) { rc = cli_error("out of memory"); goto done; }
    ca_image_params ip = ca_image_default_params();
    for (int i = 0; i < nimg; i++) {
        ca_image *img = ca_image_load(images[i], &ip, &st);
        if (img) {
            st = ca_classify_image(m, c, img, probs);
            ca_image_free(img);
        }
        if (st != CA_OK) {   /* report and go on: one bad file should not hide the other results */
            const char *d = ca_last_error();
            if (d && strstr(d, images[i])) cli_error("%s", d);
            else cli_error("%s: %s", images[i], d && *d ? d : ca_strerror(st));
            failed++;
            continue;
        }
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
                printf("%s\t%d\t%.6f\t%d\t%s\n", images[i], j + 1, probs[idx[j]], idx[j], nm);
            }
        }
        if (json) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "image", images[i]);
            cJSON_AddItemToObject(e, "top", top);
            cJSON_AddItemToArray(out, e);
        }
    }
    if (json) {
        char *s = cJSON_Print(out);
        if (s) puts(s);
        free(s);
    }
    rc = failed ? CLI_FAIL : CLI_OK;
done:
    cJSON_Delete(out);
    free(probs); free(idx); free(images);
    ca_model_free(m);
    ca_classifier_free(c);
    return rc;
}
