/* test_grow.c — growing fitted classifiers without training (src/adapt/grow.c): a grown
 * tip-adapter / tip-cache / prototype equals the method's formula on the enlarged cache (the
 * naive oracle here) or the fit on the union; new classes; copies are independent; errors.
 * `test_grow --make-images DIR N` writes the 4-class image folder of tests/cli/test_serve.sh. */
#include "core/core.h"
#include "harness.h"

#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#define D 16
#define C 3

/* Features: class c is a unit vector near axis c, with jitter. */
static void feature(int cls, int idx, float *x) {
    ca_rng r = ca_rng_make(99, (uint64_t)(cls * 1000 + idx));
    for (int j = 0; j < D; j++) x[j] = (float)(0.15 * ca_rng_normal(&r));
    x[cls] += 1.0f;
    ca_l2_normalize(x, D);
}

static float trx[C * 4 * D], vax[C * 2 * D], textw[(C + 1) * D];
static int32_t try_[C * 4], vay[C * 2];

static ca_fit_data make_data(void) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < 4; i++) { feature(c, i, trx + (size_t)(c * 4 + i) * D); try_[c * 4 + i] = c; }
    for (int c = 0; c < C; c++)
        for (int i = 0; i < 2; i++) { feature(c, 100 + i, vax + (size_t)(c * 2 + i) * D); vay[c * 2 + i] = c; }
    /* text weights that point the wrong way for a new class: the cache must carry it */
    for (int c = 0; c < C + 1; c++) { ca_rng r = ca_rng_make(7, (uint64_t)c); for (int j = 0; j < D; j++) textw[c * D + j] = (float)ca_rng_normal(&r); ca_l2_normalize(textw + c * D, D); }
    ca_fit_data d = {.num_classes = C, .dim = D, .text_w = textw};
    d.train = (ca_split){.n = C * 4, .dim = D, .x = trx, .y = try_};
    d.val = (ca_split){.n = C * 2, .dim = D, .x = vax, .y = vay};
    return d;
}

/* Naive Tip-Adapter logits of one query (the test oracle): 100·x·Wᵀ + α·Σ_k exp(−β(1−x·k))·onehot. */
static void tip_naive(const float *x, const float *W, int nc, const float *keys, const int32_t *ky, int N,
                      double alpha, double beta, float *out) {
    for (int c = 0; c < nc; c++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)x[j] * W[c * D + j];
        out[c] = (float)(100 * s);
    }
    for (int k = 0; k < N; k++) {
        double a = 0;
        for (int j = 0; j < D; j++) a += (double)x[j] * keys[k * D + j];
        out[ky[k]] += (float)(alpha * exp(-beta * (1 - a)));
    }
}

static int argmax(const float *v, int n) { int b = 0; for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }

static void test_tip_adapter_grows(void) {
    ca_fit_data d = make_data();
    ca_status st;
    ca_classifier *c = ca_fit("tip-adapter", &d, NULL, &st);
    CHECK(c != NULL);
    if (!c) return;
    CHECK(ca_classifier_can_grow(c));
    CHECK(ca_classifier_has_text(c));
    CHECK_EQ_INT(ca_classifier_cache_size(c), C * 4);
    ca_classifier *g = ca_classifier_clone(c, &st);
    CHECK(g != NULL);
    /* a new class along axis 5, its text weight deliberately unhelpful */
    CHECK_EQ_INT(ca_classifier_add_class(g, "new one", textw + C * D), CA_OK);
    CHECK_EQ_INT(ca_classifier_num_classes(g), C + 1);
    CHECK_EQ_INT(ca_classifier_num_classes(c), C);   /* the original is untouched */
    CHECK_EQ_INT(ca_classifier_class_index(g, "new one"), C);
    float x[D];
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < D; j++) x[j] = 0;
        feature(5, i, x);
        CHECK_EQ_INT(ca_classifier_add_example(g, x, C), CA_OK);
    }
    CHECK_EQ_INT(ca_classifier_cache_size(g), C * 4 + 5);
    CHECK_NEAR(ca_classifier_param(g, "cache_size", 0), C * 4 + 5, 0);
    /* oracle: the formula on the enlarged cache, same α, β */
    int N = ca_classifier_cache_size(g);
    float *keys = malloc(sizeof(float) * (size_t)N * D);
    int32_t *ky = malloc(sizeof(int32_t) * (size_t)N);
    CHECK_EQ_INT(ca_classifier_cache_get(g, keys, ky), CA_OK);
    CHECK_EQ_INT(ky[N - 1], C);
    double alpha = ca_classifier_param(g, "alpha", -1), beta = ca_classifier_param(g, "beta", -1);
    CHECK_NEAR(alpha, ca_classifier_param(c, "alpha", -2), 0);
    float got[C + 1], want[C + 1];
    int correct = 0;
    for (int i = 0; i < 6; i++) {
        feature(5, 50 + i, x);   /* held-out queries of the new class */
        CHECK_EQ_INT(ca_classifier_logits(g, x, 1, got), CA_OK);
        tip_naive(x, ca_classifier_text_weights(g), C + 1, keys, ky, N, alpha, beta, want);
        for (int k = 0; k < C + 1; k++) CHECK_NEAR(got[k], want[k], 1e-3 * (1 + fabs(want[k])));
        correct += argmax(got, C + 1) == C;
    }
    CHECK_MSG(correct == 6, "%d of 6 held-out queries of the new class classified as it", correct);
    /* save and load keep the growth */
    char path[] = "/tmp/ca-grow-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK_EQ_INT(ca_classifier_save(g, path, NULL), CA_OK);
    ca_classifier *l = ca_classifier_load(path, &st);
    CHECK(l != NULL);
    if (l) {
        CHECK_EQ_INT(ca_classifier_num_classes(l), C + 1);
        CHECK_STR(ca_classifier_class_name(l, C), "new one");
        float lg[C + 1];
        CHECK_EQ_INT(ca_classifier_logits(l, x, 1, lg), CA_OK);
        CHECK_NEAR(lg[C], got[C], 1e-4);
    }
    unlink(path);
    free(keys); free(ky);
    ca_classifier_free(l); ca_classifier_free(g); ca_classifier_free(c);
}

static void test_prototype_matches_refit(void) {
    ca_fit_data d = make_data();
    ca_status st;
    /* fit on the first 2 examples per class, grow by the other 2: equals the fit on all 4 */
    float x2[C * 2 * D];
    int32_t y2[C * 2];
    for (int c = 0; c < C; c++) for (int i = 0; i < 2; i++) { memcpy(x2 + (c * 2 + i) * D, trx + (c * 4 + i) * D, sizeof(float) * D); y2[c * 2 + i] = c; }
    ca_fit_data half = d;
    half.train = (ca_split){.n = C * 2, .dim = D, .x = x2, .y = y2};
    ca_classifier *small = ca_fit("prototype", &half, NULL, &st), *full = ca_fit("prototype", &d, NULL, &st);
    CHECK(small && full);
    if (!small || !full) { ca_classifier_free(small); ca_classifier_free(full); return; }
    for (int c = 0; c < C; c++) for (int i = 2; i < 4; i++) CHECK_EQ_INT(ca_classifier_add_example(small, trx + (c * 4 + i) * D, c), CA_OK);
    float a[C], b[C];
    for (int q = 0; q < C * 2; q++) {
        ca_classifier_logits(small, vax + q * D, 1, a);
        ca_classifier_logits(full, vax + q * D, 1, b);
        for (int k = 0; k < C; k++) CHECK_NEAR(a[k], b[k], 1e-3);
    }
    int64_t cnt[C + 1];
    ca_classifier_class_counts(small, cnt);
    CHECK_EQ_INT(cnt[0], 4);
    /* a new class from nothing: its first example becomes its prototype */
    CHECK_EQ_INT(ca_classifier_add_class(small, "fourth", NULL), CA_OK);
    float x[D];
    feature(7, 0, x);
    CHECK_EQ_INT(ca_classifier_add_example(small, x, C), CA_OK);
    feature(7, 1, x);
    float lg[C + 1];
    CHECK_EQ_INT(ca_classifier_logits(small, x, 1, lg), CA_OK);
    CHECK_EQ_INT(argmax(lg, C + 1), C);
    ca_classifier_class_counts(small, cnt);
    CHECK_EQ_INT(cnt[C], 1);
    ca_classifier_free(small); ca_classifier_free(full);
}

static void test_tip_cache_grows(void) {
    ca_fit_data d = make_data();
    d.text_w = NULL;
    ca_status st;
    ca_classifier *c = ca_fit("tip-cache", &d, NULL, &st);
    CHECK(c != NULL);
    if (!c) return;
    CHECK(!ca_classifier_has_text(c));
    CHECK_EQ_INT(ca_classifier_add_class(c, "fourth", NULL), CA_OK);
    float x[D], lg[C + 1];
    feature(9, 0, x);
    /* a class without examples scores as nothing */
    CHECK_EQ_INT(ca_classifier_logits(c, x, 1, lg), CA_OK);
    CHECK(argmax(lg, C + 1) != C);
    for (int i = 0; i < 3; i++) { feature(9, i, x); CHECK_EQ_INT(ca_classifier_add_example(c, x, C), CA_OK); }
    feature(9, 10, x);
    CHECK_EQ_INT(ca_classifier_logits(c, x, 1, lg), CA_OK);
    CHECK_EQ_INT(argmax(lg, C + 1), C);
    int64_t cnt[C + 1];
    ca_classifier_class_counts(c, cnt);
    CHECK_EQ_INT(cnt[C], 3);
    CHECK_EQ_INT(cnt[0], 4);
    ca_classifier_free(c);
}

static void test_errors(void) {
    ca_fit_data d = make_data();
    ca_status st;
    ca_classifier *lp = ca_fit("linear-probe", &d, NULL, &st), *tip = ca_fit("tip-adapter", &d, NULL, &st);
    CHECK(lp && tip);
    if (!lp || !tip) { ca_classifier_free(lp); ca_classifier_free(tip); return; }
    float x[D];
    feature(0, 0, x);
    CHECK(!ca_classifier_can_grow(lp));
    CHECK_EQ_INT(ca_classifier_add_example(lp, x, 0), CA_E_UNSUPPORTED);
    CHECK_EQ_INT(ca_classifier_add_class(lp, "z", NULL), CA_E_UNSUPPORTED);
    CHECK_EQ_INT(ca_classifier_cache_size(lp), 0);
    CHECK_EQ_INT(ca_classifier_add_example(tip, x, C), CA_E_ARG);    /* no such class */
    CHECK_EQ_INT(ca_classifier_add_example(tip, x, -1), CA_E_ARG);
    CHECK_EQ_INT(ca_classifier_add_class(tip, "new", NULL), CA_E_ARG); /* text weight required */
    CHECK_EQ_INT(ca_classifier_add_class(tip, "", textw), CA_E_ARG);
    CHECK_EQ_INT(ca_classifier_add_class(tip, "a", textw), CA_OK);
    CHECK_EQ_INT(ca_classifier_add_class(tip, "a", textw), CA_E_ARG);  /* exists */
    x[3] = NAN;
    CHECK_EQ_INT(ca_classifier_add_example(tip, x, 0), CA_E_ARG);
    CHECK(ca_classifier_clone(NULL, &st) == NULL);
    CHECK_EQ_INT(st, CA_E_ARG);
    ca_classifier_free(lp); ca_classifier_free(tip);
}

/* ---- images for tests/cli/test_serve.sh: 4 classes, the 4th added through the API ---- */

static const char *const CLASSES[] = {"red_circle", "green_square", "blue_stripes", "yellow_ring"};

static void draw(int cls, int idx, int w, int h, uint8_t *rgb) {
    ca_rng r = ca_rng_make(4321, (uint64_t)(cls * 1000 + idx));
    int cx = w / 2 + (int)ca_rng_below(&r, (uint32_t)(w / 5)) - w / 10;
    int cy = h / 2 + (int)ca_rng_below(&r, (uint32_t)(h / 5)) - h / 10;
    int rad = (w < h ? w : h) / 4 + (int)ca_rng_below(&r, 6);
    static const uint8_t col[4][3] = {{220, 30, 30}, {30, 200, 40}, {30, 60, 220}, {230, 210, 20}};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            int g = 110 + (int)ca_rng_below(&r, 40), d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
            int in = cls == 0 ? d2 < rad * rad
                   : cls == 1 ? abs(x - cx) < rad && abs(y - cy) < rad
                   : cls == 2 ? ((x + y + idx) / 6) % 2 == 0
                              : d2 < rad * rad && d2 > rad * rad / 3;
            for (int c = 0; c < 3; c++) p[c] = in ? col[cls][c] : (uint8_t)g;
        }
}

static int write_png(const char *path, int w, int h, const uint8_t *rgb) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w; img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_RGB;
    return png_image_write_to_file(&img, path, 0, rgb, 0, NULL) ? 0 : -1;
}

static int make_images(const char *dir, int n) {
    mkdir(dir, 0777);
    uint8_t *rgb = malloc(96 * 96 * 3);
    char path[1024];
    int rc = 0;
    for (int c = 0; c < 4 && !rc; c++) {
        snprintf(path, sizeof path, "%s/%s", dir, CLASSES[c]);
        mkdir(path, 0777);
        for (int i = 0; i < n && !rc; i++) {
            int w = 64 + (i * 7) % 33, h = 64 + (i * 13) % 33;
            draw(c, i, w, h, rgb);
            snprintf(path, sizeof path, "%s/%s/%s_%02d.png", dir, CLASSES[c], CLASSES[c], i);
            rc = write_png(path, w, h, rgb);
        }
    }
    free(rgb);
    /* big.png: 1600x1200 noise (1.92 Mpx, ~5.5 MB) for the pixel limit and a slow decode */
    if (!rc) {
        uint8_t *big = malloc((size_t)1600 * 1200 * 3);
        ca_rng r = ca_rng_make(5, 5);
        for (size_t i = 0; i < (size_t)1600 * 1200 * 3; i++) big[i] = (uint8_t)ca_rng_below(&r, 256);
        snprintf(path, sizeof path, "%s/big.png", dir);
        rc = write_png(path, 1600, 1200, big);
        free(big);
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--make-images")) return make_images(argv[2], atoi(argv[3])) ? 1 : 0;
    RUN(test_tip_adapter_grows);
    RUN(test_prototype_matches_refit);
    RUN(test_tip_cache_grows);
    RUN(test_errors);
    TEST_END();
}
