/* serve_log.c — encode and decode one record of the examples log (format in serve_log.h):
 * little-endian u32 magic "CAEX", type, name length, vector length; the name; the floats; the
 * CRC32 (zlib) of everything before it. */
#include "serve_log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define REC_MAGIC 0x58454143u   /* "CAEX" */

size_t log_record_size(size_t name_len, int dim) { return 16 + name_len + 4 * (size_t)dim + 4; }

size_t log_encode(uint8_t *buf, int type, const char *name, const float *vec, int dim) {
    uint32_t h[4] = {REC_MAGIC, (uint32_t)type, (uint32_t)strlen(name), (uint32_t)dim};
    size_t off = 0;
    memcpy(buf + off, h, sizeof h); off += sizeof h;
    memcpy(buf + off, name, h[2]); off += h[2];
    if (dim) { memcpy(buf + off, vec, sizeof(float) * (size_t)dim); off += sizeof(float) * (size_t)dim; }
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)off);
    memcpy(buf + off, &crc, 4); off += 4;
    return off;
}

size_t log_decode(const uint8_t *buf, size_t len, int dim, log_rec *out) {
    memset(out, 0, sizeof *out);
    if (len < 20 || dim < 1 || dim > 65536) return 0;
    uint32_t h[4];
    memcpy(h, buf, sizeof h);
    if (h[0] != REC_MAGIC || (h[1] != REC_CLASS && h[1] != REC_EXAMPLE) || h[2] < 1 || h[2] > SRV_LABEL_MAX ||
        (h[3] != 0 && h[3] != (uint32_t)dim) || (h[1] == REC_EXAMPLE && h[3] == 0)) return 0;
    size_t need = log_record_size(h[2], (int)h[3]);
    if (need > len) return 0;
    uint32_t crc;
    memcpy(&crc, buf + need - 4, 4);
    if (crc != (uint32_t)crc32(0L, buf, (uInt)(need - 4))) return 0;
    for (uint32_t i = 0; i < h[2]; i++) {
        unsigned char ch = buf[16 + i];
        if (ch < 0x20 || ch == 0x7f) return 0;
    }
    memcpy(out->name, buf + 16, h[2]);
    out->name[h[2]] = 0;
    if (h[3]) {
        if (!(out->vec = malloc(4 * (size_t)h[3]))) return 0;
        memcpy(out->vec, buf + 16 + h[2], 4 * (size_t)h[3]);
        for (uint32_t i = 0; i < h[3]; i++)
            if (!isfinite(out->vec[i])) { free(out->vec); out->vec = NULL; return 0; }
    }
    out->type = (int)h[1];
    out->dim = (int)h[3];
    return need;
}
