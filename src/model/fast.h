/* fast.h — the CPU fast path of the encoders: weights packed once for the AVX-512 GEMM (BN
 * folded into convolutions), forward passes that fuse bias/activation/residual into the GEMM
 * stores, attention straight from the QKV projection, NHWC ResNet with implicit-GEMM
 * convolutions, and text sequences cut at their end token (exact under the causal mask).
 * The plain forward passes in vit.c/resnet.c/text.c stay as the oracle (ca_model_set_compute). */
#ifndef CA_FAST_H
#define CA_FAST_H

#include "model/model.h"

typedef struct ca_fast ca_fast;

/* Build m->fast from m's float32 weights for m->compute (idempotent). Outside BF16 compute the
 * float32 copies of the packed matrices are then dropped from memory (ca_model_release_weights):
 * the panels hold them exactly. CA_E_NOMEM on failure. */
ca_status ca_fast_build(ca_model *m);
/* Write the dropped float32 weights back from the panels (no-op when none were dropped), for
 * the reference path and for repacking. */
ca_status ca_fast_restore(ca_model *m);
void ca_fast_free(ca_fast *f);
/* Bytes of packed weights and scratch currently held. */
size_t ca_fast_bytes(const ca_fast *f);

ca_status ca_fast_encode_images(ca_model *m, const float *images, int n, float *out);
ca_status ca_fast_encode_text(ca_model *m, const int64_t *tokens, int n, float *out);

#endif
