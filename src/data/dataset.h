/* dataset.h — internals of the dataset handle shared by dataset.c and fewshot.c, and Python's
 * Mersenne Twister (for CoOp-identical few-shot sampling). Not public API. */
#ifndef CA_DATASET_H
#define CA_DATASET_H

#include "core/core.h"

typedef struct {
    int n, cap;
    char **paths;            /* full paths (root joined) */
    int *labels;
} ca_dsplit;

struct ca_dataset {
    int C;
    char **classes;          /* C names */
    ca_dsplit sp[3];         /* CA_SPLIT_TRAIN, _VAL, _TEST */
};

/* ca_dataset_from_split_file on a buffer (len bytes; json_path names it in errors). */
ca_dataset *ca_dataset_from_split_json(const char *text, size_t len, const char *json_path, const char *image_root,
                                       ca_status *st);

/* CPython's random.Random: MT19937 seeded as random.seed(int), getrandbits, _randbelow. */
typedef struct { uint32_t mt[624]; int i; } ca_pyrandom;
void ca_pyrandom_seed(ca_pyrandom *r, uint64_t seed);
uint32_t ca_pyrandom_u32(ca_pyrandom *r);
/* random._randbelow(n) for 1 <= n < 2^31 (getrandbits with rejection, as CPython). */
uint32_t ca_pyrandom_below(ca_pyrandom *r, uint32_t n);
/* random.sample(range(n), k) into out (k); 0 <= k <= n. Returns CA_E_NOMEM on allocation failure. */
ca_status ca_pyrandom_sample(ca_pyrandom *r, int n, int k, int *out);

#endif
