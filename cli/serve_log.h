/* serve_log.h — the record format of `clipadapt serve`'s examples log (serve_log.c): a new class
 * (name, its text weight or none) or an example (class name, feature), each followed by a CRC32.
 * Pure bytes in, bytes out: the file handling is in serve_store.c; tests/fuzz/fuzz_exlog.c feeds
 * the decoder arbitrary bytes. */
#ifndef CA_SERVE_LOG_H
#define CA_SERVE_LOG_H

#include "serve_job.h"

enum { REC_CLASS = 1, REC_EXAMPLE = 2 };

typedef struct {
    int type;                        /* REC_CLASS or REC_EXAMPLE */
    char name[SRV_LABEL_MAX + 1];    /* NUL-terminated, no control characters */
    int dim;                         /* 0 (a class without text weight) or the dim asked for */
    float *vec;                      /* dim floats (malloc'd, caller frees), finite; NULL when dim 0 */
} log_rec;

/* Bytes of one record. */
size_t log_record_size(size_t name_len, int dim);
/* Encode a record into buf (log_record_size bytes); name must be 1..SRV_LABEL_MAX bytes. */
size_t log_encode(uint8_t *buf, int type, const char *name, const float *vec, int dim);
/* Decode the record at buf (len bytes available) whose vector, when present, has dim floats.
 * Returns its size, or 0 when the bytes are not one whole valid record (bad magic, type, sizes,
 * CRC, name or values; too short: a torn append). On success out->vec is malloc'd. */
size_t log_decode(const uint8_t *buf, size_t len, int dim, log_rec *out);

#endif
