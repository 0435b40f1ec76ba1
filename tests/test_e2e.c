/* test_e2e.c — the end-to-end library journey on a generated image folder with the shared vit-tiny
 * model: chunked encoding (cache reuse, views, batch independence), single-image classification
 * agreeing with batch features, the text classifier against a direct computation.
 * `test_e2e --make-images DIR` writes the synthetic dataset for tests/cli/test_e2e.sh instead. */
#include "core/core.h"
#include "data/templates.h"
#include "harness.h"
#include <dirent.h>

#include <jpeglib.h>
#include <png.h>
#include <sys/stat.h>

#define MODEL "testdata/models/vit-tiny.safetensors"
#define BPE "clip/bpe_simple_vocab_16e6.txt.gz"

/* ---- synthetic images: one colour and shape per class, jittered per image ---- */

static const char *const CLASSES[] = {"red_circle", "green_square", "blue_stripes"};
#define N_CLASSES 3

/* rgb: (h, w, 3). Background grey noise; the class's shape in its colour at a random place. */
static void draw(int cls, int idx, int w, int h, uint8_t *rgb) {
    ca_rng r = ca_rng_make(1234, (uint64_t)(cls * 1000 + idx));
    int cx = w / 2 + (int)ca_rng_below(&r, (uint32_t)(w / 5)) - w / 10;
    int cy = h / 2 + (int)ca_rng_below(&r, (uint32_t)(h / 5)) - h / 10;
    int rad = (w < h ? w : h) / 4 + (int)ca_rng_below(&r, 6);
    static const uint8_t col[3][3] = {{220, 30, 30}, {30, 200, 40}, {30, 60, 220}};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            int g = 110 + (int)ca_rng_below(&r, 40);
            int in = cls == 0 ? (x - cx) * (x - cx) + (y - cy) * (y - cy) < rad * rad
                   : cls == 1 ? abs(x - cx) < rad && abs(y - cy) < rad
                              : ((x + y + idx) / 6) % 2 == 0;
            for (int c = 0; c < 3; c++) p[c] = in ? col[cls][c] : (uint8_t)g;
        }
}

static int write_png(const char *path, int w, int h, const uint8_t *rgb) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w; img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_RGB;
    return png_image_write_to_file(&img, path, 0, rgb, w * 3, NULL) ? 0 : -1;
}

static int write_jpeg(const char *path, int w, int h, const uint8_t *rgb) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
    c.image_width = (JDIMENSION)w; c.image_height = (JDIMENSION)h;
    c.input_components = 3; c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 92, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(fp);
}

/* dir/<class>/<class>_NN.{png,jpg}: n per class, sizes between 64 and 96 pixels. */
static int make_images(const char *dir, int n) {
    mkdir(dir, 0777);
    uint8_t *rgb = malloc(96 * 96 * 3);
    char path[1024];
    int rc = 0;
    for (int c = 0; c < N_CLASSES && !rc; c++) {
        snprintf(path, sizeof path, "%s/%s", dir, CLASSES[c]);
        mkdir(path, 0777);
        for (int i = 0; i < n && !rc; i++) {
            int w = 64 + (i * 7) % 33, h = 64 + (i * 13) % 33;
            draw(c, i, w, h, rgb);
            snprintf(path, sizeof path, "%s/%s/%s_%02d.%s", dir, CLASSES[c], CLASSES[c], i, i % 2 ? "jpg" : "png");
            rc = i % 2 ? write_jpeg(path, w, h, rgb) : write_png(path, w, h, rgb);
        }
    }
    free(rgb);
    return rc;
}

/* ---- library-level end-to-end checks ---- */

static ca_model *model;
static char img_dir[1024];
static const char *paths[64];
static char path_buf[64][1200];
static int n_paths;

static void list_images(void) {
    n_paths = 0;
    for (int c = 0; c < N_CLASSES; c++)
        for (int i = 0; i < 6; i++) {
            snprintf(path_buf[n_paths], sizeof path_buf[0], "%s/%s/%s_%02d.%s", img_dir, CLASSES[c], CLASSES[c], i, i % 2 ? "jpg" : "png");
            paths[n_paths] = path_buf[n_paths];
            n_paths++;
        }
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static int count_chunks(const char *dir) {
    DIR *d = opendir(dir);
    int k = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) k += strncmp(e->d_name, "chunk-", 6) == 0;
    if (d) closedir(d);
    return k;
}

static void test_encode_chunks_and_cache(void) {
    int n = n_paths, D = 64;
    float *f1 = malloc(sizeof(float) * n * D), *f2 = malloc(sizeof(float) * n * D), *f3 = malloc(sizeof(float) * n * D);
    ca_encode_params p = ca_encode_default_params();
    p.chunk = 5; p.batch = 3;
    int reused = -1;
    CHECK_MSG(ca_encode_images(model, paths, NULL, n, &p, f1, NULL, &reused) == CA_OK, "%s", ca_last_error());
    CHECK_EQ_INT(reused, 0);
    /* rows are unit norm */
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)f1[i * D + d] * f1[i * D + d];
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    /* another batch size and chunking gives the same features (one image per model call) */
    p.chunk = 64; p.batch = 1;
    CHECK(ca_encode_images(model, paths, NULL, n, &p, f2, NULL, NULL) == CA_OK);
    CHECK_NEAR(max_diff(f1, f2, (size_t)n * D), 0, 1e-5);
    /* cache: the second run reuses every chunk and returns identical values */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/parts", th_tmpdir());
    mkdir(dir, 0777);
    p.cache_dir = dir; p.chunk = 4; p.batch = 4;
    CHECK(ca_encode_images(model, paths, NULL, n, &p, f2, NULL, &reused) == CA_OK);
    CHECK_EQ_INT(reused, 0);
    CHECK(ca_encode_images(model, paths, NULL, n, &p, f3, NULL, &reused) == CA_OK);
    int nchunks = count_chunks(dir);
    CHECK_MSG(reused == nchunks && nchunks >= 2, "reused %d of %d chunks", reused, nchunks);
    CHECK(memcmp(f2, f3, sizeof(float) * n * D) == 0);
    /* an undecodable image: an error without skip_bad; with it, a zero row, a flag, the rest
     * unchanged; and without it again the cached chunk with the bad image is not taken as good */
    char badimg[1024];
    snprintf(badimg, sizeof badimg, "%s/broken.png", th_tmpdir());
    FILE *bf = fopen(badimg, "wb");
    if (bf) { fputs("not a png", bf); fclose(bf); }
    const char *with_bad[64];
    uint64_t ids[64];
    for (int i = 0; i < n; i++) { with_bad[i] = paths[i]; ids[i] = (uint64_t)i; }
    with_bad[n] = badimg; ids[n] = 1000;
    float *fb = malloc(sizeof(float) * (n + 1) * D);
    uint8_t badf[64];
    CHECK(ca_encode_images(model, with_bad, ids, n + 1, &p, fb, NULL, NULL) == CA_E_FORMAT);
    CHECK(strstr(ca_last_error(), "broken.png") != NULL);
    p.skip_bad = 1; p.bad_out = badf;
    CHECK(ca_encode_images(model, with_bad, ids, n + 1, &p, fb, NULL, &reused) == CA_OK);
    CHECK(badf[n] == 1 && badf[0] == 0 && fb[(size_t)n * D] == 0 && fb[(size_t)n * D + 1] == 0);
    CHECK_MSG(reused >= nchunks - 1, "reused %d of %d chunks with one image added", reused, nchunks);
    CHECK(memcmp(f2, fb, sizeof(float) * n * D) == 0);
    p.skip_bad = 0; p.bad_out = NULL;
    CHECK(ca_encode_images(model, with_bad, ids, n + 1, &p, fb, NULL, NULL) == CA_E_FORMAT);
    free(fb);
    /* another salt (another model) reuses nothing */
    p.cache_salt = 99;
    CHECK(ca_encode_images(model, paths, NULL, n, &p, f3, NULL, &reused) == CA_OK);
    CHECK_EQ_INT(reused, 0);
    /* a missing file is an error naming it */
    const char *bad[2] = {paths[0], "/nonexistent/x.png"};
    p.cache_dir = NULL;
    CHECK(ca_encode_images(model, bad, NULL, 2, &p, f3, NULL, NULL) != CA_OK);
    CHECK(strstr(ca_last_error(), "/nonexistent/x.png") != NULL);
    free(f1); free(f2); free(f3);
}

static void test_encode_views(void) {
    int n = 4, D = 64, V = 3;
    float *f = malloc(sizeof(float) * n * D), *v = malloc(sizeof(float) * V * n * D), *v2 = malloc(sizeof(float) * V * n * D);
    float *f2 = malloc(sizeof(float) * n * D);
    ca_encode_params p = ca_encode_default_params();
    p.views = V; p.seed = 3; p.batch = 2;
    uint64_t ids[4] = {10, 11, 12, 13};
    CHECK_MSG(ca_encode_images(model, paths, ids, n, &p, f, v, NULL) == CA_OK, "%s", ca_last_error());
    /* key = Tip-Adapter's build_cache_model: L2-normalised mean of the RAW view features;
     * each stored view is the normalised raw feature. Recomputed here from the encoder. */
    const int R = 64;
    float *img3 = malloc(sizeof(float) * 3 * R * R), raw[64];
    for (int i = 0; i < n; i++) {
        double m[64] = {0}, s = 0;
        ca_image *im = ca_image_load(paths[i], NULL, NULL);
        CHECK(im != NULL);
        for (int k = 0; im && k < V; k++) {
            CHECK(ca_augment(im, R, p.seed, ids[i], (uint64_t)k, img3) == CA_OK);
            CHECK(ca_model_encode_images(model, img3, 1, raw) == CA_OK);
            double nr = 0;
            for (int d = 0; d < D; d++) { m[d] += raw[d]; nr += (double)raw[d] * raw[d]; }
            for (int d = 0; d < D; d++) CHECK_NEAR(v[((size_t)k * n + i) * D + d], raw[d] / sqrt(nr), 1e-5);
        }
        ca_image_free(im);
        for (int d = 0; d < D; d++) s += m[d] * m[d];
        for (int d = 0; d < D; d++) CHECK_NEAR(f[i * D + d], m[d] / sqrt(s), 1e-5);
    }
    free(img3);
    /* views differ from each other; the same (seed, id) gives the same views in another order */
    CHECK(max_diff(v, v + (size_t)n * D, (size_t)n * D) > 1e-4);
    const char *rev[4] = {paths[3], paths[2], paths[1], paths[0]};
    uint64_t rids[4] = {13, 12, 11, 10};
    CHECK(ca_encode_images(model, rev, rids, n, &p, f2, v2, NULL) == CA_OK);
    for (int i = 0; i < n; i++) CHECK_NEAR(max_diff(f + i * D, f2 + (n - 1 - i) * D, D), 0, 1e-5);
    free(f); free(v); free(v2); free(f2);
}

/* ca_classify_image on a decoded image = softmax of the classifier on the batch feature. */
static void test_classify_matches_features(void) {
    int n = n_paths, D = 64, C = N_CLASSES;
    float *f = malloc(sizeof(float) * n * D);
    ca_encode_params p = ca_encode_default_params();
    CHECK(ca_encode_images(model, paths, NULL, n, &p, f, NULL, NULL) == CA_OK);
    /* a prototype classifier: class means of the features, as a text classifier would be */
    float W[N_CLASSES * 64] = {0};
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) W[(i / 6) * D + d] += f[i * D + d];
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)W[c * D + d] * W[c * D + d];
        for (int d = 0; d < D; d++) W[c * D + d] /= (float)sqrt(s);
    }
    ca_fit_data fd = {.num_classes = C, .dim = D, .text_w = W};
    ca_status st;
    ca_classifier *clf = ca_fit("zero-shot", &fd, NULL, &st);
    CHECK(clf != NULL);
    float lg[N_CLASSES], probs[N_CLASSES];
    for (int i = 0; clf && i < n; i++) {
        ca_image *img = ca_image_load(paths[i], NULL, &st);
        CHECK_MSG(img != NULL, "%s", ca_last_error());
        if (!img) continue;
        float one[64];
        CHECK(ca_image_features(model, img, one) == CA_OK);
        CHECK_NEAR(max_diff(one, f + i * D, D), 0, 1e-5);
        CHECK(ca_classify_image(model, clf, img, probs) == CA_OK);
        ca_classifier_logits(clf, f + i * D, 1, lg);
        double mx = fmax(lg[0], fmax(lg[1], lg[2])), s = 0, sp = 0;
        for (int c = 0; c < C; c++) s += exp(lg[c] - mx);
        for (int c = 0; c < C; c++) { CHECK_NEAR(probs[c], exp(lg[c] - mx) / s, 1e-5); sp += probs[c]; }
        CHECK_NEAR(sp, 1.0, 1e-5);
        ca_image_free(img);
    }
    /* a classifier of another dimension is refused */
    float W2[3 * 8] = {0};
    ca_fit_data fd2 = {.num_classes = 3, .dim = 8, .text_w = W2};
    ca_classifier *c2 = ca_fit("zero-shot", &fd2, NULL, &st);
    ca_image *img = ca_image_load(paths[0], NULL, &st);
    CHECK(c2 && img && ca_classify_image(model, c2, img, probs) == CA_E_SHAPE);
    ca_image_free(img);
    ca_classifier_free(c2);
    ca_classifier_free(clf);
    free(f);
}

static void test_text_classifier(void) {
    ca_status st;
    ca_tokenizer *tok = ca_tokenizer_load(th_shared(BPE), &st);
    CHECK_MSG(tok != NULL, "%s", ca_last_error());
    if (!tok) return;
    const char *names[2] = {"red circle", "sea lion"};
    int T;
    const char *const *tm = ca_templates_builtin("imagenet", &T);
    float W[2 * 64];
    CHECK_MSG(ca_text_classifier(model, tok, names, 2, tm, T, W) == CA_OK, "%s", ca_last_error());
    /* direct: tokenize each prompt, encode, normalise, mean, normalise */
    for (int c = 0; c < 2; c++) {
        int64_t toks[7 * 77];
        float emb[7 * 64], ref[64];
        char *texts[7];
        for (int t = 0; t < T; t++) texts[t] = ca_template_format(tm[t], names[c]);
        CHECK(ca_tokenize_batch(tok, (const char *const *)texts, T, 77, 0, toks) == CA_OK);
        CHECK(ca_model_encode_text(model, toks, T, emb) == CA_OK);
        ca_text_class_vector(emb, T, 64, ref);
        CHECK_NEAR(max_diff(ref, W + c * 64, 64), 0, 1e-6);
        for (int t = 0; t < T; t++) free(texts[t]);
    }
    /* a template without "{}" is refused */
    const char *badt[1] = {"no placeholder"};
    CHECK(ca_text_classifier(model, tok, names, 2, badt, 1, W) == CA_E_ARG);
    ca_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--make-images") == 0) return make_images(argv[2], atoi(argv[3])) ? 1 : 0;
    snprintf(img_dir, sizeof img_dir, "%s/images", th_tmpdir());
    if (make_images(img_dir, 6) != 0) { fprintf(stderr, "cannot write images\n"); return 1; }
    list_images();
    ca_status st;
    model = ca_model_load(th_shared(MODEL), NULL, &st);
    if (!model) {
        fprintf(stderr, "FAIL loading %s: %s\n", th_shared(MODEL), ca_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_encode_chunks_and_cache);
    RUN(test_encode_views);
    RUN(test_classify_matches_features);
    RUN(test_text_classifier);
    ca_model_free(model);
    TEST_END();
}
