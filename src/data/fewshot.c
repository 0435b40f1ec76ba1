/* fewshot.c — K-shot subsets exactly as CoOp's generate_fewshot_dataset draws them: Python's
 * `random` (MT19937, seeded like random.seed(int)) and random.sample per class. Reproducing the
 * generator bit for bit is what lets the same seed pick the same images as the reference.
 */
#include "data/dataset.h"

#include <math.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

static void mt_init(ca_pyrandom *r, uint32_t s) {
    r->mt[0] = s;
    for (int i = 1; i < MT_N; i++) r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->i = MT_N;
}

/* random.seed(n) for a non-negative int: the 32-bit words of n, least significant first
 * (one zero word for n == 0), fed to init_by_array. */
void ca_pyrandom_seed(ca_pyrandom *r, uint64_t seed) {
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    int len = key[1] ? 2 : 1;
    mt_init(r, 19650218u);
    int i = 1, j = 0;
    for (int k = MT_N > len ? MT_N : len; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++; j++;
        if (i >= MT_N) { r->mt[0] = r->mt[MT_N - 1]; i = 1; }
        if (j >= len) j = 0;
    }
    for (int k = MT_N - 1; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) { r->mt[0] = r->mt[MT_N - 1]; i = 1; }
    }
    r->mt[0] = 0x80000000u;
    r->i = MT_N;
}

uint32_t ca_pyrandom_u32(ca_pyrandom *r) {
    static const uint32_t mag01[2] = {0u, 0x9908b0dfu};
    if (r->i >= MT_N) {
        int k;
        uint32_t y;
        for (k = 0; k < MT_N - MT_M; k++) {
            y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
            r->mt[k] = r->mt[k + MT_M] ^ (y >> 1) ^ mag01[y & 1];
        }
        for (; k < MT_N - 1; k++) {
            y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
            r->mt[k] = r->mt[k + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1];
        }
        y = (r->mt[MT_N - 1] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[MT_N - 1] = r->mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1];
        r->i = 0;
    }
    uint32_t y = r->mt[r->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t ca_pyrandom_below(ca_pyrandom *r, uint32_t n) {
    int bits = 0;
    for (uint32_t v = n; v; v >>= 1) bits++;   /* n.bit_length(), not of n-1: CPython's choice */
    uint32_t x;
    do x = ca_pyrandom_u32(r) >> (32 - bits); while (x >= n);
    return x;
}

ca_status ca_pyrandom_sample(ca_pyrandom *r, int n, int k, int *out) {
    CA_ASSERT(k >= 0 && k <= n);
    /* CPython picks the pool method for small populations and a rejection set otherwise; the
     * two consume the generator differently, so the threshold must match exactly. */
    long setsize = 21;
    if (k > 5) setsize += (long)pow(4.0, ceil(log(3.0 * k) / log(4.0)));
    if (n <= setsize) {
        int *pool = ca_malloc2((size_t)n + 1, sizeof(int));
        if (!pool) return CA_E_NOMEM;
        for (int i = 0; i < n; i++) pool[i] = i;
        for (int i = 0; i < k; i++) {
            int j = (int)ca_pyrandom_below(r, (uint32_t)(n - i));
            out[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
        free(pool);
    } else {
        unsigned char *sel = ca_calloc2((size_t)n, 1);
        if (!sel) return CA_E_NOMEM;
        for (int i = 0; i < k; i++) {
            int j;
            do j = (int)ca_pyrandom_below(r, (uint32_t)n); while (sel[j]);
            sel[j] = 1;
            out[i] = j;
        }
        free(sel);
    }
    return CA_OK;
}

/* One split through generator r: classes in order of first appearance, k per class. */
static ca_status fewshot_split(const ca_dataset *ds, int split, int k, ca_pyrandom *r, int **idx, int *n) {
    *idx = NULL; *n = 0;
    if (!ds || split < 0 || split > 2) return ca_fail(CA_E_ARG, "ca_dataset_fewshot: bad dataset or split");
    if (k < 1) return ca_fail(CA_E_ARG, "few-shot: K must be >= 1 (got %d)", k);
    const ca_dsplit *s = &ds->sp[split];
    int C = ds->C;
    int *order = ca_malloc2((size_t)C + 1, sizeof(int)), *count = ca_calloc2((size_t)C + 1, sizeof(int));
    int *members = ca_malloc2((size_t)s->n + 1, sizeof(int)), *start = ca_calloc2((size_t)C + 2, sizeof(int));
    int *pick = ca_malloc2((size_t)k, sizeof(int)), *res = ca_malloc2((size_t)s->n + 1, sizeof(int));
    ca_status st = (order && count && members && start && pick && res) ? CA_OK : CA_E_NOMEM;
    int nc = 0, nres = 0;
    if (st == CA_OK) {
        for (int i = 0; i < s->n; i++)
            if (count[s->labels[i]]++ == 0) order[nc++] = s->labels[i];
        for (int c = 0; c < C; c++) start[c + 1] = start[c] + count[c];
        memset(count, 0, sizeof(int) * (size_t)C);
        for (int i = 0; i < s->n; i++) members[start[s->labels[i]] + count[s->labels[i]]++] = i;
    }
    for (int oi = 0; st == CA_OK && oi < nc; oi++) {
        int c = order[oi], m = count[c];
        const int *items = members + start[c];
        if (m >= k) {
            if ((st = ca_pyrandom_sample(r, m, k, pick)) != CA_OK) break;
            for (int j = 0; j < k; j++) res[nres++] = items[pick[j]];
        } else {
            for (int j = 0; j < m; j++) res[nres++] = items[j];   /* CoOp without repeat: keep all */
        }
    }
    free(order); free(count); free(members); free(start); free(pick);
    if (st != CA_OK) { free(res); return st == CA_E_NOMEM ? ca_fail(CA_E_NOMEM, "out of memory") : st; }
    *idx = res; *n = nres;
    return CA_OK;
}

ca_status ca_dataset_fewshot(const ca_dataset *ds, int split, int k, uint64_t seed, int **idx, int *n) {
    CA_ENTER();
    if (!idx || !n) return ca_fail(CA_E_ARG, "ca_dataset_fewshot: NULL output");
    ca_pyrandom r;
    ca_pyrandom_seed(&r, seed);
    return fewshot_split(ds, split, k, &r, idx, n);
}

ca_status ca_dataset_fewshot2(const ca_dataset *ds, int k, int val_k, uint64_t seed,
                              int **train_idx, int *n_train, int **val_idx, int *n_val) {
    CA_ENTER();
    if (!train_idx || !n_train || !val_idx || !n_val) return ca_fail(CA_E_ARG, "ca_dataset_fewshot2: NULL output");
    *val_idx = NULL; *n_val = 0;
    ca_pyrandom r;
    ca_pyrandom_seed(&r, seed);
    ca_status st = fewshot_split(ds, CA_SPLIT_TRAIN, k, &r, train_idx, n_train);
    if (st == CA_OK && val_k > 0) {
        st = fewshot_split(ds, CA_SPLIT_VAL, val_k, &r, val_idx, n_val);
        if (st != CA_OK) { free(*train_idx); *train_idx = NULL; *n_train = 0; }
    }
    return st;
}
