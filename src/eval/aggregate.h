/* aggregate.h — runs grouped by (method, K) with mean and sample std over their seeds: what the
 * table, the JSON aggregate and the plot's error bars show. Internal to src/eval. */
#ifndef CA_AGGREGATE_H
#define CA_AGGREGATE_H

#include "core/core.h"

typedef struct {
    const char *method;
    int shots;
    int n;                       /* runs (seeds) in the cell */
    double test_mean, test_std;  /* std: sample (n − 1); NAN when n == 1 */
    double val_mean, val_std;    /* over the runs with a finite val_acc; NAN when none / one */
    int first;                   /* index of the cell's first run */
} ca_agg_cell;

typedef struct {
    int nm, nk, ncell;
    const char **methods;        /* first-seen order */
    int *shots;                  /* ascending */
    ca_agg_cell *cells;          /* nm × nk, row-major; n == 0 where no run */
    int nseeds;                  /* distinct seeds over all runs */
    uint64_t *seeds;             /* first-seen order */
    int max_n;                   /* the largest n of a cell */
} ca_agg;

/* Group n runs; returns CA_OK or CA_E_NOMEM. Free with ca_agg_free. */
ca_status ca_agg_build(const ca_run_result *r, int n, ca_agg *a);
void ca_agg_free(ca_agg *a);
static inline const ca_agg_cell *ca_agg_at(const ca_agg *a, int m, int k) { return &a->cells[(size_t)m * a->nk + k]; }

#endif
