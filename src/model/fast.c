/* fast.c — the encoders' fast forward passes on packed weights (see fast.h). Numerically the
 * same computation as vit.c/text.c/resnet.c (float32 throughout; only summation order differs),
 * which tests/test_kernels.c checks on the shared goldens and against the plain path.
 * Not here: loading (load.c builds the float32 weights this packs), argument checks (api.c). */
#include "model/fast.h"

#include "model/fastgemm.h"
#include "model/fastops.h"
#include "model/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Most threads that split a batch between them (each runs whole forward passes on its share). */
#define CA_FAST_WORKERS 16

typedef struct {
    ca_packed qkv, out, fc, proj;
} fast_block;

typedef struct {
    ca_conv c1, c2, c3, down;   /* BN scale folded in; the shifts are the biases */
} fast_bottleneck;

struct ca_fast {
    /* ViT */
    ca_packed patch;            /* (W, 3·P·P) */
    fast_block *vblocks;
    int nvblocks;
    ca_packed vproj;            /* (E, W) */
    /* ResNet */
    ca_conv stem[3];
    fast_bottleneck *rblocks;
    int nrblocks;
    ca_packed ap_q, ap_kv, ap_c; /* (D, D), (2D, D), (E, D) */
    /* text */
    fast_block *tblocks;
    int ntblocks;
    ca_packed tproj;            /* (E, W) */
    int bf16;                   /* weights packed as BF16 (CA_COMPUTE_BF16) */
    /* activations, grown on demand: one block per worker of the batch split */
    float *scratch[CA_FAST_WORKERS];
    size_t scratch_cap[CA_FAST_WORKERS];
};

/* ---- building ---- */

/* Drop the float32 copy of a matrix w[0..n) of the model's weight block, now held packed: its
 * whole pages go back to the system and read as zeros until written again (ca_fast_restore
 * writes the packed values back). Sets m->released. Here, not in api.c, because only the
 * packer calls it and api.c calls into this file. */
static void ca_model_release_weights(ca_model *m, const float *w, size_t n) {
    CA_ASSERT(w >= m->weights && n <= m->weights_len && (size_t)(w - m->weights) <= m->weights_len - n);
    m->released = 1;
    ca_drop_pages(w, n * sizeof(float), 1); /* a partial page at either end still holds other tensors */
}

/* How this build packs: panel dtype, and whether each matrix's float32 copy in the model's
 * weight block is dropped once packed (not for BF16 panels, which do not hold it exactly). */
typedef struct {
    ca_model *m;
    ca_dtype panel;
    int release;
} packer;

static ca_status pack_mat(const packer *pk, ca_packed *out, const float *w, int N, int K) {
    ca_status st = ca_pack_weights_as(out, w, CA_DT_F32, N, K, K, pk->panel);
    if (!st && pk->release) ca_model_release_weights(pk->m, w, (size_t)N * K);
    return st;
}

static ca_status pack_conv(const packer *pk, ca_conv *c, const float *w, int Cout, int Cin, int KH, int stride,
                           int pad, const float *scale) {
    ca_status st = ca_conv_pack_weights(c, w, CA_DT_F32, Cout, Cin, KH, KH, stride, pad, scale, pk->panel);
    if (!st && pk->release) ca_model_release_weights(pk->m, w, (size_t)Cout * Cin * KH * KH);
    return st;
}

static ca_status pack_blocks(const packer *pk, fast_block **out, int *count, const ca_xformer *tf) {
    int C = tf->width, H = tf->hidden;
    fast_block *fb = calloc((size_t)tf->layers ? (size_t)tf->layers : 1, sizeof *fb);
    if (!fb) return ca_fail(CA_E_NOMEM, "out of memory packing weights");
    *out = fb;
    *count = tf->layers;
    for (int l = 0; l < tf->layers; l++) {
        const ca_block *b = &tf->blocks[l];
        ca_status st;
        if ((st = pack_mat(pk, &fb[l].qkv, b->qkv_w, 3 * C, C)) || (st = pack_mat(pk, &fb[l].out, b->out_w, C, C)) ||
            (st = pack_mat(pk, &fb[l].fc, b->fc_w, H, C)) || (st = pack_mat(pk, &fb[l].proj, b->proj_w, C, H)))
            return st;
    }
    return CA_OK;
}

static void free_blocks(fast_block *fb, int n) {
    if (!fb) return;
    for (int l = 0; l < n; l++) {
        ca_packed_free(&fb[l].qkv);
        ca_packed_free(&fb[l].out);
        ca_packed_free(&fb[l].fc);
        ca_packed_free(&fb[l].proj);
    }
    free(fb);
}

static ca_status build_resnet(const packer *pk, ca_fast *f, const ca_vision *v) {
    int W = v->width;
    ca_status st;
    int cin[3] = {3, W / 2, W / 2}, cout[3] = {W / 2, W / 2, W}, stride[3] = {2, 1, 1};
    for (int i = 0; i < 3; i++)
        if ((st = pack_conv(pk, &f->stem[i], v->stem_conv[i], cout[i], cin[i], 3, stride[i], 1, v->stem_bn[i].scale)))
            return st;
    int nb = v->rn_layers[0] + v->rn_layers[1] + v->rn_layers[2] + v->rn_layers[3];
    f->rblocks = calloc((size_t)nb ? (size_t)nb : 1, sizeof *f->rblocks);
    if (!f->rblocks) return ca_fail(CA_E_NOMEM, "out of memory packing weights");
    f->nrblocks = nb;
    for (int i = 0; i < nb; i++) {
        const ca_bottleneck *b = &v->blocks[i];
        fast_bottleneck *fb = &f->rblocks[i];
        int P = b->planes;
        if ((st = pack_conv(pk, &fb->c1, b->conv1, P, b->inplanes, 1, 1, 0, b->bn1.scale)) ||
            (st = pack_conv(pk, &fb->c2, b->conv2, P, P, 3, 1, 1, b->bn2.scale)) ||
            (st = pack_conv(pk, &fb->c3, b->conv3, 4 * P, P, 1, 1, 0, b->bn3.scale)))
            return st;
        if (b->down && (st = pack_conv(pk, &fb->down, b->down, 4 * P, b->inplanes, 1, 1, 0, b->down_bn.scale)))
            return st;
    }
    int D = v->ap_dim;
    if ((st = pack_mat(pk, &f->ap_q, v->ap_qkv_w, D, D)) ||
        (st = pack_mat(pk, &f->ap_kv, v->ap_qkv_w + (size_t)D * D, 2 * D, D)) ||
        (st = pack_mat(pk, &f->ap_c, v->ap_c_w, v->embed_dim, D)))
        return st;
    return CA_OK;
}

/* Every packed matrix with the float32 weights it was packed from (conv: c set, p = &c->W).
 * Entries a failed build never reached have no panels; fn decides what to do with those. */
typedef ca_status (*weight_fn)(ca_model *m, ca_packed *p, const ca_conv *c, const float *w);

static ca_status each_weight(ca_fast *f, ca_model *m, weight_fn fn) {
    ca_vision *v = &m->vis;
    ca_status st = CA_OK;
#define MAT(pk, w) do { if ((st = fn(m, (pk), NULL, (w)))) return st; } while (0)
#define CONV(cv, w) do { if ((st = fn(m, &(cv)->W, (cv), (w)))) return st; } while (0)
    const ca_xformer *tfs[2] = {&v->tf, &m->txt.tf};
    fast_block *fbs[2] = {f->vblocks, f->tblocks};
    int nfb[2] = {f->nvblocks, f->ntblocks};
    for (int t = 0; t < 2; t++)
        for (int l = 0; fbs[t] && l < nfb[t]; l++) {
            const ca_block *b = &tfs[t]->blocks[l];
            MAT(&fbs[t][l].qkv, b->qkv_w);
            MAT(&fbs[t][l].out, b->out_w);
            MAT(&fbs[t][l].fc, b->fc_w);
            MAT(&fbs[t][l].proj, b->proj_w);
        }
    MAT(&f->patch, v->conv1);
    MAT(&f->vproj, v->proj);
    MAT(&f->tproj, m->txt.proj);
    for (int i = 0; i < 3; i++) CONV(&f->stem[i], v->stem_conv[i]);
    for (int i = 0; f->rblocks && i < f->nrblocks; i++) {
        CONV(&f->rblocks[i].c1, v->blocks[i].conv1);
        CONV(&f->rblocks[i].c2, v->blocks[i].conv2);
        CONV(&f->rblocks[i].c3, v->blocks[i].conv3);
        CONV(&f->rblocks[i].down, v->blocks[i].down);
    }
    MAT(&f->ap_q, v->ap_qkv_w);
    MAT(&f->ap_kv, v->ap_qkv_w ? v->ap_qkv_w + (size_t)v->ap_dim * v->ap_dim : NULL);
    MAT(&f->ap_c, v->ap_c_w);
#undef MAT
#undef CONV
    return CA_OK;
}

static int holds_weights(const ca_packed *p) { return p->p || p->ph; }

static ca_status restore_one(ca_model *m, ca_packed *p, const ca_conv *c, const float *w) {
    if (!holds_weights(p)) return CA_OK;
    /* the weight block is the model's own: the const on the tower pointers is for the forward passes */
    return c ? ca_conv_unpack_weights(c, (float *)w) : ca_packed_unpack(p, (float *)w, p->K);
}

static ca_status release_one(ca_model *m, ca_packed *p, const ca_conv *c, const float *w) {
    if (holds_weights(p)) ca_model_release_weights(m, w, (size_t)p->N * p->K);
    return CA_OK;
}

ca_status ca_fast_restore(ca_model *m) {
    if (!m->released) return CA_OK;
    if (!m->fast) return ca_fail(CA_E_INTERNAL, "weights were released without packed copies");
    ca_status st = each_weight(m->fast, m, restore_one);
    if (!st) m->released = 0;
    return st;
}

/* Panels for this model: F16 when every packed matrix was stored as F16 (its float32 copy then
 * narrows exactly) — half the bytes for the kernels to stream, same results (docs/perf.md);
 * F32 otherwise (a BF16 or mixed checkpoint: BF16 panels would mean BF16 compute). */
static ca_dtype panel_dtype(const ca_model *m) {
    if (m->compute == CA_COMPUTE_BF16) return CA_DT_BF16;
    return m->mat_dtype == CA_DT_F16 ? CA_DT_F16 : CA_DT_F32;
}

ca_status ca_fast_build(ca_model *m) {
    int want_bf16 = m->compute == CA_COMPUTE_BF16;
    ca_status st;
    if (m->fast && m->fast->bf16 == want_bf16) {
        /* back from the reference path: drop the float32 copies it restored */
        if (!want_bf16 && !m->released) each_weight(m->fast, m, release_one);
        return CA_OK;
    }
    /* the compute mode changed: repack from the float32 weights, restored first if dropped */
    if ((st = ca_fast_restore(m))) return st;
    ca_fast_free(m->fast);
    m->fast = NULL;
    ca_fast *f = calloc(1, sizeof *f);
    if (!f) return ca_fail(CA_E_NOMEM, "out of memory packing weights");
    m->fast = f;
    f->bf16 = want_bf16;
    packer pk = {m, panel_dtype(m), !want_bf16};
    const ca_vision *v = &m->vis;
    if (m->info.has_vision && m->info.is_vit) {
        int KP = 3 * v->patch * v->patch;
        if ((st = pack_mat(&pk, &f->patch, v->conv1, v->width, KP)) || (st = pack_blocks(&pk, &f->vblocks, &f->nvblocks, &v->tf)) ||
            (st = pack_mat(&pk, &f->vproj, v->proj, v->embed_dim, v->width)))
            goto fail;
    } else if (m->info.has_vision) {
        if ((st = build_resnet(&pk, f, v))) goto fail;
    }
    if (m->info.has_text) {
        const ca_text *t = &m->txt;
        if ((st = pack_blocks(&pk, &f->tblocks, &f->ntblocks, &t->tf)) ||
            (st = pack_mat(&pk, &f->tproj, t->proj, t->embed_dim, t->width)))
            goto fail;
    }
    return CA_OK;
fail:
    /* what was packed before the failure may already be dropped from the weight block */
    if (m->released && !each_weight(f, m, restore_one)) m->released = 0;
    ca_fast_free(f);
    m->fast = NULL;
    return st;
}

static size_t packed_bytes(const ca_packed *p) { return ca_packed_bytes(p); }

static size_t blocks_bytes(const fast_block *fb, int n) {
    size_t s = 0;
    for (int l = 0; fb && l < n; l++)
        s += packed_bytes(&fb[l].qkv) + packed_bytes(&fb[l].out) + packed_bytes(&fb[l].fc) + packed_bytes(&fb[l].proj);
    return s;
}

size_t ca_fast_bytes(const ca_fast *f) {
    if (!f) return 0;
    size_t s = packed_bytes(&f->patch) + packed_bytes(&f->vproj) +
               packed_bytes(&f->tproj) + packed_bytes(&f->ap_q) + packed_bytes(&f->ap_kv) + packed_bytes(&f->ap_c) +
               blocks_bytes(f->vblocks, f->nvblocks) + blocks_bytes(f->tblocks, f->ntblocks);
    for (int i = 0; i < CA_FAST_WORKERS; i++) s += f->scratch_cap[i] * sizeof(float);
    for (int i = 0; i < 3; i++) s += packed_bytes(&f->stem[i].W);
    for (int i = 0; i < f->nrblocks; i++)
        s += packed_bytes(&f->rblocks[i].c1.W) + packed_bytes(&f->rblocks[i].c2.W) + packed_bytes(&f->rblocks[i].c3.W) +
             packed_bytes(&f->rblocks[i].down.W);
    return s;
}

void ca_fast_free(ca_fast *f) {
    if (!f) return;
    free_blocks(f->vblocks, f->nvblocks);
    free_blocks(f->tblocks, f->ntblocks);
    ca_packed_free(&f->patch);
    ca_packed_free(&f->vproj);
    ca_packed_free(&f->tproj);
    for (int i = 0; i < 3; i++) ca_conv_free(&f->stem[i]);
    for (int i = 0; i < f->nrblocks; i++) {
        ca_conv_free(&f->rblocks[i].c1);
        ca_conv_free(&f->rblocks[i].c2);
        ca_conv_free(&f->rblocks[i].c3);
        ca_conv_free(&f->rblocks[i].down);
    }
    free(f->rblocks);
    ca_packed_free(&f->ap_q);
    ca_packed_free(&f->ap_kv);
    ca_packed_free(&f->ap_c);
    for (int i = 0; i < CA_FAST_WORKERS; i++) free(f->scratch[i]);
    free(f);
}

static int worker_id(void) {
#ifdef _OPENMP
    int id = omp_in_parallel() ? omp_get_thread_num() : 0;
    return id < CA_FAST_WORKERS ? id : 0;
#else
    return 0;
#endif
}

/* this worker's activation block, at least n floats */
static float *scratch(ca_fast *f, size_t n) {
    int w = worker_id();
    if (n > f->scratch_cap[w]) {
        float *p = ca_malloc2(n, sizeof(float));
        if (!p) return NULL;
        free(f->scratch[w]);
        f->scratch[w] = p;
        f->scratch_cap[w] = n;
    }
    return f->scratch[w];
}

/* Threads over the batch: with T threads and enough inputs, each thread runs whole forward
 * passes on its contiguous share, single-threaded inside (kernels see omp_in_parallel). No
 * synchronisation until the end, so a thread preempted by another process delays only its own
 * share, and per-thread GEMMs still have hundreds of rows. Below min_per inputs per thread, or
 * with a debug tap (which wants ordered calls), the threads split rows inside each kernel. */
typedef ca_status (*chunk_fn)(ca_model *m, const void *in, int n, float *out, int64_t first);

static ca_status split_batch(ca_model *m, chunk_fn fn, const void *in, size_t in_stride, int n, float *out,
                             int E, int chunk, int min_per) {
    int T = 1;
#ifdef _OPENMP
    T = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
    if (T > CA_FAST_WORKERS) T = CA_FAST_WORKERS;
    if (m->tap || T < 2 || n < T * min_per) {
        for (int i = 0; i < n; i += chunk) {
            int c = n - i < chunk ? n - i : chunk;
            ca_status st = fn(m, (const char *)in + (size_t)i * in_stride, c, out + (size_t)i * E, i);
            if (st) return st;
        }
        return CA_OK;
    }
    ca_status sts[CA_FAST_WORKERS] = {CA_OK};
    char errs[CA_FAST_WORKERS][256];
#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        int t = 0, nt = 1;
#endif
        int lo = (int)((long)n * t / nt), hi = (int)((long)n * (t + 1) / nt);
        for (int i = lo; i < hi && !sts[t]; i += chunk) {
            int c = hi - i < chunk ? hi - i : chunk;
            sts[t] = fn(m, (const char *)in + (size_t)i * in_stride, c, out + (size_t)i * E, i);
        }
        /* errors are recorded per thread: carry the first one back to the caller's thread */
        if (sts[t]) snprintf(errs[t], sizeof errs[t], "%s", ca_last_error());
    }
    for (int t = 0; t < T; t++)
        if (sts[t]) return ca_fail(sts[t], "%s", errs[t]);
    return CA_OK;
}

/* ---- transformer stack ---- */

/* The MLP half of a block on `rows` rows of x (in place): x += proj(act(fc(LN2(x)))). */
static ca_status mlp_half(const ca_xformer *tf, const ca_block *bk, const fast_block *f, float *x, int rows,
                          float *h, float *mlp) {
    int C = tf->width, H = tf->hidden;
    /* the fused epilogue knows QuickGELU; HF's GELU variants run as a separate pass */
    ca_epi fc_epi = tf->act == CA_ACT_QUICKGELU ? CA_EPI_QUICKGELU : CA_EPI_NONE;
    ca_status st;
    ca_ln_rows(x, C, rows, C, bk->ln2_w, bk->ln2_b, h, C, 0);
    if ((st = ca_gemm_packed(rows, h, C, &f->fc, 1.0f, bk->fc_b, fc_epi, 0.0f, mlp, H, 0))) return st;
    if (tf->act == CA_ACT_GELU) ca_gelu_erf(mlp, (size_t)rows * H);
    else if (tf->act == CA_ACT_GELU_TANH) ca_gelu_tanh(mlp, (size_t)rows * H);
    return ca_gemm_packed(rows, mlp, H, &f->proj, 1.0f, bk->proj_b, CA_EPI_NONE, 1.0f, x, C, 0);
}

/* Row keep[b] of each sequence b to row b of x (row b <= its source row, so in order is safe). */
static void compact_kept(float *x, int C, int nseq, const int *offs, const int *keep) {
    for (int b = 0; b < nseq; b++) memmove(x + (size_t)b * C, x + (size_t)(offs[b] + keep[b]) * C, sizeof(float) * C);
}

/* The last block when only one row per sequence is read afterwards (ViT's class token, the
 * text's end token): keys and values still come from every row, but the query, attention
 * output, residual and MLP run on the kept rows only — the same arithmetic on those rows, about
 * 10·C² multiply-adds less per dropped row. keep[b] indexes into sequence b; on return row b of
 * x (b < nseq, stride C) holds sequence b's kept row. */
static ca_status last_block_kept(const ca_model *m, const ca_xformer *tf, const ca_block *bk, const fast_block *f, float *x, int rows,
                                 int nseq, const int *offs, const int *keep, int causal, float *h, float *qkv,
                                 float *att, float *mlp) {
    int C = tf->width;
    ca_status st;
    ca_ln_rows(x, C, rows, C, bk->ln1_w, bk->ln1_b, h, C, 0);
    /* keys and values of every row: the K|V columns of the packed QKV weight, or (when the panels
     * do not split there) the whole projection */
    ca_packed kvw, qw;
    const float *q, *k, *v;
    int ldq, ldkv;
    float *hq = att, *qk = mlp, *scores = mlp + (size_t)nseq * C;
    if (!m->no_col_views && ca_packed_cols(&f->qkv, C, 2 * C, &kvw) == CA_OK &&
        ca_packed_cols(&f->qkv, 0, C, &qw) == CA_OK) {
        for (int b = 0; b < nseq; b++) memcpy(hq + (size_t)b * C, h + (size_t)(offs[b] + keep[b]) * C, sizeof(float) * C);
        if ((st = ca_gemm_packed(rows, h, C, &kvw, 1.0f, bk->qkv_b + C, CA_EPI_NONE, 0.0f, qkv, 2 * C, 0)) ||
            (st = ca_gemm_packed(nseq, hq, C, &qw, 1.0f, bk->qkv_b, CA_EPI_NONE, 0.0f, qk, C, 0)))
            return st;
        q = qk, ldq = C, k = qkv, v = qkv + C, ldkv = 2 * C;
    } else {
        if ((st = ca_gemm_packed(rows, h, C, &f->qkv, 1.0f, bk->qkv_b, CA_EPI_NONE, 0.0f, qkv, 3 * C, 0))) return st;
        for (int b = 0; b < nseq; b++)
            memcpy(qk + (size_t)b * C, qkv + (size_t)(offs[b] + keep[b]) * 3 * C, sizeof(float) * C);
        q = qk, ldq = C, k = qkv + C, v = qkv + 2 * C, ldkv = 3 * C;
    }
    /* one query per sequence; under the causal mask it sees keys 0..keep[b] */
    for (int b = 0; b < nseq; b++) {
        int nk = causal ? keep[b] + 1 : offs[b + 1] - offs[b];
        ca_attention(att + (size_t)b * C, C, q + (size_t)b * ldq, ldq, k + (size_t)offs[b] * ldkv, ldkv,
                     v + (size_t)offs[b] * ldkv, ldkv, 1, 1, nk, C, tf->heads, 0, scores);
    }
    compact_kept(x, C, nseq, offs, keep);
    if ((st = ca_gemm_packed(nseq, att, C, &f->out, 1.0f, bk->out_b, CA_EPI_NONE, 1.0f, x, C, 0))) return st;
    return mlp_half(tf, bk, f, x, nseq, h, mlp);
}

/* x (rows, C) in place over nseq sequences given by offs; scratch h, att (rows, C), qkv
 * (rows, 3C), mlp (rows, H). The tap sees "<prefix>.block<i>.out" as (B, T, C) when uniform.
 * keep: NULL, or one row index per sequence that is all the caller reads afterwards; then (no
 * tap) the last block runs on those rows only and returns them compacted at x's front. */
static ca_status xformer(const ca_model *m, const ca_xformer *tf, const fast_block *fb, float *x, int rows,
                         int nseq, const int *offs, const int *keep, int causal, float *h, float *qkv, float *att,
                         float *mlp, const char *prefix, int64_t first) {
    int C = tf->width;
    ca_status st;
    int full = keep && !m->tap && tf->layers > 0 ? tf->layers - 1 : tf->layers;
    for (int l = 0; l < full; l++) {
        const ca_block *bk = &tf->blocks[l];
        const fast_block *f = &fb[l];
        ca_ln_rows(x, C, rows, C, bk->ln1_w, bk->ln1_b, h, C, 0);
        if ((st = ca_gemm_packed(rows, h, C, &f->qkv, 1.0f, bk->qkv_b, CA_EPI_NONE, 0.0f, qkv, 3 * C, 0))) return st;
        if ((st = ca_mha_varlen(qkv, nseq, offs, tf->heads, C / tf->heads, causal, att, 0))) return st;
        /* x += att·Woutᵀ + b: the residual rides on beta = 1 */
        if ((st = ca_gemm_packed(rows, att, C, &f->out, 1.0f, bk->out_b, CA_EPI_NONE, 1.0f, x, C, 0))) return st;
        if ((st = mlp_half(tf, bk, f, x, rows, h, mlp))) return st;
        if (m->tap) {
            char name[64];
            snprintf(name, sizeof name, "%s.block%d.out", prefix, l);
            int T = offs[1] - offs[0];
            ca_model_emit(m, name, first, x, 3, (int64_t[]){nseq, T, C});
        }
    }
    if (keep && !m->tap && tf->layers == 0) compact_kept(x, C, nseq, offs, keep); /* nothing to prune; callers expect it */
    if (full < tf->layers)
        return last_block_kept(m, tf, &tf->blocks[full], &fb[full], x, rows, nseq, offs, keep, causal, h, qkv, att, mlp);
    return CA_OK;
}

/* ---- ViT ---- */

static ca_status vit_chunk(ca_model *m, const float *images, int n, float *out, int64_t first) {
    ca_fast *f = m->fast;
    const ca_vision *v = &m->vis;
    int W = v->width, H = v->tf.hidden, P = v->patch, G = v->grid, G2 = G * G, T = G2 + 1, R = v->image_size;
    int KP = 3 * P * P;
    size_t rows = (size_t)n * T;
    size_t mlp_sz = rows * (size_t)H, patch_sz = (size_t)n * G2 * KP + (size_t)n * G2 * W;
    float *x = scratch(f, rows * W * 6 + (mlp_sz > patch_sz ? mlp_sz : patch_sz) + 2 * (size_t)n + 1);
    if (!x) return CA_E_NOMEM;
    float *h = x + rows * W, *att = h + rows * W, *qkv = att + rows * W, *mlp = qkv + rows * 3 * W;
    int *offs = (int *)(mlp + (mlp_sz > patch_sz ? mlp_sz : patch_sz));
    int *keep = offs + n + 1; /* the class token is all that is read after the last block */
    for (int b = 0; b <= n; b++) offs[b] = b * T;
    for (int b = 0; b < n; b++) keep[b] = 0;

    /* patch embedding: gather each patch as a row ordered (c, ky, kx) like conv1's weight */
    float *patches = mlp, *emb = mlp + (size_t)n * G2 * KP;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n * G2; r++) {
        int b = r / G2, p = r % G2, gy = p / G, gx = p % G;
        float *d = patches + (size_t)r * KP;
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < P; ky++)
                memcpy(d + ((size_t)c * P + ky) * P,
                       images + (((size_t)b * 3 + c) * R + (size_t)gy * P + ky) * R + (size_t)gx * P, sizeof(float) * P);
    }
    ca_status st = ca_gemm_packed(n * G2, patches, KP, &f->patch, 1.0f, NULL, CA_EPI_NONE, 0.0f, emb, W, 0);
    if (st) return st;
    for (int b = 0; b < n; b++) {
        float *xb = x + (size_t)b * T * W;
        for (int c = 0; c < W; c++) xb[c] = v->class_emb[c] + v->pos[c];
        for (int p = 0; p < G2; p++) {
            const float *e = emb + ((size_t)b * G2 + p) * W, *ps = v->pos + (size_t)(p + 1) * W;
            float *d = xb + (size_t)(p + 1) * W;
            for (int c = 0; c < W; c++) d[c] = e[c] + ps[c];
        }
    }
    ca_ln_rows(x, W, (int)rows, W, v->ln_pre_w, v->ln_pre_b, x, W, 0);
    ca_model_emit(m, "visual.ln_pre.out", first, x, 3, (int64_t[]){n, T, W});
    if ((st = xformer(m, &v->tf, f->vblocks, x, (int)rows, n, offs, keep, 0, h, qkv, att, mlp, "visual", first)))
        return st;
    /* ln_post on the class tokens (compacted to the front, or with a tap at row stride T·W), then
     * the projection */
    ca_ln_rows(x, m->tap ? T * W : W, n, W, v->ln_post_w, v->ln_post_b, h, W, 0);
    return ca_gemm_packed(n, h, W, &f->vproj, 1.0f, NULL, CA_EPI_NONE, 0.0f, out, v->embed_dim, 0);
}

/* ---- ResNet (NHWC inside) ---- */

static void to_nchw(const float *in, int n, int H, int C, float *out) {
    for (int b = 0; b < n; b++)
        for (int p = 0; p < H * H; p++)
            for (int c = 0; c < C; c++) out[((size_t)b * C + c) * H * H + p] = in[((size_t)b * H * H + p) * C + c];
}

static size_t rn_max_act(const ca_vision *v) {
    int W = v->width, H = (v->image_size + 2 - 3) / 2 + 1;
    size_t mx = (size_t)3 * v->image_size * v->image_size;
#define UPD(c, h) do { size_t s_ = (size_t)(c) * (h) * (h); if (s_ > mx) mx = s_; } while (0)
    UPD(W, H);
    H /= 2;
    const ca_bottleneck *bk = v->blocks;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < v->rn_layers[s]; i++, bk++) {
            UPD(bk->planes, H);
            H /= bk->stride;
            UPD(4 * bk->planes, H);
        }
#undef UPD
    return mx;
}

static ca_status rn_chunk(ca_model *m, const float *images, int n, float *out, int64_t first) {
    ca_fast *f = m->fast;
    const ca_vision *v = &m->vis;
    int W = v->width, R = v->image_size;
    size_t act = (size_t)n * rn_max_act(v);
    int D = v->ap_dim, E = v->embed_dim;
    size_t pool = (size_t)n * (v->ap_grid * v->ap_grid + 1) * D * 3 + (size_t)n * D * 2;
    float *base = scratch(f, 5 * act + pool);
    if (!base) return CA_E_NOMEM;
    float *cur = base, *t1 = base + act, *t2 = t1 + act, *t3 = t2 + act, *t4 = t3 + act, *pl = t4 + act;
    ca_status st;
    /* NCHW input -> NHWC */
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n * R; r++) {
        int b = r / R, y = r % R;
        for (int xx = 0; xx < R; xx++)
            for (int c = 0; c < 3; c++)
                t2[(((size_t)b * R + y) * R + xx) * 3 + c] = images[(((size_t)b * 3 + c) * R + y) * R + xx];
    }
    int H = R;
    float *src = t2;
    float *dst[3] = {t1, t3, t1};
    for (int i = 0; i < 3; i++) {
        if ((st = ca_conv2d_nhwc(&f->stem[i], src, n, H, H, v->stem_bn[i].shift, CA_EPI_RELU, 0.0f, dst[i], 0))) return st;
        H = (H + 2 - 3) / f->stem[i].stride + 1;
        src = dst[i];
    }
    ca_avgpool_nhwc(t1, n, H, H, W, 2, cur, 0);
    H /= 2;
    int C = W;
    const ca_bottleneck *bk = v->blocks;
    const fast_bottleneck *fb = f->rblocks;
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < v->rn_layers[s]; i++, bk++, fb++) {
            int P = bk->planes, sd = bk->stride, OH = H / sd;
            if ((st = ca_conv2d_nhwc(&fb->c1, cur, n, H, H, bk->bn1.shift, CA_EPI_RELU, 0.0f, t1, 0)) ||
                (st = ca_conv2d_nhwc(&fb->c2, t1, n, H, H, bk->bn2.shift, CA_EPI_RELU, 0.0f, t2, 0)))
                return st;
            const float *mid = t2;
            if (sd > 1) { ca_avgpool_nhwc(t2, n, H, H, P, sd, t1, 0); mid = t1; }
            float *res; /* the identity branch, which conv3 then accumulates onto (beta = 1) */
            if (bk->down) {
                const float *din = cur;
                if (sd > 1) { ca_avgpool_nhwc(cur, n, H, H, C, sd, t3, 0); din = t3; }
                if ((st = ca_conv2d_nhwc(&fb->down, din, n, OH, OH, bk->down_bn.shift, CA_EPI_NONE, 0.0f, t4, 0))) return st;
                res = t4;
            } else {
                res = cur;
            }
            if ((st = ca_conv2d_nhwc(&fb->c3, mid, n, OH, OH, bk->bn3.shift, CA_EPI_RELU, 1.0f, res, 0))) return st;
            if (res != cur) { float *tmp = cur; cur = res; t4 = tmp; }
            C = 4 * P;
            H = OH;
        }
        if (m->tap) {
            float *tmp = malloc(sizeof(float) * (size_t)n * C * H * H);
            if (!tmp) return ca_fail(CA_E_NOMEM, "out of memory for a debug tap");
            to_nchw(cur, n, H, C, tmp);
            char name[32];
            snprintf(name, sizeof name, "visual.layer%d.out", s + 1);
            ca_model_emit(m, name, first, tmp, 4, (int64_t[]){n, C, H, H});
            free(tmp);
        }
    }
    /* attention pool: tokens [mean; positions] + pos; only token 0 needs a query */
    int HW = H * H, T = HW + 1;
    float *tok = pl, *kv = tok + (size_t)n * T * D, *q = kv + (size_t)n * T * 2 * D, *att = q + (size_t)n * D;
    for (int b = 0; b < n; b++) {
        const float *xb = cur + (size_t)b * HW * D;
        float *tb = tok + (size_t)b * T * D;
        for (int c = 0; c < D; c++) tb[c] = 0;
        for (int p = 0; p < HW; p++) {
            const float *xp = xb + (size_t)p * D, *pp = v->ap_pos + (size_t)(p + 1) * D;
            float *d = tb + (size_t)(p + 1) * D;
            for (int c = 0; c < D; c++) { tb[c] += xp[c]; d[c] = xp[c] + pp[c]; }
        }
        for (int c = 0; c < D; c++) tb[c] = tb[c] / (float)HW + v->ap_pos[c];
    }
    if ((st = ca_gemm_packed(n, tok, T * D, &f->ap_q, 1.0f, v->ap_qkv_b, CA_EPI_NONE, 0.0f, q, D, 0)) ||
        (st = ca_gemm_packed(n * T, tok, D, &f->ap_kv, 1.0f, v->ap_qkv_b + D, CA_EPI_NONE, 0.0f, kv, 2 * D, 0)))
        return st;
    ca_attention(att, D, q, D, kv, 2 * D, kv + D, 2 * D, n, 1, T, D, v->ap_heads, 0, t1);
    if ((st = ca_gemm_packed(n, att, D, &f->ap_c, 1.0f, v->ap_c_b, CA_EPI_NONE, 0.0f, out, E, 0))) return st;
    ca_model_emit(m, "visual.attnpool.out", first, out, 2, (int64_t[]){n, E});
    return CA_OK;
}

static ca_status vit_fn(ca_model *m, const void *in, int n, float *out, int64_t first) {
    return vit_chunk(m, in, n, out, first);
}

static ca_status rn_fn(ca_model *m, const void *in, int n, float *out, int64_t first) {
    return rn_chunk(m, in, n, out, first);
}

ca_status ca_fast_encode_images(ca_model *m, const float *images, int n, float *out) {
    ca_status st = ca_fast_build(m);
    if (st) return st;
    int vit = m->info.is_vit, R = m->vis.image_size;
    int chunk = vit ? 32 : 16; /* enough rows for full GEMM tiles; activations stay bounded */
    if (chunk > m->max_chunk) chunk = m->max_chunk;
    return split_batch(m, vit ? vit_fn : rn_fn, images, sizeof(float) * 3 * R * R, n, out, m->vis.embed_dim,
                       chunk, vit ? 8 : 4);
}

/* ---- text ---- */

static ca_status text_chunk(ca_model *m, const int64_t *tokens, int n, float *out, int64_t first) {
    ca_fast *f = m->fast;
    const ca_text *t = &m->txt;
    int W = t->width, T = t->context, H = t->tf.hidden;
    int *eot = ca_malloc2(sizeof(int), 2 * (size_t)n + 1);
    if (!eot) return CA_E_NOMEM;
    int *offs = eot + n;
    /* Under the causal mask no position attends to a later one, so everything after the end
     * token (the argmax, as the reference) is dead for the pooled feature: cut each sequence
     * there. With a tap the full context runs so intermediates match the reference's shapes. */
    offs[0] = 0;
    for (int b = 0; b < n; b++) {
        const int64_t *tk = tokens + (size_t)b * T;
        int e = 0;
        for (int i = 1; i < T; i++) if (tk[i] > tk[e]) e = i;
        eot[b] = e;
        offs[b + 1] = offs[b] + (m->tap ? T : e + 1);
    }
    int rows = offs[n];
    float *x = scratch(f, (size_t)rows * (6 * (size_t)W + H));
    ca_status st = CA_OK;
    if (!x) { free(eot); return CA_E_NOMEM; }
    float *h = x + (size_t)rows * W, *att = h + (size_t)rows * W, *qkv = att + (size_t)rows * W, *mlp = qkv + (size_t)rows * 3 * W;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < offs[b + 1] - offs[b]; i++) {
            const float *e = t->tok_emb + (size_t)tokens[(size_t)b * T + i] * W, *p = t->pos + (size_t)i * W;
            float *d = x + ((size_t)offs[b] + i) * W;
            for (int c = 0; c < W; c++) d[c] = e[c] + p[c];
        }
    st = xformer(m, &t->tf, f->tblocks, x, rows, n, offs, eot, 1, h, qkv, att, mlp, "text", first);
    if (!st) {
        /* the end tokens: compacted to x's front by the last block, or (tap) in place */
        for (int b = 0; b < n; b++)
            memcpy(h + (size_t)b * W, x + (m->tap ? (size_t)offs[b] + eot[b] : (size_t)b) * W, sizeof(float) * W);
        ca_ln_rows(h, W, n, W, t->ln_final_w, t->ln_final_b, h, W, 0);
        st = ca_gemm_packed(n, h, W, &f->tproj, 1.0f, NULL, CA_EPI_NONE, 0.0f, out, t->embed_dim, 0);
    }
    free(eot);
    return st;
}

static ca_status text_fn(ca_model *m, const void *in, int n, float *out, int64_t first) {
    return text_chunk(m, in, n, out, first);
}

ca_status ca_fast_encode_text(ca_model *m, const int64_t *tokens, int n, float *out) {
    ca_status st = ca_fast_build(m);
    if (st) return st;
    int chunk = 256 < m->max_chunk ? 256 : m->max_chunk;
    return split_batch(m, text_fn, tokens, sizeof(int64_t) * m->txt.context, n, out, m->txt.embed_dim, chunk, 16);
}
