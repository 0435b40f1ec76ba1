/* gen_weights.c — writes seeded, full-size random-weight CLIP checkpoints (ViT-B/32, ViT-B/16,
 * RN50) in OpenAI tensor names and F16, like the real checkpoints, for the benchmarks.
 * Not real CLIP: the features mean nothing; only shapes, dtypes and compute cost are real.
 * Usage: gen_weights OUTDIR [vit-b32|vit-b16|rn50 ...]   (existing files are kept) */
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    ca_st_writer *w;
    ca_rng rng;
    uint16_t *buf;
    size_t cap;
    ca_status st;
} gen;

/* one tensor: value = mean + std·N(0,1), stored as F16 */
static void add(gen *g, const char *name, int ndim, const int64_t *shape, double mean, double std) {
    if (g->st != CA_OK) return;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (n > g->cap) {
        uint16_t *b = realloc(g->buf, n * sizeof *b);
        if (!b) { g->st = CA_E_NOMEM; return; }
        g->buf = b;
        g->cap = n;
    }
    for (size_t i = 0; i < n; i++) g->buf[i] = ca_f32_to_f16((float)(mean + std * ca_rng_normal(&g->rng)));
    g->st = ca_st_writer_add(g->w, name, CA_DT_F16, ndim, shape, g->buf);
}

#define SHAPE(...) (int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
static void add_s(gen *g, const char *name, const int64_t *shape, int ndim, double mean, double std) {
    add(g, name, ndim, shape, mean, std);
}
#define T(g, name, mean, std, ...) add_s(g, name, SHAPE(__VA_ARGS__), mean, std)

static void linear(gen *g, const char *prefix, int out, int in) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", prefix);
    T(g, n, 0, 1 / sqrt(in), out, in);
    snprintf(n, sizeof n, "%s.bias", prefix);
    T(g, n, 0, 0.02, out);
}

static void layernorm(gen *g, const char *prefix, int w) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", prefix);
    T(g, n, 1, 0.1, w);
    snprintf(n, sizeof n, "%s.bias", prefix);
    T(g, n, 0, 0.02, w);
}

static void transformer(gen *g, const char *prefix, int width, int layers) {
    char n[256];
    for (int l = 0; l < layers; l++) {
        snprintf(n, sizeof n, "%stransformer.resblocks.%d.attn.in_proj_weight", prefix, l);
        T(g, n, 0, 1 / sqrt(width), 3 * width, width);
        snprintf(n, sizeof n, "%stransformer.resblocks.%d.attn.in_proj_bias", prefix, l);
        T(g, n, 0, 0.02, 3 * width);
        snprintf(n, sizeof n, "%stransformer.resblocks.%d.attn.out_proj", prefix, l);
        linear(g, n, width, width);
        snprintf(n, sizeof n, "%stransformer.resblocks.%d.ln_1", prefix, l);
        layernorm(g, n, width);
        snprintf(n, sizeof n, "%stransformer.resblocks.%d.mlp.c_fc", prefix, l);
        linear(g, n, 4 * width, width);
        snprintf(n, sizeof n, "%stransformer.resblocks.%d.mlp.c_proj", prefix, l);
        linear(g, n, width, 4 * width);
        snprintf(n, sizeof n, "%stransformer.resblocks.%d.ln_2", prefix, l);
        layernorm(g, n, width);
    }
}

static void text_tower(gen *g, int width, int embed) {
    T(g, "positional_embedding", 0, 0.01, 77, width);
    T(g, "text_projection", 0, 1 / sqrt(width), width, embed);
    T(g, "logit_scale", log(1 / 0.07), 0, 1);
    transformer(g, "", width, 12);
    T(g, "token_embedding.weight", 0, 0.02, 49408, width);
    layernorm(g, "ln_final", width);
}

static void vit(gen *g, int patch, int embed) {
    int width = 768, grid = 224 / patch;
    T(g, "visual.class_embedding", 0, 1 / sqrt(width), width);
    T(g, "visual.positional_embedding", 0, 1 / sqrt(width), grid * grid + 1, width);
    T(g, "visual.proj", 0, 1 / sqrt(width), width, embed);
    T(g, "visual.conv1.weight", 0, 1 / sqrt(3.0 * patch * patch), width, 3, patch, patch);
    layernorm(g, "visual.ln_pre", width);
    transformer(g, "visual.", width, 12);
    layernorm(g, "visual.ln_post", width);
}

static void conv_bn(gen *g, const char *conv, const char *bn, int out, int in, int k) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", conv);
    T(g, n, 0, sqrt(2.0 / (in * k * k)), out, in, k, k);
    snprintf(n, sizeof n, "%s.weight", bn);
    T(g, n, 1, 0.1, out);
    snprintf(n, sizeof n, "%s.bias", bn);
    T(g, n, 0, 0.05, out);
    snprintf(n, sizeof n, "%s.running_mean", bn);
    T(g, n, 0, 0.05, out);
    snprintf(n, sizeof n, "%s.running_var", bn);
    T(g, n, 1.5, 0.1, out);
}

static void rn50(gen *g) {
    int width = 64, embed = 1024, layers[4] = {3, 4, 6, 3};
    conv_bn(g, "visual.conv1", "visual.bn1", width / 2, 3, 3);
    conv_bn(g, "visual.conv2", "visual.bn2", width / 2, width / 2, 3);
    conv_bn(g, "visual.conv3", "visual.bn3", width, width / 2, 3);
    int inplanes = width;
    char a[256], b[256];
    for (int s = 0; s < 4; s++) {
        int planes = width << s;
        for (int i = 0; i < layers[s]; i++) {
            const char *ix[3] = {"1", "2", "3"};
            int ins[3] = {inplanes, planes, planes}, outs[3] = {planes, planes, planes * 4}, ks[3] = {1, 3, 1};
            for (int c = 0; c < 3; c++) {
                snprintf(a, sizeof a, "visual.layer%d.%d.conv%s", s + 1, i, ix[c]);
                snprintf(b, sizeof b, "visual.layer%d.%d.bn%s", s + 1, i, ix[c]);
                conv_bn(g, a, b, outs[c], ins[c], ks[c]);
            }
            if (i == 0) { /* stride > 1 or a channel change: every stage's first block */
                snprintf(a, sizeof a, "visual.layer%d.%d.downsample.0", s + 1, i);
                snprintf(b, sizeof b, "visual.layer%d.%d.downsample.1", s + 1, i);
                conv_bn(g, a, b, planes * 4, inplanes, 1);
            }
            inplanes = planes * 4;
        }
    }
    int ed = width * 32, sp = 224 / 32;
    T(g, "visual.attnpool.positional_embedding", 0, 1 / sqrt(ed), sp * sp + 1, ed);
    linear(g, "visual.attnpool.k_proj", ed, ed);
    linear(g, "visual.attnpool.q_proj", ed, ed);
    linear(g, "visual.attnpool.v_proj", ed, ed);
    linear(g, "visual.attnpool.c_proj", embed, ed);
}

static int make_one(const char *dir, const char *name, uint64_t stream) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    struct stat sb;
    if (stat(path, &sb) == 0) return 0;
    gen g = {ca_st_writer_new(), ca_rng_make(20240601, stream), NULL, 0, CA_OK};
    if (!g.w) return 1;
    if (strcmp(name, "vit-b32") == 0) { text_tower(&g, 512, 512); vit(&g, 32, 512); }
    else if (strcmp(name, "vit-b16") == 0) { text_tower(&g, 512, 512); vit(&g, 16, 512); }
    else if (strcmp(name, "rn50") == 0) { text_tower(&g, 512, 1024); rn50(&g); }
    else { fprintf(stderr, "gen_weights: unknown model '%s' (vit-b32, vit-b16, rn50)\n", name); ca_st_writer_free(g.w); return 2; }
    if (g.st == CA_OK) g.st = ca_st_writer_metadata(g.w, "format", "openai-clip");
    if (g.st == CA_OK) g.st = ca_st_writer_metadata(g.w, "note", "random weights (bench/gen_weights.c), seeded");
    if (g.st == CA_OK) g.st = ca_st_writer_save(g.w, path);
    ca_st_writer_free(g.w);
    free(g.buf);
    if (g.st != CA_OK) { fprintf(stderr, "gen_weights: %s: %s\n", path, ca_last_error()); return 1; }
    fprintf(stderr, "gen_weights: wrote %s\n", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: gen_weights OUTDIR [vit-b32|vit-b16|rn50 ...]\n"); return 2; }
    mkdir(argv[1], 0777);
    const char *all[] = {"vit-b32", "vit-b16", "rn50"};
    int rc = 0;
    if (argc == 2)
        for (int i = 0; i < 3; i++) rc |= make_one(argv[1], all[i], (uint64_t)i);
    for (int i = 2; i < argc; i++) {
        uint64_t stream = 0;
        for (int k = 0; k < 3; k++)
            if (strcmp(argv[i], all[k]) == 0) stream = (uint64_t)k;
        rc |= make_one(argv[1], argv[i], stream);
    }
    return rc;
}
