/* cputime.c — CPU time per image of the image encoder, through the public API only: the
 * measure bench/run.sh uses to compare the portable build's kernels with a -march=native
 * build. Process CPU time, not wall time, so that other work on a shared machine (which takes
 * cores away, not cycles from us) moves it little; run it with OMP_NUM_THREADS=1.
 * Usage: cputime CKPT [REPS] [BATCH]: a warm-up batch, then REPS (default 5) timed batches of
 * BATCH (default 16) random images; prints the path and the min and median CPU ms/image. */
#include "clipadapt.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: cputime CKPT [REPS] [BATCH]\n"); return 2; }
    int reps = argc > 2 ? atoi(argv[2]) : 5, batch = argc > 3 ? atoi(argv[3]) : 16;
    if (reps < 1 || reps > 64 || batch < 1 || batch > 256) { fprintf(stderr, "cputime: REPS 1..64, BATCH 1..256\n"); return 2; }
    ca_status st;
    const char *path = ca_cpu_path(&st);
    if (!path) { fprintf(stderr, "cputime: %s\n", ca_last_error()); return 1; }
    ca_model_params mp = ca_model_default_params();
    mp.load_text = 0;
    ca_model *m = ca_model_load(argv[1], &mp, &st);
    if (!m) { fprintf(stderr, "cputime: %s\n", ca_last_error()); return 1; }
    ca_model_info info;
    ca_model_get_info(m, &info);
    size_t n = (size_t)3 * info.image_size * info.image_size * batch;
    float *x = malloc(n * sizeof *x), *out = malloc(sizeof(float) * (size_t)info.embed_dim * batch);
    double t[64];
    int rc = 1;
    if (!x || !out) { fprintf(stderr, "cputime: out of memory\n"); goto done; }
    srand(1);
    for (size_t i = 0; i < n; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    if (ca_model_encode_images(m, x, batch, out) != CA_OK) { fprintf(stderr, "cputime: %s\n", ca_last_error()); goto done; }
    for (int r = 0; r < reps; r++) {
        double c = cpu_s();
        if (ca_model_encode_images(m, x, batch, out) != CA_OK) { fprintf(stderr, "cputime: %s\n", ca_last_error()); goto done; }
        t[r] = (cpu_s() - c) * 1e3 / batch;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    printf("kernels %s: min %.2f median %.2f CPU ms/image (batch %d, %d reps)\n", path, t[0], t[reps / 2], batch, reps);
    rc = 0;
done:
    free(x); free(out);
    ca_model_free(m);
    return rc;
}
