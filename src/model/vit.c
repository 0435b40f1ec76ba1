/* vit.c — forward pass of CLIP's VisionTransformer: patch embedding (a stride-P convolution),
 * class token, positional embedding, ln_pre, the residual stack, ln_post on the class token and
 * the projection. Not here: loading (load.c), chunking and argument checks (api.c).
 */
#include "model/kernels.h"
#include "model/model.h"

#include <string.h>

size_t ca_vit_scratch(const ca_vision *v, int n) {
    int T = v->grid * v->grid + 1, G2 = v->grid * v->grid;
    size_t x = (size_t)n * T * v->width;
    size_t patch = (size_t)3 * v->patch * v->patch * G2 + (size_t)v->width * G2; /* col + conv out */
    size_t tf = ca_xformer_scratch(&v->tf, n, T);
    size_t pooled = (size_t)n * v->width;
    return x + pooled + (tf > patch ? tf : patch);
}

void ca_vit_forward(ca_session *s, const float *images, int n, float *out, int64_t first) {
    const ca_vision *v = &s->m->vis;
    int W = v->width, G2 = v->grid * v->grid, T = G2 + 1, R = v->image_size;
    float *x = s->scratch;                       /* (n, T, W) */
    float *pooled = x + (size_t)n * T * W;       /* (n, W) */
    float *work = pooled + (size_t)n * W;
    float *col = work, *conv = work + (size_t)3 * v->patch * v->patch * G2; /* (W, G2) */
    for (int b = 0; b < n; b++) {
        ca_conv2d(conv, images + (size_t)b * 3 * R * R, v->conv1, 1, 3, R, R, W, v->patch, v->patch,
                  v->patch, 0, col);
        float *xb = x + (size_t)b * T * W;
        for (int c = 0; c < W; c++) xb[c] = v->class_emb[c] + v->pos[c];
        for (int p = 0; p < G2; p++)
            for (int c = 0; c < W; c++)
                xb[(size_t)(p + 1) * W + c] = conv[(size_t)c * G2 + p] + v->pos[(size_t)(p + 1) * W + c];
    }
    ca_layernorm(x, x, v->ln_pre_w, v->ln_pre_b, n * T, W, v->tf.eps);
    ca_session_emit(s, "visual.ln_pre.out", first, x, 3, (int64_t[]){n, T, W});

    size_t bt = (size_t)n * T;
    float *h = work, *qkv = h + bt * W, *att = qkv + bt * 3 * W, *mlp = att + bt * W;
    float *scores = mlp + bt * v->tf.hidden;
    ca_xformer_forward(s, &v->tf, x, n, T, 0, h, qkv, att, mlp, scores, "visual", first);

    for (int b = 0; b < n; b++) memcpy(pooled + (size_t)b * W, x + (size_t)b * T * W, (size_t)W * sizeof *x);
    ca_layernorm(pooled, pooled, v->ln_post_w, v->ln_post_b, n, W, v->tf.eps);
    ca_linear(out, pooled, v->proj, NULL, n, W, v->embed_dim);
}
