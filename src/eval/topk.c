/* topk.c — the k largest entries of a score vector (prediction tables, eval reports). */
#include "clipadapt.h"

void ca_top_k(const float *v, int n, int k, int *idx) {
    /* partial selection: k is small (top-5), n up to ~1000 classes */
    for (int j = 0; j < k && j < n; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int q = 0; q < j && !taken; q++) taken = idx[q] == i;
            if (taken) continue;
            if (best < 0 || v[i] > v[best]) best = i;
        }
        idx[j] = best;
    }
}
