/* threads.c — one model shared by several threads, each classifying its share of the images
 * through its own session (scratch, a one-thread budget, a cancel flag). The model is loaded
 * once and never written; sessions are cheap to make.
 *
 *   build/examples/threads MODEL.safetensors CLASSIFIER.safetensors IMAGE...
 */
#include "clipadapt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 4

typedef struct {
    const ca_model *model;
    const ca_classifier *clf;
    char **paths;
    int first, count;     /* this worker's share of the images */
    int *best;            /* (count) top-1 class per image, -1 on failure */
} work;

static void *classify_share(void *arg) {
    work *w = arg;
    ca_status st;
    ca_session_params sp = ca_session_default_params();
    sp.threads = 1; /* NTHREADS sessions side by side: one core each */
    ca_session *s = ca_session_new(w->model, &sp, &st);
    int C = ca_classifier_num_classes(w->clf);
    float *probs = malloc(sizeof(float) * (size_t)C);
    for (int i = 0; i < w->count; i++) {
        w->best[i] = -1;
        ca_image *img = s && probs ? ca_image_load(w->paths[w->first + i], NULL, &st) : NULL;
        if (img && ca_session_classify_image(s, w->clf, img, probs) == CA_OK) ca_top_k(probs, C, 1, &w->best[i]);
        else fprintf(stderr, "%s: %s\n", w->paths[w->first + i], ca_last_error()); /* per-thread message */
        ca_image_free(img);
    }
    free(probs);
    ca_session_free(s);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.safetensors CLASSIFIER.safetensors IMAGE...\n", argv[0]);
        return 2;
    }
    ca_status st;
    ca_model_params mp = ca_model_default_params();
    mp.load_text = 0;
    ca_model *model = ca_model_load(argv[1], &mp, &st);
    if (!model) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    ca_classifier *clf = ca_classifier_load(argv[2], &st);
    if (!clf) { fprintf(stderr, "%s\n", ca_last_error()); ca_model_free(model); return 1; }

    int n = argc - 3, failed = 0;
    int *best = malloc(sizeof(int) * (size_t)n);
    work w[NTHREADS];
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        int lo = n * t / NTHREADS, hi = n * (t + 1) / NTHREADS;
        w[t] = (work){model, clf, argv + 3, lo, hi - lo, best + lo};
        pthread_create(&th[t], NULL, classify_share, &w[t]);
    }
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    for (int i = 0; i < n; i++) {
        const char *name = best[i] >= 0 ? ca_classifier_class_name(clf, best[i]) : NULL;
        if (best[i] < 0) failed = 1;
        else printf("%s: %s\n", argv[3 + i], name ? name : "?");
    }
    free(best);
    ca_classifier_free(clf);
    ca_model_free(model);
    return failed;
}
