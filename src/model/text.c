/* text.c — forward pass of CLIP's text transformer: token + positional embedding, the causal
 * residual stack, ln_final and the projection of the feature at the end token (the position of
 * the largest token id, as the reference's argmax). Not here: tokenisation (src/text/).
 */
#include "model/kernels.h"
#include "model/model.h"

#include <string.h>

void ca_text_embed_row(const ca_text *t, int64_t id, float *dst) {
    int W = t->width;
    if (t->tok_emb) {
        memcpy(dst, t->tok_emb + (size_t)id * W, sizeof(float) * (size_t)W);
        return;
    }
    const unsigned char *e = (const unsigned char *)t->tok_emb16 + (size_t)id * W * 2;
    for (int c = 0; c < W; c++) {
        uint16_t h;
        memcpy(&h, e + 2 * (size_t)c, 2); /* the file need not align it */
        dst[c] = t->tok_dt == CA_DT_F16 ? ca_f16_to_f32(h) : ca_bf16_to_f32(h);
    }
}

size_t ca_text_scratch(const ca_text *t, int n) {
    return (size_t)n * t->context * t->width + (size_t)n * t->width + ca_xformer_scratch(&t->tf, n, t->context);
}

void ca_text_forward(ca_session *s, const int64_t *tokens, int n, float *out, int64_t first) {
    const ca_text *t = &s->m->txt;
    int W = t->width, T = t->context;
    float *x = s->scratch;                       /* (n, T, W) */
    float *pooled = x + (size_t)n * T * W;       /* (n, W) */
    size_t bt = (size_t)n * T;
    float *h = pooled + (size_t)n * W, *qkv = h + bt * W, *att = qkv + bt * 3 * W, *mlp = att + bt * W;
    float *scores = mlp + bt * t->tf.hidden;
    for (size_t r = 0; r < bt; r++) {
        const float *p = t->pos + (r % T) * W;
        ca_text_embed_row(t, tokens[r], x + r * W);
        for (int c = 0; c < W; c++) x[r * W + c] += p[c];
    }
    ca_xformer_forward(s, &t->tf, x, n, T, 1, h, qkv, att, mlp, scores, "text", first);
    for (int b = 0; b < n; b++) {
        const int64_t *tk = tokens + (size_t)b * T;
        int eot = 0; /* first position of the largest id, as torch.argmax */
        for (int i = 1; i < T; i++) if (tk[i] > tk[eot]) eot = i;
        const float *src = x + ((size_t)b * T + eot) * W;
        for (int c = 0; c < W; c++) pooled[(size_t)b * W + c] = src[c];
    }
    /* LayerNorm is row-wise, so normalising only the pooled rows equals ln_final on every token. */
    ca_layernorm(pooled, pooled, t->ln_final_w, t->ln_final_b, n, W, t->tf.eps);
    ca_linear(out, pooled, t->proj, NULL, n, W, t->embed_dim);
}
