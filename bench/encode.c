/* encode.c — encoder throughput: images/s and texts/s of ca_model_encode_* on a checkpoint
 * (default: the shared tiny models; CA_BENCH_MODEL=path.safetensors for a real one), best of
 * a few runs. A benchmark, not a test: it checks nothing but success. */
#include "clipadapt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int bench(const char *path, int n_img, int n_txt, int reps) {
    ca_status st;
    double t0 = now();
    ca_model *m = ca_model_load(path, NULL, &st);
    if (!m) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    double tl = now() - t0;
    ca_model_info in;
    ca_model_get_info(m, &in);
    int R = in.image_size, E = in.embed_dim, T = in.context_length;
    size_t npx = (size_t)3 * R * R * n_img;
    float *img = malloc(sizeof(float) * npx), *out = malloc(sizeof(float) * E * (n_img > n_txt ? n_img : n_txt));
    int64_t *tok = calloc((size_t)n_txt * T, sizeof *tok);
    for (size_t i = 0; i < npx; i++) img[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < n_txt; i++) { tok[i * T] = 49406; tok[i * T + 1] = 320 + i; tok[i * T + 2] = 49407; }
    double bi = 1e30, bt = 1e30;
    for (int r = 0; r < reps; r++) {
        double a = now();
        if (ca_model_encode_images(m, img, n_img, out)) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
        double b = now();
        if (ca_model_encode_text(m, tok, n_txt, out)) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
        double c = now();
        if (b - a < bi) bi = b - a;
        if (c - b < bt) bt = c - b;
    }
    const char *base = strrchr(path, '/');
    printf("%-24s load %.2f s | %d images %.3f s = %.1f img/s | %d texts %.3f s = %.1f txt/s (best of %d)\n",
           base ? base + 1 : path, tl, n_img, bi, n_img / bi, n_txt, bt, n_txt / bt, reps);
    free(img); free(out); free(tok);
    ca_model_free(m);
    return 0;
}

int main(void) {
    const char *model = getenv("CA_BENCH_MODEL");
    if (model) return bench(model, 16, 64, 3);
    const char *sh = getenv("SHARED");
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/testdata/models/vit-tiny.safetensors", sh && *sh ? sh : "../shared");
    snprintf(b, sizeof b, "%s/testdata/models/rn-tiny.safetensors", sh && *sh ? sh : "../shared");
    return bench(a, 64, 64, 5) || bench(b, 64, 64, 5);
}
