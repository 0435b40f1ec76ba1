/* bench/image.c — decode + CLIP-preprocess a 1500x1100 JPEG to 224 on one core, ms per image.
 * The JPEG is made here from a shared photo: fight1.jpg resized to 1500x1100 with our own
 * Pillow-exact bicubic and encoded with libjpeg (quality 90, 4:2:0). Prints best and median. */
#include "clipadapt.h"
#include "core/core.h"
#include "data/preprocess.h"

#include "jpeg.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this thread: on a shared machine it leaves out the time other processes hold
 * the core, so it is the fairer "one core" figure; wall time is printed too. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    printf("  %-30s best %7.2f ms   median %7.2f ms   (%d runs)\n", what, 1e3 * t[0], 1e3 * t[n / 2], n);
}

int main(void) {
    const char *root = getenv("SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/preprocess/images/fight1.jpg", root && *root ? root : "../shared");
    ca_status st;
    ca_image *src = ca_image_load(path, NULL, &st);
    if (!src) { fprintf(stderr, "bench image: %s\n", ca_last_error()); return 1; }
    const int W = 1500, H = 1100, N = 224, RUNS = 21;
    uint8_t *big = malloc((size_t)W * H * 3);
    ca_rect all = {0, 0, ca_image_width(src), ca_image_height(src)}, win = {0, 0, W, H};
    if (ca_resize_crop_rgb(src, all, W, H, win, big)) { fprintf(stderr, "resize failed\n"); return 1; }
    unsigned long len = 0;
    unsigned char *jpg = bench_encode_jpeg(big, W, H, &len);
    printf("image: decode + preprocess of a %dx%d JPEG (%lu bytes, from fight1.jpg %dx%d) to %d, one thread\n",
           W, H, len, ca_image_width(src), ca_image_height(src), N);
    float *out = malloc(sizeof(float) * 3 * N * N);
    double t_all[RUNS], t_dec[RUNS], t_pre[RUNS], c_all[RUNS], c_dec[RUNS], c_pre[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = ca_now(), c0 = cpu_now();
        ca_image *img = ca_image_decode(jpg, len, "bench.jpg", NULL, &st);
        double t1 = ca_now(), c1 = cpu_now();
        if (!img || ca_preprocess(img, N, out)) { fprintf(stderr, "failed: %s\n", ca_last_error()); return 1; }
        double t2 = ca_now(), c2 = cpu_now();
        t_all[r] = t2 - t0; t_dec[r] = t1 - t0; t_pre[r] = t2 - t1;
        c_all[r] = c2 - c0; c_dec[r] = c1 - c0; c_pre[r] = c2 - c1;
        ca_image_free(img);
    }
    printf(" wall clock:\n");
    report("decode + preprocess", t_all, RUNS);
    report("  decode (libjpeg-turbo)", t_dec, RUNS);
    report("  resize+crop+normalise", t_pre, RUNS);
    printf(" thread CPU time:\n");
    report("decode + preprocess", c_all, RUNS);
    report("  decode (libjpeg-turbo)", c_dec, RUNS);
    report("  resize+crop+normalise", c_pre, RUNS);
    printf("  target < 15 ms per image (median): wall %s, CPU %s\n", t_all[RUNS / 2] < 0.015 ? "met" : "NOT met",
           c_all[RUNS / 2] < 0.015 ? "met" : "NOT met");
    free(out); free(big); free(jpg);
    ca_image_free(src);
    return 0;
}
