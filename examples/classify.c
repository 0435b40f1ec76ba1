/* classify.c — the smallest complete use of the clipadapt C API: load a CLIP model and a fitted
 * classifier (from `clipadapt fit`), classify image files, print the top-3 classes.
 *
 *   build/examples/classify MODEL.safetensors CLASSIFIER.safetensors IMAGE...
 */
#include "clipadapt.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.safetensors CLASSIFIER.safetensors IMAGE...\n", argv[0]);
        return 2;
    }
    ca_status st;
    ca_model_params mp = ca_model_default_params();
    mp.load_text = 0;                       /* classifying needs the image tower only */
    ca_model *model = ca_model_load(argv[1], &mp, &st);
    if (!model) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    ca_classifier *clf = ca_classifier_load(argv[2], &st);
    if (!clf) { fprintf(stderr, "%s\n", ca_last_error()); ca_model_free(model); return 1; }

    int C = ca_classifier_num_classes(clf), k = C < 3 ? C : 3, failed = 0;
    float *probs = malloc(sizeof(float) * (size_t)C);
    int top[3];
    for (int i = 3; i < argc && probs; i++) {
        ca_image *img = ca_image_load(argv[i], NULL, &st);
        if (!img || ca_classify_image(model, clf, img, probs) != CA_OK) {
            fprintf(stderr, "%s: %s\n", argv[i], ca_last_error());
            ca_image_free(img);
            failed = 1;
            continue;
        }
        ca_image_free(img);
        ca_top_k(probs, C, k, top);
        printf("%s:", argv[i]);
        for (int j = 0; j < k; j++) {
            const char *name = ca_classifier_class_name(clf, top[j]);
            printf("  %s %.1f%%", name ? name : "?", 100.0 * probs[top[j]]);
        }
        printf("\n");
    }
    free(probs);
    ca_classifier_free(clf);
    ca_model_free(model);
    return failed;
}
