/* load.c — loading a CLIP checkpoint from safetensors: tensor-name scheme detection (OpenAI /
 * OpenCLIP or Hugging Face), architecture inference from shapes alone (as OpenAI's build_model),
 * an optional HF config.json, and conversion of every weight to float32 in one block (BatchNorm
 * folded, HF q/k/v concatenated, projections stored as (out, in)). Every tensor of a loaded
 * tower must be used: unknown, missing or mis-shaped tensors are refused by name.
 * Not here: the forward passes (vit.c, resnet.c, text.c).
 */
#include "io/safetensors.h"
#include "model/kernels.h"
#include "model/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { TOWER_COMMON = 0, TOWER_VISION = 1, TOWER_TEXT = 2 };

typedef struct {
    const ca_st_file *f;
    const char *file;                /* basename for messages */
    int hf;                          /* Hugging Face names */
    int n;                           /* tensor count */
    const ca_tensor_info **t;
    unsigned char *used;
    ca_model *m;
    int64_t dt_numel[CA_DT_BOOL + 1];
    int mat_dt;                      /* stored dtype of the packable matrices so far; -1 none, -2 mixed */
    size_t page;                     /* in floats */
    ca_status st;                    /* first failure; later calls are no-ops */
    char name[4][256];
    int k;
} loader;

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *nm(loader *L, const char *fmt, ...) {
    L->k = (L->k + 1) & 3;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->name[L->k], sizeof L->name[L->k], fmt, ap);
    va_end(ap);
    return L->name[L->k];
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends(const char *s, const char *p) {
    size_t a = strlen(s), b = strlen(p);
    return a >= b && strcmp(s + a - b, p) == 0;
}

static int tower_of(const loader *L, const char *name) {
    if (L->hf) {
        if (starts(name, "vision_model.") || starts(name, "visual_projection.")) return TOWER_VISION;
        if (starts(name, "text_model.") || starts(name, "text_projection.")) return TOWER_TEXT;
        return TOWER_COMMON;
    }
    if (starts(name, "visual.")) return TOWER_VISION;
    if (!strcmp(name, "logit_scale") || !strcmp(name, "input_resolution") || !strcmp(name, "context_length") ||
        !strcmp(name, "vocab_size"))
        return TOWER_COMMON;
    return TOWER_TEXT;
}

/* Tensors that carry no weights the forward pass needs (buffers, scalars of the JIT archives). */
static int ignorable(const char *name) {
    return ends(name, "num_batches_tracked") || ends(name, "position_ids") || !strcmp(name, "input_resolution") ||
           !strcmp(name, "context_length") || !strcmp(name, "vocab_size");
}

static int find(const loader *L, const char *name) {
    for (int i = 0; i < L->n; i++)
        if (!strcmp(L->t[i]->name, name)) return i;
    return -1;
}

static const ca_tensor_info *peek(const loader *L, const char *name) {
    int i = find(L, name);
    return i < 0 ? NULL : L->t[i];
}

static void fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

static void failf(loader *L, ca_status st, const char *fmt, ...) {
    if (L->st) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    L->st = ca_fail(st, "%s: %s", L->file, msg);
}

/* A required tensor of exactly this shape, or NULL (failure recorded). */
static const ca_tensor_info *need(loader *L, const char *name, int ndim, const int64_t *shape) {
    if (L->st) return NULL;
    int i = find(L, name);
    if (i < 0) { failf(L, CA_E_NOTFOUND, "missing tensor '%s'", name); return NULL; }
    const ca_tensor_info *t = L->t[i];
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        char want[128], got[128];
        fmt_shape(want, sizeof want, ndim, shape);
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        failf(L, CA_E_SHAPE, "tensor '%s': shape %s, expected %s", name, got, want);
        return NULL;
    }
    if (t->dtype != CA_DT_F32 && t->dtype != CA_DT_F16 && t->dtype != CA_DT_BF16) {
        failf(L, CA_E_UNSUPPORTED, "tensor '%s': dtype %s, expected F32, F16 or BF16", name, ca_dtype_name(t->dtype));
        return NULL;
    }
    L->used[i] = 1;
    L->dt_numel[t->dtype] += t->numel;
    if (!ends(name, "running_mean") && !ends(name, "running_var")) L->m->info.n_params += t->numel;
    return t;
}

static float *arena(loader *L, size_t n) {
    ca_model *m = L->m;
    if (L->st) return NULL;
    if (n > m->weights_cap - m->weights_len) { failf(L, CA_E_INTERNAL, "weight block too small"); return NULL; }
    float *p = m->weights + m->weights_len;
    m->weights_len += n;
    return p;
}

/* Room for a matrix the fast path packs: page aligned, so that once packed its float32 copy
 * can be dropped page by page (ca_model_release_weights) without touching its neighbours. */
static float *arena_mat(loader *L, size_t n) {
    ca_model *m = L->m;
    if (L->st) return NULL;
    size_t aligned = (m->weights_len + L->page - 1) / L->page * L->page;
    if (aligned > m->weights_cap) { failf(L, CA_E_INTERNAL, "weight block too small"); return NULL; }
    m->weights_len = aligned;
    return arena(L, n);
}

/* Record the stored dtype of a packable matrix: the fast path keeps F16 ones as F16 panels. */
static void note_mat(loader *L, const ca_tensor_info *t) {
    if (!t || L->mat_dt == -2) return;
    if (L->mat_dt == -1) L->mat_dt = (int)t->dtype;
    else if (L->mat_dt != (int)t->dtype) L->mat_dt = -2;
}

static void convert(loader *L, const ca_tensor_info *t, float *dst) {
    ca_status st = ca_tensor_to_f32(t, dst, t->numel);
    if (st) failf(L, st, "tensor '%s': cannot convert to float32", t->name);
    /* NaN/Inf weights would turn every feature into NaN: refuse them here, naming the tensor */
    for (int64_t i = 0; !st && i < t->numel; i++)
        if (!isfinite(dst[i])) {
            failf(L, CA_E_NONFINITE, "tensor '%s': non-finite value %g at element %lld", t->name, dst[i], (long long)i);
            break;
        }
    /* read once: peak memory is then the float32 block, not that plus the mapped file */
    ca_st_drop_pages(L->f, t);
}

/* Load a required tensor of the given shape into the weight block. */
static const float *take(loader *L, const char *name, int ndim, const int64_t *shape) {
    const ca_tensor_info *t = need(L, name, ndim, shape);
    float *p = t ? arena(L, (size_t)t->numel) : NULL;
    if (p) convert(L, t, p);
    return p;
}
/* The same for a matrix the fast path packs (see arena_mat). */
static const float *take_mat(loader *L, const char *name, int ndim, const int64_t *shape) {
    const ca_tensor_info *t = need(L, name, ndim, shape);
    note_mat(L, t);
    float *p = t ? arena_mat(L, (size_t)t->numel) : NULL;
    if (p) convert(L, t, p);
    return p;
}
#define TAKE1(L, name, a) take(L, name, 1, (int64_t[]){a})
#define TAKE2(L, name, a, b) take(L, name, 2, (int64_t[]){a, b})
#define MAT2(L, name, a, b) take_mat(L, name, 2, (int64_t[]){a, b})
#define MAT4(L, name, a, b, c, d) take_mat(L, name, 4, (int64_t[]){a, b, c, d})

/* Load a required tensor into dst (already in the weight block). */
static const ca_tensor_info *take_into(loader *L, const char *name, int ndim, const int64_t *shape, float *dst) {
    const ca_tensor_info *t = need(L, name, ndim, shape);
    if (t && dst) convert(L, t, dst);
    return t;
}

/* Load a (rows, cols) tensor used as x @ W and store it transposed, (cols, rows), for ca_linear
 * (a matrix the fast path packs). */
static const float *take_t(loader *L, const char *name, int rows, int cols) {
    const ca_tensor_info *t = need(L, name, 2, (int64_t[]){rows, cols});
    if (!t) return NULL;
    note_mat(L, t);
    float *tmp = ca_malloc2((size_t)rows * cols, sizeof(float));
    float *p = arena_mat(L, (size_t)rows * cols);
    if (!tmp || !p) {
        free(tmp);
        failf(L, CA_E_NOMEM, "tensor '%s': out of memory", name);
        return NULL;
    }
    convert(L, t, tmp);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) p[(size_t)c * rows + r] = tmp[(size_t)r * cols + c];
    free(tmp);
    return p;
}

/* Number of blocks "<prefix><i>." (max index + 1); 0 when none. */
static int count_blocks(loader *L, const char *prefix) {
    size_t pl = strlen(prefix);
    long max = -1;
    for (int i = 0; i < L->n; i++) {
        const char *s = L->t[i]->name;
        if (strncmp(s, prefix, pl) != 0) continue;
        char *end;
        long v = strtol(s + pl, &end, 10);
        if (end == s + pl || *end != '.' || v < 0) continue;
        if (v >= L->n) { failf(L, CA_E_FORMAT, "tensor '%s': block index %ld out of range", s, v); return 0; }
        if (v > max) max = v;
    }
    return (int)(max + 1);
}

/* A required 2-D tensor's shape (for inference); NULL with a failure when absent or not 2-D/4-D. */
static const ca_tensor_info *shape_of(loader *L, const char *name, int ndim) {
    if (L->st) return NULL;
    const ca_tensor_info *t = peek(L, name);
    if (!t) { failf(L, CA_E_NOTFOUND, "missing tensor '%s'", name); return NULL; }
    if (t->ndim != ndim) { failf(L, CA_E_SHAPE, "tensor '%s': %d dimensions, expected %d", name, t->ndim, ndim); return NULL; }
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] <= 0 || t->shape[d] > (1 << 24)) {
            failf(L, CA_E_SHAPE, "tensor '%s': dimension %d is %lld", name, d, (long long)t->shape[d]);
            return NULL;
        }
    return t;
}

static int heads_for(int width) { return width >= 64 ? width / 64 : 1; }

/* ---- transformer blocks -------------------------------------------------------------------- */

static void load_blocks(loader *L, ca_xformer *tf, const char *prefix, int C) {
    if (L->st) return;
    tf->width = C;
    tf->heads = heads_for(C);
    tf->eps = 1e-5f;
    tf->act = CA_ACT_QUICKGELU;
    tf->layers = count_blocks(L, prefix);
    if (L->st) return;
    const ca_tensor_info *fc = tf->layers ? shape_of(L, nm(L, L->hf ? "%s0.mlp.fc1.weight" : "%s0.mlp.c_fc.weight", prefix), 2) : NULL;
    if (L->st) return;
    int H = fc ? (int)fc->shape[0] : 4 * C;
    tf->hidden = H;
    tf->blocks = calloc(tf->layers ? (size_t)tf->layers : 1, sizeof *tf->blocks);
    if (!tf->blocks) { failf(L, CA_E_NOMEM, "out of memory"); return; }
    for (int l = 0; l < tf->layers && !L->st; l++) {
        ca_block *b = &tf->blocks[l];
        char p[160];
        snprintf(p, sizeof p, "%s%d.", prefix, l);
        if (!L->hf) {
            b->ln1_w = TAKE1(L, nm(L, "%sln_1.weight", p), C);
            b->ln1_b = TAKE1(L, nm(L, "%sln_1.bias", p), C);
            b->qkv_w = MAT2(L, nm(L, "%sattn.in_proj_weight", p), 3 * C, C);
            b->qkv_b = TAKE1(L, nm(L, "%sattn.in_proj_bias", p), 3 * C);
            b->out_w = MAT2(L, nm(L, "%sattn.out_proj.weight", p), C, C);
            b->out_b = TAKE1(L, nm(L, "%sattn.out_proj.bias", p), C);
            b->ln2_w = TAKE1(L, nm(L, "%sln_2.weight", p), C);
            b->ln2_b = TAKE1(L, nm(L, "%sln_2.bias", p), C);
            b->fc_w = MAT2(L, nm(L, "%smlp.c_fc.weight", p), H, C);
            b->fc_b = TAKE1(L, nm(L, "%smlp.c_fc.bias", p), H);
            b->proj_w = MAT2(L, nm(L, "%smlp.c_proj.weight", p), C, H);
            b->proj_b = TAKE1(L, nm(L, "%smlp.c_proj.bias", p), C);
        } else {
            float *w = arena_mat(L, (size_t)3 * C * C), *bias = arena(L, (size_t)3 * C);
            static const char *qkv[3] = {"q", "k", "v"};
            for (int j = 0; j < 3 && w && bias; j++) {
                note_mat(L, take_into(L, nm(L, "%sself_attn.%s_proj.weight", p, qkv[j]), 2, (int64_t[]){C, C}, w + (size_t)j * C * C));
                take_into(L, nm(L, "%sself_attn.%s_proj.bias", p, qkv[j]), 1, (int64_t[]){C}, bias + (size_t)j * C);
            }
            b->qkv_w = w;
            b->qkv_b = bias;
            b->ln1_w = TAKE1(L, nm(L, "%slayer_norm1.weight", p), C);
            b->ln1_b = TAKE1(L, nm(L, "%slayer_norm1.bias", p), C);
            b->out_w = MAT2(L, nm(L, "%sself_attn.out_proj.weight", p), C, C);
            b->out_b = TAKE1(L, nm(L, "%sself_attn.out_proj.bias", p), C);
            b->ln2_w = TAKE1(L, nm(L, "%slayer_norm2.weight", p), C);
            b->ln2_b = TAKE1(L, nm(L, "%slayer_norm2.bias", p), C);
            b->fc_w = MAT2(L, nm(L, "%smlp.fc1.weight", p), H, C);
            b->fc_b = TAKE1(L, nm(L, "%smlp.fc1.bias", p), H);
            b->proj_w = MAT2(L, nm(L, "%smlp.fc2.weight", p), C, H);
            b->proj_b = TAKE1(L, nm(L, "%smlp.fc2.bias", p), C);
        }
    }
}

/* ---- vision -------------------------------------------------------------------------------- */

static int grid_of(loader *L, const ca_tensor_info *pos) {
    if (!pos) return 0;
    int64_t n = pos->shape[0] - 1;
    int g = (int)llround(sqrt((double)(n > 0 ? n : 0)));
    if (n < 1 || (int64_t)g * g != n) {
        failf(L, CA_E_SHAPE, "tensor '%s': %lld positions is not a square grid plus one", pos->name,
              (long long)pos->shape[0]);
        return 0;
    }
    return g;
}

static void load_vit(loader *L) {
    ca_vision *v = &L->m->vis;
    const char *conv = L->hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight";
    const char *pos = L->hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding";
    const char *proj = L->hf ? "visual_projection.weight" : "visual.proj";
    const ca_tensor_info *tc = shape_of(L, conv, 4), *tp = shape_of(L, pos, 2), *tj = shape_of(L, proj, 2);
    if (L->st) return;
    int W = (int)tc->shape[0], P = (int)tc->shape[3];
    int G = grid_of(L, tp);
    int E = (int)(L->hf ? tj->shape[0] : tj->shape[1]);
    if (L->st) return;
    v->width = W; v->patch = P; v->grid = G; v->image_size = P * G; v->embed_dim = E;
    v->conv1 = MAT4(L, conv, W, 3, P, P);
    v->class_emb = TAKE1(L, L->hf ? "vision_model.embeddings.class_embedding" : "visual.class_embedding", W);
    v->pos = TAKE2(L, pos, (int64_t)G * G + 1, W);
    v->ln_pre_w = TAKE1(L, L->hf ? "vision_model.pre_layrnorm.weight" : "visual.ln_pre.weight", W);
    v->ln_pre_b = TAKE1(L, L->hf ? "vision_model.pre_layrnorm.bias" : "visual.ln_pre.bias", W);
    v->ln_post_w = TAKE1(L, L->hf ? "vision_model.post_layernorm.weight" : "visual.ln_post.weight", W);
    v->ln_post_b = TAKE1(L, L->hf ? "vision_model.post_layernorm.bias" : "visual.ln_post.bias", W);
    v->proj = L->hf ? MAT2(L, proj, E, W) : take_t(L, proj, W, E);
    load_blocks(L, &v->tf, L->hf ? "vision_model.encoder.layers." : "visual.transformer.resblocks.", W);
}

static void load_bn(loader *L, ca_bn *bn, const char *prefix_in, int C) {
    char prefix[160]; /* prefix_in may live in the rotating name buffers nm() overwrites */
    snprintf(prefix, sizeof prefix, "%s", prefix_in);
    float *w = (float *)TAKE1(L, nm(L, "%s.weight", prefix), C);
    float *b = (float *)TAKE1(L, nm(L, "%s.bias", prefix), C);
    const float *mean = TAKE1(L, nm(L, "%s.running_mean", prefix), C);
    const float *var = TAKE1(L, nm(L, "%s.running_var", prefix), C);
    if (L->st) return;
    /* Folded in place: scale over weight, shift over bias (each read before it is written). */
    ca_batchnorm_fold(w, b, w, b, mean, var, C, 1e-5f);
    bn->scale = w;
    bn->shift = b;
}

static void load_resnet(loader *L) {
    ca_vision *v = &L->m->vis;
    const ca_tensor_info *t1 = shape_of(L, "visual.layer1.0.conv1.weight", 4);
    const ca_tensor_info *tp = shape_of(L, "visual.attnpool.positional_embedding", 2);
    const ca_tensor_info *tc = shape_of(L, "visual.attnpool.c_proj.weight", 2);
    if (L->st) return;
    int W = (int)t1->shape[0], G = grid_of(L, tp), E = (int)tc->shape[0];
    if (L->st) return;
    if (W < 2 || W % 2) { failf(L, CA_E_SHAPE, "tensor 'visual.layer1.0.conv1.weight': width %d is not even", W); return; }
    v->width = W; v->ap_grid = G; v->image_size = 32 * G; v->embed_dim = E;
    v->ap_dim = 32 * W; v->ap_heads = heads_for(32 * W);
    int nb = 0;
    for (int s = 0; s < 4; s++) {
        v->rn_layers[s] = count_blocks(L, nm(L, "visual.layer%d.", s + 1));
        if (!L->st && v->rn_layers[s] == 0) failf(L, CA_E_NOTFOUND, "missing tensor 'visual.layer%d.0.conv1.weight'", s + 1);
        nb += v->rn_layers[s];
    }
    if (L->st) return;
    for (int i = 0; i < 3; i++) {
        int in = i == 0 ? 3 : W / 2, out = i == 2 ? W : W / 2;
        v->stem_conv[i] = MAT4(L, nm(L, "visual.conv%d.weight", i + 1), out, in, 3, 3);
        load_bn(L, &v->stem_bn[i], nm(L, "visual.bn%d", i + 1), out);
    }
    v->blocks = calloc((size_t)nb, sizeof *v->blocks);
    if (!v->blocks) { failf(L, CA_E_NOMEM, "out of memory"); return; }
    ca_bottleneck *bk = v->blocks;
    int inpl = W;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < v->rn_layers[s] && !L->st; i++, bk++) {
            int P = W << s;
            char p[64];
            snprintf(p, sizeof p, "visual.layer%d.%d.", s + 1, i);
            bk->inplanes = inpl; bk->planes = P; bk->stride = (s > 0 && i == 0) ? 2 : 1;
            bk->conv1 = MAT4(L, nm(L, "%sconv1.weight", p), P, inpl, 1, 1);
            load_bn(L, &bk->bn1, nm(L, "%sbn1", p), P);
            bk->conv2 = MAT4(L, nm(L, "%sconv2.weight", p), P, P, 3, 3);
            load_bn(L, &bk->bn2, nm(L, "%sbn2", p), P);
            bk->conv3 = MAT4(L, nm(L, "%sconv3.weight", p), 4 * P, P, 1, 1);
            load_bn(L, &bk->bn3, nm(L, "%sbn3", p), 4 * P);
            if (bk->stride > 1 || inpl != 4 * P) {
                bk->down = MAT4(L, nm(L, "%sdownsample.0.weight", p), 4 * P, inpl, 1, 1);
                load_bn(L, &bk->down_bn, nm(L, "%sdownsample.1", p), 4 * P);
            }
            inpl = 4 * P;
        }
    int D = v->ap_dim;
    v->ap_pos = TAKE2(L, "visual.attnpool.positional_embedding", (int64_t)G * G + 1, D);
    float *w = arena_mat(L, (size_t)3 * D * D), *b = arena(L, (size_t)3 * D);
    static const char *qkv[3] = {"q", "k", "v"};
    for (int j = 0; j < 3 && w && b; j++) {
        note_mat(L, take_into(L, nm(L, "visual.attnpool.%s_proj.weight", qkv[j]), 2, (int64_t[]){D, D}, w + (size_t)j * D * D));
        take_into(L, nm(L, "visual.attnpool.%s_proj.bias", qkv[j]), 1, (int64_t[]){D}, b + (size_t)j * D);
    }
    v->ap_qkv_w = w;
    v->ap_qkv_b = b;
    v->ap_c_w = MAT2(L, "visual.attnpool.c_proj.weight", E, D);
    v->ap_c_b = TAKE1(L, "visual.attnpool.c_proj.bias", E);
}

/* ---- text ---------------------------------------------------------------------------------- */

static void load_text(loader *L) {
    ca_text *t = &L->m->txt;
    const char *tok = L->hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight";
    const char *pos = L->hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding";
    const char *proj = L->hf ? "text_projection.weight" : "text_projection";
    const ca_tensor_info *tt = shape_of(L, tok, 2), *tp = shape_of(L, pos, 2), *tj = shape_of(L, proj, 2);
    if (L->st) return;
    int V = (int)tt->shape[0], W = (int)tt->shape[1], T = (int)tp->shape[0];
    int E = (int)(L->hf ? tj->shape[0] : tj->shape[1]);
    t->vocab = V; t->width = W; t->context = T; t->embed_dim = E;
    t->tok_emb = TAKE2(L, tok, V, W);
    t->pos = TAKE2(L, pos, T, W);
    t->ln_final_w = TAKE1(L, L->hf ? "text_model.final_layer_norm.weight" : "ln_final.weight", W);
    t->ln_final_b = TAKE1(L, L->hf ? "text_model.final_layer_norm.bias" : "ln_final.bias", W);
    t->proj = L->hf ? MAT2(L, proj, E, W) : take_t(L, proj, W, E);
    load_blocks(L, &t->tf, L->hf ? "text_model.encoder.layers." : "transformer.resblocks.", W);
}

/* ---- Hugging Face config.json -------------------------------------------------------------- */

static int cfg_int(const cJSON *o, const char *key, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it)) return 0;
    *out = (int)it->valuedouble;
    return 1;
}

/* Check a config value against the one the shapes imply. */
static void cfg_check(loader *L, const char *cfg, const cJSON *o, const char *sec, const char *key, int have) {
    int v;
    if (L->st || !cfg_int(o, key, &v) || v == have) return;
    failf(L, CA_E_SHAPE, "%s: %s.%s = %d but the weights imply %d", cfg, sec, key, v, have);
}

static void cfg_tower(loader *L, const char *cfg, const cJSON *o, const char *sec, ca_xformer *tf) {
    if (!cJSON_IsObject(o)) return;
    cfg_check(L, cfg, o, sec, "hidden_size", tf->width);
    cfg_check(L, cfg, o, sec, "num_hidden_layers", tf->layers);
    cfg_check(L, cfg, o, sec, "intermediate_size", tf->hidden);
    int h;
    if (cfg_int(o, "num_attention_heads", &h)) {
        if (h <= 0 || tf->width % h) failf(L, CA_E_SHAPE, "%s: %s.num_attention_heads = %d does not divide width %d", cfg, sec, h, tf->width);
        else tf->heads = h;
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(o, "layer_norm_eps");
    if (cJSON_IsNumber(eps)) tf->eps = (float)eps->valuedouble;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (cJSON_IsString(act)) {
        const char *a = act->valuestring;
        if (!strcmp(a, "quick_gelu")) tf->act = CA_ACT_QUICKGELU;
        else if (!strcmp(a, "gelu")) tf->act = CA_ACT_GELU;
        else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh")) tf->act = CA_ACT_GELU_TANH;
        else failf(L, CA_E_UNSUPPORTED, "%s: %s.hidden_act '%s' is not supported", cfg, sec, a);
    }
}

static void apply_config(loader *L, const char *path) {
    ca_status st;
    size_t len;
    char *txt = ca_read_file(path, &len, &st);
    if (!txt) { if (!L->st) L->st = st; return; }
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    const char *cfg = ca_basename(path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        L->st = ca_fail(CA_E_FORMAT, "%s: not a JSON object", cfg);
        return;
    }
    ca_model *m = L->m;
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (m->info.has_vision && m->info.is_vit) {
        cfg_tower(L, cfg, vc, "vision_config", &m->vis.tf);
        if (cJSON_IsObject(vc)) {
            cfg_check(L, cfg, vc, "vision_config", "image_size", m->vis.image_size);
            cfg_check(L, cfg, vc, "vision_config", "patch_size", m->vis.patch);
        }
        cfg_check(L, cfg, root, "config", "projection_dim", m->vis.embed_dim);
    }
    if (m->info.has_text) {
        cfg_tower(L, cfg, tc, "text_config", &m->txt.tf);
        if (cJSON_IsObject(tc)) {
            cfg_check(L, cfg, tc, "text_config", "max_position_embeddings", m->txt.context);
            cfg_check(L, cfg, tc, "text_config", "vocab_size", m->txt.vocab);
        }
        cfg_check(L, cfg, root, "config", "projection_dim", m->txt.embed_dim);
    }
    cJSON_Delete(root);
}

/* "<weights minus .safetensors>.config.json", then "config.json" beside the weights; NULL if none. */
static char *find_config(const char *path) {
    size_t n = strlen(path);
    char *buf = malloc(n + 32);
    if (!buf) return NULL;
    size_t stem = ends(path, ".safetensors") ? n - strlen(".safetensors") : n;
    memcpy(buf, path, stem);
    strcpy(buf + stem, ".config.json");
    if (access(buf, R_OK) == 0) return buf;
    const char *base = ca_basename(path);
    size_t dir = (size_t)(base - path);
    memcpy(buf, path, dir);
    strcpy(buf + dir, "config.json");
    if (access(buf, R_OK) == 0) return buf;
    free(buf);
    return NULL;
}

/* ---- entry point --------------------------------------------------------------------------- */

ca_model *ca_model_load(const char *path, const ca_model_params *p, ca_status *st) {
    ca_status dummy;
    if (!st) st = &dummy;
    ca_model_params def = ca_model_default_params();
    if (!p) p = &def;
    if (!path) { *st = ca_fail(CA_E_ARG, "ca_model_load: NULL path"); return NULL; }
    if (!p->load_vision && !p->load_text) { *st = ca_fail(CA_E_ARG, "%s: neither tower requested", ca_basename(path)); return NULL; }
    if (!ca_cpu_path(st)) return NULL; /* CLIPADAPT_CPU asked for a path this CPU lacks */
    ca_st_file *f = ca_st_open(path, st);
    if (!f) return NULL;

    loader L;
    memset(&L, 0, sizeof L);
    L.f = f;
    L.file = path;   /* errors name the path as the user gave it */
    L.n = ca_st_count(f);
    L.t = calloc(L.n ? (size_t)L.n : 1, sizeof *L.t);
    L.used = calloc(L.n ? (size_t)L.n : 1, 1);
    ca_model *m = L.m = calloc(1, sizeof *m);
    char *cfg_found = NULL;
    if (!L.t || !L.used || !m) { L.st = ca_fail(CA_E_NOMEM, "%s: out of memory", L.file); goto done; }
    m->max_chunk = 64;
    m->threads = p->threads;
    for (int i = 0; i < L.n; i++) {
        L.t[i] = ca_st_at(f, i);
        if (starts(L.t[i]->name, "vision_model.") || starts(L.t[i]->name, "text_model.")) L.hf = 1;
    }
    snprintf(m->naming, sizeof m->naming, "%s", L.hf ? "hf" : "openai");
    m->info.naming = m->naming;

    /* One block for every float32 weight: the element count of the requested towers bounds it
     * (BatchNorm folding only shrinks, q/k/v concatenation and transposes keep sizes), plus a
     * page per tensor for aligning the matrices (arena_mat). Mapped rather than malloc'ed:
     * pages of packed matrices are handed back with madvise (ca_model_release_weights). */
    long pg = sysconf(_SC_PAGESIZE);
    L.page = (size_t)(pg > 0 ? pg : 4096) / sizeof(float);
    L.mat_dt = -1;
    size_t total = L.page;
    for (int i = 0; i < L.n; i++) {
        int tw = tower_of(&L, L.t[i]->name);
        if ((tw == TOWER_VISION && !p->load_vision) || (tw == TOWER_TEXT && !p->load_text)) continue;
        size_t add = (size_t)L.t[i]->numel + L.page; /* numel is checked against the file length */
        total = total > SIZE_MAX - add ? SIZE_MAX : total + add;
    }
    size_t bytes;
    void *blk = ca_mul_size(total, sizeof(float), &bytes)
                    ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (blk == MAP_FAILED) { L.st = ca_fail(CA_E_NOMEM, "%s: cannot allocate %zu MiB of weights", L.file, total >> 18); goto done; }
    m->weights = blk;
    m->weights_map = bytes;
    m->weights_cap = total;

    if (p->load_vision) {
        m->info.has_vision = 1;
        if (L.hf || peek(&L, "visual.proj")) {
            m->info.is_vit = 1;
            load_vit(&L);
        } else if (peek(&L, "visual.layer1.0.conv1.weight") || peek(&L, "visual.attnpool.positional_embedding")) {
            load_resnet(&L);
        } else {
            failf(&L, CA_E_NOTFOUND, "no vision tower: missing tensor 'visual.proj' (ViT) or "
                                     "'visual.attnpool.positional_embedding' (ResNet)");
        }
    }
    if (p->load_text) {
        m->info.has_text = 1;
        load_text(&L);
    }
    if (!L.st && p->load_vision && p->load_text && m->vis.embed_dim != m->txt.embed_dim)
        failf(&L, CA_E_SHAPE, "vision embedding dimension %d differs from the text one %d ('%s')", m->vis.embed_dim,
              m->txt.embed_dim, L.hf ? "text_projection.weight" : "text_projection");
    int li = find(&L, "logit_scale");
    m->logit_scale = 100.0f;
    if (!L.st && li >= 0) {
        const ca_tensor_info *ls = need(&L, "logit_scale", L.t[li]->ndim, L.t[li]->shape);
        float v = NAN;
        if (ls && ls->numel != 1) failf(&L, CA_E_SHAPE, "tensor 'logit_scale': %lld elements, expected 1", (long long)ls->numel);
        else if (ls && (ca_tensor_to_f32(ls, &v, 1) != CA_OK || !isfinite(expf(v))))
            failf(&L, CA_E_NONFINITE, "tensor 'logit_scale': non-finite scale exp(%g)", v);
        else if (ls) m->logit_scale = expf(v);
    }
    /* Anything left in a requested tower is a tensor this architecture does not have. */
    for (int i = 0; i < L.n && !L.st; i++) {
        const char *s = L.t[i]->name;
        int tw = tower_of(&L, s);
        if (L.used[i] || ignorable(s)) continue;
        if ((tw == TOWER_VISION && !p->load_vision) || (tw == TOWER_TEXT && !p->load_text)) continue;
        failf(&L, CA_E_FORMAT, "unknown tensor '%s' for a %s %s checkpoint", s, m->naming,
              !m->info.has_vision ? "text" : m->info.is_vit ? "ViT" : "ResNet");
    }
    if (L.st) goto done;

    const char *cfg = p->config_path;
    if (!cfg && L.hf) cfg = cfg_found = find_config(path);
    if (cfg) apply_config(&L, cfg);
    if (L.st) goto done;

    ca_model_info *in = &m->info;
    const ca_vision *v = &m->vis;
    if (in->has_vision) {
        in->image_size = v->image_size;
        in->patch_size = in->is_vit ? v->patch : 0;
        in->vision_width = v->width;
        if (in->is_vit) {
            in->vision_layers = v->tf.layers;
            in->vision_heads = v->tf.heads;
        } else {
            for (int s = 0; s < 4; s++) { in->rn_layers[s] = v->rn_layers[s]; in->vision_layers += v->rn_layers[s]; }
            in->vision_heads = v->ap_heads;
        }
        in->embed_dim = v->embed_dim;
        /* the image tower's output projection identifies the weights (ca_model_signature) */
        const float *pw = in->is_vit ? v->proj : v->ap_c_w;
        int W = in->is_vit ? v->width : v->ap_dim;
        int len = snprintf(m->signature, sizeof m->signature, "clip-image:%d:%d:", v->embed_dim, W);
        for (int i = 0; i < 16 && len > 0 && (size_t)len < sizeof m->signature; i++)
            len += snprintf(m->signature + len, sizeof m->signature - (size_t)len, "%s%.5g", i ? "," : "", pw[i]);
    }
    if (in->has_text) {
        in->text_width = m->txt.width;
        in->text_layers = m->txt.tf.layers;
        in->text_heads = m->txt.tf.heads;
        in->context_length = m->txt.context;
        in->vocab_size = m->txt.vocab;
        in->embed_dim = m->txt.embed_dim;
    }
    int best = 0;
    for (int d = 1; d <= CA_DT_BOOL; d++) if (L.dt_numel[d] > L.dt_numel[best]) best = d;
    in->dtype = (ca_dtype)best;
    m->mat_dtype = L.mat_dt >= 0 ? (ca_dtype)L.mat_dt : CA_DT_F32;

done:
    free(cfg_found);
    free(L.t);
    free(L.used);
    ca_st_close(f);
    if (L.st) {
        *st = L.st;
        ca_model_free(m);
        return NULL;
    }
    *st = CA_OK;
    return m;
}
