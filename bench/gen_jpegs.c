/* bench/gen_jpegs.c — the bulk-predict bench's input: N photo-like 500x375 JPEGs (quality 90),
 * made deterministically from the shared test photos (a different crop of one of them per file,
 * resized with our Pillow-exact bicubic, encoded with libjpeg), and optionally the same images
 * decoded and CLIP-preprocessed into one safetensors file ('images' [N,3,R,R]) for
 * `clipadapt encode`. No downloads; the same N always gives the same bytes.
 * Usage: gen_jpegs DIR N [PRE.safetensors R] */
#include "clipadapt.h"
#include "core/core.h"
#include "data/preprocess.h"
#include "jpeg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const SRC[] = {"fight1.jpg", "play1.jpg", "rotten-apple.png", "sliced-apple.png", "fight2.jpg"};
enum { NSRC = sizeof SRC / sizeof SRC[0], W = 500, H = 375 };

int main(int argc, char **argv) {
    long n = argc >= 3 ? strtol(argv[2], NULL, 10) : 0, R = argc >= 5 ? strtol(argv[4], NULL, 10) : 0;
    if ((argc != 3 && argc != 5) || n < 1 || n > 1000000 || (argc == 5 && (R < 8 || R > 1024))) {
        fprintf(stderr, "usage: gen_jpegs DIR N [PRE.safetensors R]\n");
        return 2;
    }
    const char *dir = argv[1], *root = getenv("SHARED");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) { fprintf(stderr, "%s: %s\n", dir, strerror(errno)); return 1; }
    ca_image *src[NSRC];
    char path[4096];
    for (int s = 0; s < NSRC; s++) {
        ca_status st;
        snprintf(path, sizeof path, "%s/testdata/preprocess/images/%s", root && *root ? root : "../shared", SRC[s]);
        if (!(src[s] = ca_image_load(path, NULL, &st))) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    }
    float *pre = argc == 5 ? malloc(sizeof(float) * 3 * (size_t)R * (size_t)R * (size_t)n) : NULL;
    uint8_t *rgb = malloc((size_t)W * H * 3);
    if (!rgb || (argc == 5 && !pre)) { fprintf(stderr, "out of memory\n"); return 1; }
    for (long i = 0; i < n; i++) {
        /* image i: a crop of 70-100% of photo i mod 5, its corner drawn from a hash of i */
        const ca_image *im = src[i % NSRC];
        int sw = ca_image_width(im), sh = ca_image_height(im);
        uint64_t h = ca_hash64((uint64_t)i + 1);
        int cw = sw * (70 + (int)(h % 31)) / 100, ch = sh * (70 + (int)((h >> 8) % 31)) / 100;
        ca_rect crop = {(int)((h >> 16) % (uint64_t)(sw - cw + 1)), (int)((h >> 32) % (uint64_t)(sh - ch + 1)), cw, ch};
        ca_rect all = {0, 0, W, H};
        if (ca_resize_crop_rgb(im, crop, W, H, all, rgb) != CA_OK) { fprintf(stderr, "resize: %s\n", ca_last_error()); return 1; }
        unsigned long len = 0;
        unsigned char *jpg = bench_encode_jpeg(rgb, W, H, &len);
        snprintf(path, sizeof path, "%s/%06ld.jpg", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(jpg, 1, len, f) != len || fclose(f) != 0) { fprintf(stderr, "%s: write failed\n", path); return 1; }
        if (pre) {   /* exactly what predict does to the file: decode it, CLIP-preprocess it */
            ca_status st;
            ca_image *d = ca_image_decode(jpg, len, path, NULL, &st);
            if (!d || ca_preprocess(d, (int)R, pre + (size_t)i * 3 * R * R) != CA_OK) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
            ca_image_free(d);
        }
        free(jpg);
    }
    int rc = 0;
    if (pre) {
        ca_st_writer *w = ca_st_writer_new();
        ca_status st = w ? ca_st_writer_add(w, "images", CA_DT_F32, 4, (int64_t[]){n, 3, R, R}, pre) : CA_E_NOMEM;
        if (st == CA_OK) st = ca_st_writer_save(w, argv[3]);
        if (st != CA_OK) { fprintf(stderr, "%s: %s\n", argv[3], ca_last_error()); rc = 1; }
        ca_st_writer_free(w);
    }
    for (int s = 0; s < NSRC; s++) ca_image_free(src[s]);
    free(rgb); free(pre);
    return rc;
}
