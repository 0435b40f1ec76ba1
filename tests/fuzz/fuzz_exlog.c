/* fuzz_exlog.c — libFuzzer target: arbitrary bytes as `clipadapt serve`'s examples log
 * (cli/serve_log.c, the decoder a restart runs over a possibly torn or damaged file) must decode
 * record by record without reading past the buffer, and every record it accepts must re-encode
 * to the very same bytes. The first byte picks the vector length (1..64). */
#include "../../cli/serve_log.c"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int dim = 1 + data[0] % 64;
    size_t off = 1;
    uint8_t *re = malloc(log_record_size(SRV_LABEL_MAX, dim));
    while (off < size) {
        log_rec r;
        size_t n = log_decode(data + off, size - off, dim, &r);
        if (!n) break;
        assert(n <= size - off);
        assert(r.dim == 0 || r.dim == dim);
        assert(strlen(r.name) >= 1 && strlen(r.name) <= SRV_LABEL_MAX);
        size_t m = log_encode(re, r.type, r.name, r.vec, r.dim);
        assert(m == n && memcmp(re, data + off, n) == 0);
        free(r.vec);
        off += n;
    }
    free(re);
    return 0;
}
