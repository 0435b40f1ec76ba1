/* load.c — loading a CLIP checkpoint from safetensors: tensor-name scheme detection (OpenAI /
 * OpenCLIP or Hugging Face), architecture inference from shapes alone (as OpenAI's build_model),
 * an optional HF config.json. What is done with each tensor depends on the compute path: for
 * the fast/BF16 paths every matrix is packed into GEMM panels straight from the mapped file (F16
 * into F16 panels, no float32 copy of the model on the way), and only small vectors (norms,
 * biases, embeddings, folded BatchNorm) become float32; for the reference path every weight is
 * converted to float32 in one block (HF q/k/v concatenated, projections stored as (out, in)).
 * Every tensor of a loaded tower must be used: unknown, missing or mis-shaped tensors are
 * refused by name.
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
    int pack;                        /* fast/BF16 compute: pack matrices, keep no float32 copy */
    int bf16;                        /* pack as BF16 panels */
    float sig[16];                   /* first values of the image tower's output projection */
    int has_sig;
    double t_pack;                   /* seconds spent packing (bench/model.c reports it) */
    int keep_file;                   /* the model reads from the mapping after the load */
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

/* Room for a matrix of the reference path, page aligned (a matrix starts on its own page). */
static float *arena_mat(loader *L, size_t n) {
    ca_model *m = L->m;
    if (L->st) return NULL;
    size_t aligned = (m->weights_len + L->page - 1) / L->page * L->page;
    if (aligned > m->weights_cap) { failf(L, CA_E_INTERNAL, "weight block too small"); return NULL; }
    m->weights_len = aligned;
    return arena(L, n);
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
    float *p = t ? arena_mat(L, (size_t)t->numel) : NULL;
    if (p) convert(L, t, p);
    return p;
}
#define TAKE1(L, name, a) take(L, name, 1, (int64_t[]){a})
#define TAKE2(L, name, a, b) take(L, name, 2, (int64_t[]){a, b})
#define MAT2(L, name, a, b, out) mat(L, name, 2, (int64_t[]){a, b}, out)
#define MAT4(L, name, a, b, c, d, out) mat(L, name, 4, (int64_t[]){a, b, c, d}, out)

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

/* ---- packing straight from the file (fast and BF16 compute) ------------------------------- */

/* Panels for a matrix stored as dt: F16 stays F16 (exact, half the bytes to stream); F32 and
 * BF16 become F32 panels (BF16 panels would change the numerics), unless BF16 compute. */
static ca_dtype panel_for(const loader *L, ca_dtype dt) {
    if (L->bf16) return CA_DT_BF16;
    return dt == CA_DT_F16 ? CA_DT_F16 : CA_DT_F32;
}

/* Refuse NaN/Inf in a tensor packed straight from the file (the float32 path checks as it
 * converts): the exponent bits all set, per dtype. */
static int all_finite_raw(loader *L, const ca_tensor_info *t) {
    const unsigned char *b = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        int bad;
        if (t->dtype == CA_DT_F32) { uint32_t u; memcpy(&u, b + 4 * i, 4); bad = (u & 0x7f800000u) == 0x7f800000u; }
        else { uint16_t h; memcpy(&h, b + 2 * i, 2); bad = t->dtype == CA_DT_F16 ? (h & 0x7c00) == 0x7c00 : (h & 0x7f80) == 0x7f80; }
        if (bad) {
            failf(L, CA_E_NONFINITE, "tensor '%s': non-finite value at element %lld", t->name, (long long)i);
            return 0;
        }
    }
    return 1;
}

/* Pack W (N, K) of dtype dt (row stride K) into out; name for messages. */
static void pack_raw(loader *L, const char *name, const void *w, ca_dtype dt, int N, int K, ca_packed *out) {
    if (L->st) return;
    double t0 = ca_now();
    ca_populate(w, (size_t)N * K * ca_dtype_size(dt), 0);
    ca_status st = ca_pack_weights_as(out, w, dt, N, K, K, panel_for(L, dt));
    L->t_pack += ca_now() - t0;
    if (st) failf(L, st, "tensor '%s': cannot pack: %s", name, ca_last_error());
}

/* A required matrix: float32 copy in the weight block (reference compute; returned), or packed
 * into *out as (shape[0], product of the other dims) (fast compute; NULL returned). */
static const float *mat(loader *L, const char *name, int ndim, const int64_t *shape, ca_packed *out) {
    if (!L->pack) return take_mat(L, name, ndim, shape);
    const ca_tensor_info *t = need(L, name, ndim, shape);
    if (!t || !all_finite_raw(L, t)) return NULL;
    int64_t K = 1;
    for (int d = 1; d < ndim; d++) K *= shape[d];
    pack_raw(L, t->name, t->data, t->dtype, (int)shape[0], (int)K, out);
    ca_st_drop_pages(L->f, t); /* read once: the file's pages need not stay resident */
    return NULL;
}

/* Element i of a tensor as float32 (for the signature). */
static float elem_f32(const ca_tensor_info *t, size_t i) {
    switch (t->dtype) {
    case CA_DT_F16: return ca_f16_to_f32(((const uint16_t *)t->data)[i]);
    case CA_DT_BF16: return ca_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default: return ((const float *)t->data)[i];
    }
}

/* A (rows, cols) tensor used as x @ W: the (cols, rows) matrix, transposed through a temporary
 * copy of this one tensor in its stored dtype, then packed (fast) or a float32 copy (reference). */
static const float *mat_t(loader *L, const char *name, int rows, int cols, ca_packed *out) {
    if (!L->pack) return take_t(L, name, rows, cols);
    const ca_tensor_info *t = need(L, name, 2, (int64_t[]){rows, cols});
    if (!t || !all_finite_raw(L, t)) return NULL;
    size_t es = ca_dtype_size(t->dtype);
    unsigned char *tmp = ca_malloc2((size_t)rows * cols, es);
    if (!tmp) { failf(L, CA_E_NOMEM, "tensor '%s': out of memory", name); return NULL; }
    const unsigned char *src = t->data;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) memcpy(tmp + ((size_t)c * rows + r) * es, src + ((size_t)r * cols + c) * es, es);
    pack_raw(L, t->name, tmp, t->dtype, cols, rows, out);
    free(tmp);
    ca_st_drop_pages(L->f, t);
    return NULL;
}

/* Separate (n_j, K) tensors stacked along the rows into one matrix: a float32 copy in the weight
 * block (reference) or packed from a temporary stack of just these tensors (fast; in their
 * stored dtype when they share one, else float32). */
static const float *mat_stack(loader *L, const char *const *names, int count, const int *rows, int K, ca_packed *out) {
    if (L->st) return NULL;
    const ca_tensor_info *t[4];
    size_t total = 0;
    int same = 1;
    for (int j = 0; j < count; j++) {
        t[j] = need(L, names[j], 2, (int64_t[]){rows[j], K});
        if (!t[j] || (L->pack && !all_finite_raw(L, t[j]))) return NULL;
        same = same && t[j]->dtype == t[0]->dtype;
        total += (size_t)rows[j];
    }
    if (!L->pack) {
        float *w = arena_mat(L, total * (size_t)K);
        for (int j = 0, r = 0; w && j < count; r += rows[j], j++) convert(L, t[j], w + (size_t)r * K);
        return w;
    }
    ca_dtype dt = same ? t[0]->dtype : CA_DT_F32;
    size_t es = ca_dtype_size(dt);
    unsigned char *tmp = ca_malloc2(total * (size_t)K, es);
    if (!tmp) { failf(L, CA_E_NOMEM, "tensor '%s': out of memory", names[0]); return NULL; }
    for (int j = 0, r = 0; j < count; r += rows[j], j++) {
        unsigned char *d = tmp + (size_t)r * K * es;
        if (same) memcpy(d, t[j]->data, t[j]->nbytes);
        else if (ca_tensor_to_f32(t[j], (float *)d, t[j]->numel)) failf(L, CA_E_FORMAT, "tensor '%s': cannot convert", names[j]);
        ca_st_drop_pages(L->f, t[j]);
    }
    pack_raw(L, names[0], tmp, dt, (int)total, K, out);
    free(tmp);
    return NULL;
}

/* A convolution (Cout, Cin, k, k) followed by a folded BatchNorm (scale): a float32 copy
 * (reference; returned) or packed with the scale in the epilogue (fast). */
static const float *conv(loader *L, const char *name, int Cout, int Cin, int k, int stride, int pad,
                         const ca_bn *bn, ca_conv *out) {
    if (!L->pack) return take_mat(L, name, 4, (int64_t[]){Cout, Cin, k, k});
    const ca_tensor_info *t = need(L, name, 4, (int64_t[]){Cout, Cin, k, k});
    if (!t || L->st || !all_finite_raw(L, t)) return NULL;
    double t0 = ca_now();
    ca_status st = ca_conv_pack_weights(out, t->data, t->dtype, Cout, Cin, k, k, stride, pad, bn->scale,
                                        panel_for(L, t->dtype));
    L->t_pack += ca_now() - t0;
    if (st) failf(L, st, "tensor '%s': cannot pack: %s", t->name, ca_last_error());
    ca_st_drop_pages(L->f, t);
    return NULL;
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
            b->qkv_w = MAT2(L, nm(L, "%sattn.in_proj_weight", p), 3 * C, C, &b->qkv);
            b->qkv_b = TAKE1(L, nm(L, "%sattn.in_proj_bias", p), 3 * C);
            b->out_w = MAT2(L, nm(L, "%sattn.out_proj.weight", p), C, C, &b->out);
            b->out_b = TAKE1(L, nm(L, "%sattn.out_proj.bias", p), C);
            b->ln2_w = TAKE1(L, nm(L, "%sln_2.weight", p), C);
            b->ln2_b = TAKE1(L, nm(L, "%sln_2.bias", p), C);
            b->fc_w = MAT2(L, nm(L, "%smlp.c_fc.weight", p), H, C, &b->fc);
            b->fc_b = TAKE1(L, nm(L, "%smlp.c_fc.bias", p), H);
            b->proj_w = MAT2(L, nm(L, "%smlp.c_proj.weight", p), C, H, &b->proj);
            b->proj_b = TAKE1(L, nm(L, "%smlp.c_proj.bias", p), C);
        } else {
            static const char *qkv[3] = {"q", "k", "v"};
            char wn[3][192];
            for (int j = 0; j < 3; j++) snprintf(wn[j], sizeof wn[j], "%sself_attn.%s_proj.weight", p, qkv[j]);
            b->qkv_w = mat_stack(L, (const char *const[]){wn[0], wn[1], wn[2]}, 3, (const int[]){C, C, C}, C, &b->qkv);
            float *bias = arena(L, (size_t)3 * C);
            for (int j = 0; j < 3 && bias; j++)
                take_into(L, nm(L, "%sself_attn.%s_proj.bias", p, qkv[j]), 1, (int64_t[]){C}, bias + (size_t)j * C);
            b->qkv_b = bias;
            b->ln1_w = TAKE1(L, nm(L, "%slayer_norm1.weight", p), C);
            b->ln1_b = TAKE1(L, nm(L, "%slayer_norm1.bias", p), C);
            b->out_w = MAT2(L, nm(L, "%sself_attn.out_proj.weight", p), C, C, &b->out);
            b->out_b = TAKE1(L, nm(L, "%sself_attn.out_proj.bias", p), C);
            b->ln2_w = TAKE1(L, nm(L, "%slayer_norm2.weight", p), C);
            b->ln2_b = TAKE1(L, nm(L, "%slayer_norm2.bias", p), C);
            b->fc_w = MAT2(L, nm(L, "%smlp.fc1.weight", p), H, C, &b->fc);
            b->fc_b = TAKE1(L, nm(L, "%smlp.fc1.bias", p), H);
            b->proj_w = MAT2(L, nm(L, "%smlp.fc2.weight", p), C, H, &b->proj);
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
    v->conv1 = MAT4(L, conv, W, 3, P, P, &v->patch_p);
    v->class_emb = TAKE1(L, L->hf ? "vision_model.embeddings.class_embedding" : "visual.class_embedding", W);
    v->pos = TAKE2(L, pos, (int64_t)G * G + 1, W);
    v->ln_pre_w = TAKE1(L, L->hf ? "vision_model.pre_layrnorm.weight" : "visual.ln_pre.weight", W);
    v->ln_pre_b = TAKE1(L, L->hf ? "vision_model.pre_layrnorm.bias" : "visual.ln_pre.bias", W);
    v->ln_post_w = TAKE1(L, L->hf ? "vision_model.post_layernorm.weight" : "visual.ln_post.weight", W);
    v->ln_post_b = TAKE1(L, L->hf ? "vision_model.post_layernorm.bias" : "visual.ln_post.bias", W);
    if (!L->st) { /* the signature: row 0 of the (E, W) projection, first values */
        for (int i = 0; i < 16; i++) L->sig[i] = elem_f32(tj, L->hf ? (size_t)i : (size_t)i * E);
        L->has_sig = 1;
    }
    v->proj = L->hf ? MAT2(L, proj, E, W, &v->proj_p) : mat_t(L, proj, W, E, &v->proj_p);
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
        load_bn(L, &v->stem_bn[i], nm(L, "visual.bn%d", i + 1), out);
        v->stem_conv[i] = conv(L, nm(L, "visual.conv%d.weight", i + 1), out, in, 3, i == 0 ? 2 : 1, 1, &v->stem_bn[i], &v->stem_p[i]);
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
            load_bn(L, &bk->bn1, nm(L, "%sbn1", p), P);
            bk->conv1 = conv(L, nm(L, "%sconv1.weight", p), P, inpl, 1, 1, 0, &bk->bn1, &bk->c1);
            load_bn(L, &bk->bn2, nm(L, "%sbn2", p), P);
            bk->conv2 = conv(L, nm(L, "%sconv2.weight", p), P, P, 3, 1, 1, &bk->bn2, &bk->c2);
            load_bn(L, &bk->bn3, nm(L, "%sbn3", p), 4 * P);
            bk->conv3 = conv(L, nm(L, "%sconv3.weight", p), 4 * P, P, 1, 1, 0, &bk->bn3, &bk->c3);
            if (bk->stride > 1 || inpl != 4 * P) {
                bk->has_down = 1;
                load_bn(L, &bk->down_bn, nm(L, "%sdownsample.1", p), 4 * P);
                bk->down = conv(L, nm(L, "%sdownsample.0.weight", p), 4 * P, inpl, 1, 1, 0, &bk->down_bn, &bk->cdown);
            }
            inpl = 4 * P;
        }
    int D = v->ap_dim;
    v->ap_pos = TAKE2(L, "visual.attnpool.positional_embedding", (int64_t)G * G + 1, D);
    static const char *qkv[3] = {"q", "k", "v"};
    if (L->pack) { /* the fast path multiplies only the class token by q: q and k|v apart */
        v->ap_qkv_w = NULL;
        mat(L, "visual.attnpool.q_proj.weight", 2, (int64_t[]){D, D}, &v->ap_q);
        mat_stack(L, (const char *const[]){"visual.attnpool.k_proj.weight", "visual.attnpool.v_proj.weight"}, 2,
                  (const int[]){D, D}, D, &v->ap_kv);
    } else {
        v->ap_qkv_w = mat_stack(L, (const char *const[]){"visual.attnpool.q_proj.weight", "visual.attnpool.k_proj.weight",
                                                         "visual.attnpool.v_proj.weight"}, 3, (const int[]){D, D, D}, D, NULL);
    }
    float *b = arena(L, (size_t)3 * D);
    for (int j = 0; j < 3 && b; j++)
        take_into(L, nm(L, "visual.attnpool.%s_proj.bias", qkv[j]), 1, (int64_t[]){D}, b + (size_t)j * D);
    v->ap_qkv_b = b;
    const ca_tensor_info *tcw = peek(L, "visual.attnpool.c_proj.weight");
    if (!L->st && tcw && tcw->ndim == 2 && tcw->numel >= 16) {
        for (int i = 0; i < 16; i++) L->sig[i] = elem_f32(tcw, (size_t)i);
        L->has_sig = 1;
    }
    v->ap_c_w = MAT2(L, "visual.attnpool.c_proj.weight", E, D, &v->ap_c);
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
    const ca_tensor_info *te = L->pack ? need(L, tok, 2, (int64_t[]){V, W}) : NULL;
    if (te && te->dtype != CA_DT_F32) {
        /* fast compute: the table stays in the mapped file in its stored 16-bit dtype (the
         * model keeps the file open); only the rows of tokens used are ever read */
        L->keep_file = 1;
        t->tok_emb16 = te->data;
        t->tok_dt = te->dtype;
    } else if (te) {
        float *e = arena(L, (size_t)V * W);
        if (e) convert(L, te, e);
        t->tok_emb = e;
    } else {
        t->tok_emb = TAKE2(L, tok, V, W);
    }
    t->pos = TAKE2(L, pos, T, W);
    t->ln_final_w = TAKE1(L, L->hf ? "text_model.final_layer_norm.weight" : "ln_final.weight", W);
    t->ln_final_b = TAKE1(L, L->hf ? "text_model.final_layer_norm.bias" : "ln_final.bias", W);
    t->proj = L->hf ? MAT2(L, proj, E, W, &t->proj_p) : mat_t(L, proj, W, E, &t->proj_p);
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

static ca_model *load(const char *path, const ca_model_params *p, ca_status *st);

ca_model *ca_model_load(const char *path, const ca_model_params *p, ca_status *st) {
    CA_ENTER();
    ca_status dummy;
    if (!st) st = &dummy;
    ca_model_params def = ca_model_default_params();
    if (!p) p = &def;
    if (!path) { *st = ca_fail(CA_E_ARG, "ca_model_load: NULL path"); return NULL; }
    if (!p->load_vision && !p->load_text) { *st = ca_fail(CA_E_ARG, "%s: neither tower requested", ca_basename(path)); return NULL; }
    if (!ca_cpu_path(st)) return NULL; /* CLIPADAPT_CPU asked for a path this CPU lacks */
    if (p->compute != CA_COMPUTE_FAST && p->compute != CA_COMPUTE_REFERENCE && p->compute != CA_COMPUTE_BF16) {
        *st = ca_fail(CA_E_ARG, "ca_model_load: unknown compute mode %d", p->compute);
        return NULL;
    }
    if (p->compute == CA_COMPUTE_BF16 && !ca_fastgemm_bf16()) {
        *st = ca_fail(CA_E_UNSUPPORTED, "BF16 compute needs AVX512-BF16 (this build has none)");
        return NULL;
    }
    /* packing runs on the threads the caller gave the model, not a process-wide count */
    int saved = ca_budget_enter(p->threads);
    ca_model *m = load(path, p, st);
    ca_budget_exit(saved);
    return m;
}

static ca_model *load(const char *path, const ca_model_params *p, ca_status *st) {
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
    m->threads = p->threads;
    m->compute = p->compute;
    L.pack = p->compute != CA_COMPUTE_REFERENCE;
    L.bf16 = p->compute == CA_COMPUTE_BF16;
    for (int i = 0; i < L.n; i++) {
        L.t[i] = ca_st_at(f, i);
        if (starts(L.t[i]->name, "vision_model.") || starts(L.t[i]->name, "text_model.")) L.hf = 1;
    }
    snprintf(m->naming, sizeof m->naming, "%s", L.hf ? "hf" : "openai");
    m->info.naming = m->naming;

    /* One block for every float32 weight: the element count of the requested towers bounds it
     * (BatchNorm folding only shrinks, q/k/v concatenation and transposes keep sizes), plus a
     * page per tensor for aligning the matrices (arena_mat). Mapped rather than malloc'ed:
     * only the pages written are resident, so the reserve costs nothing in pack mode. */
    long pg = sysconf(_SC_PAGESIZE);
    L.page = (size_t)(pg > 0 ? pg : 4096) / sizeof(float);
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
        int W = in->is_vit ? v->width : v->ap_dim;
        int len = snprintf(m->signature, sizeof m->signature, "clip-image:%d:%d:", v->embed_dim, W);
        for (int i = 0; L.has_sig && i < 16 && len > 0 && (size_t)len < sizeof m->signature; i++)
            len += snprintf(m->signature + len, sizeof m->signature - (size_t)len, "%s%.5g", i ? "," : "", L.sig[i]);
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
    m->pack_seconds = L.t_pack;

done:
    free(cfg_found);
    free(L.t);
    free(L.used);
    if (!L.st && L.keep_file) m->file = f; /* closed by ca_model_free */
    else ca_st_close(f);
    if (L.st) {
        *st = L.st;
        ca_model_free(m);
        return NULL;
    }
    *st = CA_OK;
    return m;
}
