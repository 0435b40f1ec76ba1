/* model.h — internal layout of a loaded CLIP model (weights as float32 pointers into one block),
 * the forward passes of each tower, and the debug tap through which tests read intermediate
 * activations. Not public: include/clipadapt.h holds the contract.
 */
#ifndef CA_MODEL_H
#define CA_MODEL_H

#include "core/core.h"

typedef enum { CA_ACT_QUICKGELU = 0, CA_ACT_GELU, CA_ACT_GELU_TANH } ca_act;

/* One pre-norm residual attention block (OpenAI ResidualAttentionBlock / HF CLIPEncoderLayer). */
typedef struct {
    const float *ln1_w, *ln1_b;     /* (C) */
    const float *qkv_w, *qkv_b;     /* (3C, C), (3C): rows q, k, v */
    const float *out_w, *out_b;     /* (C, C), (C) */
    const float *ln2_w, *ln2_b;     /* (C) */
    const float *fc_w, *fc_b;       /* (H, C), (H) */
    const float *proj_w, *proj_b;   /* (C, H), (C) */
} ca_block;

typedef struct {
    int width, layers, heads, hidden; /* hidden: MLP width H */
    ca_act act;
    float eps;
    ca_block *blocks;                 /* (layers) */
} ca_xformer;

/* Inference BatchNorm folded into a per-channel affine map. */
typedef struct { const float *scale, *shift; } ca_bn;

typedef struct {
    int inplanes, planes, stride;     /* output channels 4·planes */
    const float *conv1, *conv2, *conv3; /* (P, Cin, 1, 1), (P, P, 3, 3), (4P, P, 1, 1) */
    ca_bn bn1, bn2, bn3;
    const float *down;                /* (4P, Cin, 1, 1) or NULL when identity */
    ca_bn down_bn;
} ca_bottleneck;

typedef struct {
    /* common */
    int image_size, width, embed_dim;
    /* ViT */
    int patch, grid;                  /* tokens = grid² + 1 */
    const float *conv1;               /* (W, 3, P, P) */
    const float *class_emb;           /* (W) */
    const float *pos;                 /* (grid²+1, W) */
    const float *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b;
    ca_xformer tf;
    const float *proj;                /* (E, W), linear layout */
    /* ModifiedResNet */
    int rn_layers[4];
    const float *stem_conv[3];        /* (W/2,3,3,3), (W/2,W/2,3,3), (W,W/2,3,3) */
    ca_bn stem_bn[3];
    ca_bottleneck *blocks;            /* sum(rn_layers) */
    int ap_dim, ap_heads, ap_grid;    /* attention pool: 32W, 32W/64, image_size/32 */
    const float *ap_pos;              /* (grid²+1, 32W) */
    const float *ap_qkv_w, *ap_qkv_b; /* (3·32W, 32W), (3·32W): rows q, k, v */
    const float *ap_c_w, *ap_c_b;     /* (E, 32W), (E) */
} ca_vision;

typedef struct {
    int width, context, vocab, embed_dim;
    const float *tok_emb;             /* (V, W) */
    const float *pos;                 /* (context, W) */
    ca_xformer tf;
    const float *ln_final_w, *ln_final_b;
    const float *proj;                /* (E, W), linear layout */
} ca_text;

/* Debug tap: called with each named intermediate of a batch chunk; rows [first, first + shape[0])
 * of the full batch. Names follow the goldens without the "intermediate." prefix
 * ("visual.ln_pre.out", "visual.block3.out", "visual.layer2.out", "visual.attnpool.out",
 * "text.block0.out"). */
typedef void (*ca_model_tap_fn)(const char *name, int64_t first, const float *data, int ndim,
                                const int64_t *shape, void *user);

struct ca_model {
    ca_model_info info;
    char naming[8];
    char act_source[256];             /* ca_model_info.activation_source */
    ca_vision vis;
    ca_text txt;
    float *weights;                   /* one block holding every float32 weight (anonymous mmap) */
    size_t weights_len, weights_cap;  /* in floats */
    size_t weights_map;               /* bytes mapped */
    ca_dtype mat_dtype;               /* stored dtype of the matrices the fast path packs (F32 if mixed) */
    int released;                     /* their float32 copies were dropped once packed (fast.c) */
    float *scratch;                   /* activations, grown once to the largest chunk */
    size_t scratch_cap;               /* in floats */
    float logit_scale;                /* exp(logit_scale) of the checkpoint, 100 when absent */
    int threads;
    int max_chunk;                    /* images/texts per forward chunk (tests may lower it) */
    ca_model_tap_fn tap;
    void *tap_user;
    struct ca_fast *fast;             /* packed weights of the fast path (fast.c), built on first use */
    int compute;                      /* CA_COMPUTE_*: 0 fast (default), 1 the plain reference path */
    char signature[512];              /* ca_model_signature, made at load (weights may be released later) */
    int no_col_views;                 /* tests: make fast.c's pruned last block take its fallback */
};

/* Install (or clear with NULL) the intermediate-activation tap of a model. */
void ca_model_set_tap(ca_model *m, ca_model_tap_fn fn, void *user);
/* Largest number of inputs a forward chunk holds (>= 1); tests lower it to exercise chunking. */
void ca_model_set_max_chunk(ca_model *m, int n);

/* Ensure m->scratch holds at least n floats. */
ca_status ca_model_scratch(ca_model *m, size_t n);

/* One transformer stack over x (B, T, C) in place. h, att: (B·T, C); qkv: (B·T, 3C);
 * mlp: (B·T, H); scores: (B, heads, T, T). The tap sees "<prefix>.block<i>.out". */
void ca_xformer_forward(const ca_model *m, const ca_xformer *tf, float *x, int B, int T, int causal,
                        float *h, float *qkv, float *att, float *mlp, float *scores,
                        const char *prefix, int64_t first);
/* Floats of scratch ca_xformer_forward needs besides x, for B sequences of T tokens. */
size_t ca_xformer_scratch(const ca_xformer *tf, int B, int T);

/* Tower forward passes on one chunk (n inputs), with scratch already sized by *_scratch(). */
size_t ca_vit_scratch(const ca_vision *v, int n);
void ca_vit_forward(ca_model *m, const float *images, int n, float *out, int64_t first);
size_t ca_resnet_scratch(const ca_vision *v, int n);
void ca_resnet_forward(ca_model *m, const float *images, int n, float *out, int64_t first);
size_t ca_text_scratch(const ca_text *t, int n);
void ca_text_forward(ca_model *m, const int64_t *tokens, int n, float *out, int64_t first);

/* Tap helper (no-op without a tap). Inline so the towers need nothing from api.c, which
 * calls them. */
static inline void ca_model_emit(const ca_model *m, const char *name, int64_t first, const float *data,
                                 int ndim, const int64_t *shape) {
    if (m->tap) m->tap(name, first, data, ndim, shape, m->tap_user);
}

#endif
