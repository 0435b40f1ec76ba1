/* tip.h — internals shared by Tip-Adapter (tip.c) and Tip-Adapter-F (tipf.c): full Tip logits,
 * the stored form, and the Tip-Adapter-F loss/gradient. The cache-logit kernel and the α/β
 * search they build on are in search.h.
 * Not public: the library's users see these methods only through ca_fit / ca_classifier_logits.
 */
#ifndef CA_TIP_H
#define CA_TIP_H

#include "adapt/search.h"
#include "adapt/train.h"

/* Full Tip logits for features x (n,D): 100·x·Wᵀ + alpha·exp(-(β − β·x·keysᵀ))·onehot.
 * text_w: (C,D) or NULL (then the clip term is 0); keys: (N,D); key_y: (N). Works in row
 * blocks to bound memory. */
ca_status ca_tip_logits(const float *x, int n, const float *text_w, const float *keys,
                        const int32_t *key_y, int N, int C, int D, float alpha, float beta, float *out);

/* Tip-Adapter-F loss on one batch, forward and backward side by side.
 * x: (B,D) features, y: (B) labels, clip: (B,C) 100·x·Wᵀ, keys: (N,D), key_y: (N).
 * Returns the mean cross-entropy of the Tip logits at (alpha, beta) and writes dkeys: (N,D)
 * = d loss / d keys. scratch: at least ca_tipf_scratch_floats(B, N, C) floats. */
size_t ca_tipf_scratch_floats(int B, int N, int C);
double ca_tipf_loss_grad(const float *x, const int32_t *y, const float *clip, int B,
                         const float *keys, const int32_t *key_y, int N, int D, int C,
                         float alpha, float beta, float *dkeys, float *scratch);

/* The same loss and gradient with the keys and their gradient in ca_packed's F32 panel layout
 * ([ceil(N/32)][D][32], zero padded, 64-byte aligned; see fastgemm.h), on up to `threads`
 * threads (0: the call's budget). When ca_sgemm would take its AVX-512 kernel for these shapes
 * (fastgemm.h; B·N·D >= 2^24) the loss and the gradient are bit-identical to
 * ca_tipf_loss_grad's on the unpacked keys, whatever the thread count; elsewhere equal to float
 * rounding. scratch: ca_tipf_packed_scratch_floats(B, N, C) floats (any alignment).
 * Returns -1 (a loss is never negative) when out of memory for a GEMM buffer. */
size_t ca_tipf_packed_scratch_floats(int B, int N, int C);
double ca_tipf_loss_grad_packed(const float *x, const int32_t *y, const float *clip, int B,
                                const float *keys_p, const int32_t *key_y, int N, int D, int C,
                                float alpha, float beta, float *dkeys_p, float *scratch, int threads);

/* ca_tipf_loss_grad_packed followed by the optimiser step of ca_optim_step (lr, step t) on the
 * packed keys and their moment panels m, v (same layout), fused: each gradient panel is applied
 * as soon as it is computed, so no (N,D) gradient is written or read again. keys_p, m, v are
 * the whole blocks (ca_pack_size(N, D, CA_DT_F32) bytes each). Bit-identical to the two calls in
 * sequence (ca_optim_step is elementwise), whatever the thread count. Returns the loss, or -1
 * when out of memory for a GEMM buffer. */
double ca_tipf_step_packed(const float *x, const int32_t *y, const float *clip, int B, float *keys_p,
                           const int32_t *key_y, int N, int D, int C, float alpha, float beta, const ca_optim *opt,
                           double lr, int64_t t, float *m, float *v, float *scratch, int threads);

/* The stored form shared by tip-adapter and tip-adapter-f: tensors text_w (C,D), keys (N,D),
 * key_labels (N, class indices as floats: the container holds float tensors) and params
 * cache_size, alpha, beta. ca_tip_store copies text_w, keys and train labels into c. */
ca_status ca_tip_store(ca_classifier *c, const ca_fit_data *d, const float *keys);
ca_status ca_tip_stored_logits(const ca_classifier *c, const float *x, int n, float *out);
/* Search α, β on d->val for these keys; records alpha, beta, search_val_acc and the grid. */
ca_status ca_tip_search_val(ca_classifier *c, const ca_fit_data *d, const float *keys, const ca_fit_params *p);
/* Scale of the bound with which Tip-Adapter-F's BF16 val screen decides that a row's F32
 * prediction is known (default 1; 0 turns the screen off; below 1 breaks its exactness, which
 * tests use to show that they would notice). Returns the previous one. Process-wide: tests only. */
double ca_tipf_set_screen_scale(double s);
/* Fixed α, β without a search (no val split); records searched = 0. */
ca_status ca_tip_set_fixed(ca_classifier *c, double alpha, double beta);

#endif
