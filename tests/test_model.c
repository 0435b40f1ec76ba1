/* test_model.c — the CLIP encoders against the reference PyTorch outputs in
 * ../shared/testdata/models/<name>-golden.safetensors: final features, logits and every intermediate
 * (through the debug tap), for OpenAI and Hugging Face names; architecture inference; tower-only
 * loading; malformed checkpoints refused by tensor name; `clipadapt encode` end to end.
 */
#include "core/core.h"
#include "harness.h"
#include "model/model.h"

#include <stdint.h>
#include <unistd.h>

/* ---- comparison ------------------------------------------------------------------------- */

/* max|ours - ref| <= 1e-4 · max|ref| + 1e-5, printing the first mismatches. */
static void check_close(const char *what, const float *ours, const float *ref, size_t n) {
    double maxref = 0, maxdiff = 0;
    for (size_t i = 0; i < n; i++) if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    double tol = 1e-4 * maxref + 1e-5;
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - ref[i]);
        if (!(d <= maxdiff)) maxdiff = d;
        if (!(d <= tol) && shown++ < 3)
            fprintf(stderr, "  %s[%zu]: ours %.7g ref %.7g\n", what, i, ours[i], ref[i]);
    }
    CHECK_MSG(maxdiff <= tol, "%s: max diff %.3g > tol %.3g (max|ref| %.3g)", what, maxdiff, tol, maxref);
    if (getenv("CA_TEST_VERBOSE"))
        fprintf(stderr, "  %-40s max|diff| %.3g  tol %.3g  (%.1f%% of tol)\n", what, maxdiff, tol, 100 * maxdiff / tol);
}

static float *golden(ca_st_file *g, const char *name, size_t *n) {
    const ca_tensor_info *t = ca_st_find(g, name);
    CHECK_MSG(t != NULL, "golden lacks %s", name);
    if (!t) return NULL;
    float *p = malloc((size_t)t->numel * sizeof *p);
    CHECK(ca_tensor_to_f32(t, p, t->numel) == CA_OK);
    if (n) *n = (size_t)t->numel;
    return p;
}

/* ---- intermediate collection via the tap ------------------------------------------------ */

#define MAX_TAPS 64
typedef struct {
    ca_st_file *g;
    int n;
    char name[MAX_TAPS][160];
    float *data[MAX_TAPS];
    size_t len[MAX_TAPS];
    int bad;
} taps;

static void on_tap(const char *name, int64_t first, const float *data, int ndim, const int64_t *shape, void *user) {
    taps *tp = user;
    char full[128];
    snprintf(full, sizeof full, "intermediate.%s", name);
    const ca_tensor_info *t = ca_st_find(tp->g, full);
    if (!t) return; /* the golden does not hold this one */
    int k = 0;
    while (k < tp->n && strcmp(tp->name[k], full)) k++;
    if (k == tp->n) {
        if (k == MAX_TAPS) return;
        snprintf(tp->name[k], sizeof tp->name[k], "%s", full);
        tp->len[k] = (size_t)t->numel;
        tp->data[k] = calloc((size_t)t->numel, sizeof(float));
        tp->n++;
    }
    size_t row = 1;
    int ok = ndim == t->ndim;
    for (int d = 1; ok && d < ndim; d++) { ok = shape[d] == t->shape[d]; row *= (size_t)shape[d]; }
    if (!ok || first + shape[0] > t->shape[0]) { tp->bad++; return; }
    memcpy(tp->data[k] + (size_t)first * row, data, (size_t)shape[0] * row * sizeof(float));
}

static void free_taps(taps *tp) {
    for (int k = 0; k < tp->n; k++) free(tp->data[k]);
}

/* Encode the golden inputs with the model (loaded for one compute path, run through a session
 * with a tap) and check features, logits and every intermediate. */
static void check_golden_mode(const char *model_rel, const char *config_rel, const char *golden_rel, int chunk,
                              int compute) {
    ca_model_params p = ca_model_default_params();
    p.config_path = config_rel ? th_shared(config_rel) : NULL;
    p.compute = compute;
    ca_status st;
    ca_model *m = ca_model_load(th_shared(model_rel), &p, &st);
    CHECK_MSG(m != NULL, "%s: %s", model_rel, ca_last_error());
    ca_st_file *g = ca_st_open(th_shared(golden_rel), &st);
    CHECK_MSG(g != NULL, "%s: %s", golden_rel, ca_last_error());
    ca_session *ss = m ? ca_session_new(m, NULL, &st) : NULL;
    if (!m || !g || !ss) { ca_session_free(ss); ca_model_free(m); ca_st_close(g); return; }
    if (chunk) ca_session_set_max_chunk(ss, chunk);

    taps tp = {.g = g};
    ca_session_set_tap(ss, on_tap, &tp);
    const ca_tensor_info *ti = ca_st_find(g, "input.images"), *tt = ca_st_find(g, "input.tokens");
    int ni = (int)ti->shape[0], nt = (int)tt->shape[0], E = 0;
    ca_model_info info;
    CHECK(ca_model_get_info(m, &info) == CA_OK);
    E = info.embed_dim;
    float *images = golden(g, "input.images", NULL);
    int64_t *tokens = malloc((size_t)tt->numel * sizeof *tokens);
    CHECK(ca_tensor_to_i64(tt, tokens, tt->numel) == CA_OK);
    float *fi = malloc((size_t)ni * E * sizeof *fi), *ft = malloc((size_t)nt * E * sizeof *ft);
    CHECK_MSG(ca_session_encode_images(ss, images, ni, fi) == CA_OK, "%s", ca_last_error());
    CHECK_MSG(ca_session_encode_text(ss, tokens, nt, ft) == CA_OK, "%s", ca_last_error());

    size_t n;
    float *ref = golden(g, "output.image_features", &n);
    CHECK_EQ_INT(n, (size_t)ni * E);
    if (ref && n == (size_t)ni * E) check_close("image_features", fi, ref, n);
    free(ref);
    ref = golden(g, "output.text_features", &n);
    CHECK_EQ_INT(n, (size_t)nt * E);
    if (ref && n == (size_t)nt * E) check_close("text_features", ft, ref, n);
    free(ref);

    /* logits = exp(logit_scale) · cosine (the reference uses the checkpoint's scale: 100.03 for
     * the F16-rounded log(100) of vit-tiny) */
    double scale = ca_model_logit_scale(m);
    CHECK_NEAR(scale, 100.0, 0.05);
    ref = golden(g, "output.logits_per_image", &n);
    for (int i = 0; ref && i < ni; i++)
        for (int j = 0; j < nt; j++) {
            double d = 0, a = 0, b = 0;
            for (int e = 0; e < E; e++) {
                d += (double)fi[i * E + e] * ft[j * E + e];
                a += (double)fi[i * E + e] * fi[i * E + e];
                b += (double)ft[j * E + e] * ft[j * E + e];
            }
            CHECK_NEAR(scale * d / sqrt(a * b), ref[i * nt + j], 1e-3);
        }
    free(ref);

    /* every intermediate of the golden was produced, and matches */
    CHECK_EQ_INT(tp.bad, 0);
    int expected = 0;
    for (int k = 0; k < ca_st_count(g); k++) {
        const char *name = ca_st_at(g, k)->name;
        if (strncmp(name, "intermediate.", 13)) continue;
        expected++;
        int found = -1;
        for (int q = 0; q < tp.n; q++) if (!strcmp(tp.name[q], name)) found = q;
        CHECK_MSG(found >= 0, "%s: intermediate %s never produced", model_rel, name);
        if (found < 0) continue;
        float *r = golden(g, name, &n);
        if (r) check_close(name, tp.data[found], r, n);
        free(r);
    }
    CHECK(expected > 0);
    CHECK_EQ_INT(tp.n, expected);
    free_taps(&tp);
    free(images); free(tokens); free(fi); free(ft);
    ca_st_close(g);
    ca_session_free(ss);
    ca_model_free(m);
}

/* The goldens hold on the fast path (the default) and on the reference path alike. */
static void check_golden(const char *model_rel, const char *config_rel, const char *golden_rel, int chunk) {
    check_golden_mode(model_rel, config_rel, golden_rel, chunk, CA_COMPUTE_FAST);
    check_golden_mode(model_rel, config_rel, golden_rel, chunk, CA_COMPUTE_REFERENCE);
}

static void test_vit_golden(void) { check_golden("testdata/models/vit-tiny.safetensors", NULL, "testdata/models/vit-tiny-golden.safetensors", 0); }
static void test_vit_golden_chunked(void) { check_golden("testdata/models/vit-tiny.safetensors", NULL, "testdata/models/vit-tiny-golden.safetensors", 2); }
static void test_vit_hf_golden(void) {
    check_golden("testdata/models/vit-tiny-hf.safetensors", "testdata/models/vit-tiny-hf.config.json",
                 "testdata/models/vit-tiny-golden.safetensors", 0);
    /* without --config: the config beside the weights is found, or shapes alone suffice */
    check_golden("testdata/models/vit-tiny-hf.safetensors", NULL, "testdata/models/vit-tiny-golden.safetensors", 0);
}
static void test_rn_golden(void) { check_golden("testdata/models/rn-tiny.safetensors", NULL, "testdata/models/rn-tiny-golden.safetensors", 0); }
static void test_rn_golden_chunked(void) { check_golden("testdata/models/rn-tiny.safetensors", NULL, "testdata/models/rn-tiny-golden.safetensors", 1); }

/* ---- architecture inference ------------------------------------------------------------- */

static int64_t count_params(const char *rel) {
    ca_st_file *f = ca_st_open(th_shared(rel), NULL);
    int64_t n = 0;
    for (int i = 0; f && i < ca_st_count(f); i++) {
        const char *s = ca_st_at(f, i)->name;
        size_t l = strlen(s);
        if (l > 12 && (!strcmp(s + l - 12, "running_mean") || !strcmp(s + l - 11, "running_var"))) continue;
        n += ca_st_at(f, i)->numel;
    }
    ca_st_close(f);
    return n;
}

static void test_info(void) {
    ca_status st;
    ca_model_info in;
    const char *names[2] = {"testdata/models/vit-tiny.safetensors", "testdata/models/vit-tiny-hf.safetensors"};
    for (int k = 0; k < 2; k++) {
        ca_model *m = ca_model_load(th_shared(names[k]), NULL, &st);
        CHECK_MSG(m, "%s", ca_last_error());
        if (!m) continue;
        CHECK(ca_model_get_info(m, &in) == CA_OK);
        CHECK(in.has_vision && in.has_text && in.is_vit);
        CHECK_EQ_INT(in.image_size, 64); CHECK_EQ_INT(in.patch_size, 16);
        CHECK_EQ_INT(in.vision_width, 128); CHECK_EQ_INT(in.vision_layers, 2); CHECK_EQ_INT(in.vision_heads, 2);
        CHECK_EQ_INT(in.text_width, 128); CHECK_EQ_INT(in.text_layers, 2); CHECK_EQ_INT(in.text_heads, 2);
        CHECK_EQ_INT(in.context_length, 77); CHECK_EQ_INT(in.vocab_size, 49408); CHECK_EQ_INT(in.embed_dim, 64);
        CHECK_EQ_INT(in.dtype, CA_DT_F16);
        CHECK_EQ_INT(in.n_params, count_params(names[0]));
        CHECK_STR(in.naming, k ? "hf" : "openai");
        ca_model_free(m);
    }
    ca_model *m = ca_model_load(th_shared("testdata/models/rn-tiny.safetensors"), NULL, &st);
    CHECK_MSG(m, "%s", ca_last_error());
    if (!m) return;
    CHECK(ca_model_get_info(m, &in) == CA_OK);
    CHECK(!in.is_vit);
    CHECK_EQ_INT(in.image_size, 64); CHECK_EQ_INT(in.patch_size, 0); CHECK_EQ_INT(in.vision_width, 8);
    CHECK_EQ_INT(in.vision_heads, 4);
    for (int s = 0; s < 4; s++) CHECK_EQ_INT(in.rn_layers[s], 1);
    CHECK_EQ_INT(in.dtype, CA_DT_F32);
    CHECK_EQ_INT(in.n_params, count_params("testdata/models/rn-tiny.safetensors"));
    ca_model_free(m);
    ca_model_free(NULL);
}

static void test_one_tower(void) {
    ca_model_params p = ca_model_default_params();
    p.load_text = 0;
    ca_status st;
    ca_model *m = ca_model_load(th_shared("testdata/models/rn-tiny.safetensors"), &p, &st);
    CHECK_MSG(m, "%s", ca_last_error());
    ca_model_info in;
    float out[64];
    int64_t tok[77] = {49406, 49407};
    if (m) {
        CHECK(ca_model_get_info(m, &in) == CA_OK && in.has_vision && !in.has_text);
        CHECK(ca_model_encode_text(m, tok, 1, out) == CA_E_ARG);
        ca_model_free(m);
    }
    p = ca_model_default_params();
    p.load_vision = 0;
    m = ca_model_load(th_shared("testdata/models/vit-tiny-hf.safetensors"), &p, &st);
    CHECK_MSG(m, "%s", ca_last_error());
    if (m) {
        CHECK(ca_model_get_info(m, &in) == CA_OK && !in.has_vision && in.has_text);
        CHECK(ca_model_encode_images(m, out, 1, out) == CA_E_ARG);
        CHECK(ca_model_encode_text(m, tok, 1, out) == CA_OK);
        tok[5] = 49408; /* outside the vocabulary */
        CHECK(ca_model_encode_text(m, tok, 1, out) == CA_E_RANGE);
        CHECK(strstr(ca_last_error(), "49408") != NULL);
        ca_model_free(m);
    }
    p.load_text = 0;
    CHECK(ca_model_load(th_shared("testdata/models/vit-tiny.safetensors"), &p, &st) == NULL && st == CA_E_ARG);
}

/* ---- malformed checkpoints -------------------------------------------------------------- */

/* Copy src to a temp file, dropping `drop`, giving `reshape` shape [1], and adding `extra`. */
static const char *rewrite(const char *src_rel, const char *out, const char *drop, const char *reshape, const char *extra) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", th_tmpdir(), out);
    ca_st_file *f = ca_st_open(th_shared(src_rel), NULL);
    ca_st_writer *w = ca_st_writer_new();
    for (int i = 0; f && i < ca_st_count(f); i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        if (drop && !strcmp(t->name, drop)) continue;
        if (reshape && !strcmp(t->name, reshape))
            ca_st_writer_add(w, t->name, t->dtype, 1, (int64_t[]){1}, t->data);
        else
            ca_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    float z[4] = {0};
    if (extra) ca_st_writer_add(w, extra, CA_DT_F32, 1, (int64_t[]){4}, z);
    CHECK(ca_st_writer_save(w, path) == CA_OK);
    ca_st_writer_free(w);
    ca_st_close(f);
    return path;
}

static void expect_refused(const char *path, ca_status want, const char *needle) {
    ca_status st = CA_OK;
    ca_model *m = ca_model_load(path, NULL, &st);
    CHECK_MSG(m == NULL, "%s loaded but should not", path);
    ca_model_free(m);
    CHECK_MSG(st == want, "status %s, expected %s (%s)", ca_strerror(st), ca_strerror(want), ca_last_error());
    CHECK_MSG(strstr(ca_last_error(), needle) != NULL, "error '%s' lacks '%s'", ca_last_error(), needle);
}

static void test_malformed(void) {
    const char *vit = "testdata/models/vit-tiny.safetensors", *rn = "testdata/models/rn-tiny.safetensors";
    const char *hf = "testdata/models/vit-tiny-hf.safetensors";
    expect_refused(rewrite(vit, "a.safetensors", "visual.ln_post.bias", NULL, NULL), CA_E_NOTFOUND, "'visual.ln_post.bias'");
    expect_refused(rewrite(vit, "b.safetensors", "transformer.resblocks.1.mlp.c_fc.weight", NULL, NULL), CA_E_NOTFOUND,
                   "'transformer.resblocks.1.mlp.c_fc.weight'");
    expect_refused(rewrite(vit, "c.safetensors", NULL, "transformer.resblocks.1.mlp.c_fc.bias", NULL), CA_E_SHAPE,
                   "'transformer.resblocks.1.mlp.c_fc.bias'");
    expect_refused(rewrite(vit, "d.safetensors", NULL, NULL, "visual.transformer.resblocks.0.ls_1.gamma"), CA_E_FORMAT,
                   "'visual.transformer.resblocks.0.ls_1.gamma'");
    expect_refused(rewrite(vit, "e.safetensors", NULL, "visual.positional_embedding", NULL), CA_E_SHAPE,
                   "'visual.positional_embedding'");
    expect_refused(rewrite(rn, "f.safetensors", "visual.layer3.0.downsample.1.running_var", NULL, NULL), CA_E_NOTFOUND,
                   "'visual.layer3.0.downsample.1.running_var'");
    expect_refused(rewrite(rn, "g.safetensors", NULL, "visual.attnpool.k_proj.bias", NULL), CA_E_SHAPE,
                   "'visual.attnpool.k_proj.bias'");
    expect_refused(rewrite(hf, "h.safetensors", "text_model.encoder.layers.1.self_attn.v_proj.bias", NULL, NULL),
                   CA_E_NOTFOUND, "'text_model.encoder.layers.1.self_attn.v_proj.bias'");
    expect_refused(rewrite(rn, "i.safetensors", NULL, NULL, "visual.layer1.3.conv1.weight"), CA_E_NOTFOUND,
                   "'visual.layer1.1.");
    /* text-only file with both towers asked for */
    const char *t = rewrite(vit, "j.safetensors", "visual.proj", NULL, NULL);
    expect_refused(t, CA_E_NOTFOUND, "'visual.proj'");

    /* truncated: the safetensors layer refuses it */
    char path[1024];
    snprintf(path, sizeof path, "%s/trunc.safetensors", th_tmpdir());
    size_t len;
    ca_status st;
    char *buf = ca_read_file(th_shared(vit), &len, &st);
    FILE *fp = fopen(path, "wb");
    if (buf && fp) fwrite(buf, 1, len - 1000, fp);
    if (fp) fclose(fp);
    free(buf);
    ca_model *m = ca_model_load(path, NULL, &st);
    CHECK(m == NULL && st == CA_E_FORMAT);
    CHECK(strstr(ca_last_error(), "trunc.safetensors") != NULL);

    /* config contradicting the weights */
    snprintf(path, sizeof path, "%s/bad.config.json", th_tmpdir());
    fp = fopen(path, "w");
    if (fp) { fputs("{\"vision_config\": {\"hidden_size\": 256}}", fp); fclose(fp); }
    ca_model_params p = ca_model_default_params();
    p.config_path = path;
    m = ca_model_load(th_shared(hf), &p, &st);
    CHECK(m == NULL && st == CA_E_SHAPE);
    CHECK(strstr(ca_last_error(), "hidden_size") != NULL);
}

/* ---- weight dtypes -------------------------------------------------------------------------- */

/* Copy src with every float tensor stored as dt; when round_bf16, values are first rounded to
 * BF16 (so an F32 file and a BF16 file hold the same numbers). */
static const char *convert_file(const char *src_rel, const char *out, ca_dtype dt, int round_bf16) {
    static char path[2][1024];
    static int k;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", th_tmpdir(), out);
    ca_st_file *f = ca_st_open(th_shared(src_rel), NULL);
    ca_st_writer *w = ca_st_writer_new();
    for (int i = 0; f && i < ca_st_count(f); i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        float *x = malloc((size_t)t->numel * sizeof *x + 4);
        uint16_t *h = malloc((size_t)t->numel * sizeof *h + 4);
        ca_tensor_to_f32(t, x, t->numel);
        for (int64_t j = 0; j < t->numel; j++) {
            if (round_bf16) x[j] = ca_bf16_to_f32(ca_f32_to_bf16(x[j]));
            h[j] = dt == CA_DT_BF16 ? ca_f32_to_bf16(x[j]) : ca_f32_to_f16(x[j]);
        }
        CHECK(ca_st_writer_add(w, t->name, dt, t->ndim, t->shape, dt == CA_DT_F32 ? (void *)x : (void *)h) == CA_OK);
        free(x); free(h);
    }
    CHECK(ca_st_writer_save(w, path[k]) == CA_OK);
    ca_st_writer_free(w);
    ca_st_close(f);
    return path[k];
}

static void encode_golden_images(const char *model_path, const char *golden_rel, float *out) {
    ca_model *m = ca_model_load(model_path, NULL, NULL);
    CHECK_MSG(m, "%s", ca_last_error());
    ca_st_file *g = ca_st_open(th_shared(golden_rel), NULL);
    float *img = golden(g, "input.images", NULL);
    if (m && img) CHECK(ca_model_encode_images(m, img, 3, out) == CA_OK);
    free(img);
    ca_st_close(g);
    ca_model_free(m);
}

static void test_dtypes(void) {
    /* F16 vit-tiny widened to F32 holds the same numbers: the goldens still pass */
    const char *gv = "testdata/models/vit-tiny-golden.safetensors", *gr = "testdata/models/rn-tiny-golden.safetensors";
    const char *f32 = convert_file("testdata/models/vit-tiny.safetensors", "vit-f32.safetensors", CA_DT_F32, 0);
    float a[3 * 64], b[3 * 64];
    encode_golden_images(f32, gv, a);
    ca_st_file *g = ca_st_open(th_shared(gv), NULL);
    size_t n;
    float *ref = golden(g, "output.image_features", &n);
    if (ref) check_close("vit-tiny as F32", a, ref, n);
    free(ref);
    ca_st_close(g);
    ca_model *m = ca_model_load(f32, NULL, NULL);
    ca_model_info in;
    if (m && ca_model_get_info(m, &in) == CA_OK) CHECK_EQ_INT(in.dtype, CA_DT_F32);
    ca_model_free(m);
    /* BF16 rn-tiny equals the same BF16-rounded numbers stored as F32, exactly */
    const char *bf = convert_file("testdata/models/rn-tiny.safetensors", "rn-bf16.safetensors", CA_DT_BF16, 1);
    const char *fr = convert_file("testdata/models/rn-tiny.safetensors", "rn-f32r.safetensors", CA_DT_F32, 1);
    encode_golden_images(bf, gr, a);
    encode_golden_images(fr, gr, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    m = ca_model_load(bf, NULL, NULL);
    if (m && ca_model_get_info(m, &in) == CA_OK) CHECK_EQ_INT(in.dtype, CA_DT_BF16);
    ca_model_free(m);
}

/* ---- the CLI: clipadapt encode ---------------------------------------------------------- */

static void test_cli_encode(void) {
    const char *ca = getenv("CA");
    if (!ca || access(ca, X_OK) != 0) { fprintf(stderr, "  (no $CA binary: CLI check skipped)\n"); return; }
    const char *models[2][2] = {{"vit-tiny-hf", "vit-tiny"}, {"rn-tiny", "rn-tiny"}};
    for (int k = 0; k < 2; k++) {
        char cmd[4096], out[1024], model[512], gold[1024];
        snprintf(model, sizeof model, "%s", th_shared("testdata/models/"));
        snprintf(out, sizeof out, "%s/enc-%d.safetensors", th_tmpdir(), k);
        snprintf(gold, sizeof gold, "%s%s-golden.safetensors", model, models[k][1]);
        snprintf(cmd, sizeof cmd, "'%s' encode --model '%s%s.safetensors' --input '%s' --output '%s' 2>&1", ca, model,
                 models[k][0], gold, out);
        CHECK_MSG(system(cmd) == 0, "failed: %s", cmd);
        ca_st_file *o = ca_st_open(out, NULL), *g = ca_st_open(gold, NULL);
        CHECK(o && g);
        if (o && g) {
            const char *pairs[2][2] = {{"image_features", "output.image_features"}, {"text_features", "output.text_features"}};
            for (int q = 0; q < 2; q++) {
                const ca_tensor_info *a = ca_st_find(o, pairs[q][0]);
                CHECK_MSG(a && a->dtype == CA_DT_F32 && a->ndim == 2, "%s missing", pairs[q][0]);
                size_t n;
                float *r = golden(g, pairs[q][1], &n);
                if (a && r && (size_t)a->numel == n) check_close(pairs[q][0], a->data, r, n);
                free(r);
            }
        }
        ca_st_close(o);
        ca_st_close(g);
    }
}

/* `encode --bf16`: the BF16 path through the CLI — close to the goldens (cosine), yet not the
 * float32 numbers (a flag that silently did nothing would pass a closeness test alone). */
static void test_cli_encode_bf16(void) {
    const char *ca = getenv("CA");
    if (!ca || access(ca, X_OK) != 0) { fprintf(stderr, "  (no $CA binary: CLI check skipped)\n"); return; }
    char cmd[4096], out[1024], model[1024], gold[1024];
    snprintf(model, sizeof model, "%s", th_shared("testdata/models/vit-tiny.safetensors"));
    snprintf(gold, sizeof gold, "%s", th_shared("testdata/models/vit-tiny-golden.safetensors"));
    snprintf(out, sizeof out, "%s/enc-bf16.safetensors", th_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' encode --bf16 --model '%s' --input '%s' --output '%s' 2>&1", ca, model, gold, out);
    int rc = system(cmd);
    ca_model_params bp = ca_model_default_params();
    bp.compute = CA_COMPUTE_BF16;
    ca_model *m = ca_model_load(model, &bp, NULL);
    int has_bf16 = m != NULL;
    ca_model_free(m);
    if (!has_bf16) { CHECK_MSG(rc != 0, "--bf16 without AVX512-BF16 must fail"); return; }
    CHECK_MSG(rc == 0, "failed: %s", cmd);
    ca_st_file *o = ca_st_open(out, NULL), *g = ca_st_open(gold, NULL);
    CHECK(o && g);
    if (o && g) {
        const ca_tensor_info *a = ca_st_find(o, "image_features");
        size_t n;
        float *r = golden(g, "output.image_features", &n);
        CHECK(a && r && (size_t)a->numel == n);
        if (a && r && (size_t)a->numel == n) {
            const float *x = a->data;
            int E = (int)a->shape[1], rows = (int)a->shape[0], same = 1;
            double mincos = 1;
            for (int i = 0; i < rows; i++) {
                double xy = 0, xx = 0, yy = 0;
                for (int j = 0; j < E; j++) {
                    double p = x[(size_t)i * E + j], q = r[(size_t)i * E + j];
                    xy += p * q, xx += p * p, yy += q * q;
                    if (p != q) same = 0;
                }
                if (xy / sqrt(xx * yy) < mincos) mincos = xy / sqrt(xx * yy);
            }
            CHECK_MSG(mincos > 0.999, "BF16 features: min cosine %.6f vs the goldens", mincos);
            CHECK_MSG(!same, "--bf16 gave the float32 features bit for bit: the flag did nothing");
        }
        free(r);
    }
    ca_st_close(o);
    ca_st_close(g);
}

/* The model signature: equal for the same weights under OpenAI and HF names (vit-tiny and its HF
 * conversion), different for another model of the same embedding size (rn-tiny, 64-d too); the
 * matcher tolerates storage rounding and nothing more. */
static void test_signature(void) {
    const char *names[3] = {"testdata/models/vit-tiny.safetensors", "testdata/models/vit-tiny-hf.safetensors",
                            "testdata/models/rn-tiny.safetensors"};
    char sig[3][512];
    for (int k = 0; k < 3; k++) {
        ca_status st;
        ca_model *m = ca_model_load(th_shared(names[k]), NULL, &st);
        CHECK_MSG(m, "%s", ca_last_error());
        sig[k][0] = 0;
        if (m) CHECK(ca_model_signature(m, sig[k], sizeof sig[k]) == CA_OK);
        char tiny[8];
        if (m) CHECK(ca_model_signature(m, tiny, sizeof tiny) == CA_E_ARG);
        ca_model_free(m);
    }
    CHECK_MSG(strncmp(sig[0], "clip-image:64:128:", 18) == 0, "%s", sig[0]);
    CHECK_MSG(ca_model_signature_match(sig[0], sig[1]), "openai %s vs hf %s", sig[0], sig[1]);
    CHECK(!ca_model_signature_match(sig[0], sig[2]));
    CHECK(ca_model_signature_match(sig[2], sig[2]));
    /* text-only load: no image tower, no signature */
    ca_model_params p = ca_model_default_params();
    p.load_vision = 0;
    ca_model *t = ca_model_load(th_shared(names[0]), &p, NULL);
    char s2[512];
    CHECK(t && ca_model_signature(t, s2, sizeof s2) == CA_E_ARG);
    ca_model_free(t);
    const char *a = "clip-image:2:4:0.5,-0.25", *b = "clip-image:2:4:0.501,-0.2501";
    CHECK(ca_model_signature_match(a, b));                                  /* F16-size rounding */
    CHECK(!ca_model_signature_match(a, "clip-image:2:4:0.5,-0.3"));          /* a different value */
    CHECK(!ca_model_signature_match(a, "clip-image:2:8:0.5,-0.25"));         /* another width */
    CHECK(!ca_model_signature_match(a, "clip-image:2:4:0.5"));               /* fewer values */
    CHECK(!ca_model_signature_match(a, "clip-image:2:4:0.5,x"));
    CHECK(!ca_model_signature_match(a, NULL));
}

int main(void) {
    RUN(test_vit_golden);
    RUN(test_vit_golden_chunked);
    RUN(test_vit_hf_golden);
    RUN(test_rn_golden);
    RUN(test_rn_golden_chunked);
    RUN(test_info);
    RUN(test_signature);
    RUN(test_one_tower);
    RUN(test_malformed);
    RUN(test_dtypes);
    RUN(test_cli_encode);
    RUN(test_cli_encode_bf16);
    TEST_END();
}
