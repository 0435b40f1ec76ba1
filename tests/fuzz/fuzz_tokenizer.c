/* fuzz_tokenizer.c — libFuzzer target: arbitrary bytes as text must either tokenise (ids in the
 * vocabulary, the same ids twice, a well-formed model row) or fail with CA_E_FORMAT for invalid
 * UTF-8; never crash. The vocabulary is loaded once from $SHARED (default ../shared). */
#include "clipadapt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ca_tokenizer *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) {
        const char *root = getenv("SHARED");
        char path[1024];
        snprintf(path, sizeof path, "%s/clip/bpe_simple_vocab_16e6.txt.gz", root && *root ? root : "../shared");
        tok = ca_tokenizer_load(path, NULL);
        if (!tok) { fprintf(stderr, "fuzz_tokenizer: %s\n", ca_last_error()); abort(); }
    }
    static int32_t ids[1 << 16], again[1 << 16];
    ca_status st;
    int n = ca_tokenize_n(tok, (const char *)data, size, ids, 1 << 16, &st);
    if (n < 0) {
        if (st != CA_E_FORMAT && st != CA_E_NOMEM) abort();
        return 0;
    }
    int k = n < (1 << 16) ? n : (1 << 16);
    for (int i = 0; i < k; i++)
        if (ids[i] < 0 || ids[i] > CA_TOKEN_EOT) abort();
    if (ca_tokenize_n(tok, (const char *)data, size, again, 1 << 16, &st) != n || memcmp(ids, again, sizeof *ids * (size_t)k))
        abort();  /* the BPE cache must not change results */
    int64_t row[77];
    if (ca_tokenize_row(tok, (const char *)data, size, 77, 1, row, NULL) != CA_OK) abort();
    if (row[0] != CA_TOKEN_SOT) abort();
    return 0;
}
