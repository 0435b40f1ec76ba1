/* image_ppm.c — Netpbm decoding (P1–P6) written out by hand, following Pillow 9.4's
 * PpmImagePlugin step by step: its header tokenizer (comments may sit inside a token), raw
 * P4/P5/P6 data, its "ppm" decoder for other maxvals (round(v / maxval * out) with Python's
 * half-to-even), and its plain-text decoders for P1/P2/P3. Modes: P1/P4 "1", P2/P5 "L" ("I" when
 * maxval > 255, scaled to 0..65535 unless it is exactly 65535), P3/P6 "RGB" (16-bit samples
 * scaled to 0..255). Not here: Pillow's private extensions (P0CMYK, PyP, PyRGBA, PyCMYK), PAM
 * (P7). Every size is checked before allocating; short data is an error, as in Pillow. */
#include "io/decoders.h"

#include <math.h>
#include <string.h>

static int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

typedef struct {
    const uint8_t *b;
    size_t len, pos;
    const char *name;
} ppm_reader;

/* PpmImageFile._read_token: skip leading whitespace, stop at the next whitespace (consumed),
 * drop '#' up to the end of its line wherever it appears, at most 10 characters. */
static ca_status read_token(ppm_reader *r, int64_t *out) {
    char tok[16];
    int n = 0;
    while (n <= 10) {
        if (r->pos >= r->len) break;
        uint8_t c = r->b[r->pos++];
        if (is_ws(c)) {
            if (!n) continue;
            break;
        }
        if (c == '#') {
            while (r->pos < r->len && r->b[r->pos] != '\r' && r->b[r->pos] != '\n') r->pos++;
            if (r->pos < r->len) r->pos++; /* the end of line is read too */
            continue;
        }
        tok[n++] = (char)c;
    }
    if (!n) return ca_fail(CA_E_FORMAT, "%s: truncated PPM header (end of file while reading it)", r->name);
    if (n > 10) return ca_fail(CA_E_FORMAT, "%s: PPM header token too long", r->name);
    tok[n] = 0;
    /* Python's int(): an optional '+', digits (a '-' would give a negative size or maxval, which
     * Pillow refuses too) */
    int64_t v = 0;
    int i = tok[0] == '+', digits = 0;
    for (; tok[i]; i++) {
        if (tok[i] < '0' || tok[i] > '9') return ca_fail(CA_E_FORMAT, "%s: PPM header: '%s' is not a number", r->name, tok);
        v = v * 10 + (tok[i] - '0');
        digits++;
    }
    if (!digits) return ca_fail(CA_E_FORMAT, "%s: PPM header: '%s' is not a number", r->name, tok);
    *out = v;
    return CA_OK;
}

/* round(v / maxval * out_max) as Python computes it: float division and product, half to even. */
static int64_t scale(int64_t v, int64_t maxval, int64_t out_max) {
    return (int64_t)rint((double)v / (double)maxval * (double)out_max);
}

static void put_sample(ca_image *img, size_t i, int64_t v) {
    if (img->mode == CA_PX_I32) {
        int32_t x = (int32_t)v;
        memcpy(img->px + 4 * i, &x, 4);
    } else {
        img->px[i] = (uint8_t)v;
    }
}

/* The rest of the file with '#' comments removed (each up to and including its end of line),
 * as PpmPlainDecoder._ignore_comments does. Caller frees. */
static uint8_t *strip_comments(const uint8_t *b, size_t len, size_t *out_len) {
    uint8_t *o = malloc(len ? len : 1);
    if (!o) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (b[i] != '#') { o[n++] = b[i]; continue; }
        while (i < len && b[i] != '\n' && b[i] != '\r') i++;
    }
    *out_len = n;
    return o;
}

/* P1: every non-space byte is a pixel, '1' black, '0' white; any other byte is an error. */
static ca_status decode_plain_bits(const ppm_reader *r, ca_image *img) {
    size_t len, need = (size_t)img->w * img->h, n = 0;
    uint8_t *t = strip_comments(r->b + r->pos, r->len - r->pos, &len);
    if (!t) return ca_fail(CA_E_NOMEM, "%s: out of memory", r->name);
    ca_status st = CA_OK;
    for (size_t i = 0; i < len && st == CA_OK; i++) {
        if (is_ws(t[i])) continue;
        if (t[i] != '0' && t[i] != '1') st = ca_fail(CA_E_FORMAT, "%s: invalid PBM data byte 0x%02x (only '0' and '1')", r->name, t[i]);
        else if (n < need) img->px[n++] = t[i] == '1' ? 0 : 255;
    }
    free(t);
    if (st == CA_OK && n < need)
        st = ca_fail(CA_E_FORMAT, "%s: truncated PBM data (%zu of %zu pixels)", r->name, n, need);
    return st;
}

/* P2/P3: whitespace-separated decimal samples, each at most 10 characters and <= maxval. */
static ca_status decode_plain(const ppm_reader *r, ca_image *img, int64_t maxval, int64_t out_max) {
    size_t len, need = (size_t)img->w * img->h * (size_t)img->c, n = 0;
    uint8_t *t = strip_comments(r->b + r->pos, r->len - r->pos, &len);
    if (!t) return ca_fail(CA_E_NOMEM, "%s: out of memory", r->name);
    ca_status st = CA_OK;
    for (size_t i = 0; i < len && n < need && st == CA_OK;) {
        if (is_ws(t[i])) { i++; continue; }
        size_t j = i;
        while (j < len && !is_ws(t[j])) j++;
        if (j - i > 10) { st = ca_fail(CA_E_FORMAT, "%s: PPM data token too long", r->name); break; }
        int64_t v = 0;
        size_t k = i + (t[i] == '+');
        if (k == j) st = ca_fail(CA_E_FORMAT, "%s: invalid PPM data (not a number)", r->name);
        for (; k < j && st == CA_OK; k++) {
            if (t[k] < '0' || t[k] > '9') st = ca_fail(CA_E_FORMAT, "%s: invalid PPM data (not a number)", r->name);
            else v = v * 10 + (t[k] - '0');
        }
        if (st == CA_OK && v > maxval)
            st = ca_fail(CA_E_FORMAT, "%s: PPM sample %lld is larger than maxval %lld", r->name, (long long)v, (long long)maxval);
        if (st == CA_OK) put_sample(img, n++, scale(v, maxval, out_max));
        i = j;
    }
    free(t);
    if (st == CA_OK && n < need)
        st = ca_fail(CA_E_FORMAT, "%s: truncated PPM data (%zu of %zu samples)", r->name, n, need);
    return st;
}

ca_image *ca_decode_ppm(const uint8_t *data, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st) {
    *orientation = 1;
    ppm_reader r = {data, len, 0, name};
    /* magic: up to 6 bytes, ended by whitespace (consumed) */
    char magic[8];
    int m = 0;
    while (m < 6 && r.pos < len) {
        uint8_t c = data[r.pos++];
        if (is_ws(c)) break;
        magic[m++] = (char)c;
    }
    magic[m] = 0;
    if (m != 2 || magic[0] != 'P' || magic[1] < '1' || magic[1] > '6') {
        *st = ca_fail(CA_E_FORMAT, "%s: unsupported Netpbm variant '%s' (P1-P6 are read)", name, magic);
        return NULL;
    }
    int kind = magic[1] - '0', plain = kind <= 3, bits = kind == 1 || kind == 4;
    int64_t w, h, maxval = 1;
    if ((*st = read_token(&r, &w)) != CA_OK || (*st = read_token(&r, &h)) != CA_OK) return NULL;
    if (!bits && (*st = read_token(&r, &maxval)) != CA_OK) return NULL;
    if (!bits && !(maxval > 0 && maxval < 65536)) {
        *st = ca_fail(CA_E_FORMAT, "%s: PPM maxval %lld is not in 1..65535", name, (long long)maxval);
        return NULL;
    }
    if (w <= 0 || h <= 0 || w > INT32_MAX || h > INT32_MAX) {
        *st = ca_fail(CA_E_FORMAT, "%s: invalid PPM size %lldx%lld", name, (long long)w, (long long)h);
        return NULL;
    }
    int grey = kind == 2 || kind == 5;
    ca_pxmode mode = bits ? CA_PX_L : grey ? (maxval > 255 ? CA_PX_I32 : CA_PX_L) : CA_PX_RGB;
    int64_t out_max = mode == CA_PX_I32 ? 65535 : 255;
    int chan = grey || bits ? 1 : 3;
    /* Raw data must be all there: check before allocating. */
    size_t avail = len - r.pos;
    if (plain) { /* at least one byte per sample */
        if ((*st = ca_image_check_size((int)w, (int)h, p->max_pixels, name)) != CA_OK) return NULL;
        if ((uint64_t)w * (uint64_t)h * (uint64_t)chan > avail) {
            *st = ca_fail(CA_E_FORMAT, "%s: truncated PPM data (%zu bytes for %lldx%lld pixels)", name, avail, (long long)w, (long long)h);
            return NULL;
        }
    } else {
        uint64_t need;
        if (bits) need = (uint64_t)((w + 7) / 8) * (uint64_t)h;
        else need = (uint64_t)w * (uint64_t)h * (uint64_t)chan * (maxval > 255 ? 2u : 1u);
        if ((*st = ca_image_check_size((int)w, (int)h, p->max_pixels, name)) != CA_OK) return NULL;
        if (need > avail) {
            *st = ca_fail(CA_E_FORMAT, "%s: truncated PPM data (%zu of %llu bytes)", name, avail, (unsigned long long)need);
            return NULL;
        }
    }
    ca_image *img = ca_image_alloc((int)w, (int)h, mode, p->max_pixels, name, st);
    if (!img) return NULL;
    if (bits) { img->nearest = 1; img->name = "1"; }
    const uint8_t *d = data + r.pos;
    size_t n = (size_t)w * (size_t)h * (size_t)chan;
    if (plain) {
        *st = bits ? decode_plain_bits(&r, img) : decode_plain(&r, img, maxval, out_max);
    } else if (bits) { /* raw "1;I": rows padded to bytes, a set bit is black */
        size_t stride = ((size_t)w + 7) / 8;
        for (size_t y = 0; y < (size_t)h; y++)
            for (size_t x = 0; x < (size_t)w; x++)
                img->px[y * (size_t)w + x] = (d[y * stride + x / 8] >> (7 - x % 8)) & 1 ? 0 : 255;
    } else if (maxval == 255) {
        memcpy(img->px, d, n);
    } else if (maxval == 65535 && grey) { /* raw "I;16B" */
        for (size_t i = 0; i < n; i++) put_sample(img, i, (int64_t)d[2 * i] << 8 | d[2 * i + 1]);
    } else { /* PpmDecoder: 1 or 2 big-endian bytes per sample, scaled, clamped to out_max */
        for (size_t i = 0; i < n; i++) {
            int64_t v = maxval > 255 ? (int64_t)d[2 * i] << 8 | d[2 * i + 1] : d[i];
            int64_t s = scale(v, maxval, out_max);
            put_sample(img, i, s < out_max ? s : out_max);
        }
    }
    if (*st != CA_OK) { ca_image_free(img); return NULL; }
    return img;
}
