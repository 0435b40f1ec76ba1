/* resnet.c — forward pass of CLIP's ModifiedResNet: the 3-convolution stem with a 2×2 average
 * pool, four stages of Bottleneck blocks (stride done by an anti-aliasing AvgPool2d before conv3
 * and in the downsample branch), then attention pooling over the HW+1 tokens (the mean token
 * first) keeping the first token. BatchNorm is folded to scale/shift at load (load.c).
 */
#include "model/kernels.h"
#include "model/model.h"

#include <stdio.h>

/* Per-image sizes: the largest activation (C·H·W) and the largest im2col buffer. */
static void walk_sizes(const ca_vision *v, size_t *max_act, size_t *max_col) {
    size_t act = (size_t)3 * v->image_size * v->image_size, col = 0;
#define UPD_ACT(c, h) do { size_t s_ = (size_t)(c) * (h) * (h); if (s_ > act) act = s_; } while (0)
#define UPD_COL(c, oh) do { size_t s_ = (size_t)(c) * 9 * (oh) * (oh); if (s_ > col) col = s_; } while (0)
    int W = v->width, H = ca_conv_out(v->image_size, 3, 2, 1);
    UPD_ACT(W, H); UPD_COL(3, H); UPD_COL(W / 2, H);
    H /= 2;
    const ca_bottleneck *bk = v->blocks;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < v->rn_layers[s]; i++, bk++) {
            UPD_ACT(bk->inplanes, H);
            UPD_ACT(bk->planes, H);
            UPD_COL(bk->planes, H);
            H /= bk->stride;
            UPD_ACT(4 * bk->planes, H);
        }
#undef UPD_ACT
#undef UPD_COL
    *max_act = act;
    *max_col = col;
}

size_t ca_resnet_scratch(const ca_vision *v, int n) {
    size_t act, col;
    walk_sizes(v, &act, &col);
    int T = v->ap_grid * v->ap_grid + 1, D = v->ap_dim;
    size_t pool = (size_t)n * T * D + (size_t)n * T * 3 * D + (size_t)n * D + (size_t)n * v->ap_heads * T;
    return 5 * (size_t)n * act + col + pool;
}

static void conv_bn(float *out, const float *in, const float *w, const ca_bn *bn, int n, int C, int H,
                    int OC, int k, int stride, int pad, int relu, float *col) {
    ca_conv2d(out, in, w, n, C, H, H, OC, k, k, stride, pad, col);
    int OH = ca_conv_out(H, k, stride, pad);
    ca_channel_affine(out, bn->scale, bn->shift, n, OC, OH * OH, relu);
}

void ca_resnet_forward(ca_session *s, const float *images, int n, float *out, int64_t first) {
    const ca_vision *v = &s->m->vis;
    size_t act, colsz;
    walk_sizes(v, &act, &colsz);
    float *buf[5];
    for (int i = 0; i < 5; i++) buf[i] = s->scratch + (size_t)i * n * act;
    float *col = buf[4] + (size_t)n * act;
    float *cur = buf[0], *t1 = buf[1], *t2 = buf[2], *t3 = buf[3], *t4 = buf[4];
    int W = v->width, R = v->image_size, H = ca_conv_out(R, 3, 2, 1);

    conv_bn(t1, images, v->stem_conv[0], &v->stem_bn[0], n, 3, R, W / 2, 3, 2, 1, 1, col);
    conv_bn(t2, t1, v->stem_conv[1], &v->stem_bn[1], n, W / 2, H, W / 2, 3, 1, 1, 1, col);
    conv_bn(t1, t2, v->stem_conv[2], &v->stem_bn[2], n, W / 2, H, W, 3, 1, 1, 1, col);
    ca_avgpool2d(cur, t1, n, W, H, H, 2);
    H /= 2;

    const ca_bottleneck *bk = v->blocks;
    int C = W;
    for (int stg = 0; stg < 4; stg++) {
        for (int i = 0; i < v->rn_layers[stg]; i++, bk++) {
            int P = bk->planes, st = bk->stride, OH = H / st;
            conv_bn(t1, cur, bk->conv1, &bk->bn1, n, C, H, P, 1, 1, 0, 1, col);
            conv_bn(t2, t1, bk->conv2, &bk->bn2, n, P, H, P, 3, 1, 1, 1, col);
            const float *mid = t2;
            if (st > 1) { ca_avgpool2d(t1, t2, n, P, H, H, st); mid = t1; }
            conv_bn(t3, mid, bk->conv3, &bk->bn3, n, P, OH, 4 * P, 1, 1, 0, 0, col);
            size_t len = (size_t)n * 4 * P * OH * OH;
            if (bk->down) {
                const float *din = cur;
                if (st > 1) { ca_avgpool2d(t1, cur, n, C, H, H, st); din = t1; }
                conv_bn(t4, din, bk->down, &bk->down_bn, n, C, OH, 4 * P, 1, 1, 0, 0, col);
                ca_add(t3, t4, len);
            } else {
                ca_add(t3, cur, len);
            }
            ca_relu(t3, len);
            float *tmp = cur; cur = t3; t3 = tmp;
            C = 4 * P;
            H = OH;
        }
        if (s->tap) {
            char name[32];
            snprintf(name, sizeof name, "visual.layer%d.out", stg + 1);
            ca_session_emit(s, name, first, cur, 4, (int64_t[]){n, C, H, H});
        }
    }

    /* Attention pool: tokens (n, T, D) = [mean over HW; the HW positions] + positional embedding. */
    int D = v->ap_dim, HW = H * H, T = HW + 1;
    float *tok = col + colsz, *qkv = tok + (size_t)n * T * D, *att = qkv + (size_t)n * T * 3 * D;
    float *scores = att + (size_t)n * D;
    for (int b = 0; b < n; b++) {
        const float *xb = cur + (size_t)b * D * HW;
        float *tb = tok + (size_t)b * T * D;
        for (int c = 0; c < D; c++) {
            float sum = 0.0f;
            for (int p = 0; p < HW; p++) {
                sum += xb[(size_t)c * HW + p];
                tb[(size_t)(p + 1) * D + c] = xb[(size_t)c * HW + p] + v->ap_pos[(size_t)(p + 1) * D + c];
            }
            tb[c] = sum / (float)HW + v->ap_pos[c];
        }
    }
    ca_linear(qkv, tok, v->ap_qkv_w, v->ap_qkv_b, n * T, D, 3 * D);
    /* One query per image (token 0): its row stride spans a whole image's tokens. */
    ca_attention(att, D, qkv, T * 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D, n, 1, T, D, v->ap_heads,
                 0, scores);
    ca_linear(out, att, v->ap_c_w, v->ap_c_b, n, D, v->embed_dim);
    ca_session_emit(s, "visual.attnpool.out", first, out, 2, (int64_t[]){n, v->embed_dim});
}
