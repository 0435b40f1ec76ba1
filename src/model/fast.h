/* fast.h — the CPU fast path of the encoders: weights packed once at load for the AVX-512 GEMM
 * (BN folded into convolutions), forward passes that fuse bias/activation/residual into the GEMM
 * stores, attention straight from the QKV projection, NHWC ResNet with implicit-GEMM
 * convolutions, and text sequences cut at their end token (exact under the causal mask).
 * The plain forward passes in vit.c/resnet.c/text.c stay as the oracle (CA_COMPUTE_REFERENCE).
 * The model is only read; scratch, tap, budget and cancel flag are the session's. */
#ifndef CA_FAST_H
#define CA_FAST_H

#include "model/model.h"

ca_status ca_fast_encode_images(ca_session *s, const float *images, int n, float *out);
ca_status ca_fast_encode_text(ca_session *s, const int64_t *tokens, int n, float *out);

#endif
