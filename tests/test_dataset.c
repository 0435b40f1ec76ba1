/* test_dataset.c — image-folder and CoOp split datasets, CoOp-identical few-shot sampling (goldens
 * from CPython's `random`), prompt templates, the text-classifier reduction, top-k, and the
 * feature-set loader's views aliases. Needs no model: everything here is model-free. */
#include "data/dataset.h"
#include "data/templates.h"
#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(2); }
    fputs(text, fp);
    fclose(fp);
}

static const char *tpath(const char *rel) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", th_tmpdir(), rel);
    return buf[k];
}

/* Goldens: python3 -c "import random; random.seed(S); print([random.getrandbits(32) for _ in range(3)])" */
static void test_pyrandom_matches_cpython(void) {
    struct { uint64_t seed; uint32_t v[3]; } g[] = {
        {1, {577090037u, 2444712010u, 3639700191u}},
        {2, {4106135923u, 3707026329u, 4070888059u}},
        {0, {3626764237u, 1654615998u, 3255389356u}},
        {12345678901ull, {4063089813u, 2562312935u, 1408749075u}},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        ca_pyrandom r;
        ca_pyrandom_seed(&r, g[i].seed);
        for (int j = 0; j < 3; j++) CHECK_EQ_INT(ca_pyrandom_u32(&r), g[i].v[j]);
    }
    /* random.seed(3); [random.randrange(1) for _ in range(2)], [random.randrange(1000) for _ in range(4)] */
    ca_pyrandom r;
    ca_pyrandom_seed(&r, 3);
    CHECK_EQ_INT(ca_pyrandom_below(&r, 1), 0);
    CHECK_EQ_INT(ca_pyrandom_below(&r, 1), 0);
    int want[4] = {378, 937, 618, 485};
    for (int j = 0; j < 4; j++) CHECK_EQ_INT(ca_pyrandom_below(&r, 1000), want[j]);
}

/* random.seed(1); random.sample(range(10),3), sample(range(100),16), sample(range(7),7), sample(range(200),5)
 * -> covers both of CPython's strategies (pool and rejection set) in one generator. */
static void test_sample_matches_cpython(void) {
    ca_pyrandom r;
    ca_pyrandom_seed(&r, 1);
    int out[16];
    int a[] = {2, 1, 4}, b[] = {15, 63, 97, 57, 60, 83, 48, 26, 12, 62, 3, 49, 55, 77, 98, 0}, c[] = {5, 3, 2, 1, 4, 0, 6},
        d[] = {7, 5, 6, 166, 138};
    CHECK(ca_pyrandom_sample(&r, 10, 3, out) == CA_OK);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(out[i], a[i]);
    CHECK(ca_pyrandom_sample(&r, 100, 16, out) == CA_OK);
    for (int i = 0; i < 16; i++) CHECK_EQ_INT(out[i], b[i]);
    CHECK(ca_pyrandom_sample(&r, 7, 7, out) == CA_OK);
    for (int i = 0; i < 7; i++) CHECK_EQ_INT(out[i], c[i]);
    CHECK(ca_pyrandom_sample(&r, 200, 5, out) == CA_OK);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(out[i], d[i]);
}

/* A split file whose train labels are 1,2,1,2,... (i*i+1 mod 4) and val labels (3i mod 4). */
static const char *write_split_file(void) {
    const char *p = tpath("split_zhou_toy.json");
    FILE *fp = fopen(p, "wb");
    fprintf(fp, "{\"train\": [");
    for (int i = 0; i < 40; i++) fprintf(fp, "%s[\"tr/%d.jpg\", %d, \"class %d\"]", i ? ", " : "", i, (i * i + 1) % 4, (i * i + 1) % 4);
    fprintf(fp, "], \"val\": [");
    for (int i = 0; i < 10; i++) fprintf(fp, "%s[\"va/%d.jpg\", %d, \"class %d\"]", i ? ", " : "", i, (i * 3) % 4, (i * 3) % 4);
    fprintf(fp, "], \"test\": [[\"te/0.jpg\", 3, \"class 3\"]]}");
    fclose(fp);
    return p;
}

/* Goldens from CoOp's generate_fewshot_dataset logic run in CPython on the same item lists:
 * seed 1: train K=4 then val K=3 from one generator; seed 7: train K=16. */
static void test_fewshot_matches_coop(void) {
    ca_status st;
    ca_dataset *ds = ca_dataset_from_split_file(write_split_file(), "/data/toy", &st);
    CHECK_MSG(ds != NULL, "%s", ca_last_error());
    if (!ds) return;
    CHECK_EQ_INT(ca_dataset_num_classes(ds), 4);
    CHECK_STR(ca_dataset_class_name(ds, 3), "class 3");
    CHECK_STR(ca_dataset_path(ds, CA_SPLIT_TRAIN, 5), "/data/toy/tr/5.jpg");
    CHECK_EQ_INT(ca_dataset_size(ds, CA_SPLIT_TEST), 1);
    int *ti, nt, *vi, nv;
    CHECK(ca_dataset_fewshot2(ds, 4, 3, 1, &ti, &nt, &vi, &nv) == CA_OK);
    int wt[] = {8, 36, 4, 16, 7, 31, 29, 37}, wv[] = {8, 4, 0, 1, 5, 9, 2, 6, 3, 7};
    CHECK_EQ_INT(nt, 8);
    CHECK_EQ_INT(nv, 10);
    for (int i = 0; i < 8 && i < nt; i++) CHECK_EQ_INT(ti[i], wt[i]);
    for (int i = 0; i < 10 && i < nv; i++) CHECK_EQ_INT(vi[i], wv[i]);
    free(ti); free(vi);
    int w16[] = {20, 8, 24, 2, 4, 26, 16, 32, 10, 18, 0, 28, 6, 38, 12, 14, 27, 5, 15, 37, 39, 1, 31, 19, 3, 7, 25, 29, 13, 17, 23, 35};
    CHECK(ca_dataset_fewshot(ds, CA_SPLIT_TRAIN, 16, 7, &ti, &nt) == CA_OK);
    CHECK_EQ_INT(nt, 32);
    for (int i = 0; i < 32 && i < nt; i++) CHECK_EQ_INT(ti[i], w16[i]);
    free(ti);
    CHECK(ca_dataset_fewshot(ds, CA_SPLIT_TRAIN, 0, 7, &ti, &nt) == CA_E_ARG);
    ca_dataset_free(ds);
}

static void test_split_file_errors(void) {
    struct { const char *json, *needle; } bad[] = {
        {"[1, 2]", "not a JSON object"},
        {"{\"val\": []}", "no \"train\""},
        {"{\"train\": [[\"a.jpg\", 0, \"x\"], [\"b.jpg\", \"0\", \"x\"]]}", "\"train\"[1]"},
        {"{\"train\": [[\"a.jpg\", 0, \"x\"], [\"b.jpg\", 0, \"y\"]]}", "named 'y'"},
        {"{\"train\": [[\"a.jpg\", 1.5, \"x\"]]}", "not an integer"},
        {"{\"train\": [[\"a.jpg\", -1, \"x\"]]}", "not an integer"},
        {"{\"train\": [[\"a.jpg\", 2, \"x\"]]}", "label 0 never occurs"},
        {"{\"train\": [[\"\", 0, \"x\"]]}", "empty image path"},
        {"{\"train\": []}", "empty"},
        {"{\"train\": [[\"a.jpg\", 0]]}", "expected [path, label, classname]"},
        {"{\"train\": [[\"a.jpg\", 0, \"x\"]], \"test\": 3}", "\"test\" must be an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ca_status st = CA_OK;
        ca_dataset *ds = ca_dataset_from_split_json(bad[i].json, strlen(bad[i].json), "s.json", "/r", &st);
        CHECK_MSG(ds == NULL && st == CA_E_FORMAT, "case %zu accepted", i);
        CHECK_MSG(strstr(ca_last_error(), bad[i].needle) && strstr(ca_last_error(), "s.json"), "case %zu: '%s' lacks '%s'", i,
                  ca_last_error(), bad[i].needle);
        ca_dataset_free(ds);
    }
    ca_status st;
    CHECK(ca_dataset_from_split_file(tpath("no-such.json"), "/r", &st) == NULL && st == CA_E_IO);
}

static void make_folder(const char *root, const char *const *classes, const int *counts, int nc) {
    mkdir(root, 0777);
    char p[1024];
    for (int c = 0; c < nc; c++) {
        snprintf(p, sizeof p, "%s/%s", root, classes[c]);
        mkdir(p, 0777);
        for (int i = 0; i < counts[c]; i++) {
            snprintf(p, sizeof p, "%s/%s/img_%02d.%s", root, classes[c], i, i % 2 ? "JPG" : "png");
            write_file(p, "x");
        }
    }
}

static void test_image_folder(void) {
    const char *root = tpath("folder");
    const char *cls[] = {"zebra", "aardvark", "sea_lion"};
    int cnt[] = {10, 5, 20};
    make_folder(root, cls, cnt, 3);
    char p[1024];
    snprintf(p, sizeof p, "%s/zebra/notes.txt", root); write_file(p, "not an image");
    snprintf(p, sizeof p, "%s/zebra/.hidden.jpg", root); write_file(p, "x");
    snprintf(p, sizeof p, "%s/README", root); write_file(p, "a file, not a class");
    ca_status st;
    ca_dataset *ds = ca_dataset_from_folder(root, NULL, &st);
    CHECK_MSG(ds != NULL, "%s", ca_last_error());
    if (!ds) return;
    CHECK_EQ_INT(ca_dataset_num_classes(ds), 3);
    CHECK_STR(ca_dataset_class_name(ds, 0), "aardvark");
    CHECK_STR(ca_dataset_class_name(ds, 1), "sea lion");
    CHECK_STR(ca_dataset_class_name(ds, 2), "zebra");
    CHECK_EQ_INT(ca_dataset_size(ds, CA_SPLIT_TRAIN), 35);
    CHECK_EQ_INT(ca_dataset_size(ds, CA_SPLIT_VAL), 0);
    snprintf(p, sizeof p, "%s/aardvark/img_01.JPG", root);
    CHECK_STR(ca_dataset_path(ds, CA_SPLIT_TRAIN, 1), p);
    CHECK_EQ_INT(ca_dataset_label(ds, CA_SPLIT_TRAIN, 34), 2);
    CHECK(ca_dataset_path(ds, CA_SPLIT_TRAIN, 35) == NULL);
    ca_dataset_free(ds);

    /* fractions: per class round(n·f), seeded, disjoint, ordered; same seed -> same split */
    ca_dataset_params dp = ca_dataset_default_params();
    dp.val_split = 0.2; dp.test_split = 0.3; dp.seed = 5;
    ca_dataset *a = ca_dataset_from_folder(root, &dp, &st), *b = ca_dataset_from_folder(root, &dp, &st);
    dp.seed = 6;
    ca_dataset *c = ca_dataset_from_folder(root, &dp, &st);
    CHECK(a && b && c);
    if (a && b && c) {
        CHECK_EQ_INT(ca_dataset_size(a, CA_SPLIT_TEST), 3 + 2 + 6);   /* round(10·.3), round(5·.3), round(20·.3) */
        CHECK_EQ_INT(ca_dataset_size(a, CA_SPLIT_VAL), 2 + 1 + 4);
        CHECK_EQ_INT(ca_dataset_size(a, CA_SPLIT_TRAIN), 35 - 11 - 7);
        int same = 1, differs = 0;
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < ca_dataset_size(a, s); i++) {
                same &= strcmp(ca_dataset_path(a, s, i), ca_dataset_path(b, s, i)) == 0;
                if (i > 0) CHECK(ca_dataset_label(a, s, i) >= ca_dataset_label(a, s, i - 1));
            }
        for (int i = 0; i < ca_dataset_size(a, CA_SPLIT_TEST); i++)
            differs |= strcmp(ca_dataset_path(a, CA_SPLIT_TEST, i), ca_dataset_path(c, CA_SPLIT_TEST, i)) != 0;
        CHECK(same);
        CHECK(differs);
        for (int i = 0; i < ca_dataset_size(a, CA_SPLIT_TEST); i++)
            for (int j = 0; j < ca_dataset_size(a, CA_SPLIT_TRAIN); j++)
                CHECK(strcmp(ca_dataset_path(a, CA_SPLIT_TEST, i), ca_dataset_path(a, CA_SPLIT_TRAIN, j)) != 0);
    }
    ca_dataset_free(a); ca_dataset_free(b); ca_dataset_free(c);

    /* too few images for the fractions */
    dp.val_split = 0.4; dp.test_split = 0.5;
    CHECK(ca_dataset_from_folder(root, &dp, &st) == NULL && st == CA_E_RANGE);
    CHECK(strstr(ca_last_error(), "aardvark") != NULL);
    dp.val_split = 0.7; dp.test_split = 0.5;
    CHECK(ca_dataset_from_folder(root, &dp, &st) == NULL && st == CA_E_ARG);

    /* separate test folder: a subset of the classes is fine, an unknown class is not */
    const char *troot = tpath("folder_test");
    const char *tcls[] = {"zebra"};
    int tcnt[] = {3};
    make_folder(troot, tcls, tcnt, 1);
    dp = ca_dataset_default_params();
    dp.test_dir = troot;
    ds = ca_dataset_from_folder(root, &dp, &st);
    CHECK_MSG(ds != NULL, "%s", ca_last_error());
    if (ds) {
        CHECK_EQ_INT(ca_dataset_size(ds, CA_SPLIT_TEST), 3);
        CHECK_EQ_INT(ca_dataset_label(ds, CA_SPLIT_TEST, 0), 2);
    }
    ca_dataset_free(ds);
    snprintf(p, sizeof p, "%s/unicorn", troot);
    mkdir(p, 0777);
    CHECK(ca_dataset_from_folder(root, &dp, &st) == NULL && st == CA_E_FORMAT);
    CHECK(strstr(ca_last_error(), "unicorn") != NULL);

    /* an empty class folder and a folder without classes are errors naming the folder */
    snprintf(p, sizeof p, "%s/empty", root);
    mkdir(p, 0777);
    CHECK(ca_dataset_from_folder(root, NULL, &st) == NULL && st == CA_E_FORMAT);
    CHECK(strstr(ca_last_error(), "empty") != NULL);
    rmdir(p);
    snprintf(p, sizeof p, "%s/zebra", root);
    CHECK(ca_dataset_from_folder(p, NULL, &st) == NULL && st == CA_E_FORMAT);
    CHECK(ca_dataset_from_folder(tpath("missing"), NULL, &st) == NULL && st == CA_E_IO);
}

/* Nested folders belong to their top-level class (any depth, links followed, each folder once:
 * a link loop ends); hidden files and folders are skipped; paths sorted relative to the class. */
static void test_nested_folder(void) {
    const char *root = tpath("nested");
    char p[1024];
    const char *dirs[] = {"", "/cat", "/cat/indoor", "/cat/indoor/deep", "/cat/.cache", "/dog", "/dog/x"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) { snprintf(p, sizeof p, "%s%s", root, dirs[i]); mkdir(p, 0777); }
    const char *files[] = {"/cat/b.jpg", "/cat/indoor/a.png", "/cat/indoor/deep/c.tif", "/cat/.cache/h.jpg",
                           "/cat/indoor/.d.jpg", "/cat/z.txt", "/dog/x/y.ppm", "/dog/a.jpg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) { snprintf(p, sizeof p, "%s%s", root, files[i]); write_file(p, "x"); }
    char target[1024];
    snprintf(target, sizeof target, "%s/cat", root);
    snprintf(p, sizeof p, "%s/cat/indoor/deep/loop", root);
    symlink(target, p);                                   /* a loop back to the class folder */
    snprintf(p, sizeof p, "%s/dog/alias", root);
    snprintf(target, sizeof target, "%s/dog/x", root);
    symlink(target, p);                                   /* a second name for dog/x: walked once */
    ca_status st;
    ca_dataset *ds = ca_dataset_from_folder(root, NULL, &st);
    CHECK_MSG(ds != NULL, "%s", ca_last_error());
    if (!ds) return;
    CHECK_EQ_INT(ca_dataset_num_classes(ds), 2);
    CHECK_EQ_INT(ca_dataset_size(ds, CA_SPLIT_TRAIN), 5);
    const char *want[] = {"/cat/b.jpg", "/cat/indoor/a.png", "/cat/indoor/deep/c.tif", "/dog/a.jpg", "/dog/alias/y.ppm"};
    for (int i = 0; i < 5 && i < ca_dataset_size(ds, CA_SPLIT_TRAIN); i++) {
        snprintf(p, sizeof p, "%s%s", root, want[i]);
        CHECK_STR(ca_dataset_path(ds, CA_SPLIT_TRAIN, i), p);
    }
    ca_dataset_free(ds);
    /* the split of the other files does not move when one file goes away (per-file ranks) */
    const char *sroot = tpath("stable");
    const char *cls[] = {"a", "b"};
    int cnt[] = {40, 23};
    make_folder(sroot, cls, cnt, 2);
    ca_dataset_params dp = ca_dataset_default_params();
    dp.val_split = 0.25; dp.test_split = 0.25;
    ca_dataset *x = ca_dataset_from_folder(sroot, &dp, &st);
    snprintf(p, sizeof p, "%s/a/img_07.JPG", sroot);
    remove(p);
    ca_dataset *y = ca_dataset_from_folder(sroot, &dp, &st);
    CHECK(x && y);
    if (x && y) {
        int moved = 0;
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < ca_dataset_size(y, s); i++) {
                int found = 0;
                for (int j = 0; j < ca_dataset_size(x, s) && !found; j++)
                    found = !strcmp(ca_dataset_path(x, s, j), ca_dataset_path(y, s, i));
                moved += !found;
            }
        CHECK_MSG(moved <= 2, "%d files changed split after removing one", moved);
    }
    ca_dataset_free(x); ca_dataset_free(y);
}

static void test_templates(void) {
    int n;
    const char *const *t = ca_templates_builtin("imagenet", &n);
    CHECK(t != NULL && n == 7);
    if (t) CHECK_STR(t[0], "itap of a {}.");
    CHECK(ca_templates_builtin("stanford_cars8", &n) && n == 8);
    CHECK(ca_templates_builtin("nope", &n) == NULL && n == 0);
    /* every built-in set is valid */
    for (const char *const *s = ca_template_set_names(); *s; s++) {
        t = ca_templates_builtin(*s, &n);
        CHECK(t && n >= 1);
        for (int i = 0; t && i < n; i++) {
            char *f = ca_template_format(t[i], "cat");
            CHECK_MSG(f && strstr(f, "cat") && !strstr(f, "{}"), "set %s template %d", *s, i);
            free(f);
        }
    }
    char *f = ca_template_format("a photo of a {}, a type of pet.", "sea lion");
    CHECK_STR(f, "a photo of a sea lion, a type of pet.");
    free(f);
    CHECK(ca_template_format("no field", "x") == NULL);
    CHECK(ca_template_format("{} and {}", "x") == NULL);

    ca_status st;
    char **v = ca_templates_load("oxford_pets", &n, &st);
    CHECK(v && n == 1);
    ca_templates_free(v, n);
    const char *p = tpath("tmpl.txt");
    write_file(p, "# my prompts\n\na photo of a {}.\r\n  a blurry photo of the {}.  \n");
    v = ca_templates_load(p, &n, &st);
    CHECK_MSG(v && n == 2, "%s", ca_last_error());
    if (v && n == 2) { CHECK_STR(v[0], "a photo of a {}."); CHECK_STR(v[1], "a blurry photo of the {}."); }
    ca_templates_free(v, n);
    write_file(p, "a photo of a {}.\nno placeholder here\n");
    CHECK(ca_templates_load(p, &n, &st) == NULL && st == CA_E_FORMAT);
    CHECK(strstr(ca_last_error(), ":2:") != NULL);
    write_file(p, "# only a comment\n");
    CHECK(ca_templates_load(p, &n, &st) == NULL && st == CA_E_FORMAT);
    CHECK(ca_templates_load(tpath("none.txt"), &n, &st) == NULL && st == CA_E_NOTFOUND);
}

/* Per class: mean of the row-normalised embeddings, re-normalised — checked in double. */
static void test_text_class_vector(void) {
    ca_rng r = ca_rng_make(3, 0);
    enum { T = 5, D = 16 };
    float emb[T * D], out[D];
    for (int i = 0; i < T * D; i++) emb[i] = (float)ca_rng_normal(&r) * (1 + i / D);
    ca_text_class_vector(emb, T, D, out);
    double ref[D] = {0}, nn = 0, maxd = 0;
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)emb[t * D + d] * emb[t * D + d];
        for (int d = 0; d < D; d++) ref[d] += emb[t * D + d] / sqrt(s) / T;
    }
    for (int d = 0; d < D; d++) nn += ref[d] * ref[d];
    for (int d = 0; d < D; d++) maxd = fmax(maxd, fabs(out[d] - ref[d] / sqrt(nn)));
    CHECK_NEAR(maxd, 0, 1e-6);
    /* scaling one prompt's embedding must not change the result (each is normalised first) */
    float out2[D];
    for (int d = 0; d < D; d++) emb[2 * D + d] *= 1000.f;
    ca_text_class_vector(emb, T, D, out2);
    for (int d = 0; d < D; d++) CHECK_NEAR(out2[d], out[d], 1e-5);
}

static void test_top_k(void) {
    float v[6] = {0.1f, 0.5f, 0.2f, 0.5f, 0.05f, 0.9f};
    int idx[6];
    ca_top_k(v, 6, 4, idx);
    CHECK_EQ_INT(idx[0], 5);
    CHECK_EQ_INT(idx[1], 1);   /* tie: lower index first */
    CHECK_EQ_INT(idx[2], 3);
    CHECK_EQ_INT(idx[3], 2);
}

/* "train.views" is read as the views of the only train split; with two train splits it is not. */
static void test_features_views_alias(void) {
    const char *p = tpath("views.safetensors");
    float x[4 * 2], xv[3 * 4 * 2];
    for (int i = 0; i < 8; i++) x[i] = (float)(i + 1);
    for (int i = 0; i < 24; i++) xv[i] = (float)(100 + i);
    int64_t y[4] = {0, 1, 0, 1};
    ca_st_writer *w = ca_st_writer_new();
    ca_st_writer_add(w, "train.2shot.features", CA_DT_F32, 2, (int64_t[]){4, 2}, x);
    ca_st_writer_add(w, "train.2shot.labels", CA_DT_I64, 1, (int64_t[]){4}, y);
    ca_st_writer_add(w, "train.views", CA_DT_F32, 3, (int64_t[]){3, 4, 2}, xv);
    for (int s = 0; s < 2; s++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "%s.features", s ? "test" : "val");
        snprintf(n2, sizeof n2, "%s.labels", s ? "test" : "val");
        ca_st_writer_add(w, n1, CA_DT_F32, 2, (int64_t[]){4, 2}, x);
        ca_st_writer_add(w, n2, CA_DT_I64, 1, (int64_t[]){4}, y);
    }
    CHECK(ca_st_writer_save(w, p) == CA_OK);
    ca_status st;
    ca_featureset *fs = ca_features_load(p, &st);
    CHECK_MSG(fs != NULL, "%s", ca_last_error());
    ca_split sp;
    if (fs && ca_features_split(fs, "train.2shot", &sp) == CA_OK) {
        CHECK_EQ_INT(sp.views, 3);
        CHECK(sp.xv && sp.xv[23] == 123.f);
    } else {
        CHECK(0);
    }
    ca_features_free(fs);
    /* a second train split: the alias is ambiguous and ignored */
    ca_st_writer_add(w, "train.1shot.features", CA_DT_F32, 2, (int64_t[]){2, 2}, x);
    ca_st_writer_add(w, "train.1shot.labels", CA_DT_I64, 1, (int64_t[]){2}, y);
    CHECK(ca_st_writer_save(w, p) == CA_OK);
    ca_st_writer_free(w);
    fs = ca_features_load(p, &st);
    CHECK(fs != NULL);
    if (fs && ca_features_split(fs, "train.2shot", &sp) == CA_OK) CHECK_EQ_INT(sp.views, 0);
    ca_features_free(fs);
}

int main(void) {
    RUN(test_pyrandom_matches_cpython);
    RUN(test_sample_matches_cpython);
    RUN(test_fewshot_matches_coop);
    RUN(test_split_file_errors);
    RUN(test_nested_folder);
    RUN(test_image_folder);
    RUN(test_templates);
    RUN(test_text_class_vector);
    RUN(test_top_k);
    RUN(test_features_views_alias);
    TEST_END();
}
