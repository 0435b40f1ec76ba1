/* fast.c — the encoders' fast forward passes on packed weights (see fast.h). Numerically the
 * same computation as vit.c/text.c/resnet.c (float32 throughout; only summation order differs),
 * which tests/test_kernels.c checks on the shared goldens and against the plain path.
 * Not here: loading and packing (load.c packs the weights into the model), argument checks and
 * the session (api.c). */
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

/* this worker's activation block of the session, at least n floats (workers of one batch split
 * each own one; a session is used by one call at a time) */
static float *scratch(ca_session *s, size_t n) {
    int w = 0;
#ifdef _OPENMP
    w = omp_in_parallel() ? omp_get_thread_num() : 0;
    if (w >= CA_SESSION_WORKERS) w = 0;
#endif
    if (n > s->wscratch_cap[w]) {
        float *p = ca_malloc2(n, sizeof(float));
        if (!p) return NULL;
        free(s->wscratch[w]);
        s->wscratch[w] = p;
        s->wscratch_cap[w] = n;
    }
    return s->wscratch[w];
}

/* Threads over the batch: with T threads and enough inputs, each thread runs whole forward
 * passes on its contiguous share, single-threaded inside (kernels see omp_in_parallel). No
 * synchronisation until the end, so a thread preempted by another process delays only its own
 * share, and per-thread GEMMs still have hundreds of rows. Below min_per inputs per thread, or
 * with a debug tap (which wants ordered calls), the threads split rows inside each kernel. */
typedef ca_status (*chunk_fn)(ca_session *s, const void *in, int n, float *out, int64_t first);

static ca_status cancelled(void) { return ca_fail(CA_E_CANCELLED, "cancelled (ca_session_cancel)"); }

static ca_status split_batch(ca_session *s, chunk_fn fn, const void *in, size_t in_stride, int n, float *out,
                             int E, int chunk, int min_per) {
    int T = ca_kernel_threads(s->threads);
    if (T > CA_SESSION_WORKERS) T = CA_SESSION_WORKERS;
    if (s->tap || T < 2 || n < T * min_per) {
        for (int i = 0; i < n; i += chunk) {
            if (ca_session_cancelled(s)) return cancelled();
            int c = n - i < chunk ? n - i : chunk;
            ca_status st = fn(s, (const char *)in + (size_t)i * in_stride, c, out + (size_t)i * E, i);
            if (st) return st;
        }
        return CA_OK;
    }
    ca_err_slot es = CA_ERR_SLOT_INIT;
#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        int t = 0, nt = 1;
#endif
        ca_team_note();
        int lo = (int)((long)n * t / nt), hi = (int)((long)n * (t + 1) / nt);
        for (int i = lo; i < hi && !ca_err_failed(&es); i += chunk) {
            int c = hi - i < chunk ? hi - i : chunk;
            ca_status st = ca_session_cancelled(s) ? cancelled()
                                                   : fn(s, (const char *)in + (size_t)i * in_stride, c, out + (size_t)i * E, i);
            ca_err_catch(&es, st);
        }
    }
    return ca_err_raise(&es);
}

/* ---- transformer stack ---- */

/* The MLP half of a block on `rows` rows of x (in place): x += proj(act(fc(LN2(x)))). */
static ca_status mlp_half(const ca_xformer *tf, const ca_block *bk, float *x, int rows,
                          float *h, float *mlp) {
    int C = tf->width, H = tf->hidden;
    /* the fused epilogue knows QuickGELU; HF's GELU variants run as a separate pass */
    ca_epi fc_epi = tf->act == CA_ACT_QUICKGELU ? CA_EPI_QUICKGELU : CA_EPI_NONE;
    ca_status st;
    ca_ln_rows(x, C, rows, C, bk->ln2_w, bk->ln2_b, h, C, 0);
    if ((st = ca_gemm_packed(rows, h, C, &bk->fc, 1.0f, bk->fc_b, fc_epi, 0.0f, mlp, H, 0))) return st;
    if (tf->act == CA_ACT_GELU) ca_gelu_erf(mlp, (size_t)rows * H);
    else if (tf->act == CA_ACT_GELU_TANH) ca_gelu_tanh(mlp, (size_t)rows * H);
    return ca_gemm_packed(rows, mlp, H, &bk->proj, 1.0f, bk->proj_b, CA_EPI_NONE, 1.0f, x, C, 0);
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
static ca_status last_block_kept(const ca_session *s, const ca_xformer *tf, const ca_block *bk, float *x, int rows,
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
    if (!s->no_col_views && ca_packed_cols(&bk->qkv, C, 2 * C, &kvw) == CA_OK &&
        ca_packed_cols(&bk->qkv, 0, C, &qw) == CA_OK) {
        for (int b = 0; b < nseq; b++) memcpy(hq + (size_t)b * C, h + (size_t)(offs[b] + keep[b]) * C, sizeof(float) * C);
        if ((st = ca_gemm_packed(rows, h, C, &kvw, 1.0f, bk->qkv_b + C, CA_EPI_NONE, 0.0f, qkv, 2 * C, 0)) ||
            (st = ca_gemm_packed(nseq, hq, C, &qw, 1.0f, bk->qkv_b, CA_EPI_NONE, 0.0f, qk, C, 0)))
            return st;
        q = qk, ldq = C, k = qkv, v = qkv + C, ldkv = 2 * C;
    } else {
        if ((st = ca_gemm_packed(rows, h, C, &bk->qkv, 1.0f, bk->qkv_b, CA_EPI_NONE, 0.0f, qkv, 3 * C, 0))) return st;
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
    if ((st = ca_gemm_packed(nseq, att, C, &bk->out, 1.0f, bk->out_b, CA_EPI_NONE, 1.0f, x, C, 0))) return st;
    return mlp_half(tf, bk, x, nseq, h, mlp);
}

/* x (rows, C) in place over nseq sequences given by offs; scratch h, att (rows, C), qkv
 * (rows, 3C), mlp (rows, H). The tap sees "<prefix>.block<i>.out" as (B, T, C) when uniform.
 * keep: NULL, or one row index per sequence that is all the caller reads afterwards; then (no
 * tap) the last block runs on those rows only and returns them compacted at x's front. */
static ca_status xformer(const ca_session *s, const ca_xformer *tf, float *x, int rows,
                         int nseq, const int *offs, const int *keep, int causal, float *h, float *qkv, float *att,
                         float *mlp, const char *prefix, int64_t first) {
    int C = tf->width;
    ca_status st;
    int full = keep && !s->tap && tf->layers > 0 ? tf->layers - 1 : tf->layers;
    for (int l = 0; l < full; l++) {
        const ca_block *bk = &tf->blocks[l];
        ca_ln_rows(x, C, rows, C, bk->ln1_w, bk->ln1_b, h, C, 0);
        if ((st = ca_gemm_packed(rows, h, C, &bk->qkv, 1.0f, bk->qkv_b, CA_EPI_NONE, 0.0f, qkv, 3 * C, 0))) return st;
        if ((st = ca_mha_varlen(qkv, nseq, offs, tf->heads, C / tf->heads, causal, att, 0))) return st;
        /* x += att·Woutᵀ + b: the residual rides on beta = 1 */
        if ((st = ca_gemm_packed(rows, att, C, &bk->out, 1.0f, bk->out_b, CA_EPI_NONE, 1.0f, x, C, 0))) return st;
        if ((st = mlp_half(tf, bk, x, rows, h, mlp))) return st;
        if (s->tap) {
            char name[64];
            snprintf(name, sizeof name, "%s.block%d.out", prefix, l);
            int T = offs[1] - offs[0];
            ca_session_emit(s, name, first, x, 3, (int64_t[]){nseq, T, C});
        }
    }
    if (keep && !s->tap && tf->layers == 0) compact_kept(x, C, nseq, offs, keep); /* nothing to prune; callers expect it */
    if (full < tf->layers)
        return last_block_kept(s, tf, &tf->blocks[full], x, rows, nseq, offs, keep, causal, h, qkv, att, mlp);
    return CA_OK;
}

/* ---- ViT ---- */

static ca_status vit_chunk(ca_session *s, const float *images, int n, float *out, int64_t first) {
    const ca_vision *v = &s->m->vis;
    int W = v->width, H = v->tf.hidden, P = v->patch, G = v->grid, G2 = G * G, T = G2 + 1, R = v->image_size;
    int KP = 3 * P * P;
    size_t rows = (size_t)n * T;
    size_t mlp_sz = rows * (size_t)H, patch_sz = (size_t)n * G2 * KP + (size_t)n * G2 * W;
    float *x = scratch(s, rows * W * 6 + (mlp_sz > patch_sz ? mlp_sz : patch_sz) + 2 * (size_t)n + 1);
    if (!x) return CA_E_NOMEM;
    float *h = x + rows * W, *att = h + rows * W, *qkv = att + rows * W, *mlp = qkv + rows * 3 * W;
    int *offs = (int *)(mlp + (mlp_sz > patch_sz ? mlp_sz : patch_sz));
    int *keep = offs + n + 1; /* the class token is all that is read after the last block */
    for (int b = 0; b <= n; b++) offs[b] = b * T;
    for (int b = 0; b < n; b++) keep[b] = 0;

    /* patch embedding: gather each patch as a row ordered (c, ky, kx) like conv1's weight */
    float *patches = mlp, *emb = mlp + (size_t)n * G2 * KP;
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (int r = 0; r < n * G2; r++) {
        int b = r / G2, p = r % G2, gy = p / G, gx = p % G;
        float *d = patches + (size_t)r * KP;
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < P; ky++)
                memcpy(d + ((size_t)c * P + ky) * P,
                       images + (((size_t)b * 3 + c) * R + (size_t)gy * P + ky) * R + (size_t)gx * P, sizeof(float) * P);
    }
    ca_status st = ca_gemm_packed(n * G2, patches, KP, &v->patch_p, 1.0f, NULL, CA_EPI_NONE, 0.0f, emb, W, 0);
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
    ca_session_emit(s, "visual.ln_pre.out", first, x, 3, (int64_t[]){n, T, W});
    if ((st = xformer(s, &v->tf, x, (int)rows, n, offs, keep, 0, h, qkv, att, mlp, "visual", first)))
        return st;
    /* ln_post on the class tokens (compacted to the front, or with a tap at row stride T·W), then
     * the projection */
    ca_ln_rows(x, s->tap ? T * W : W, n, W, v->ln_post_w, v->ln_post_b, h, W, 0);
    return ca_gemm_packed(n, h, W, &v->proj_p, 1.0f, NULL, CA_EPI_NONE, 0.0f, out, v->embed_dim, 0);
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

static ca_status rn_chunk(ca_session *s, const float *images, int n, float *out, int64_t first) {
    const ca_vision *v = &s->m->vis;
    int W = v->width, R = v->image_size;
    size_t act = (size_t)n * rn_max_act(v);
    int D = v->ap_dim, E = v->embed_dim;
    size_t pool = (size_t)n * (v->ap_grid * v->ap_grid + 1) * D * 3 + (size_t)n * D * 2;
    float *base = scratch(s, 5 * act + pool);
    if (!base) return CA_E_NOMEM;
    float *cur = base, *t1 = base + act, *t2 = t1 + act, *t3 = t2 + act, *t4 = t3 + act, *pl = t4 + act;
    ca_status st;
    /* NCHW input -> NHWC */
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
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
        if ((st = ca_conv2d_nhwc(&v->stem_p[i], src, n, H, H, v->stem_bn[i].shift, CA_EPI_RELU, 0.0f, dst[i], 0))) return st;
        H = (H + 2 - 3) / v->stem_p[i].stride + 1;
        src = dst[i];
    }
    ca_avgpool_nhwc(t1, n, H, H, W, 2, cur, 0);
    H /= 2;
    int C = W;
    const ca_bottleneck *bk = v->blocks;
    for (int stg = 0; stg < 4; stg++) {
        for (int i = 0; i < v->rn_layers[stg]; i++, bk++) {
            int P = bk->planes, sd = bk->stride, OH = H / sd;
            if ((st = ca_conv2d_nhwc(&bk->c1, cur, n, H, H, bk->bn1.shift, CA_EPI_RELU, 0.0f, t1, 0)) ||
                (st = ca_conv2d_nhwc(&bk->c2, t1, n, H, H, bk->bn2.shift, CA_EPI_RELU, 0.0f, t2, 0)))
                return st;
            const float *mid = t2;
            if (sd > 1) { ca_avgpool_nhwc(t2, n, H, H, P, sd, t1, 0); mid = t1; }
            float *res; /* the identity branch, which conv3 then accumulates onto (beta = 1) */
            if (bk->has_down) {
                const float *din = cur;
                if (sd > 1) { ca_avgpool_nhwc(cur, n, H, H, C, sd, t3, 0); din = t3; }
                if ((st = ca_conv2d_nhwc(&bk->cdown, din, n, OH, OH, bk->down_bn.shift, CA_EPI_NONE, 0.0f, t4, 0))) return st;
                res = t4;
            } else {
                res = cur;
            }
            if ((st = ca_conv2d_nhwc(&bk->c3, mid, n, OH, OH, bk->bn3.shift, CA_EPI_RELU, 1.0f, res, 0))) return st;
            if (res != cur) { float *tmp = cur; cur = res; t4 = tmp; }
            C = 4 * P;
            H = OH;
        }
        if (s->tap) {
            float *tmp = malloc(sizeof(float) * (size_t)n * C * H * H);
            if (!tmp) return ca_fail(CA_E_NOMEM, "out of memory for a debug tap");
            to_nchw(cur, n, H, C, tmp);
            char name[32];
            snprintf(name, sizeof name, "visual.layer%d.out", stg + 1);
            ca_session_emit(s, name, first, tmp, 4, (int64_t[]){n, C, H, H});
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
    if ((st = ca_gemm_packed(n, tok, T * D, &v->ap_q, 1.0f, v->ap_qkv_b, CA_EPI_NONE, 0.0f, q, D, 0)) ||
        (st = ca_gemm_packed(n * T, tok, D, &v->ap_kv, 1.0f, v->ap_qkv_b + D, CA_EPI_NONE, 0.0f, kv, 2 * D, 0)))
        return st;
    ca_attention(att, D, q, D, kv, 2 * D, kv + D, 2 * D, n, 1, T, D, v->ap_heads, 0, t1);
    if ((st = ca_gemm_packed(n, att, D, &v->ap_c, 1.0f, v->ap_c_b, CA_EPI_NONE, 0.0f, out, E, 0))) return st;
    ca_session_emit(s, "visual.attnpool.out", first, out, 2, (int64_t[]){n, E});
    return CA_OK;
}

static ca_status vit_fn(ca_session *s, const void *in, int n, float *out, int64_t first) {
    return vit_chunk(s, in, n, out, first);
}

static ca_status rn_fn(ca_session *s, const void *in, int n, float *out, int64_t first) {
    return rn_chunk(s, in, n, out, first);
}

ca_status ca_fast_encode_images(ca_session *s, const float *images, int n, float *out) {
    const ca_model *m = s->m;
    int vit = m->info.is_vit, R = m->vis.image_size;
    int chunk = vit ? 32 : 16; /* enough rows for full GEMM tiles; activations stay bounded */
    if (chunk > s->max_chunk) chunk = s->max_chunk;
    return split_batch(s, vit ? vit_fn : rn_fn, images, sizeof(float) * 3 * R * R, n, out, m->vis.embed_dim,
                       chunk, vit ? 8 : 4);
}

/* ---- text ---- */

static ca_status text_chunk(ca_session *s, const int64_t *tokens, int n, float *out, int64_t first) {
    const ca_text *t = &s->m->txt;
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
        offs[b + 1] = offs[b] + (s->tap ? T : e + 1);
    }
    int rows = offs[n];
    float *x = scratch(s, (size_t)rows * (6 * (size_t)W + H));
    ca_status st = CA_OK;
    if (!x) { free(eot); return CA_E_NOMEM; }
    float *h = x + (size_t)rows * W, *att = h + (size_t)rows * W, *qkv = att + (size_t)rows * W, *mlp = qkv + (size_t)rows * 3 * W;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < offs[b + 1] - offs[b]; i++) {
            const float *p = t->pos + (size_t)i * W;
            float *d = x + ((size_t)offs[b] + i) * W;
            ca_text_embed_row(t, tokens[(size_t)b * T + i], d);
            for (int c = 0; c < W; c++) d[c] += p[c];
        }
    st = xformer(s, &t->tf, x, rows, n, offs, eot, 1, h, qkv, att, mlp, "text", first);
    if (!st) {
        /* the end tokens: compacted to x's front by the last block, or (tap) in place */
        for (int b = 0; b < n; b++)
            memcpy(h + (size_t)b * W, x + (s->tap ? (size_t)offs[b] + eot[b] : (size_t)b) * W, sizeof(float) * W);
        ca_ln_rows(h, W, n, W, t->ln_final_w, t->ln_final_b, h, W, 0);
        st = ca_gemm_packed(n, h, W, &t->proj_p, 1.0f, NULL, CA_EPI_NONE, 0.0f, out, t->embed_dim, 0);
    }
    free(eot);
    return st;
}

static ca_status text_fn(ca_session *s, const void *in, int n, float *out, int64_t first) {
    return text_chunk(s, in, n, out, first);
}

ca_status ca_fast_encode_text(ca_session *s, const int64_t *tokens, int n, float *out) {
    int chunk = 256 < s->max_chunk ? 256 : s->max_chunk;
    return split_batch(s, text_fn, tokens, sizeof(int64_t) * s->m->txt.context, n, out, s->m->txt.embed_dim, chunk, 16);
}
