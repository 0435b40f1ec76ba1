/* extract.c — feature-extraction throughput (images/s) with the shared vit-tiny model on generated
 * PNG images: ca_encode_images for centre crops (views 0) and with 10 augmented views, the same
 * code path as `clipadapt extract`. Best of a few runs (the machine is shared and noisy).
 *
 *   build/bench/extract [N_IMAGES=256] [RUNS=3]      (SHARED=../shared)
 */
#include "clipadapt.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 256, runs = argc > 2 ? atoi(argv[2]) : 3;
    const char *sh = getenv("SHARED");
    char model_path[1024], dir[] = "/tmp/ca-bench-extract-XXXXXX";
    snprintf(model_path, sizeof model_path, "%s/testdata/models/vit-tiny.safetensors", sh && *sh ? sh : "../shared");
    if (n < 1 || runs < 1 || !mkdtemp(dir)) return 2;
    /* 96x80 images of smooth gradients: decoding + bicubic resize cost like small photos */
    char **paths = calloc((size_t)n, sizeof(char *));
    unsigned char *rgb = malloc(96 * 80 * 3);
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < 96 * 80 * 3; p++) rgb[p] = (unsigned char)((p * 7 + i * 13) & 255);
        paths[i] = malloc(1100);
        snprintf(paths[i], 1100, "%s/img%04d.png", dir, i);
        png_image im;
        memset(&im, 0, sizeof im);
        im.version = PNG_IMAGE_VERSION; im.width = 96; im.height = 80; im.format = PNG_FORMAT_RGB;
        if (!png_image_write_to_file(&im, paths[i], 0, rgb, 96 * 3, NULL)) { fprintf(stderr, "cannot write %s\n", paths[i]); return 1; }
    }
    ca_status st;
    ca_model *m = ca_model_load(model_path, NULL, &st);
    if (!m) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    float *f = malloc(sizeof(float) * (size_t)n * 64), *v = malloc(sizeof(float) * (size_t)n * 64 * 10);
    int views[2] = {0, 10};
    for (int k = 0; k < 2; k++) {
        double best = 1e30;
        ca_encode_params p = ca_encode_default_params();
        p.views = views[k];
        for (int r = 0; r < runs; r++) {
            double t0 = now();
            if (ca_encode_images(m, (const char *const *)paths, NULL, n, &p, f, views[k] ? v : NULL, NULL) != CA_OK) {
                fprintf(stderr, "%s\n", ca_last_error());
                return 1;
            }
            double t = now() - t0;
            if (t < best) best = t;
        }
        printf("extract vit-tiny 64x64, views %2d: %d images in %.3f s (best of %d): %.1f images/s, %.1f encoder inputs/s\n",
               views[k], n, best, runs, n / best, n * (views[k] ? views[k] : 1) / best);
    }
    for (int i = 0; i < n; i++) { remove(paths[i]); free(paths[i]); }
    rmdir(dir);
    free(paths); free(rgb); free(f); free(v);
    ca_model_free(m);
    return 0;
}
