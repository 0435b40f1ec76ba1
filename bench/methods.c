/* methods.c — results table for every few-shot method × K on feature sets: test accuracy, val
 * accuracy and fit time (wall and process CPU; CPU time is the stable figure on shared cores). The stand-in for `clipadapt fewshot --method all` while that CLI lives on
 * another branch. Usage:
 *   methods [--methods m1,m2] [--shots 1,2,16] [--epochs N] [--optimizer 1|2] [--lr X]
 *           [--ratio-mode 0|1|2] [--ratio R] [--seed S] FEATURES.safetensors...
 * With no files, the four sets under $SHARED/features (default ../shared). */
#include "clipadapt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_now(void) {   /* process CPU time: robust to other jobs sharing the cores */
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int in_list(const char *list, const char *item) {
    if (!list) return 1;
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, item, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

int main(int argc, char **argv) {
    ca_fit_params prm = ca_fit_default_params();
    const char *methods = NULL, *shots = NULL;
    const char *files[16];
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--methods") && v) methods = argv[++i];
        else if (!strcmp(a, "--shots") && v) shots = argv[++i];
        else if (!strcmp(a, "--epochs") && v) prm.epochs = atoi(argv[++i]);
        else if (!strcmp(a, "--optimizer") && v) prm.optimizer = atoi(argv[++i]);
        else if (!strcmp(a, "--lr") && v) prm.lr = atof(argv[++i]);
        else if (!strcmp(a, "--wd") && v) prm.weight_decay = atof(argv[++i]);
        else if (!strcmp(a, "--ratio-mode") && v) prm.ratio_mode = atoi(argv[++i]);
        else if (!strcmp(a, "--ratio") && v) prm.ratio = atof(argv[++i]);
        else if (!strcmp(a, "--seed") && v) prm.seed = strtoull(argv[++i], NULL, 10);
        else if (a[0] == '-') { fprintf(stderr, "methods: unknown option %s\n", a); return 2; }
        else if (nf < 16) files[nf++] = a;
    }
    static char defpaths[4][1024];
    if (nf == 0) {
        const char *sh = getenv("SHARED");
        const char *names[4] = {"stanford_cars", "caltech101", "oxford_pets", "oxford_flowers"};
        for (int k = 0; k < 4; k++) {
            snprintf(defpaths[k], sizeof defpaths[k], "%s/features/%s.safetensors", sh && *sh ? sh : "../shared", names[k]);
            files[nf++] = defpaths[k];
        }
    }
    printf("%-15s %-18s %3s %8s %8s %8s %8s\n", "dataset", "method", "K", "test%", "val%", "wall_s", "cpu_s");
    for (int f = 0; f < nf; f++) {
        ca_status st;
        ca_featureset *fs = ca_features_load(files[f], &st);
        if (!fs) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
        char ds[64];
        snprintf(ds, sizeof ds, "%s", strrchr(files[f], '/') ? strrchr(files[f], '/') + 1 : files[f]);
        char *dot = strstr(ds, ".safetensors");
        if (dot) *dot = 0;
        ca_split val, test;
        ca_features_split(fs, "val", &val);
        ca_features_split(fs, "test", &test);
        int C = ca_features_num_classes(fs), K[16], nk = ca_features_shots(fs, K, 16);
        float *logits = malloc(sizeof(float) * (size_t)test.n * C);
        for (const char *const *m = ca_method_names(); *m; m++) {
            if (!in_list(methods, *m) || (ca_method_needs_text(*m) && !ca_features_text(fs))) continue;
            for (int k = 0; k < nk; k++) {
                char kk[16], name[32];
                snprintf(kk, sizeof kk, "%d", K[k]);
                if (!in_list(shots, kk)) continue;
                snprintf(name, sizeof name, "train.%dshot", K[k]);
                ca_fit_data d = {.num_classes = C, .dim = ca_features_dim(fs), .val = val, .text_w = ca_features_text(fs)};
                ca_features_split(fs, name, &d.train);
                double t0 = now(), c0 = cpu_now();
                ca_classifier *c = ca_fit(*m, &d, &prm, &st);
                double t = now() - t0, ct = cpu_now() - c0;
                if (!c) { fprintf(stderr, "%s %s K=%d: %s\n", ds, *m, K[k], ca_last_error()); return 1; }
                ca_classifier_logits(c, test.x, test.n, logits);
                printf("%-15s %-18s %3d %8.2f %8.2f %8.2f %8.2f\n", ds, *m, K[k], ca_accuracy(logits, test.y, test.n, C),
                       ca_classifier_param(c, "val_acc", -1), t, ct);
                fflush(stdout);
                ca_classifier_free(c);
            }
        }
        free(logits);
        ca_features_free(fs);
    }
    return 0;
}
