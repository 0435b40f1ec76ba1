/* model.h — internal layout of a loaded CLIP model and of a session. A model is immutable once
 * ca_model_load returns: its matrices are either packed panels (fast and BF16 compute, packed at
 * load straight from the mapped file) or float32 copies in one block (the reference compute);
 * small vectors are float32 in that block. A session holds what a call writes: scratch, the
 * thread budget, the debug tap, the cancel flag. Not public: include/clipadapt.h holds the
 * contract.
 */
#ifndef CA_MODEL_H
#define CA_MODEL_H

#include "core/core.h"
#include "model/fastgemm.h"
#include "model/fastops.h"

typedef enum { CA_ACT_QUICKGELU = 0, CA_ACT_GELU, CA_ACT_GELU_TANH } ca_act;

/* One pre-norm residual attention block (OpenAI ResidualAttentionBlock / HF CLIPEncoderLayer). */
typedef struct {
    const float *ln1_w, *ln1_b;     /* (C) */
    const float *qkv_w, *qkv_b;     /* (3C, C), (3C): rows q, k, v */
    const float *out_w, *out_b;     /* (C, C), (C) */
    const float *ln2_w, *ln2_b;     /* (C) */
    const float *fc_w, *fc_b;       /* (H, C), (H) */
    const float *proj_w, *proj_b;   /* (C, H), (C) */
    ca_packed qkv, out, fc, proj;   /* the same four matrices packed (fast/BF16 compute only) */
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
    int has_down;                     /* a downsample branch exists (down may be NULL when packed) */
    ca_conv c1, c2, c3, cdown;        /* packed, BN scale folded in (fast/BF16 compute only) */
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
    /* packed (fast/BF16 compute only) */
    ca_packed patch_p;                /* ViT conv1 as (W, 3·P·P) */
    ca_packed proj_p;                 /* ViT (E, W) */
    ca_conv stem_p[3];
    ca_packed ap_q, ap_kv, ap_c;      /* (D, D), (2D, D), (E, D) */
} ca_vision;

typedef struct {
    int width, context, vocab, embed_dim;
    const float *tok_emb;             /* (V, W) float32, or NULL when tok_emb16 holds it */
    const void *tok_emb16;            /* (V, W) F16/BF16 in the mapped checkpoint (fast compute; rows
                                         widened as gathered; maybe unaligned), else NULL */
    ca_dtype tok_dt;                  /* dtype of tok_emb16 */
    const float *pos;                 /* (context, W) */
    ca_xformer tf;
    const float *ln_final_w, *ln_final_b;
    const float *proj;                /* (E, W), linear layout */
    ca_packed proj_p;                 /* packed (fast/BF16 compute only) */
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
    void *packed;                     /* one block holding every packed matrix (fast compute; mmap) */
    size_t packed_map;                /* bytes mapped */
    ca_st_file *file;                  /* the checkpoint, kept mapped while txt.tok_emb16 points into it */
    float logit_scale;                /* exp(logit_scale) of the checkpoint, 100 when absent */
    int threads;                      /* default thread budget of sessions (0: library default) */
    int compute;                      /* CA_COMPUTE_*, fixed at load */
    char signature[512];              /* ca_model_signature, made at load */
    double pack_seconds;              /* of the load, the time spent packing (benchmarks) */
};

/* Most threads that split a batch between them (each runs whole forward passes on its share). */
#define CA_SESSION_WORKERS 16

struct ca_session {
    const ca_model *m;
    int threads;                      /* thread budget of every kernel this session runs (>= 1) */
    int max_chunk;                    /* images/texts per forward chunk (tests may lower it) */
    ca_model_tap_fn tap;
    void *tap_user;
    int no_col_views;                 /* tests: make fast.c's pruned last block take its fallback */
    int cancel;                       /* set by ca_session_cancel from any thread (atomic) */
    float *scratch;                   /* reference path activations, grown to the largest chunk */
    size_t scratch_cap;               /* in floats */
    float *wscratch[CA_SESSION_WORKERS]; /* fast path: one block per worker of the batch split */
    size_t wscratch_cap[CA_SESSION_WORKERS];
};

/* Install (or clear with NULL) the intermediate-activation tap of a session. */
void ca_session_set_tap(ca_session *s, ca_model_tap_fn fn, void *user);
/* Largest number of inputs a forward chunk holds (>= 1); tests lower it to exercise chunking. */
void ca_session_set_max_chunk(ca_session *s, int n);
/* 1 when the session was asked to stop (ca_session_cancel). Inline, as ca_session_emit, so the
 * towers need nothing from api.c, which calls them. */
static inline int ca_session_cancelled(const ca_session *s) { return __atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE); }

/* Ensure s->scratch holds at least n floats. */
ca_status ca_session_scratch(ca_session *s, size_t n);

/* A hash of every byte of the model's weights (float32 block, packed panels, embedding copy):
 * tests check that encoding never writes to a model. */
uint64_t ca_model_weights_hash(const ca_model *m);
/* Bytes of weights the model holds (packed panels, float32 block in use, embedding copy). */
size_t ca_model_weight_bytes(const ca_model *m);
/* Release the packed panels of a model's towers (ca_model_free). */
void ca_model_free_packed(ca_model *m);

/* One transformer stack over x (B, T, C) in place. h, att: (B·T, C); qkv: (B·T, 3C);
 * mlp: (B·T, H); scores: (B, heads, T, T). The tap sees "<prefix>.block<i>.out". */
void ca_xformer_forward(const ca_session *s, const ca_xformer *tf, float *x, int B, int T, int causal,
                        float *h, float *qkv, float *att, float *mlp, float *scores,
                        const char *prefix, int64_t first);
/* Floats of scratch ca_xformer_forward needs besides x, for B sequences of T tokens. */
size_t ca_xformer_scratch(const ca_xformer *tf, int B, int T);

/* Tower forward passes on one chunk (n inputs), with s->scratch already sized by *_scratch(). */
size_t ca_vit_scratch(const ca_vision *v, int n);
void ca_vit_forward(ca_session *s, const float *images, int n, float *out, int64_t first);
size_t ca_resnet_scratch(const ca_vision *v, int n);
void ca_resnet_forward(ca_session *s, const float *images, int n, float *out, int64_t first);
size_t ca_text_scratch(const ca_text *t, int n);
void ca_text_forward(ca_session *s, const int64_t *tokens, int n, float *out, int64_t first);

/* Token embedding row id (< vocab) of the text tower as float32 into dst (width). */
void ca_text_embed_row(const ca_text *t, int64_t id, float *dst);

/* Tap helper (no-op without a tap). */
static inline void ca_session_emit(const ca_session *s, const char *name, int64_t first, const float *data,
                                   int ndim, const int64_t *shape) {
    if (s->tap) s->tap(name, first, data, ndim, shape, s->tap_user);
}

#endif
