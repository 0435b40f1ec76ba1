/* test_protocol.c — the few-shot protocol (issue 16): K-shot resampling from the largest split,
 * the kshot-val and none selection regimes, every registered method without val, seeds with
 * mean ± sample std in the reports, byte-identical JSON without timings, and per-class prompt
 * files (parsing, lookup, and the text classifier equal to the same prompts given as templates). */
#include "harness.h"
#include "adapt/adapt.h"
#include "data/templates.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>

#define C_ 6
#define D_ 16
#define POOL 16
#define NV 5            /* val images per class */
#define NT 20           /* test images per class */
#define V_ 3            /* augmented views */

static char feats_path[600], noval_path[600], emptyval_path[600];

/* Class c has a random unit mean; samples are the mean plus noise, re-normalised. */
static void sample(uint64_t *s, const float *mu, float *x) {
    for (int k = 0; k < D_; k++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        x[k] = mu[k] + 0.35f * ((float)((*s >> 33) & 0xffff) / 65536.0f - 0.5f);
    }
    ca_l2_normalize(x, D_);
}

/* train.16shot (with views, row = class-major order shuffled), train.4shot, val, test, text.
 * val_rows: NV per class as usual, 0 for a val of shape [0, D], -1 for no val.* tensors at all. */
static int make_features(const char *path, int val_rows) {
    static float mu[C_][D_], tr[C_ * POOL][D_], trv[V_][C_ * POOL][D_], t4[C_ * 4][D_], va[C_ * NV][D_], te[C_ * NT][D_], tw[C_][D_];
    static int64_t ytr[C_ * POOL], y4[C_ * 4], yva[C_ * NV], yte[C_ * NT];
    uint64_t s = 12345;
    for (int c = 0; c < C_; c++) {
        for (int k = 0; k < D_; k++) { s = s * 6364136223846793005ull + 1; mu[c][k] = (float)((s >> 33) & 0xffff) / 65536.0f - 0.5f; }
        ca_l2_normalize(mu[c], D_);
        for (int k = 0; k < D_; k++) tw[c][k] = mu[c][k];
    }
    for (int i = 0; i < C_ * POOL; i++) {
        int c = (i * 7) % C_;      /* interleaved classes: the draw must not rely on row order */
        ytr[i] = c; sample(&s, mu[c], tr[i]);
        for (int v = 0; v < V_; v++) { for (int k = 0; k < D_; k++) trv[v][i][k] = tr[i][k] + 0.01f * (float)(v + 1); }
    }
    for (int i = 0; i < C_ * 4; i++) { y4[i] = i % C_; sample(&s, mu[i % C_], t4[i]); }
    for (int i = 0; i < C_ * NV; i++) { yva[i] = i % C_; sample(&s, mu[i % C_], va[i]); }
    for (int i = 0; i < C_ * NT; i++) { yte[i] = i % C_; sample(&s, mu[i % C_], te[i]); }
    ca_st_writer *w = ca_st_writer_new();
    ca_status st = CA_OK;
#define ADD(name, dt, nd, shp, ptr) if (st == CA_OK) st = ca_st_writer_add(w, name, dt, nd, (int64_t[])shp, ptr)
#define S(...) {__VA_ARGS__}
    ADD("train.16shot.features", CA_DT_F32, 2, S(C_ * POOL, D_), tr);
    ADD("train.16shot.labels", CA_DT_I64, 1, S(C_ * POOL), ytr);
    ADD("train.16shot.views", CA_DT_F32, 3, S(V_, C_ * POOL, D_), trv);
    ADD("train.4shot.features", CA_DT_F32, 2, S(C_ * 4, D_), t4);
    ADD("train.4shot.labels", CA_DT_I64, 1, S(C_ * 4), y4);
    if (val_rows >= 0) {
        ADD("val.features", CA_DT_F32, 2, S(C_ * val_rows, D_), va);
        ADD("val.labels", CA_DT_I64, 1, S(C_ * val_rows), yva);
    }
    ADD("test.features", CA_DT_F32, 2, S(C_ * NT, D_), te);
    ADD("test.labels", CA_DT_I64, 1, S(C_ * NT), yte);
    ADD("text.weights", CA_DT_F32, 2, S(C_, D_), tw);
#undef ADD
#undef S
    if (st == CA_OK) st = ca_st_writer_save(w, path);
    ca_st_writer_free(w);
    return st == CA_OK;
}

/* Which pool rows a drawn training split holds (features equal bit for bit), -1 if none. */
static int pool_row(const ca_split *pool, const float *x) {
    for (int i = 0; i < pool->n; i++)
        if (!memcmp(pool->x + (size_t)i * D_, x, sizeof(float) * D_)) return i;
    return -1;
}

/* The classifier's training rows are not exposed; prototype's stored class means are, so a
 * prototype fit reveals the drawn rows only indirectly. Tip's cache keys are the rows. */
static void test_resample(void) {
    ca_status st;
    ca_featureset *fs = ca_features_load(feats_path, &st);
    CHECK_MSG(fs != NULL, "%s", ca_last_error());
    if (!fs) return;
    ca_split pool;
    CHECK(ca_features_split(fs, "train.16shot", &pool) == CA_OK);
    ca_fit_params p = ca_fit_default_params();
    p.search_steps_beta = 4; p.search_steps_alpha = 2;
    ca_protocol pr = ca_protocol_default_params();
    ca_run_result r4, r2, r4b, rf;
    p.seed = 7;
    CHECK(ca_run_fewshot_protocol(fs, "tip-adapter", 4, &p, &pr, &r4) == CA_OK);
    CHECK(ca_run_fewshot_protocol(fs, "tip-adapter", 2, &p, &pr, &r2) == CA_OK);
    p.seed = 8;
    CHECK(ca_run_fewshot_protocol(fs, "tip-adapter", 4, &p, &pr, &r4b) == CA_OK);
    pr.sample = CA_SAMPLE_FIXED;
    CHECK(ca_run_fewshot_protocol(fs, "tip-adapter", 4, &p, &pr, &rf) == CA_OK);
    CHECK(r4.resampled == 1 && r2.resampled == 1 && rf.resampled == 0);
    CHECK_EQ_INT(r4.train_n, C_ * 4);
    CHECK_EQ_INT(r2.train_n, C_ * 2);
    CHECK_EQ_INT(r4.seed, 7);
    /* keys of the 4-shot cache: pool rows, 4 per class, with their labels */
    const float *k4 = ca_clf_get_tensor(r4.clf, "keys", (int64_t)C_ * 4 * D_);
    const float *k2 = ca_clf_get_tensor(r2.clf, "keys", (int64_t)C_ * 2 * D_);
    const float *kb = ca_clf_get_tensor(r4b.clf, "keys", (int64_t)C_ * 4 * D_);
    const float *kf = ca_clf_get_tensor(rf.clf, "keys", (int64_t)C_ * 4 * D_);
    CHECK(k4 && k2 && kb && kf);
    if (k4 && k2 && kb && kf) {
        int per[C_] = {0}, rows4[C_ * 4], same = 0, nested = 1, in_pool_f = 0;
        for (int j = 0; j < C_ * 4; j++) {
            rows4[j] = pool_row(&pool, k4 + (size_t)j * D_);
            CHECK(rows4[j] >= 0);
            if (rows4[j] >= 0) per[pool.y[rows4[j]]]++;
            if (j > 0) CHECK(rows4[j] > rows4[j - 1]);             /* pool order kept */
            if (!memcmp(k4 + (size_t)j * D_, kb + (size_t)j * D_, sizeof(float) * D_)) same++;
            in_pool_f += pool_row(&pool, kf + (size_t)j * D_) >= 0;
        }
        for (int c = 0; c < C_; c++) CHECK_EQ_INT(per[c], 4);
        CHECK_MSG(same < C_ * 4, "seeds 7 and 8 drew the same 4-shot sample");
        CHECK_MSG(in_pool_f == 0, "--sample fixed must use the stored train.4shot split");
        for (int j = 0; j < C_ * 2; j++) {                          /* K=2 of seed 7 ⊂ K=4 of seed 7 */
            int r = pool_row(&pool, k2 + (size_t)j * D_), hit = 0;
            for (int i = 0; i < C_ * 4; i++) hit |= rows4[i] == r;
            nested &= hit;
        }
        CHECK_MSG(nested, "the K-shot samples of one seed are not nested");
    }
    ca_run_free(&r4); ca_run_free(&r2); ca_run_free(&r4b); ca_run_free(&rf);
    ca_features_free(fs);
}

static void test_selection_regimes(void) {
    ca_status st;
    ca_featureset *fs = ca_features_load(feats_path, &st);
    if (!fs) { CHECK(0); return; }
    ca_fit_params p = ca_fit_default_params();
    p.epochs = 3; p.search_steps_beta = 8; p.search_steps_alpha = 4;
    ca_protocol pr = ca_protocol_default_params();
    ca_run_result r;
    pr.select = CA_SELECT_KSHOT_VAL;
    const int kss[3] = {1, 4, 16};
    for (int i = 0; i < 3; i++) {
        int kk = kss[i];
        CHECK(ca_run_fewshot_protocol(fs, "tip-adapter", kk, &p, &pr, &r) == CA_OK);
        int per = kk < 4 ? kk : 4;
        CHECK_EQ_INT(r.val_n, C_ * per);
        CHECK(isfinite(r.val_acc));
        ca_run_free(&r);
    }
    pr.select = CA_SELECT_VAL;
    CHECK(ca_run_fewshot_protocol(fs, "tip-adapter", 4, &p, &pr, &r) == CA_OK);
    CHECK_EQ_INT(r.val_n, C_ * NV);
    ca_run_free(&r);
    /* none: every registered method fits without val, or refuses with CA_E_ARG and a message;
     * what fits is finite and above chance */
    pr.select = CA_SELECT_NONE;
    for (const char *const *m = ca_method_names(); *m; m++) {
        st = ca_run_fewshot_protocol(fs, *m, 4, &p, &pr, &r);
        if (st == CA_E_ARG) { CHECK_MSG(strlen(ca_last_error()) > 0, "%s refused without a message", *m); continue; }
        CHECK_MSG(st == CA_OK, "%s under select none: %s", *m, ca_last_error());
        if (st != CA_OK) continue;
        CHECK_EQ_INT(r.val_n, 0);
        CHECK_MSG(isnan(r.val_acc), "%s: val_acc %g without val", *m, r.val_acc);
        CHECK_MSG(isfinite(r.test_acc) && r.test_acc > 100.0 / C_ + 10, "%s: test %.2f%% without val", *m, r.test_acc);
        ca_run_free(&r);
    }
    /* a ratio search has nothing to search on: refused, not faked */
    p.ratio_mode = 1;
    CHECK(ca_run_fewshot_protocol(fs, "clip-adapter", 4, &p, &pr, &r) == CA_E_ARG);
    CHECK(strstr(ca_last_error(), "search") != NULL);
    ca_features_free(fs);
}

/* The same seeds twice: byte-identical JSON without timings; the aggregate as documented. */
static void test_seeds_deterministic(void) {
    ca_status st;
    ca_featureset *fs = ca_features_load(feats_path, &st);
    if (!fs) { CHECK(0); return; }
    const char *methods[] = {"tip-adapter-f", "clip-adapter", "linear-probe", "gda-zs"};
    char *js[2];
    ca_report_params rp = ca_report_default_params();
    rp.timings = 0; rp.aggregate = 1;
    for (int rep = 0; rep < 2; rep++) {
        ca_run_result runs[3 * 4];
        int n = 0;
        ca_fit_params p = ca_fit_default_params();
        p.epochs = 4; p.threads = 2; p.search_steps_beta = 8; p.search_steps_alpha = 4;
        ca_protocol pr = ca_protocol_default_params();
        pr.select = CA_SELECT_KSHOT_VAL;
        for (uint64_t s = 1; s <= 3; s++)
            for (int m = 0; m < 4; m++) {
                p.seed = s;
                CHECK_MSG(ca_run_fewshot_protocol(fs, methods[m], 4, &p, &pr, &runs[n]) == CA_OK, "%s", ca_last_error());
                n++;
            }
        js[rep] = ca_report_json_ex(runs, n, &rp);
        for (int i = 0; i < n; i++) ca_run_free(&runs[i]);
    }
    CHECK(js[0] && js[1] && !strcmp(js[0], js[1]));
    CHECK(js[0] && !strstr(js[0], "seconds"));
    cJSON *o = js[0] ? cJSON_Parse(js[0]) : NULL;
    CHECK(o && cJSON_GetArraySize(cJSON_GetObjectItem(o, "runs")) == 12);
    CHECK(o && cJSON_GetArraySize(cJSON_GetObjectItem(o, "aggregate")) == 4);
    CHECK(o && cJSON_GetArraySize(cJSON_GetObjectItem(o, "seeds")) == 3);
    cJSON_Delete(o);
    free(js[0]); free(js[1]);
    ca_features_free(fs);
}

/* The newer methods and GDA's published estimator, at their default recipes: the same seeds
 * twice give byte-identical JSON (threads fixed) under both validation regimes; other seeds
 * change it. */
static void test_seeds_deterministic_new(void) {
    ca_status st;
    ca_featureset *fs = ca_features_load(feats_path, &st);
    if (!fs) { CHECK(0); return; }
    const char *methods[] = {"lp++", "zs-lp", "clap", "taskres", "proker", "ape", "gda", "gda-zs"};
    enum { NM = sizeof methods / sizeof *methods };
    const uint64_t seedsets[3][2] = {{1, 2}, {1, 2}, {2, 3}};
    ca_report_params rp = ca_report_default_params();
    rp.timings = 0; rp.aggregate = 1;
    for (int sel = CA_SELECT_VAL; sel <= CA_SELECT_KSHOT_VAL; sel++) {
        char *js[3];
        for (int rep = 0; rep < 3; rep++) {
            ca_run_result runs[2 * NM];
            int n = 0;
            ca_fit_params p = ca_fit_default_params();
            p.threads = 2;
            p.covariance = CA_COV_KS;     /* gda, gda-zs as published; the tuned one is above */
            ca_protocol pr = ca_protocol_default_params();
            pr.select = sel;
            for (int s = 0; s < 2; s++)
                for (int m = 0; m < NM; m++) {
                    p.seed = seedsets[rep][s];
                    st = ca_run_fewshot_protocol(fs, methods[m], 4, &p, &pr, &runs[n]);
                    CHECK_MSG(st == CA_OK, "%s: %s", methods[m], ca_last_error());
                    if (st == CA_OK) n++;
                }
            js[rep] = ca_report_json_ex(runs, n, &rp);
            for (int i = 0; i < n; i++) ca_run_free(&runs[i]);
        }
        CHECK_MSG(js[0] && js[1] && !strcmp(js[0], js[1]), "select %s: the same seeds gave different JSON", ca_select_name(sel));
        CHECK_MSG(js[0] && js[2] && strcmp(js[0], js[2]), "select %s: seeds 2,3 gave the JSON of seeds 1,2", ca_select_name(sel));
        for (int rep = 0; rep < 3; rep++) free(js[rep]);
    }
    ca_features_free(fs);
}

/* A set without validation data (no val.* tensors, or a val of 0 rows) loads and serves every
 * method under --select none; val and kshot-val refuse it with a message naming the file. */
static void test_no_val(void) {
    const char *paths[2] = {noval_path, emptyval_path};
    for (int f = 0; f < 2; f++) {
        ca_status st;
        ca_featureset *fs = ca_features_load(paths[f], &st);
        CHECK_MSG(fs != NULL, "%s: %s", paths[f], ca_last_error());
        if (!fs) continue;
        ca_split v;
        if (f == 0) CHECK(ca_features_split(fs, "val", &v) == CA_E_NOTFOUND);
        else CHECK(ca_features_split(fs, "val", &v) == CA_OK && v.n == 0);
        ca_fit_params p = ca_fit_default_params();
        p.epochs = 3;
        ca_protocol pr = ca_protocol_default_params();
        ca_run_result r;
        pr.select = CA_SELECT_NONE;
        for (const char *const *m = ca_method_names(); *m; m++) {
            st = ca_run_fewshot_protocol(fs, *m, 4, &p, &pr, &r);
            CHECK_MSG(st == CA_OK, "%s without val under select none: %s", *m, ca_last_error());
            if (st != CA_OK) continue;
            CHECK_EQ_INT(r.val_n, 0);
            CHECK_MSG(isfinite(r.test_acc) && r.test_acc > 100.0 / C_ + 10, "%s: test %.2f%% without val", *m, r.test_acc);
            ca_run_free(&r);
        }
        /* fit straight on the set: no val, so the fixed values */
        ca_classifier *c = ca_fit_features("tip-adapter", fs, 4, &p, &st);
        CHECK_MSG(c != NULL, "ca_fit_features without val: %s", ca_last_error());
        ca_classifier_free(c);
        for (int sel = CA_SELECT_VAL; sel <= CA_SELECT_KSHOT_VAL; sel++) {
            pr.select = sel;
            st = ca_run_fewshot_protocol(fs, "prototype", 4, &p, &pr, &r);
            CHECK_MSG(st == CA_E_ARG, "select %s without val: status %d", ca_select_name(sel), st);
            CHECK_MSG(strstr(ca_last_error(), paths[f]) && strstr(ca_last_error(), "no validation split"),
                      "message: %s", ca_last_error());
        }
        ca_features_free(fs);
    }
}

/* Reports on hand-made results: mean, sample std, table cells, error bars, timings switch. */
static void test_aggregate_reports(void) {
    ca_run_result r[6];
    memset(r, 0, sizeof r);
    const double acc[3] = {72.0, 72.3, 72.6};
    for (int i = 0; i < 6; i++) {
        r[i].method = i < 3 ? "tip-adapter" : "zero-shot";
        r[i].shots = 4; r[i].seed = (uint64_t)(i % 3) + 1;
        r[i].test_acc = i < 3 ? acc[i] : 58.17;
        r[i].val_acc = i < 3 ? 70 + i : NAN;
        r[i].seconds = 1.5 + i;
        r[i].select = CA_SELECT_KSHOT_VAL;
    }
    char *t = ca_report_table(r, 6);
    CHECK_MSG(t && strstr(t, "72.30 ±  0.30"), "table: %s", t ? t : "(null)");   /* sample std: 0.3 */
    CHECK(t && strstr(t, "58.17 ±  0.00"));
    CHECK(t && strstr(t, "3 seeds") && strstr(t, "kshot-val"));
    free(t);
    ca_report_params rp = ca_report_default_params();
    char *js = ca_report_json_ex(r, 6, &rp);
    cJSON *o = js ? cJSON_Parse(js) : NULL;
    cJSON *a0 = o ? cJSON_GetArrayItem(cJSON_GetObjectItem(o, "aggregate"), 0) : NULL;
    CHECK(a0 != NULL);
    if (a0) {
        CHECK_NEAR(cJSON_GetObjectItem(a0, "test_mean")->valuedouble, 72.3, 1e-9);
        CHECK_NEAR(cJSON_GetObjectItem(a0, "test_std")->valuedouble, 0.3, 1e-9);
        CHECK_NEAR(cJSON_GetObjectItem(a0, "val_std")->valuedouble, 1.0, 1e-9);
        CHECK_EQ_INT(cJSON_GetObjectItem(a0, "n_seeds")->valueint, 3);
    }
    cJSON *a1 = o ? cJSON_GetArrayItem(cJSON_GetObjectItem(o, "aggregate"), 1) : NULL;
    CHECK(a1 && cJSON_IsNull(cJSON_GetObjectItem(a1, "val_mean")));
    CHECK(js && strstr(js, "\"seconds\""));
    cJSON_Delete(o); free(js);
    rp.timings = 0;
    js = ca_report_json_ex(r, 6, &rp);
    CHECK(js && !strstr(js, "seconds"));
    free(js);
    char *svg = ca_plot_svg(r, 6, "t");
    int bars = 0;
    for (const char *q = svg; q && (q = strstr(q, "class=\"errorbar\"")); q++) bars++;
    CHECK_EQ_INT(bars, 2);
    free(svg);
    /* one seed per cell: the plain "test (val)" table, no error bars */
    t = ca_report_table(r, 1);
    CHECK(t && strstr(t, "72.00 ( 70.00)") && !strstr(t, "±"));
    free(t);
}

static void test_prompts_parse(void) {
    ca_status st;
    const char *ok = "{\"sea lion\": [\"a photo of a sea lion.\", \"a sea lion.\"], \"Red_Circle\": [\"a red circle.\"]}";
    ca_prompts *p = ca_prompts_parse(ok, strlen(ok), "p.json", &st);
    CHECK_MSG(p != NULL, "%s", ca_last_error());
    if (!p) return;
    int n;
    CHECK_EQ_INT(ca_prompts_count(p), 2);
    const char *const *v = ca_prompts_for(p, "sea lion", &n);
    CHECK(v && n == 2 && !strcmp(v[1], "a sea lion."));
    v = ca_prompts_for(p, "red circle", &n);                 /* case and '_' forgiven */
    CHECK(v && n == 1);
    CHECK(ca_prompts_for(p, "blue square", &n) == NULL && n == 0);
    ca_prompts_free(p);
    const char *bad[] = {"[1,2]", "{}", "{\"a\": []}", "{\"a\": [1]}", "{\"a\": \"x\"}", "{\"a\": [\"x\"], \"a\": [\"y\"]}", "{\"a\": [\"\"]}", "{\"a\": [\"x\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = ca_prompts_parse(bad[i], strlen(bad[i]), "bad.json", &st);
        CHECK_MSG(!p && st == CA_E_FORMAT && strstr(ca_last_error(), "bad.json"), "'%s' accepted or wrong error: %s", bad[i], ca_last_error());
        ca_prompts_free(p);
    }
    /* two keys equal up to case: neither is picked for a third spelling */
    const char *amb = "{\"Sea Lion\": [\"a\"], \"sea_lion\": [\"b\"]}";
    p = ca_prompts_parse(amb, strlen(amb), "amb.json", &st);
    CHECK(p && ca_prompts_for(p, "sea lion", &n) == NULL);
    CHECK(p && ca_prompts_for(p, "Sea Lion", &n) != NULL);
    ca_prompts_free(p);
}

/* Per-class prompts equal to templates filled in give the same text classifier, bit for bit. */
static void test_prompts_classifier(void) {
    ca_status st;
    ca_model_params mp = ca_model_default_params();
    ca_model *m = ca_model_load(th_shared("testdata/models/vit-tiny.safetensors"), &mp, &st);
    ca_tokenizer *tok = ca_tokenizer_load(th_shared("clip/bpe_simple_vocab_16e6.txt.gz"), &st);
    CHECK_MSG(m && tok, "%s", ca_last_error());
    if (m && tok) {
        const char *names[3] = {"red circle", "sea lion", "blue stripes"};
        const char *tm[2] = {"a photo of a {}.", "itap of the {}!"};
        char json[1024];
        snprintf(json, sizeof json, "{\"blue_stripes\": [\"a photo of a blue stripes.\", \"itap of the blue stripes!\"],"
                                    " \"red circle\": [\"a photo of a red circle.\", \"itap of the red circle!\"],"
                                    " \"sea lion\": [\"a photo of a sea lion.\", \"itap of the sea lion!\"], \"unused\": [\"x\"]}");
        ca_prompts *p = ca_prompts_parse(json, strlen(json), "cupl.json", &st);
        float A[3 * 64], B[3 * 64];
        CHECK(p != NULL);
        CHECK(ca_text_classifier(m, tok, names, 3, tm, 2, A) == CA_OK);
        CHECK_MSG(p && ca_text_classifier_prompts(m, tok, names, 3, p, B) == CA_OK, "%s", ca_last_error());
        CHECK(!memcmp(A, B, sizeof A));
        /* a class without prompts: named, with the file */
        const char *names2[2] = {"red circle", "green square"};
        CHECK(p && ca_text_classifier_prompts(m, tok, names2, 2, p, B) == CA_E_NOTFOUND);
        CHECK(strstr(ca_last_error(), "green square") && strstr(ca_last_error(), "cupl.json"));
        ca_prompts_free(p);
    }
    ca_tokenizer_free(tok);
    ca_model_free(m);
}

int main(void) {
    snprintf(feats_path, sizeof feats_path, "%s/synth.safetensors", th_tmpdir());
    snprintf(noval_path, sizeof noval_path, "%s/noval.safetensors", th_tmpdir());
    snprintf(emptyval_path, sizeof emptyval_path, "%s/emptyval.safetensors", th_tmpdir());
    if (!make_features(feats_path, NV) || !make_features(noval_path, -1) || !make_features(emptyval_path, 0)) {
        fprintf(stderr, "cannot write the synthetic feature sets: %s\n", ca_last_error());
        return 1;
    }
    RUN(test_resample);
    RUN(test_selection_regimes);
    RUN(test_seeds_deterministic);
    RUN(test_seeds_deterministic_new);
    RUN(test_no_val);
    RUN(test_aggregate_reports);
    RUN(test_prompts_parse);
    RUN(test_prompts_classifier);
    remove(feats_path); remove(noval_path); remove(emptyval_path);
    TEST_END();
}
