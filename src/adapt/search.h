/* search.h — the Tip-Adapter cache-logit kernel and the α/β grid search (search.c), which
 * Tip-Adapter (tip.c) and Tip-Adapter-F (tipf.c) build on. Not public API.
 */
#ifndef CA_SEARCH_H
#define CA_SEARCH_H

#include "adapt/adapt.h"

/* Cache logits of one row, with the float32 operation order of the official code
 * (exp(-1·(β − β·a)), then the one-hot product), done as per-class sums:
 *   out[c] = Σ_{k : key_y[k] = c} exp(-(beta - beta·aff[k]))
 * aff: (N) affinities f·keysᵀ of the row; key_y: (N) classes in [0, C); e: (N) scratch;
 * out: (C), overwritten. exp is ca_vexp (~1.5 ulp), summed in key order. */
void ca_tip_cache_row(const float *aff, const int32_t *key_y, int N, int C, float beta, float *e, float *out);
/* The same sums, faster: keys grouped into runs of one class (ca_tip_key_runs, once per key set;
 * runs: up to N entries), each run summed in a register and four equal-length runs of four
 * different classes side by side. The same adds in the same order per class as
 * ca_tip_cache_row, so bit-identical (its oracle); any key order works, sorted is fastest. */
typedef struct { int32_t k, len, four, c[4]; } ca_key_run; /* keys k.., one run (c[0]) or four of len */
int ca_tip_key_runs(const int32_t *key_y, int N, ca_key_run *runs);
void ca_tip_cache_row_runs(const float *aff, const ca_key_run *runs, int nr, int N, int C, float beta, float *e, float *out);

/* Tip logits of n rows: out(n,C) = clip(n,C) + alpha · cache(n,C), cache from aff(n,N).
 * Same arithmetic as the search, so an evaluated pair reproduces its searched accuracy. */
ca_status ca_tip_logits_from_aff(const float *clip, const float *aff, const int32_t *key_y, int n, int N,
                                 int C, float alpha, float beta, float *out);

/* The inputs of an α/β search on one labelled split (val). */
typedef struct {
    int n, N, C;
    const float *clip;      /* (n, C) 100·f·Wᵀ (zeros when there is no text classifier) */
    const float *aff;       /* (n, N) f·keysᵀ, or NULL: then aff_rows computes them block by block */
    /* Without aff: write the affinities of rows r0..r0+m-1 into out (m, N). Called from the
     * search's worker threads, each with its own out, so it must be thread-safe (and run on the
     * calling thread only); the fast search only, the oracles need aff. */
    void (*aff_rows)(void *ctx, int r0, int m, float *out);
    void *aff_ctx;
    const int32_t *key_y;   /* (N) class of each cache key */
    const int32_t *y;       /* (n) labels */
} ca_tip_search_in;

typedef struct { double alpha, beta, acc; } ca_tip_choice;

/* The official Tip-Adapter search_hp: β_i = 0.1 + i·(Sβ − 0.1)/nβ (i < nβ), α_j likewise,
 * β outer and α inner, keep the first pair whose accuracy is strictly greater than the best so
 * far (starting from 0, so an all-zero grid returns α = β = 0 like the original). Fast path:
 * one exp per (row, key, β), per-class sums, then every α on the summed rows, skipping the class
 * sums that provably cannot change a count; multi-threaded
 * (p->threads, else the call's budget), compiled per CPU path. */
ca_status ca_tip_search(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out);
/* The same search row by row (scatter sums, early-exit argmax): the blocked search's oracle; it
 * must return the same pair and accuracy, count for count. Single-threaded; tests and bench. */
ca_status ca_tip_search_rows(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out);
/* Straightforward oracle of the same search: for every (α, β) pair recompute the full cache
 * logits as exp(...)·(one-hot values) with a dense GEMM, add, and score. Slow; tests and bench. */
/* The correct-row counts behind both, cnt: (nβ, nα), overwritten; the tests compare them. */
ca_status ca_tip_search_counts(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt);
ca_status ca_tip_search_rows_counts(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt);
/* ca_tip_search_counts, and *sums: how many class sums (one class, LANES = 16 β) it computed;
 * the rest were skipped as unable to change any count. For the tests. */
ca_status ca_tip_search_counts_stats(const ca_tip_search_in *in, const ca_fit_params *p, int64_t *cnt, int64_t *sums);
ca_status ca_tip_search_ref(const ca_tip_search_in *in, const ca_fit_params *p, ca_tip_choice *out);

/* Grid value i of n steps up to scale, as the official list comprehension computes it. */
double ca_tip_grid(int i, int steps, double scale);

#endif
