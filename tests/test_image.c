/* test_image.c — image decoding, Pillow-exact preprocessing against the shipped goldens, the
 * windowed resampler against its literal oracle, error paths, and seeded augmentation. */
#include "harness.h"
#include "clipadapt.h"
#include "data/preprocess.h"
#include "core/core.h"

#include <stdint.h>

static const char *IMAGES[] = {"fight1-gray.png", "fight1-progressive.jpg", "fight1-tiny.png", "fight1.jpg",
                               "fight2-alpha.png", "fight2-rgba.png", "fight2-wide.jpg", "fight2.jpg",
                               "orange-tall.jpg", "orange.png", "play1.jpg", "rotten-apple.png",
                               "sliced-apple.png"};
#define N_IMAGES (int)(sizeof IMAGES / sizeof IMAGES[0])

static ca_image *load_shared(const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "testdata/preprocess/images/%s", name);
    ca_status st;
    ca_image *img = ca_image_load(th_shared(rel), NULL, &st);
    CHECK_MSG(img != NULL, "%s: %s", name, ca_last_error());
    return img;
}

/* Every FILE@N golden: tolerance mean |diff| <= 2e-3, max <= 0.02; also count bit-exact ones. */
static void test_goldens(void) {
    ca_status st;
    ca_st_file *g = ca_st_open(th_shared("testdata/preprocess/preprocess-golden.safetensors"), &st);
    CHECK_MSG(g != NULL, "golden: %s", ca_last_error());
    if (!g) return;
    int total = 0, exact = 0;
    for (int t = 0; t < ca_st_count(g); t++) {
        const ca_tensor_info *ti = ca_st_at(g, t);
        char file[256];
        int n;
        const char *at = strrchr(ti->name, '@');
        if (!at || (size_t)(at - ti->name) >= sizeof file) continue;
        memcpy(file, ti->name, (size_t)(at - ti->name));
        file[at - ti->name] = 0;
        n = atoi(at + 1);
        CHECK_EQ_INT(ti->numel, 3LL * n * n);
        ca_image *img = load_shared(file);
        if (!img) continue;
        float *ref = malloc(sizeof(float) * 3 * n * n), *out = malloc(sizeof(float) * 3 * n * n);
        ca_tensor_to_f32(ti, ref, ti->numel);
        st = ca_preprocess(img, n, out);
        CHECK_MSG(st == CA_OK, "%s: %s", ti->name, ca_last_error());
        double sum = 0, mx = 0;
        int64_t diff = 0;
        for (int64_t i = 0; i < ti->numel; i++) {
            double d = fabs((double)out[i] - ref[i]);
            sum += d;
            if (d > mx) mx = d;
            if (out[i] != ref[i]) diff++;
        }
        double mean = sum / (double)ti->numel;
        total++;
        if (diff == 0) exact++;
        else fprintf(stderr, "  %s: %lld of %lld values differ, mean %.3g max %.3g\n", ti->name,
                     (long long)diff, (long long)ti->numel, mean, mx);
        CHECK_MSG(mean <= 2e-3 && mx <= 0.02, "%s: mean |diff| %.3g max %.3g", ti->name, mean, mx);
        free(ref); free(out);
        ca_image_free(img);
    }
    fprintf(stderr, "  goldens: %d of %d bit-exact\n", exact, total);
    CHECK(total == 2 * N_IMAGES);
    ca_st_close(g);
}

/* Project fixtures (tests/data/images, made by scripts/make_image_fixtures.py with Pillow 9.4):
 * modes the shared goldens lack, and the GIF/WebP/BMP files. Compared in uint8 RGB, where
 * Pillow's output must match exactly. Returns the number of comparisons. */
static int compare_fixtures(const char *expected) {
    ca_status st;
    ca_st_file *g = ca_st_open(expected, &st);
    CHECK_MSG(g != NULL, "fixtures: %s", ca_last_error());
    if (!g) return 0;
    int total = 0;
    for (int t = 0; t < ca_st_count(g); t++) {
        const ca_tensor_info *ti = ca_st_at(g, t);
        char file[256], path[512];
        const char *at = strrchr(ti->name, '@');
        if (!at || (size_t)(at - ti->name) >= sizeof file || ti->dtype != CA_DT_U8) continue;
        memcpy(file, ti->name, (size_t)(at - ti->name));
        file[at - ti->name] = 0;
        snprintf(path, sizeof path, "tests/data/images/%s", file);
        const char *kind = at + 1;
        int rot = !strncmp(kind, "rot", 3), box = !strncmp(kind, "box", 3);
        int n = atoi(kind + (rot || box ? 3 : 0));
        ca_image_params p = ca_image_default_params();
        p.exif_rotate = rot;
        ca_image *img = ca_image_load(path, &p, &st);
        CHECK_MSG(img != NULL, "%s: %s", path, ca_last_error());
        if (!img) continue;
        uint8_t *got = malloc((size_t)n * n * 3);
        if (box) { /* the RandomResizedCrop path: RGB first, crop, resize to n x n */
            ca_rect b = n == 16 ? (ca_rect){3, 2, 21, 17} : (ca_rect){5, 0, 17, 25};
            ca_image *rgb = ca_image_to_rgb(img, &st);
            st = ca_resize_crop_rgb(rgb, b, n, n, (ca_rect){0, 0, n, n}, got);
            ca_image_free(rgb);
        } else {
            int rw, rh;
            ca_resize_short_side(img->w, img->h, n, &rw, &rh);
            ca_rect win = {(int)rint((rw - n) / 2.0), (int)rint((rh - n) / 2.0), n, n};
            st = ca_resize_crop_rgb(img, (ca_rect){0, 0, img->w, img->h}, rw, rh, win, got);
        }
        CHECK_MSG(st == CA_OK, "%s: %s", ti->name, ca_last_error());
        const uint8_t *ref = ti->data;
        int bad = 0, first = -1;
        for (int i = 0; i < n * n * 3; i++)
            if (got[i] != ref[i]) { bad++; if (first < 0) first = i; }
        CHECK_MSG(bad == 0, "%s (mode %s): %d of %d bytes differ, first at %d: %d vs Pillow %d", ti->name,
                  ca_image_mode(img), bad, n * n * 3, first, first >= 0 ? got[first] : 0, first >= 0 ? ref[first] : 0);
        total++;
        free(got);
        ca_image_free(img);
    }
    ca_st_close(g);
    return total;
}

static void test_fixture_modes(void) { CHECK(compare_fixtures("tests/data/images/expected.safetensors") >= 40); }

/* 31 GIF, WebP and BMP files x (@16, @24, @box16, @box20, and @rot16 for the EXIF one). */
static void test_fixture_formats(void) {
    int n = compare_fixtures("tests/data/images/expected-formats.safetensors");
    fprintf(stderr, "  GIF/WebP/BMP fixtures: %d comparisons with Pillow 9.4\n", n);
    CHECK_EQ_INT(n, 31 * 4 + 1);
}

/* TIFF and PPM/PGM/PBM files x (@16, @24, @box16, @box20, and @rot16 for the orientation ones). */
static void test_fixture_tiff_ppm(void) {
    int n = compare_fixtures("tests/data/images/expected-tiff-ppm.safetensors");
    fprintf(stderr, "  TIFF/PPM fixtures: %d comparisons with Pillow 9.4\n", n);
    CHECK_EQ_INT(n, 41 * 4 + 2);
}

static void test_modes(void) {
    static const struct { const char *file, *mode; int w, h; } cases[] = {
        {"palette.png", "P", 41, 29}, {"palette4.png", "P", 41, 29}, {"bilevel.png", "1", 37, 31},
        {"gray16.png", "I", 33, 27}, {"gray-alpha.png", "LA", 30, 44}, {"rgba-holes.png", "RGBA", 45, 35},
        {"cmyk.jpg", "CMYK", 39, 30}, {"gray.jpg", "L", 50, 34}, {"exif6.jpg", "RGB", 40, 26},
        {"pal-short.png", "P", 26, 25},
        /* the modes Pillow 9.4 opens these in (printed by the fixture script) */
        {"lossy.webp", "RGB", 41, 29}, {"lossless.webp", "RGB", 33, 27}, {"lossless-alpha.webp", "RGBA", 35, 30},
        {"lossy-alpha.webp", "RGBA", 38, 26}, {"anim.webp", "RGBA", 30, 34}, {"exif6.webp", "RGB", 40, 26},
        {"palette.gif", "P", 41, 29}, {"trns.gif", "P", 36, 27}, {"anim.gif", "P", 32, 28},
        {"gray.gif", "P", 34, 26}, {"offset.gif", "P", 36, 30}, {"grow.gif", "P", 34, 29},
        {"nopal.gif", "L", 28, 25}, {"rgb24.bmp", "RGB", 37, 29}, {"pal8.bmp", "P", 41, 29},
        {"gray8.bmp", "L", 34, 27}, {"bw1.bmp", "1", 45, 30}, {"rgb24-topdown.bmp", "RGB", 31, 27},
        {"rgb32.bmp", "RGB", 30, 25}, {"bgra32-v4.bmp", "RGBA", 33, 28}, {"rgba32-v5-topdown.bmp", "RGBA", 29, 31},
        {"xbgr32-bf.bmp", "RGB", 26, 30}, {"rgb555.bmp", "RGB", 35, 26}, {"rgb565-bf.bmp", "RGB", 27, 33},
        {"pal8-short.bmp", "P", 30, 26}, {"pal4.bmp", "P", 37, 25}, {"pal1.bmp", "P", 39, 26},
        {"os2-pal8.bmp", "P", 32, 25}, {"rle8.bmp", "P", 36, 28}, {"rle4.bmp", "P", 33, 26},
        {"rle8-delta.bmp", "P", 30, 27},
        /* TIFF and Netpbm, as Pillow 9.4 opens (and loads) them */
        {"rgb.tif", "RGB", 41, 29}, {"rgb-lzw.tif", "RGB", 37, 30}, {"rgb-deflate.tif", "RGB", 33, 27},
        {"rgb-jpeg.tif", "RGB", 40, 32}, {"gray-packbits.tif", "L", 35, 26}, {"bilevel-g4.tif", "1", 45, 30},
        {"palette.tif", "P", 39, 28}, {"cmyk.tif", "CMYK", 30, 27}, {"rgba.tif", "RGBA", 36, 29},
        {"gray-alpha.tif", "LA", 31, 33}, {"int32.tif", "I", 29, 26}, {"multipage.tif", "RGB", 30, 25},
        {"rgb16-be-tiled.tif", "RGB", 34, 27}, {"rgb-planar-deflate.tif", "RGB", 34, 27},
        {"rgb-predictor.tif", "RGB", 31, 26}, {"rgba-assoc.tif", "RGBA", 30, 28}, {"rgbx.tif", "RGBX", 29, 27},
        {"rgba16.tif", "RGBA", 27, 25}, {"gray-minwhite.tif", "L", 33, 29}, {"gray4.tif", "L", 35, 26},
        {"gray2-minwhite.tif", "L", 31, 27}, {"gray16-be.tif", "I;16B", 29, 25}, {"gray16s.tif", "I", 28, 26},
        {"pal4.tif", "P", 37, 25}, {"bilevel-fill2.tif", "1", 43, 28}, {"orient6.tif", "RGB", 26, 40},
        {"orient3-gray.tif", "L", 33, 26}, {"cmyk-planar.tif", "CMYK", 30, 26}, {"twopage-gray.tif", "L", 32, 27},
        {"rgb.ppm", "RGB", 41, 29}, {"gray.pgm", "L", 34, 27}, {"bits.pbm", "1", 45, 30}, {"gray16.pgm", "I", 31, 26},
        {"gray-max15.pgm", "L", 33, 25}, {"gray-max1000.pgm", "I", 30, 27}, {"rgb-max1023.ppm", "RGB", 29, 26},
        {"rgb-max100.ppm", "RGB", 31, 25}, {"plain.pgm", "L", 27, 25}, {"plain16.pgm", "I", 26, 25},
        {"plain.ppm", "RGB", 28, 26}, {"plain.pbm", "1", 40, 27}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/images/%s", cases[i].file);
        ca_status st;
        ca_image *img = ca_image_load(path, NULL, &st);
        CHECK_MSG(img != NULL, "%s: %s", path, ca_last_error());
        if (!img) continue;
        CHECK_STR(ca_image_mode(img), cases[i].mode);
        CHECK_EQ_INT(ca_image_width(img), cases[i].w);
        CHECK_EQ_INT(ca_image_height(img), cases[i].h);
        ca_image_free(img);
    }
    /* EXIF orientation 6 (rotate 90 clockwise) swaps the sides only when asked */
    ca_image_params p = ca_image_default_params();
    p.exif_rotate = 1;
    ca_status st;
    ca_image *img = ca_image_load("tests/data/images/exif6.jpg", &p, &st);
    CHECK(img && ca_image_width(img) == 26 && ca_image_height(img) == 40);
    ca_image_free(img);
    img = ca_image_load("tests/data/images/exif6.webp", &p, &st); /* WebP's EXIF chunk */
    CHECK(img && ca_image_width(img) == 26 && ca_image_height(img) == 40);
    ca_image_free(img);
}

/* The windowed fast path against the literal oracle on odd sizes, crops and all byte modes. */
static void test_resize_oracle(void) {
    ca_rng r = ca_rng_make(42, 7);
    for (int trial = 0; trial < 60; trial++) {
        int c = 1 + (int)ca_rng_below(&r, 4), w = 1 + (int)ca_rng_below(&r, 90), h = 1 + (int)ca_rng_below(&r, 90);
        uint8_t *px = malloc((size_t)w * h * c);
        for (int i = 0; i < w * h * c; i++) px[i] = (uint8_t)(ca_rng_below(&r, 4) ? ca_rng_below(&r, 256) : (i & 1) * 255);
        ca_status st;
        ca_image *img = ca_image_from_pixels(px, w, h, c, (size_t)w * c, &st);
        CHECK(img != NULL);
        ca_rect s = {(int)ca_rng_below(&r, (uint32_t)w), (int)ca_rng_below(&r, (uint32_t)h), 0, 0};
        s.w = 1 + (int)ca_rng_below(&r, (uint32_t)(w - s.x));
        s.h = 1 + (int)ca_rng_below(&r, (uint32_t)(h - s.y));
        int rw = 1 + (int)ca_rng_below(&r, 70), rh = trial % 5 == 0 ? s.h : 1 + (int)ca_rng_below(&r, 70);
        if (trial % 7 == 0) rw = s.w;
        ca_rect win = {(int)ca_rng_below(&r, (uint32_t)rw), (int)ca_rng_below(&r, (uint32_t)rh), 0, 0};
        win.w = 1 + (int)ca_rng_below(&r, (uint32_t)(rw - win.x));
        win.h = 1 + (int)ca_rng_below(&r, (uint32_t)(rh - win.y));
        size_t n = (size_t)win.w * win.h * 3;
        uint8_t *a = malloc(n), *b = malloc(n);
        CHECK_EQ_INT(ca_resize_crop_rgb(img, s, rw, rh, win, a), CA_OK);
        CHECK_EQ_INT(ca_resize_crop_rgb_ref(img, s, rw, rh, win, b), CA_OK);
        CHECK_MSG(!memcmp(a, b, n), "trial %d: c %d src %dx%d+%d+%d -> %dx%d window %dx%d+%d+%d differs from oracle",
                  trial, c, s.w, s.h, s.x, s.y, rw, rh, win.w, win.h, win.x, win.y);
        free(a); free(b); free(px);
        ca_image_free(img);
    }
    /* the oracle itself can fail: a wrong weight must change the result */
    uint8_t px[12] = {0, 255, 0, 255, 10, 20, 30, 40, 200, 100, 50, 25}, a[3 * 7], b[3 * 7];
    ca_image *img = ca_image_from_pixels(px, 12, 1, 1, 12, NULL);
    CHECK_EQ_INT(ca_resize_crop_rgb(img, (ca_rect){0, 0, 12, 1}, 7, 1, (ca_rect){0, 0, 7, 1}, a), CA_OK);
    CHECK_EQ_INT(ca_resize_crop_rgb_ref(img, (ca_rect){0, 0, 12, 1}, 7, 1, (ca_rect){0, 0, 7, 1}, b), CA_OK);
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(a[0] != px[0] || a[3] != px[2]);
    ca_image_free(img);
}

/* Identity resize returns the pixels; a constant image stays constant (weights sum to one). */
static void test_resize_basics(void) {
    uint8_t px[30 * 20 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = 77;
    ca_image *img = ca_image_from_pixels(px, 30, 20, 3, 90, NULL);
    uint8_t out[13 * 11 * 3];
    CHECK_EQ_INT(ca_resize_crop_rgb(img, (ca_rect){0, 0, 30, 20}, 17, 11, (ca_rect){2, 0, 13, 11}, out), CA_OK);
    int same = 1;
    for (size_t i = 0; i < sizeof out; i++) same &= out[i] == 77;
    CHECK(same);
    CHECK_EQ_INT(ca_resize_crop_rgb(img, (ca_rect){0, 0, 30, 20}, 17, 11, (ca_rect){5, 0, 13, 11}, out), CA_E_ARG);
    CHECK_EQ_INT(ca_resize_crop_rgb(img, (ca_rect){20, 0, 11, 20}, 17, 11, (ca_rect){0, 0, 13, 11}, out), CA_E_ARG);
    int rw, rh;
    ca_resize_short_side(1500, 1100, 224, &rw, &rh);
    CHECK(rw == 305 && rh == 224);
    ca_resize_short_side(23, 37, 224, &rw, &rh);
    CHECK(rw == 224 && rh == 360);
    float f[3 * 8 * 8];
    CHECK_EQ_INT(ca_preprocess(img, 8, f), CA_OK);
    CHECK_NEAR(f[0], (77 / 255.0 - 0.48145466) / 0.26862954, 1e-6);
    CHECK_EQ_INT(ca_preprocess(img, 0, f), CA_E_ARG);
    ca_image_free(img);
}

static ca_status decode_bytes(const void *data, size_t len, const ca_image_params *p) {
    ca_status st;
    ca_image *img = ca_image_decode(data, len, "buf", p, &st);
    ca_image_free(img);
    CHECK((img == NULL) == (st != CA_OK));
    return st;
}

static void test_bad_inputs(void) {
    size_t len;
    ca_status st;
    char *jpg = ca_read_file(th_shared("testdata/preprocess/images/fight2.jpg"), &len, &st);
    CHECK(jpg != NULL);
    if (!jpg) return;
    CHECK_EQ_INT(decode_bytes(jpg, len, NULL), CA_OK);
    CHECK_EQ_INT(decode_bytes(jpg, len / 2, NULL), CA_E_FORMAT); /* truncated */
    CHECK(strstr(ca_last_error(), "buf") && strstr(ca_last_error(), "truncated"));
    CHECK_EQ_INT(decode_bytes(jpg, 200, NULL), CA_E_FORMAT);
    CHECK_EQ_INT(decode_bytes(jpg, 0, NULL), CA_E_FORMAT);
    CHECK(strstr(ca_last_error(), "empty") != NULL);
    CHECK_EQ_INT(decode_bytes("hello, world", 12, NULL), CA_E_FORMAT);
    CHECK(strstr(ca_last_error(), "not a JPEG, PNG, GIF, WebP, BMP, TIFF or PPM") != NULL);
    ca_image_params p = ca_image_default_params();
    p.max_pixels = 1000;
    CHECK_EQ_INT(decode_bytes(jpg, len, &p), CA_E_RANGE);
    for (size_t i = 300; i < len; i += len / 7) jpg[i] ^= 0x5a; /* corrupt entropy data: no crash */
    decode_bytes(jpg, len, NULL);
    free(jpg);
    char *png = ca_read_file("tests/data/images/palette.png", &len, &st);
    CHECK(png != NULL);
    if (!png) return;
    CHECK_EQ_INT(decode_bytes(png, len, NULL), CA_OK);
    CHECK_EQ_INT(decode_bytes(png, len - 30, NULL), CA_E_FORMAT);
    CHECK_EQ_INT(decode_bytes(png, 40, NULL), CA_E_FORMAT);
    p.max_pixels = 100;
    CHECK_EQ_INT(decode_bytes(png, len, &p), CA_E_RANGE);
    png[len / 2] ^= 0xff; /* CRC mismatch in IDAT */
    CHECK_EQ_INT(decode_bytes(png, len, NULL), CA_E_FORMAT);
    free(png);
    CHECK(ca_image_load("/nonexistent/x.png", NULL, &st) == NULL && st == CA_E_IO);
    CHECK(ca_image_from_pixels(NULL, 2, 2, 3, 6, &st) == NULL && st == CA_E_ARG);
    ca_image_free(NULL);
}

/* Decode a patched copy of a fixture: the status, and the message must name the buffer and
 * contain want (when given). */
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void expect_bad(const uint8_t *data, size_t len, ca_status want_st, const char *want, int line) {
    ca_status st = decode_bytes(data, len, NULL);
    if (st != want_st || !strstr(ca_last_error(), "buf") || (want && !strstr(ca_last_error(), want)))
        fprintf(stderr, "  line %d: status %d (want %d), message \"%s\" (want \"%s\")\n", line, st, want_st,
                ca_last_error(), want ? want : "");
    CHECK_MSG(st == want_st && (!want || strstr(ca_last_error(), want)), "malformed case at line %d", line);
}
#define BAD(buf, len, st, msg) expect_bad(buf, len, st, msg, __LINE__)

static uint8_t *fixture(const char *name, size_t *len) {
    char path[256];
    ca_status st;
    snprintf(path, sizeof path, "tests/data/images/%s", name);
    uint8_t *b = (uint8_t *)ca_read_file(path, len, &st);
    CHECK_MSG(b != NULL, "%s: %s", path, ca_last_error());
    return b;
}

/* Malformed GIF, WebP and BMP files: each refused with a status and a message, no crash (the
 * SAN build and the fuzz target watch the reads). */
static void test_bad_formats(void) {
    size_t len;
    uint8_t *b, *c;
    /* BMP: header fields of pal8.bmp (40-byte header, 8-bit, 256 colours) and rgb24.bmp */
    if ((b = fixture("pal8.bmp", &len)) && (c = malloc(len))) {
        CHECK_EQ_INT(decode_bytes(b, len, NULL), CA_OK);
        BAD(b, 10, CA_E_FORMAT, "truncated BMP (file header)");
        BAD(b, 30, CA_E_FORMAT, "truncated BMP (info header)");
        BAD(b, len - 100, CA_E_FORMAT, "truncated BMP pixel data");
        BAD(b, 54 + 500, CA_E_FORMAT, "past the end"); /* cut inside the palette */
#define PATCHED(off, v, st, msg) do { memcpy(c, b, len); put32(c + (off), (v)); BAD(c, len, st, msg); } while (0)
        PATCHED(18, 7000000, CA_E_RANGE, "over the limit");          /* 7e6 x 29 ... */
        PATCHED(22, 5000000, CA_E_RANGE, "over the limit");          /* ... and 41 x 5e6   */
        PATCHED(18, 0xFFFFFFF0u, CA_E_FORMAT, "invalid BMP size");    /* negative width */
        PATCHED(18, 0, CA_E_FORMAT, "invalid BMP size");
        PATCHED(22, 0x80000000u, CA_E_FORMAT, "invalid BMP size");    /* top-down, 2^31 rows */
        PATCHED(18, 3000, CA_E_FORMAT, "truncated BMP pixel data");   /* fits the limit, not the file */
        PATCHED(10, 0xFFFFFF00u, CA_E_FORMAT, "past the end");
        PATCHED(10, (uint32_t)len - 10, CA_E_FORMAT, "truncated BMP pixel data");
        PATCHED(14, 52, CA_E_FORMAT, "unsupported BMP header size 52");
        PATCHED(14, 0xFFFFFFFFu, CA_E_FORMAT, "unsupported BMP header size");
        PATCHED(28, 7, CA_E_FORMAT, "unsupported BMP bit depth 7"); /* bits (16-bit field) + planes */
        PATCHED(30, 4, CA_E_FORMAT, "embedded JPEG");
        PATCHED(30, 3, CA_E_FORMAT, "bitfields");                    /* bitfields on 8-bit pixels */
        PATCHED(30, 99, CA_E_FORMAT, "unsupported BMP compression 99");
        PATCHED(46, 1000, CA_E_FORMAT, "palette of 1000 colours");
        memcpy(c, b, len); c[28] = 16; put32(c + 30, 3); /* 16-bit bitfields 4-4-4-4: Pillow refuses too */
        put32(c + 54, 0xF00); put32(c + 58, 0xF0); put32(c + 62, 0xF);
        BAD(c, len, CA_E_FORMAT, "unsupported BMP bitfields layout");
        free(c);
    }
    free(b);
    if ((b = fixture("rle8.bmp", &len))) {
        BAD(b, len - 40, CA_E_FORMAT, "truncated BMP RLE data");
        BAD(b, 1078, CA_E_FORMAT, "truncated BMP RLE data"); /* no pixel data at all */
        memcpy(b + 1078, "\0\2\5\0\7", 5);                  /* a delta escape at the very end */
        BAD(b, 1083, CA_E_FORMAT, "delta at end of file");
        b[28] = 24;                                          /* RLE with 24-bit pixels */
        BAD(b, len, CA_E_FORMAT, "RLE compression with 24-bit");
        free(b);
    }
    /* Out-of-palette indices are not an error: Pillow reads its default grey ramp (pal8-short.bmp
     * and offset.gif are among the goldens). */
    /* GIF */
    if ((b = fixture("palette.gif", &len))) {
        CHECK_EQ_INT(decode_bytes(b, len, NULL), CA_OK);
        BAD(b, 6, CA_E_FORMAT, NULL);
        BAD(b, 13, CA_E_FORMAT, NULL);
        BAD(b, len / 2, CA_E_FORMAT, "GIF");
        BAD(b, len - 30, CA_E_FORMAT, "truncated");
        CHECK_EQ_INT(decode_bytes(b, len - 2, NULL), CA_OK); /* no terminator, no trailer: Pillow reads it too */
        BAD(b, len - 3, CA_E_FORMAT, "GIF");                  /* cut inside the last block */
        uint8_t sw[4] = {b[6], b[7], b[8], b[9]};
        b[6] = b[7] = b[8] = b[9] = 0xFF;                  /* 65535 x 65535 screen */
        BAD(b, len, CA_E_RANGE, "over the limit");
        memcpy(b + 6, sw, 4);
        for (size_t i = len / 3; i < len; i += 37) b[i] ^= 0x55; /* corrupt LZW data: no crash */
        decode_bytes(b, len, NULL);
        free(b);
    }
    static const uint8_t noimg[] = "GIF89a\x01\0\x01\0\0\0\0;";
    BAD(noimg, sizeof noimg - 1, CA_E_FORMAT, "GIF has no image");
    static const uint8_t empty_frame[] = "GIF89a\x04\0\x04\0\0\0\0,\0\0\0\0\0\0\x04\0\0\x02\x02\x44\x01\0;";
    BAD(empty_frame, sizeof empty_frame - 1, CA_E_FORMAT, "GIF frame has no pixels");
    static const uint8_t big_codes[] = "GIF89a\x02\0\x02\0\0\0\0,\0\0\0\0\x02\0\x02\0\0\x0c\x02\x44\x01\0;";
    BAD(big_codes, sizeof big_codes - 1, CA_E_FORMAT, "GIF"); /* LZW code size 12 > 8 */
    /* WebP */
    if ((b = fixture("anim.webp", &len))) {
        CHECK_EQ_INT(decode_bytes(b, len, NULL), CA_OK);
        BAD(b, 16, CA_E_FORMAT, "WebP");
        BAD(b, 40, CA_E_FORMAT, "WebP");
        BAD(b, len / 2, CA_E_FORMAT, "WebP");
        BAD(b, len - 1, CA_E_FORMAT, "WebP");
        b[24] = b[27] = 0x5F; b[25] = b[28] = 0xEA; b[26] = b[29] = 0; /* VP8X canvas 60000 x 60000 */
        BAD(b, len, CA_E_RANGE, "over the limit");
        free(b);
    }
    if ((b = fixture("lossy.webp", &len))) {
        for (size_t i = 40; i < len; i += 29) b[i] ^= 0xA5; /* corrupt VP8 data: no crash */
        decode_bytes(b, len, NULL);
        BAD(b, 30, CA_E_FORMAT, "WebP");
        free(b);
    }
}

/* A little-endian TIFF with one uncompressed strip of `dlen` bytes after the IFD (data all 0x55). */
static size_t mini_tiff(uint8_t *b, uint32_t w, uint32_t h, int bps, int spp, int photo, int sf, size_t dlen) {
    static const int tags[] = {256, 257, 258, 259, 262, 273, 277, 278, 279, 339};
    const int n = 10;
    size_t ifd = 8, data = ifd + 2 + 12 * n + 4;
    uint32_t vals[] = {w, h, (uint32_t)bps, 1, (uint32_t)photo, (uint32_t)data, (uint32_t)spp, h, (uint32_t)dlen, (uint32_t)sf};
    memcpy(b, "II*\0", 4);
    put32(b + 4, (uint32_t)ifd);
    b[ifd] = (uint8_t)n; b[ifd + 1] = 0;
    for (int i = 0; i < n; i++) {
        uint8_t *e = b + ifd + 2 + 12 * i;
        int longs = tags[i] <= 257 || tags[i] == 273 || tags[i] == 278 || tags[i] == 279;
        e[0] = (uint8_t)tags[i]; e[1] = (uint8_t)(tags[i] >> 8);
        e[2] = longs ? 4 : 3; e[3] = 0;
        put32(e + 4, 1);
        put32(e + 8, vals[i]);
    }
    put32(b + ifd + 2 + 12 * n, 0);
    memset(b + data, 0x55, dlen);
    return data + dlen;
}

/* Malformed TIFF and Netpbm files: refused with one message naming the buffer, no crash. */
static void test_bad_tiff_ppm(void) {
    size_t len;
    uint8_t *b;
    if ((b = fixture("rgb-lzw.tif", &len))) {
        CHECK_EQ_INT(decode_bytes(b, len, NULL), CA_OK);
        BAD(b, 8, CA_E_FORMAT, "corrupt TIFF");
        BAD(b, len / 2, CA_E_FORMAT, "corrupt TIFF");
        ca_image_params p = ca_image_default_params();
        p.max_pixels = 500;
        CHECK_EQ_INT(decode_bytes(b, len, &p), CA_E_RANGE);
        CHECK(strstr(ca_last_error(), "over the limit") != NULL);
        for (size_t i = 16; i < len; i += 23) b[i] ^= 0x3c; /* corrupt LZW data and tags: no crash */
        decode_bytes(b, len, NULL);
        free(b);
    }
    if ((b = fixture("rgb16-be-tiled.tif", &len))) {
        BAD(b, len - 200, CA_E_FORMAT, "corrupt TIFF"); /* the IFD is at the end: cut */
        free(b);
    }
    uint8_t t[512];
    size_t n = mini_tiff(t, 4, 3, 8, 1, 1, 1, 12);
    CHECK_EQ_INT(decode_bytes(t, n, NULL), CA_OK);
    BAD(t, n - 5, CA_E_FORMAT, "corrupt TIFF");                                  /* strip cut short */
    n = mini_tiff(t, 4, 3, 32, 1, 1, 3, 48);
    BAD(t, n, CA_E_FORMAT, "32-bit float samples");                              /* Pillow's "F" */
    n = mini_tiff(t, 4, 3, 8, 3, 8, 1, 36);
    BAD(t, n, CA_E_FORMAT, "unsupported TIFF");                                  /* CIE Lab */
    n = mini_tiff(t, 4, 3, 8, 2, 1, 1, 24);
    BAD(t, n, CA_E_FORMAT, "unsupported TIFF");                                  /* grey + 1 unnamed sample */
    n = mini_tiff(t, 4, 3, 16, 1, 0, 1, 24);
    t[0] = t[1] = 'M';                                                           /* big-endian header */
    BAD(t, n, CA_E_FORMAT, "corrupt TIFF");
    n = mini_tiff(t, 60000, 60000, 8, 1, 1, 1, 12);
    BAD(t, n, CA_E_RANGE, "over the limit");
    BAD((const uint8_t *)"II*\0\x08\0\0\0\0\0", 10, CA_E_FORMAT, "corrupt TIFF");           /* an IFD with no entries */
    /* Netpbm */
    static const struct { const char *data; ca_status st; const char *msg; } ppm[] = {
        {"P6\n4 4\n255\n0123456789", CA_E_FORMAT, "truncated PPM data"},
        {"P5 4 4 0\n", CA_E_FORMAT, "maxval 0"},
        {"P5 4 4 70000\n", CA_E_FORMAT, "maxval 70000"},
        {"P2 2 2 255 1 2 3 300", CA_E_FORMAT, "larger than maxval"},
        {"P2 2 2 255 1 2 x 3", CA_E_FORMAT, "not a number"},
        {"P1 2 2 0 1 2 0", CA_E_FORMAT, "invalid PBM data"},
        {"P1 2 2 0 1 1", CA_E_FORMAT, "truncated PBM data"},
        {"P3 2 1 255 1 2 3 4 5", CA_E_FORMAT, "truncated PPM data"},
        {"P7\nWIDTH 2\n", CA_E_FORMAT, "unrecognised signature"},
        {"P6x 1 1 255\n", CA_E_FORMAT, "unsupported Netpbm variant"},
        {"P5 12345678901 1 255\n", CA_E_FORMAT, "token too long"},
        {"P5 -3 1 255\n", CA_E_FORMAT, "not a number"},
        {"P6\n", CA_E_FORMAT, "truncated PPM header"},
        {"P6 3 # no end", CA_E_FORMAT, "truncated PPM header"},
        {"P5 0 4 255\n", CA_E_FORMAT, "invalid PPM size"},
        {"P5 100000 100000 255\n", CA_E_RANGE, "over the limit"},
        {"P4 9 2\n\xff", CA_E_FORMAT, "truncated PPM data"},
    };
    for (size_t i = 0; i < sizeof ppm / sizeof ppm[0]; i++)
        expect_bad((const uint8_t *)ppm[i].data, strlen(ppm[i].data), ppm[i].st, ppm[i].msg, (int)i);
    /* what Pillow reads: a comment inside a token, no whitespace between P1 pixels */
    static const char ok1[] = "P1 3#c\n 2 010101", ok2[] = "P5 1#x\n2 1 2#y\n55\nabcdefghijkl";
    ca_status st;
    ca_image *img = ca_image_decode(ok1, strlen(ok1), "buf", NULL, &st);
    CHECK(img && ca_image_width(img) == 3 && ca_image_height(img) == 2 && !strcmp(ca_image_mode(img), "1") &&
          ca_image_pixels(img)[0] == 255 && ca_image_pixels(img)[1] == 0);
    ca_image_free(img);
    img = ca_image_decode(ok2, sizeof ok2 - 1, "buf", NULL, &st);                /* 12 x 1, maxval 255 */
    CHECK_MSG(img && ca_image_width(img) == 12 && ca_image_height(img) == 1, "%s", ca_last_error());
    ca_image_free(img);
}

static int64_t count_diff(const float *a, const float *b, size_t n) {
    int64_t d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

static void test_augment(void) {
    ca_image *img = load_shared("fight2.jpg");
    if (!img) return;
    const int N = 64;
    size_t n = 3 * N * N;
    float *a = malloc(n * 4 * 8);
    /* the same triple gives the same view, however many threads draw views */
    CHECK_EQ_INT(ca_augment(img, N, 1, 5, 0, a), CA_OK);
    CHECK_EQ_INT(ca_augment(img, N, 1, 5, 0, a + n), CA_OK);
    CHECK_EQ_INT(count_diff(a, a + n, n), 0);
    float *par = malloc(n * 4 * 8);
    #pragma omp parallel for num_threads(4)
    for (int v = 0; v < 8; v++) ca_augment(img, N, 1, 5, (uint64_t)v, par + (size_t)v * n);
    for (int v = 0; v < 8; v++) {
        ca_augment(img, N, 1, 5, (uint64_t)v, a + (size_t)v * n);
        CHECK_MSG(count_diff(a + (size_t)v * n, par + (size_t)v * n, n) == 0, "view %d differs across threads", v);
    }
    /* different views, images and seeds differ */
    for (int v = 1; v < 8; v++) CHECK_MSG(count_diff(a, a + (size_t)v * n, n) > (int64_t)n / 10, "view %d equals view 0", v);
    CHECK_EQ_INT(ca_augment(img, N, 1, 6, 0, par), CA_OK);
    CHECK(count_diff(a, par, n) > (int64_t)n / 10);
    CHECK_EQ_INT(ca_augment(img, N, 2, 5, 0, par), CA_OK);
    CHECK(count_diff(a, par, n) > (int64_t)n / 10);
    /* crop statistics: scale in [0.5, 1] of the area, ratio in [3/4, 4/3], inside the image; some flips */
    int flips = 0;
    for (int v = 0; v < 400; v++) {
        ca_rng r = ca_augment_rng(9, 3, (uint64_t)v);
        ca_rect c;
        ca_rrc_params(&r, 300, 200, &c);
        double area = (double)c.w * c.h / (300.0 * 200.0), ratio = (double)c.w / c.h;
        CHECK(c.x >= 0 && c.y >= 0 && c.x + c.w <= 300 && c.y + c.h <= 200);
        CHECK_MSG(area >= 0.49 && area <= 1.0 && ratio >= 0.74 && ratio <= 1.35, "area %.3f ratio %.3f", area, ratio);
        flips += ca_rng_uniform(&r) < 0.5;
    }
    CHECK(flips > 150 && flips < 250);
    /* a very wide image falls back to the centre crop with ratio 4/3 */
    ca_rng r = ca_augment_rng(1, 1, 1);
    ca_rect c;
    ca_rrc_params(&r, 1000, 10, &c);
    CHECK(c.h == 10 && c.w == 13 && c.x == (1000 - 13) / 2 && c.y == 0);
    /* grey images are converted to RGB first: three equal planes */
    ca_image *g = load_shared("fight1-gray.png");
    if (g) {
        CHECK_EQ_INT(ca_augment(g, N, 3, 0, 0, a), CA_OK);
        int grey = 1;
        for (int i = 0; i < N * N; i++)
            grey &= fabsf((a[i] * 0.26862954f + 0.48145466f) - (a[N * N + i] * 0.26130258f + 0.4578275f)) < 1e-5f;
        CHECK(grey);
        ca_image_free(g);
    }
    free(a); free(par);
    ca_image_free(img);
}

int main(void) {
    RUN(test_goldens);
    RUN(test_fixture_modes);
    RUN(test_fixture_formats);
    RUN(test_fixture_tiff_ppm);
    RUN(test_modes);
    RUN(test_resize_oracle);
    RUN(test_resize_basics);
    RUN(test_bad_inputs);
    RUN(test_bad_formats);
    RUN(test_bad_tiff_ppm);
    RUN(test_augment);
    TEST_END();
}
