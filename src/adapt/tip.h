/* tip.h — internals shared by Tip-Adapter (tip.c), Tip-Adapter-F (tipf.c) and the α/β grid
 * search (search.c): the cache-logit kernel, the search, and the Tip-Adapter-F loss/gradient.
 * Not public: the library's users see these methods only through ca_fit / ca_classifier_logits.
 */
#ifndef CA_TIP_H
#define CA_TIP_H

#include "adapt/adapt.h"

/* Cache logits of one row, with the float32 operation order of the official code
 * (exp(-1·(β − β·a)), then the one-hot product), done as per-class sums:
 *   out[c] = Σ_{k : key_y[k] = c} exp(-(beta - beta·aff[k]))
 * aff: (N) affinities f·keysᵀ of the row; key_y: (N) classes in [0, C); e: (N) scratch;
 * out: (C), overwritten. exp is ca_vexp (~1.5 ulp), summed in key order. */
void ca_tip_cache_row(const float *aff, const int32_t *key_y, int N, int C, float beta, float *e, float *out);

/* Tip logits of n rows: out(n,C) = clip(n,C) + alpha · cache(n,C), cache from aff(n,N).
 * Same arithmetic as the search, so an evaluated pair reproduces its searched accuracy. */
ca_status ca_tip_logits_from_aff(const float *clip, const float *aff, const int32_t *key_y, int n, int N,
                                 int C, float alpha, float beta, float *out);

/* Full Tip logits for features x (n,D): 100·x·Wᵀ + alpha·exp(-(β − β·x·keysᵀ))·onehot.
 * text_w: (C,D) or NULL (then the clip term is 0); keys: (N,D); key_y: (N). Works in row
 * blocks to bound memory. */
ca_status ca_tip_logits(const float *x, int n, const float *text_w, const float *keys,
                        const int32_t *key_y, int N, int C, int D, float alpha, float beta, float *out);

/* The inputs of an α/β search on one labelled split (val). */
typedef struct {
    int n, N, C;
    const float *clip;      /* (n, C) 100·f·Wᵀ (zeros when there is no text classifier) */
    const float *aff;       /* (n, N) f·keysᵀ */
    const int32_t *key_y;   /* (N) class of each cache key */
    const int32_t *y;       /* (n) labels */
} ca_tip_search_in;

typedef struct { double alpha, beta, acc; } ca_tip_choice;

/* The official Tip-Adapter search_hp: β_i = 0.1 + i·(Sβ − 0.1)/nβ (i < nβ), α_j likewise,
 * β outer and α inner, keep the first pair whose accuracy is strictly greater than the best so
 * far (starting from 0, so an all-zero grid returns α = β = 0 like the original). Fast path:
 * one exp per (row, key, β), per-class sums, then every α on the summed rows. */
ca_status ca_tip_search(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out);
/* Straightforward oracle of the same search: for every (α, β) pair recompute the full cache
 * logits as exp(...)·(one-hot values) with a dense GEMM, add, and score. Slow; tests and bench. */
ca_status ca_tip_search_ref(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out);

/* Grid value i of n steps up to scale, as the official list comprehension computes it. */
double ca_tip_grid(int i, int steps, double scale);

/* Tip-Adapter-F loss on one batch, forward and backward side by side.
 * x: (B,D) features, y: (B) labels, clip: (B,C) 100·x·Wᵀ, keys: (N,D), key_y: (N).
 * Returns the mean cross-entropy of the Tip logits at (alpha, beta) and writes dkeys: (N,D)
 * = d loss / d keys. scratch: at least ca_tipf_scratch_floats(B, N, C) floats. */
size_t ca_tipf_scratch_floats(int B, int N, int C);
double ca_tipf_loss_grad(const float *x, const int32_t *y, const float *clip, int B,
                         const float *keys, const int32_t *key_y, int N, int D, int C,
                         float alpha, float beta, float *dkeys, float *scratch);

/* The stored form shared by tip-adapter and tip-adapter-f: tensors text_w (C,D), keys (N,D),
 * key_labels (N, class indices as floats: the container holds float tensors) and params
 * cache_size, alpha, beta. ca_tip_store copies text_w, keys and train labels into c. */
ca_status ca_tip_store(ca_classifier *c, const ca_fit_data *d, const float *keys);
ca_status ca_tip_stored_logits(const ca_classifier *c, const float *x, int n, float *out);
/* Search α, β on d->val for these keys; records alpha, beta, search_val_acc and the grid. */
ca_status ca_tip_search_val(ca_classifier *c, const ca_fit_data *d, const float *keys, const ca_fit_params *p);
/* Fixed α, β without a search (no val split); records searched = 0. */
ca_status ca_tip_set_fixed(ca_classifier *c, double alpha, double beta);

#endif
