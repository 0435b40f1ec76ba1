/* transformer.c — the pre-norm residual attention stack shared by the ViT and the text tower:
 * x += attn(ln_1(x)); x += mlp(ln_2(x)), with QuickGELU (or the GELU a HF config names).
 * Not here: embeddings, pooling, projections (vit.c, text.c).
 */
#include "model/kernels.h"
#include "model/model.h"

#include <stdio.h>

size_t ca_xformer_scratch(const ca_xformer *tf, int B, int T) {
    size_t bt = (size_t)B * T, C = (size_t)tf->width;
    return bt * C * 2 + bt * 3 * C + bt * (size_t)tf->hidden + (size_t)B * tf->heads * T * T;
}

static void activate(ca_act act, float *x, size_t n) {
    switch (act) {
    case CA_ACT_QUICKGELU: ca_quickgelu(x, n); break;
    case CA_ACT_GELU: ca_gelu_erf(x, n); break;
    case CA_ACT_GELU_TANH: ca_gelu_tanh(x, n); break;
    }
}

void ca_xformer_forward(const ca_session *s, const ca_xformer *tf, float *x, int B, int T, int causal,
                        float *h, float *qkv, float *att, float *mlp, float *scores,
                        const char *prefix, int64_t first) {
    int C = tf->width, H = tf->hidden, N = B * T;
    for (int l = 0; l < tf->layers; l++) {
        const ca_block *bk = &tf->blocks[l];
        ca_layernorm(h, x, bk->ln1_w, bk->ln1_b, N, C, tf->eps);
        ca_linear(qkv, h, bk->qkv_w, bk->qkv_b, N, C, 3 * C);
        ca_attention(att, C, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, B, T, T, C, tf->heads,
                     causal, scores);
        ca_linear(h, att, bk->out_w, bk->out_b, N, C, C);
        ca_add(x, h, (size_t)N * C);
        ca_layernorm(h, x, bk->ln2_w, bk->ln2_b, N, C, tf->eps);
        ca_linear(mlp, h, bk->fc_w, bk->fc_b, N, C, H);
        activate(tf->act, mlp, (size_t)N * H);
        ca_linear(h, mlp, bk->proj_w, bk->proj_b, N, H, C);
        ca_add(x, h, (size_t)N * C);
        if (s->tap) {
            char name[64];
            snprintf(name, sizeof name, "%s.block%d.out", prefix, l);
            ca_session_emit(s, name, first, x, 3, (int64_t[]){B, T, C});
        }
    }
}
