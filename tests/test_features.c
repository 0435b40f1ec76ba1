/* test_features.c — feature-set loading and validation; writing feature sets and reading them
 * back; zero-shot accuracy on stanford_cars; the classifier container's save/load; sgemm
 * against its naive oracle. */
#include "adapt/adapt.h"
#include "model/gemm.h"
#include "harness.h"

static void test_load_all_sets(void) {
    const char *sets[] = {"stanford_cars", "caltech101", "oxford_pets", "oxford_flowers"};
    for (int i = 0; i < 4; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "features/%s.safetensors", sets[i]);
        ca_status st;
        ca_featureset *fs = ca_features_load(th_shared(rel), &st);
        CHECK_MSG(fs != NULL, "%s: %s", sets[i], ca_last_error());
        if (!fs) continue;
        int shots[8];
        CHECK_EQ_INT(ca_features_shots(fs, shots, 8), 5);
        CHECK(shots[0] == 1 && shots[4] == 16);
        CHECK_EQ_INT(ca_features_dim(fs), 512);
        ca_split tr;
        CHECK(ca_features_split(fs, "train.16shot", &tr) == CA_OK);
        CHECK_EQ_INT(tr.n, 16 * ca_features_num_classes(fs));
        CHECK((ca_features_text(fs) != NULL) == (i == 0));
        CHECK(ca_features_split(fs, "train.3shot", &tr) == CA_E_NOTFOUND);
        ca_features_free(fs);
    }
}

static void test_zero_shot_cars(void) {
    ca_featureset *fs = ca_features_load(th_shared("features/stanford_cars.safetensors"), NULL);
    CHECK(fs != NULL);
    if (!fs) return;
    CHECK_EQ_INT(ca_features_num_classes(fs), 196);
    ca_fit_data d = {.num_classes = 196, .dim = 512, .text_w = ca_features_text(fs)};
    ca_features_split(fs, "train.1shot", &d.train);
    ca_features_split(fs, "val", &d.val);
    ca_split te;
    ca_features_split(fs, "test", &te);
    ca_status st;
    ca_classifier *c = ca_fit("zero-shot", &d, NULL, &st);
    CHECK(c != NULL);
    float *lg = malloc(sizeof(float) * (size_t)te.n * 196);
    CHECK(ca_classifier_logits(c, te.x, te.n, lg) == CA_OK);
    double acc = ca_accuracy(lg, te.y, te.n, 196);
    CHECK_NEAR(acc, 58.17, 0.005);
    /* save / load gives identical logits */
    char path[1024];
    snprintf(path, sizeof path, "%s/zs.safetensors", th_tmpdir());
    CHECK(ca_classifier_save(c, path, NULL) == CA_OK);
    ca_classifier *c2 = ca_classifier_load(path, &st);
    CHECK_MSG(c2 != NULL, "%s", ca_last_error());
    float *lg2 = malloc(sizeof(float) * (size_t)te.n * 196);
    if (c2) {
        CHECK(ca_classifier_logits(c2, te.x, te.n, lg2) == CA_OK);
        CHECK(memcmp(lg, lg2, sizeof(float) * (size_t)te.n * 196) == 0);
        CHECK_STR(ca_classifier_method(c2), "zero-shot");
    }
    free(lg); free(lg2);
    ca_classifier_free(c); ca_classifier_free(c2);
    /* zero-shot without text weights is refused with a clear message */
    d.text_w = NULL;
    CHECK(ca_fit("zero-shot", &d, NULL, &st) == NULL && st == CA_E_ARG);
    CHECK(strstr(ca_last_error(), "text") != NULL);
    CHECK(ca_fit("no-such-method", &d, NULL, &st) == NULL && st == CA_E_NOTFOUND);
    ca_features_free(fs);
}

static void test_bad_feature_sets(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/fs_bad.safetensors", th_tmpdir());
    float x[8] = {0};
    int64_t y[2] = {0, 1}, ybad[2] = {0, -3};
    ca_status st;
    /* labels with the wrong length */
    ca_st_writer *w = ca_st_writer_new();
    ca_st_writer_add(w, "train.1shot.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "train.1shot.labels", CA_DT_I64, 1, (int64_t[]){1}, y);
    ca_st_writer_save(w, p);
    ca_st_writer_free(w);
    CHECK(ca_features_load(p, &st) == NULL && st == CA_E_SHAPE);
    CHECK(strstr(ca_last_error(), "train.1shot.labels") != NULL);
    /* missing test split (val is optional: a set without it serves --select none) */
    w = ca_st_writer_new();
    ca_st_writer_add(w, "train.1shot.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "train.1shot.labels", CA_DT_I64, 1, (int64_t[]){2}, y);
    ca_st_writer_save(w, p);
    ca_st_writer_free(w);
    CHECK(ca_features_load(p, &st) == NULL && st == CA_E_NOTFOUND);
    CHECK(strstr(ca_last_error(), "test.features") != NULL);
    /* train + test without val loads; its val split is reported missing */
    w = ca_st_writer_new();
    ca_st_writer_add(w, "train.1shot.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "train.1shot.labels", CA_DT_I64, 1, (int64_t[]){2}, y);
    ca_st_writer_add(w, "test.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "test.labels", CA_DT_I64, 1, (int64_t[]){2}, y);
    ca_st_writer_save(w, p);
    ca_st_writer_free(w);
    ca_featureset *nv = ca_features_load(p, &st);
    CHECK_MSG(nv != NULL, "%s", ca_last_error());
    ca_split vs;
    CHECK(nv && ca_features_split(nv, "val", &vs) == CA_E_NOTFOUND);
    ca_features_free(nv);
    /* half a val split: features without labels */
    w = ca_st_writer_new();
    ca_st_writer_add(w, "train.1shot.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "train.1shot.labels", CA_DT_I64, 1, (int64_t[]){2}, y);
    ca_st_writer_add(w, "val.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "test.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "test.labels", CA_DT_I64, 1, (int64_t[]){2}, y);
    ca_st_writer_save(w, p);
    ca_st_writer_free(w);
    CHECK(ca_features_load(p, &st) == NULL && st == CA_E_NOTFOUND);
    CHECK(strstr(ca_last_error(), "val.labels") != NULL);
    /* negative label */
    w = ca_st_writer_new();
    ca_st_writer_add(w, "train.1shot.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "train.1shot.labels", CA_DT_I64, 1, (int64_t[]){2}, ybad);
    ca_st_writer_save(w, p);
    ca_st_writer_free(w);
    CHECK(ca_features_load(p, &st) == NULL && st == CA_E_FORMAT);
    /* not a feature set at all */
    CHECK(ca_features_load(th_shared("testdata/models/rn-tiny.safetensors"), &st) == NULL && st == CA_E_NOTFOUND);
}

static void test_sgemm_matches_oracle(void) {
    ca_rng r = ca_rng_make(7, 0);
    int M = 37, N = 29, K = 53;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = (float)ca_rng_normal(&r);
    for (int i = 0; i < K * N; i++) B[i] = (float)ca_rng_normal(&r);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int i = 0; i < M * N; i++) C1[i] = C2[i] = (float)i * 0.01f;
            ca_sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 0.25f, C1, N);
            ca_sgemm_ref(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 0.25f, C2, N);
            double md = 0;
            for (int i = 0; i < M * N; i++) md = fmax(md, fabs(C1[i] - C2[i]));
            CHECK_NEAR(md, 0, 1e-4);
        }
    free(A); free(B); free(C1); free(C2);
}

/* Random features (n, D) with labels cycling through C classes. */
static void fill(ca_rng *r, float *x, int32_t *y, int n, int D, int C) {
    for (int i = 0; i < n * D; i++) x[i] = ca_rng_normal(r);
    for (int i = 0; y && i < n; i++) y[i] = (int32_t)((i * 7 + 3) % C);
}

/* Write every part of a feature set, load it back, compare: exact for F32, within half precision
 * for F16; metadata (class names, image paths, views, signature) survives too. */
static void test_writer_round_trip(void) {
    enum { C = 5, D = 12, V = 3, N1 = 5, N4 = 20, NV = 9, NT = 11 };
    for (int f16 = 0; f16 < 2; f16++) {
        ca_rng r = ca_rng_make(11 + f16, 0);
        float x1[N1 * D], v1[V * N1 * D], x4[N4 * D], xv[NV * D], xt[NT * D], text[C * D];
        int32_t y1[N1], y4[N4], yv[NV], yt[NT];
        fill(&r, x1, y1, N1, D, C); fill(&r, v1, NULL, V * N1, D, C); fill(&r, x4, y4, N4, D, C);
        fill(&r, xv, yv, NV, D, C); fill(&r, xt, yt, NT, D, C); fill(&r, text, NULL, C, D, C);
        const char *names[C] = {"red car", "blue car", "\"quoted\" van", "bus", "t\u00e9l\u00e9ph\u00e9rique"};
        const char *paths[N4]; /* the largest split */
        for (int i = 0; i < N4; i++) paths[i] = i % 2 ? "a/b.jpg" : "c d/e.png";
        ca_features_writer_params wp = ca_features_writer_default_params();
        wp.num_classes = C; wp.dim = D; wp.f16 = f16;
        ca_status st;
        ca_features_writer *w = ca_features_writer_new(&wp, &st);
        CHECK(w != NULL && st == CA_OK);
        if (!w) return;
        /* added out of K order: the reader sorts */
        CHECK(ca_features_writer_add_split(w, "train.4shot", x4, y4, N4, NULL, 0, paths) == CA_OK);
        CHECK(ca_features_writer_add_split(w, "train.1shot", x1, y1, N1, v1, V, paths) == CA_OK);
        CHECK(ca_features_writer_add_split(w, "val", xv, yv, NV, NULL, 0, paths) == CA_OK);
        CHECK(ca_features_writer_add_split(w, "test", xt, yt, NT, NULL, 0, paths) == CA_OK);
        CHECK(ca_features_writer_set_text(w, text) == CA_OK);
        CHECK(ca_features_writer_set_class_names(w, names) == CA_OK);
        CHECK(ca_features_writer_metadata(w, "model_signature", "clip-image:12:8:1,2") == CA_OK);
        char p[1024];
        snprintf(p, sizeof p, "%s/fs_rt%d.safetensors", th_tmpdir(), f16);
        CHECK(ca_features_writer_save(w, p) == CA_OK);
        ca_features_writer_free(w);

        ca_featureset *fs = ca_features_load(p, &st);
        CHECK_MSG(fs != NULL, "reload: %s", ca_last_error());
        if (!fs) return;
        CHECK_EQ_INT(ca_features_num_classes(fs), C);
        CHECK_EQ_INT(ca_features_dim(fs), D);
        int shots[4];
        CHECK_EQ_INT(ca_features_shots(fs, shots, 4), 2);
        CHECK(shots[0] == 1 && shots[1] == 4);
        for (int c = 0; c < C; c++) CHECK_STR(ca_features_class_name(fs, c), names[c]);
        CHECK_STR(ca_features_model_signature(fs), "clip-image:12:8:1,2");
        struct { const char *name; const float *x, *xv; const int32_t *y; int n, v; } want[] = {
            {"train.1shot", x1, v1, y1, N1, V}, {"train.4shot", x4, NULL, y4, N4, 0},
            {"val", xv, NULL, yv, NV, 0}, {"test", xt, NULL, yt, NT, 0}};
        double tol = f16 ? 2e-3 * 4 : 0; /* |x| < 4 at half precision: rel. 2^-11 */
        for (int k = 0; k < 4; k++) {
            ca_split sp;
            CHECK(ca_features_split(fs, want[k].name, &sp) == CA_OK);
            CHECK_EQ_INT(sp.n, want[k].n);
            CHECK_EQ_INT(sp.dim, D);
            CHECK_EQ_INT(sp.views, want[k].v);
            double err = 0;
            int bad_y = 0;
            for (int i = 0; i < want[k].n * D; i++) err = fmax(err, fabs(sp.x[i] - want[k].x[i]));
            for (int i = 0; i < want[k].v * want[k].n * D; i++) err = fmax(err, fabs(sp.xv[i] - want[k].xv[i]));
            for (int i = 0; i < want[k].n; i++) bad_y += sp.y[i] != want[k].y[i];
            CHECK_MSG(err <= tol, "split %s: max |diff| %.3g > %.3g", want[k].name, err, tol);
            CHECK_EQ_INT(bad_y, 0);
        }
        const float *tw = ca_features_text(fs);
        CHECK(tw && memcmp(tw, text, sizeof text) == 0); /* text.weights stays float32 */
        ca_features_free(fs);

        ca_st_file *f = ca_st_open(p, &st);
        CHECK(f != NULL);
        if (f) {
            CHECK_STR(ca_st_metadata(f, "format"), "clipadapt.features.v1");
            CHECK_STR(ca_st_metadata(f, "views"), "3");
            const char *ip = ca_st_metadata(f, "image_paths");
            CHECK(ip && strstr(ip, "\"train.1shot\":[\"c d/e.png\",\"a/b.jpg\"") != NULL);
            CHECK_STR(ca_dtype_name(ca_st_find(f, "val.features")->dtype), f16 ? "F16" : "F32");
            ca_st_close(f);
        }
    }
}

/* What the writer refuses, each with a message naming the problem; nothing is written. */
static void test_writer_rejects(void) {
    enum { C = 3, D = 4 };
    float x[2 * D] = {1, 2, 3, 4, 5, 6, 7, 8};
    int32_t y[2] = {0, 2}, ybad[2] = {0, 3};
    ca_features_writer_params wp = ca_features_writer_default_params();
    ca_status st;
    CHECK(ca_features_writer_new(&wp, &st) == NULL && st == CA_E_ARG); /* C = D = 0 */
    wp.num_classes = C; wp.dim = D;
    ca_features_writer *w = ca_features_writer_new(&wp, &st);
    CHECK(w != NULL);
    if (!w) return;
    CHECK(ca_features_writer_add_split(w, "train.0shot", x, y, 2, NULL, 0, NULL) == CA_E_ARG);
    CHECK(ca_features_writer_add_split(w, "train.2shots", x, y, 2, NULL, 0, NULL) == CA_E_ARG);
    CHECK(ca_features_writer_add_split(w, "validation", x, y, 2, NULL, 0, NULL) == CA_E_ARG);
    CHECK(ca_features_writer_add_split(w, "val", x, ybad, 2, NULL, 0, NULL) == CA_E_ARG);
    CHECK(strstr(ca_last_error(), "label 3") != NULL);
    CHECK(ca_features_writer_add_split(w, "val", x, y, 2, x, 1, NULL) == CA_E_ARG); /* views on val */
    CHECK(ca_features_writer_add_split(w, "train.2shot", x, y, 2, NULL, 1, NULL) == CA_E_ARG);
    CHECK(ca_features_writer_add_split(w, "train.2shot", x, y, 0, NULL, 0, NULL) == CA_E_ARG);
    float xn[2 * D] = {1, 2, 3, 4, 5, NAN, 7, 8};
    CHECK(ca_features_writer_add_split(w, "train.2shot", xn, y, 2, NULL, 0, NULL) == CA_E_ARG);
    CHECK(strstr(ca_last_error(), "non-finite") != NULL);
    CHECK(ca_features_writer_add_split(w, "train.2shot", x, y, 2, NULL, 0, NULL) == CA_OK);
    CHECK(ca_features_writer_add_split(w, "train.2shot", x, y, 2, NULL, 0, NULL) == CA_E_ARG); /* twice */
    CHECK(ca_features_writer_add_split(w, "val", x, y, 2, NULL, 0, NULL) == CA_OK);
    CHECK(ca_features_writer_add_split(w, "val", x, y, 2, NULL, 0, NULL) == CA_E_ARG);
    CHECK(ca_features_writer_metadata(w, "num_classes", "7") == CA_E_ARG);
    CHECK(ca_features_writer_metadata(w, "format", "x") == CA_E_ARG);
    char p[1024];
    snprintf(p, sizeof p, "%s/fs_incomplete.safetensors", th_tmpdir());
    remove(p);
    CHECK(ca_features_writer_save(w, p) == CA_E_ARG); /* no test split */
    CHECK(strstr(ca_last_error(), "test") != NULL);
    FILE *fp = fopen(p, "rb");
    CHECK(fp == NULL);
    if (fp) fclose(fp);
    CHECK(ca_features_writer_add_split(w, "test", x, y, 2, NULL, 0, NULL) == CA_OK);
    CHECK(ca_features_writer_save(w, p) == CA_OK);
    ca_featureset *fs = ca_features_load(p, &st);
    CHECK(fs != NULL && ca_features_num_classes(fs) == C && ca_features_text(fs) == NULL);
    ca_features_free(fs);
    ca_features_writer_free(w);
    ca_features_writer_free(NULL);
}

int main(void) {
    RUN(test_load_all_sets);
    RUN(test_zero_shot_cars);
    RUN(test_bad_feature_sets);
    RUN(test_writer_round_trip);
    RUN(test_writer_rejects);
    RUN(test_sgemm_matches_oracle);
    TEST_END();
}
