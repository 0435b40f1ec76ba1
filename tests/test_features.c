/* test_features.c — feature-set loading and validation; zero-shot accuracy on stanford_cars;
 * the classifier container's save/load; sgemm against its naive oracle. */
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
    /* missing val split */
    w = ca_st_writer_new();
    ca_st_writer_add(w, "train.1shot.features", CA_DT_F32, 2, (int64_t[]){2, 4}, x);
    ca_st_writer_add(w, "train.1shot.labels", CA_DT_I64, 1, (int64_t[]){2}, y);
    ca_st_writer_save(w, p);
    ca_st_writer_free(w);
    CHECK(ca_features_load(p, &st) == NULL && st == CA_E_NOTFOUND);
    CHECK(strstr(ca_last_error(), "val.features") != NULL);
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

int main(void) {
    RUN(test_load_all_sets);
    RUN(test_zero_shot_cars);
    RUN(test_bad_feature_sets);
    RUN(test_sgemm_matches_oracle);
    TEST_END();
}
