/* tokenizer.c (bench) — tokenises the 1,000 ImageNet class names x 80 CLIP templates (80,000
 * prompts) into [80000, 77] model rows on one core, as a zero-shot classifier is built; prints
 * the best of 3 runs, each with a freshly loaded tokenizer (cold BPE cache). Loading time is
 * reported separately. Usage: build/bench/tokenizer [bpe_path] (default $SHARED/clip/...). */
#include "clipadapt.h"
#include "core/core.h"
#include "tokenizer_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    char path[1024];
    const char *root = getenv("SHARED");
    if (argc > 1) snprintf(path, sizeof path, "%s", argv[1]);
    else snprintf(path, sizeof path, "%s/clip/bpe_simple_vocab_16e6.txt.gz", root && *root ? root : "../shared");
    enum { NC = 1000, NT = 80, N = NC * NT, CTX = 77 };
    char **texts = malloc(sizeof *texts * N);
    int64_t *rows = malloc(sizeof *rows * (size_t)N * CTX);
    if (!texts || !rows) return 1;
    for (int c = 0; c < NC; c++)
        for (int t = 0; t < NT; t++) {
            const char *tpl = CLIP_TEMPLATES[t], *at = strstr(tpl, "{}");
            size_t len = strlen(tpl) + strlen(IMAGENET_CLASSES[c]);
            char *s = malloc(len);
            snprintf(s, len, "%.*s%s%s", (int)(at - tpl), tpl, IMAGENET_CLASSES[c], at + 2);
            texts[c * NT + t] = s;
        }
    double best = 1e30, best_load = 1e30;
    uint64_t sum = 0;
    for (int run = 0; run < 3; run++) {
        ca_status st;
        double t0 = ca_now();
        ca_tokenizer *tok = ca_tokenizer_load(path, &st);
        double t1 = ca_now();
        if (!tok) { fprintf(stderr, "bench tokenizer: %s\n", ca_last_error()); return 1; }
        st = ca_tokenize_batch(tok, (const char *const *)texts, N, CTX, 0, rows);
        double t2 = ca_now();
        if (st != CA_OK) { fprintf(stderr, "bench tokenizer: %s\n", ca_last_error()); return 1; }
        ca_tokenizer_free(tok);
        if (t2 - t1 < best) best = t2 - t1;
        if (t1 - t0 < best_load) best_load = t1 - t0;
        uint64_t s = 0;
        for (size_t i = 0; i < (size_t)N * CTX; i++) s = s * 31 + (uint64_t)rows[i];
        if (run && s != sum) { fprintf(stderr, "bench tokenizer: runs disagree\n"); return 1; }
        sum = s;
    }
    printf("tokenizer: %d prompts (1000 ImageNet classes x 80 templates) -> [%d,%d] rows, 1 core, best of 3\n", N, N, CTX);
    printf("tokenizer: %.3f s total, %.0f prompts/s (target < 1 s); vocabulary load %.3f s; checksum %016llx\n",
           best, N / best, best_load, (unsigned long long)sum);
    for (int i = 0; i < N; i++) free(texts[i]);
    free(texts);
    free(rows);
    return 0;
}
