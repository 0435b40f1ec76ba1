/* tc_rows.h — tip-cache's per-row scoring (tc_rows.c, compiled once per CPU path): class scores
 * β(mx − 1) + log Σ_{keys of c} exp(β(a − mx)) of one affinity row, with the keys grouped by
 * class (order, start: tip_cache.c's group_keys). Not public API. */
#ifndef CA_TC_ROWS_H
#define CA_TC_ROWS_H

#include <stdint.h>

/* The class scores of row a (N) into o (C), -1e30 for a class without keys: every class's exps
 * in one vector pass over the row, then per-class sums in key order. as (N), mx (C), tmp (N):
 * scratch. Bit-identical to ca_tc_logits_row_ref. */
void ca_tc_logits_row(const float *a, const int32_t *order, const int32_t *start, int N, int C, double beta,
                      float *as, float *mx, double *tmp, float *o);
/* The oracle: the same scores class by class through ca_vexp_d (the form before the fused pass). */
void ca_tc_logits_row_ref(const float *a, const int32_t *order, const int32_t *start, int N, int C, double beta,
                          float *as, float *mx, double *tmp, float *o);
/* Adds to correct[b] (b < nbeta) whether row a (N) is classed as y at β = betas[b]. A class whose
 * best possible score, β(mx − 1) + logn[c] (logn: log of its key count), is below the score of
 * the class with the largest affinity by a margin far above rounding cannot be the argmax: its
 * exps are skipped (most classes). The first maximum wins, as in the full argmax. */
void ca_tc_fit_row(const float *a, int y, const int32_t *order, const int32_t *start, const double *logn, int N, int C,
                   int nbeta, const double *betas, float *as, float *mx, double *tmp, int64_t *correct);

#endif
