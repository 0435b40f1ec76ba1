/* test_model_full.c — full-size architectures: random (seeded) F16 ViT-B/32 (both towers) and
 * RN50 (vision tower only) checkpoints in OpenAI names are written to a temp dir, loaded, their
 * inferred architecture checked, and one image (and one text) encoded: shapes and finite values.
 * Numbers are not compared (no reference at this size); the goldens in test_model.c do that.
 * Also checked: once the fast path has packed the weights, their float32 copies leave memory.
 */
#include "core/core.h"
#include "harness.h"
#include "model/model.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

typedef enum { W_LINEAR, W_ONES, W_SMALL, W_VAR } init_kind;

typedef struct {
    ca_st_writer *w;
    ca_rng rng;
    int64_t params;     /* what ca_model_info.n_params should report */
} gen;

/* Add a random F16 tensor. Linear/conv weights are scaled by 1/sqrt(fan_in) so activations
 * stay O(1) through deep stacks. */
static void add(gen *g, init_kind kind, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t shape[4] = {d0, d1, d2, d3}, n = 1, fan_in = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    for (int i = 1; i < ndim; i++) fan_in *= shape[i];
    uint16_t *h = malloc((size_t)n * sizeof *h);
    float scale = kind == W_LINEAR ? 1.0f / sqrtf((float)fan_in) : kind == W_SMALL ? 0.02f : 0.1f;
    /* 150 M values must be cheap (also under ASan): draw a table of 4096 F16 values from the
     * seeded generator and fill by a 64-bit LCG index into it. Uniform with std `scale`. */
    uint16_t table[4096];
    for (int i = 0; i < 4096; i++) {
        float u = (float)(ca_rng_uniform(&g->rng) * 2.0 - 1.0) * 1.7320508f * scale;
        float v = kind == W_ONES ? 1.0f + u : kind == W_VAR ? 1.0f + fabsf(u) : u;
        table[i] = ca_f32_to_f16(v);
    }
    uint64_t x = ca_rng_u64(&g->rng) | 1;
    for (int64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        h[i] = table[x >> 52];
    }
    CHECK(ca_st_writer_add(g->w, name, CA_DT_F16, ndim, shape, h) == CA_OK);
    free(h);
    size_t l = strlen(name);
    if (!(l > 12 && (!strcmp(name + l - 12, "running_mean") || !strcmp(name + l - 11, "running_var")))) g->params += n;
}

static void add_blocks(gen *g, const char *prefix, int layers, int W) {
    char p[160];
    for (int l = 0; l < layers; l++) {
#define NAME(s) (snprintf(p, sizeof p, "%s%d.%s", prefix, l, s), p)
        add(g, W_LINEAR, NAME("attn.in_proj_weight"), 2, 3 * W, W, 0, 0);
        add(g, W_SMALL, NAME("attn.in_proj_bias"), 1, 3 * W, 0, 0, 0);
        add(g, W_LINEAR, NAME("attn.out_proj.weight"), 2, W, W, 0, 0);
        add(g, W_SMALL, NAME("attn.out_proj.bias"), 1, W, 0, 0, 0);
        add(g, W_ONES, NAME("ln_1.weight"), 1, W, 0, 0, 0);
        add(g, W_SMALL, NAME("ln_1.bias"), 1, W, 0, 0, 0);
        add(g, W_LINEAR, NAME("mlp.c_fc.weight"), 2, 4 * W, W, 0, 0);
        add(g, W_SMALL, NAME("mlp.c_fc.bias"), 1, 4 * W, 0, 0, 0);
        add(g, W_LINEAR, NAME("mlp.c_proj.weight"), 2, W, 4 * W, 0, 0);
        add(g, W_SMALL, NAME("mlp.c_proj.bias"), 1, W, 0, 0, 0);
        add(g, W_ONES, NAME("ln_2.weight"), 1, W, 0, 0, 0);
        add(g, W_SMALL, NAME("ln_2.bias"), 1, W, 0, 0, 0);
#undef NAME
    }
}

static void add_text(gen *g, int W, int layers, int E) {
    add(g, W_SMALL, "positional_embedding", 2, 77, W, 0, 0);
    add(g, W_LINEAR, "text_projection", 2, W, E, 0, 0);
    add(g, W_SMALL, "token_embedding.weight", 2, 49408, W, 0, 0);
    add(g, W_ONES, "ln_final.weight", 1, W, 0, 0, 0);
    add(g, W_SMALL, "ln_final.bias", 1, W, 0, 0, 0);
    add_blocks(g, "transformer.resblocks.", layers, W);
}

static void add_bn(gen *g, const char *prefix, int C) {
    char p[160];
    snprintf(p, sizeof p, "%s.weight", prefix); add(g, W_ONES, p, 1, C, 0, 0, 0);
    snprintf(p, sizeof p, "%s.bias", prefix); add(g, W_SMALL, p, 1, C, 0, 0, 0);
    snprintf(p, sizeof p, "%s.running_mean", prefix); add(g, W_SMALL, p, 1, C, 0, 0, 0);
    snprintf(p, sizeof p, "%s.running_var", prefix); add(g, W_VAR, p, 1, C, 0, 0, 0);
}

/* A scratch dir in memory when there is one: the files are 100-300 MB and the writer fsyncs. */
static const char *scratch_dir(void) {
    static char dir[600];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/dev/shm/ca-full-XXXXXX");
        extern char *mkdtemp(char *);
        if (access("/dev/shm", W_OK) != 0 || !mkdtemp(dir)) snprintf(dir, sizeof dir, "%s", th_tmpdir());
    }
    return dir;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    return 1;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#if !defined(SANITIZED) && (defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__))
#define SANITIZED 1
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Resident memory of this process now, in bytes (not the peak: generating the checkpoint held
 * its own copy). */
static double rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (!f || fscanf(f, "%ld %ld", &pages, &res) != 2) res = -1;
    if (f) fclose(f);
    return (double)res * (double)sysconf(_SC_PAGESIZE);
}

/* Loaded for the fast path, a model holds its matrices as packed panels only: the float32
 * block keeps the small vectors (under 5% of the weights), and the load adds no more resident
 * memory than the weights + 15% (rss0: before the load). */
static void check_packed_memory(const ca_model *m, const char *name, double rss0) {
    double wb = (double)ca_model_weight_bytes(m), fb = (double)m->weights_len * sizeof(float), rss = rss_now() - rss0;
    fprintf(stderr, "  %s: %.0f MiB of weights, of them %.1f MiB float32; the load added %.0f MiB of RSS\n", name, wb / 1048576,
            fb / 1048576, rss / 1048576);
    CHECK(fb < 0.05 * wb);
    if (SANITIZED) return; /* a sanitizer's shadow memory grows with every byte touched */
    CHECK_MSG(rss < 1.15 * wb + 16 * 1048576.0, "%s: RSS +%.0f MiB for %.0f MiB of weights", name,
              rss / 1048576, wb / 1048576);
}

static float *random_image(int R) {
    ca_rng r = ca_rng_make(99, 1);
    float *img = malloc(sizeof(float) * 3 * R * R);
    for (int i = 0; i < 3 * R * R; i++) img[i] = (float)(ca_rng_uniform(&r) * 4.0 - 2.0);
    return img;
}

static void test_vit_b32(void) {
    double t0 = ca_now();
    gen g = {.w = ca_st_writer_new(), .rng = ca_rng_make(5, 0)};
    add(&g, W_SMALL, "logit_scale", 1, 1, 0, 0, 0);
    add(&g, W_SMALL, "visual.class_embedding", 1, 768, 0, 0, 0);
    add(&g, W_SMALL, "visual.positional_embedding", 2, 50, 768, 0, 0);
    add(&g, W_LINEAR, "visual.proj", 2, 768, 512, 0, 0);
    add(&g, W_LINEAR, "visual.conv1.weight", 4, 768, 3, 32, 32);
    add(&g, W_ONES, "visual.ln_pre.weight", 1, 768, 0, 0, 0);
    add(&g, W_SMALL, "visual.ln_pre.bias", 1, 768, 0, 0, 0);
    add(&g, W_ONES, "visual.ln_post.weight", 1, 768, 0, 0, 0);
    add(&g, W_SMALL, "visual.ln_post.bias", 1, 768, 0, 0, 0);
    add_blocks(&g, "visual.transformer.resblocks.", 12, 768);
    add_text(&g, 512, 12, 512);
    CHECK_EQ_INT(g.params, 151277313); /* the published parameter count of CLIP ViT-B/32 */
    char path[1024];
    snprintf(path, sizeof path, "%s/vit-b32.safetensors", scratch_dir());
    CHECK(ca_st_writer_save(g.w, path) == CA_OK);
    ca_st_writer_free(g.w);
    double t1 = ca_now();

    ca_status st;
    double rss0 = rss_now();
    ca_model *m = ca_model_load(path, NULL, &st);
    CHECK_MSG(m, "%s", ca_last_error());
    unlink(path);
    if (!m) return;
    double t2 = ca_now();
    ca_model_info in;
    CHECK(ca_model_get_info(m, &in) == CA_OK);
    CHECK(in.is_vit && in.has_vision && in.has_text);
    CHECK_EQ_INT(in.image_size, 224); CHECK_EQ_INT(in.patch_size, 32);
    CHECK_EQ_INT(in.vision_width, 768); CHECK_EQ_INT(in.vision_layers, 12); CHECK_EQ_INT(in.vision_heads, 12);
    CHECK_EQ_INT(in.text_width, 512); CHECK_EQ_INT(in.text_layers, 12); CHECK_EQ_INT(in.text_heads, 8);
    CHECK_EQ_INT(in.context_length, 77); CHECK_EQ_INT(in.vocab_size, 49408); CHECK_EQ_INT(in.embed_dim, 512);
    CHECK_EQ_INT(in.n_params, g.params);
    CHECK_EQ_INT(in.dtype, CA_DT_F16);

    check_packed_memory(m, "ViT-B/32", rss0);
    uint64_t h = ca_model_weights_hash(m);
    float *img = random_image(224), out[512], tout[512];
    CHECK(ca_model_encode_images(m, img, 1, out) == CA_OK);
    CHECK(all_finite(out, 512));
    int64_t tok[77] = {49406, 320, 1125, 539, 320, 1929, 269, 49407};
    CHECK(ca_model_encode_text(m, tok, 1, tout) == CA_OK);
    CHECK(all_finite(tout, 512));
    CHECK(ca_model_weights_hash(m) == h); /* encoding never writes to the model */
    double t3 = ca_now();
    fprintf(stderr, "  ViT-B/32: write %.1f s, load %.1f s, encode 1 image + 1 text %.2f s\n", t1 - t0, t2 - t1, t3 - t2);
    free(img);
    ca_model_free(m);
}

static void test_rn50_vision_only(void) {
    double t0 = ca_now();
    gen g = {.w = ca_st_writer_new(), .rng = ca_rng_make(6, 0)};
    int W = 64, depth[4] = {3, 4, 6, 3}, E = 1024;
    add(&g, W_LINEAR, "visual.conv1.weight", 4, W / 2, 3, 3, 3); add_bn(&g, "visual.bn1", W / 2);
    add(&g, W_LINEAR, "visual.conv2.weight", 4, W / 2, W / 2, 3, 3); add_bn(&g, "visual.bn2", W / 2);
    add(&g, W_LINEAR, "visual.conv3.weight", 4, W, W / 2, 3, 3); add_bn(&g, "visual.bn3", W);
    int inpl = W;
    char p[160];
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < depth[s]; i++) {
            int P = W << s;
#define NAME(x) (snprintf(p, sizeof p, "visual.layer%d.%d.%s", s + 1, i, x), p)
            add(&g, W_LINEAR, NAME("conv1.weight"), 4, P, inpl, 1, 1); add_bn(&g, NAME("bn1"), P);
            add(&g, W_LINEAR, NAME("conv2.weight"), 4, P, P, 3, 3); add_bn(&g, NAME("bn2"), P);
            add(&g, W_LINEAR, NAME("conv3.weight"), 4, 4 * P, P, 1, 1); add_bn(&g, NAME("bn3"), 4 * P);
            if (i == 0) {
                add(&g, W_LINEAR, NAME("downsample.0.weight"), 4, 4 * P, inpl, 1, 1);
                add_bn(&g, NAME("downsample.1"), 4 * P);
            }
#undef NAME
            inpl = 4 * P;
        }
    int D = 32 * W;
    add(&g, W_SMALL, "visual.attnpool.positional_embedding", 2, 50, D, 0, 0);
    const char *qkv[3] = {"visual.attnpool.q_proj", "visual.attnpool.k_proj", "visual.attnpool.v_proj"};
    for (int j = 0; j < 3; j++) {
        snprintf(p, sizeof p, "%s.weight", qkv[j]); add(&g, W_LINEAR, p, 2, D, D, 0, 0);
        snprintf(p, sizeof p, "%s.bias", qkv[j]); add(&g, W_SMALL, p, 1, D, 0, 0, 0);
    }
    add(&g, W_LINEAR, "visual.attnpool.c_proj.weight", 2, E, D, 0, 0);
    add(&g, W_SMALL, "visual.attnpool.c_proj.bias", 1, E, 0, 0, 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/rn50-visual.safetensors", scratch_dir());
    CHECK(ca_st_writer_save(g.w, path) == CA_OK);
    ca_st_writer_free(g.w);
    double t1 = ca_now();

    ca_status st;
    ca_model *m = ca_model_load(path, NULL, &st); /* both towers asked: no text tower here */
    CHECK(m == NULL && st == CA_E_NOTFOUND && strstr(ca_last_error(), "token_embedding.weight"));
    ca_model_params prm = ca_model_default_params();
    prm.load_text = 0;
    double rss0 = rss_now();
    m = ca_model_load(path, &prm, &st);
    CHECK_MSG(m, "%s", ca_last_error());
    unlink(path);
    if (!m) return;
    double t2 = ca_now();
    ca_model_info in;
    CHECK(ca_model_get_info(m, &in) == CA_OK);
    CHECK(!in.is_vit && in.has_vision && !in.has_text);
    CHECK_EQ_INT(in.image_size, 224); CHECK_EQ_INT(in.vision_width, 64); CHECK_EQ_INT(in.vision_heads, 32);
    for (int s = 0; s < 4; s++) CHECK_EQ_INT(in.rn_layers[s], depth[s]);
    CHECK_EQ_INT(in.embed_dim, 1024);
    CHECK_EQ_INT(in.n_params, g.params);
    CHECK_EQ_INT(in.dtype, CA_DT_F16);

    check_packed_memory(m, "RN50 visual", rss0);
    float *img = random_image(224), out[1024];
    CHECK(ca_model_encode_images(m, img, 1, out) == CA_OK);
    CHECK(all_finite(out, 1024));
    double nrm = 0;
    for (int e = 0; e < 1024; e++) nrm += (double)out[e] * out[e];
    CHECK(nrm > 0);
    double t3 = ca_now();
    fprintf(stderr, "  RN50 visual: write %.1f s, load %.1f s, encode 1 image %.2f s\n", t1 - t0, t2 - t1, t3 - t2);
    free(img);
    ca_model_free(m);
}

int main(void) {
    RUN(test_vit_b32);
    RUN(test_rn50_vision_only);
    if (strncmp(scratch_dir(), "/dev/shm/", 9) == 0) rmdir(scratch_dir());
    TEST_END();
}
