/* image_bmp.c — Windows/OS2 BMP decoding written out by hand, following Pillow 9.4's
 * BmpImagePlugin: headers of 12 (OS/2 1.x), 40, 64, 108 and 124 bytes; 1/4/8-bit palette,
 * 16-bit 5-5-5 and 5-6-5, 24-bit, 32-bit with Pillow's six BI_BITFIELDS layouts (alpha only
 * when the masks name one); bottom-up and top-down rows; RLE8 and RLE4 with Pillow's decoder's
 * quirks. A grey-ramp palette makes the image "L" (2 colours black/white: "1"), as in Pillow.
 * Not here: embedded JPEG/PNG, Huffman, other bitfield layouts, 2-bit or 64-bit pixels — those
 * are refused, as Pillow refuses them. Every size and offset is checked against the buffer. */
#include "io/decoders.h"

#include <limits.h>
#include <string.h>

enum { BI_RGB = 0, BI_RLE8 = 1, BI_RLE4 = 2, BI_BITFIELDS = 3 };

static uint32_t u16le(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The 32-bit layouts Pillow accepts, as byte positions of R, G, B, A within the little-endian
 * pixel (A = -1: none). Their masks are all whole bytes. */
typedef struct { uint32_t r, g, b, a; int pr, pg, pb, pa; } layout32;
static const layout32 LAYOUTS32[] = {
    {0xFF0000, 0xFF00, 0xFF, 0, 2, 1, 0, -1},                /* BGRX */
    {0xFF000000, 0xFF0000, 0xFF00, 0, 3, 2, 1, -1},          /* XBGR */
    {0xFF000000, 0xFF0000, 0xFF00, 0xFF, 3, 2, 1, 0},        /* ABGR */
    {0xFF, 0xFF00, 0xFF0000, 0xFF000000, 0, 1, 2, 3},        /* RGBA */
    {0xFF0000, 0xFF00, 0xFF, 0xFF000000, 2, 1, 0, 3},        /* BGRA */
    {0, 0, 0, 0, 2, 1, 0, 3},                                /* all zero: Pillow reads BGRA */
};

typedef struct {
    const uint8_t *b;
    size_t len;
    const char *name;
    uint32_t w, h, bits, comp, colors;
    int topdown;
} bmp_info;

/* Pillow's BmpRleDecoder, step by step (it is the reference, quirks included): runs are cut at
 * the row end, absolute runs are not; an absolute RLE4 run of n pixels reads n/2 bytes (an odd
 * last pixel is lost); a delta skips two bytes and then reads right/up from the next two; the
 * word alignment after an absolute run is on the file offset. The stream fills a linear buffer
 * of w*h indices (rows in file order); running out of data before it is full is an error. */
static ca_status rle_decode(const bmp_info *bi, size_t pos, uint8_t *out) {
    const uint8_t *b = bi->b;
    size_t len = bi->len;
    uint64_t w = bi->w, need = (uint64_t)bi->w * bi->h, n = 0, x = 0;
    int rle4 = bi->comp == BI_RLE4;
#define PUT(v) do { if (n < need) out[n] = (uint8_t)(v); n++; } while (0)
    while (n < need) {
        if (pos >= len || len - pos < 2) break;
        unsigned cnt = b[pos], byte = b[pos + 1];
        pos += 2;
        if (cnt) { /* encoded run */
            uint64_t k = x + cnt > w ? (x < w ? w - x : 0) : cnt;
            for (uint64_t i = 0; i < k; i++) PUT(rle4 ? (i % 2 == 0 ? byte >> 4 : byte & 15) : byte);
            x += k;
        } else if (byte == 0) { /* end of line */
            while (n % w) PUT(0);
            x = 0;
        } else if (byte == 1) { /* end of bitmap */
            break;
        } else if (byte == 2) { /* delta */
            if (len - pos < 2) break;
            pos += 2;
            if (len - pos < 2)
                return ca_fail(CA_E_FORMAT, "%s: truncated BMP RLE data (delta at end of file)", bi->name);
            uint64_t skip = b[pos] + (uint64_t)b[pos + 1] * w;
            pos += 2;
            n += skip; /* zeros: out is zero-filled */
            x = n % w;
        } else { /* absolute run of `byte` pixels */
            size_t want = rle4 ? byte / 2 : byte, got = want < len - pos ? want : len - pos;
            for (size_t i = 0; i < got; i++) {
                unsigned v = b[pos + i];
                if (rle4) { PUT(v >> 4); PUT(v & 15); }
                else PUT(v);
            }
            pos += got;
            if (got < want) break;
            x += byte;
            if (pos % 2) pos++; /* may step past the end: the next read then stops */
        }
    }
#undef PUT
    if (n < need)
        return ca_fail(CA_E_FORMAT, "%s: truncated BMP RLE data (%llu of %llu pixels)", bi->name,
                       (unsigned long long)n, (unsigned long long)need);
    return CA_OK;
}

ca_image *ca_decode_bmp(const uint8_t *b, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st) {
    *orientation = 1;
    bmp_info bi = {b, len, name, 0, 0, 0, 0, 0, 0};
    if (len < 18) { *st = ca_fail(CA_E_FORMAT, "%s: truncated BMP (file header)", name); return NULL; }
    uint64_t off = u32le(b + 10);
    uint32_t hsize = u32le(b + 14);
    if (hsize != 12 && hsize != 40 && hsize != 64 && hsize != 108 && hsize != 124) {
        *st = ca_fail(CA_E_FORMAT, "%s: unsupported BMP header size %u", name, hsize);
        return NULL;
    }
    if (len - 14 < hsize) { *st = ca_fail(CA_E_FORMAT, "%s: truncated BMP (info header)", name); return NULL; }
    const uint8_t *h = b + 18; /* the header after its size field */
    size_t pos = 14 + (size_t)hsize;
    unsigned pal_pad;
    uint32_t mask[4] = {0, 0, 0, 0};
    if (hsize == 12) {
        bi.w = u16le(h); bi.h = u16le(h + 2); bi.bits = u16le(h + 6); bi.comp = BI_RGB;
        pal_pad = 3;
    } else {
        /* Pillow takes the height as top-down when its top byte is 0xFF. */
        bi.topdown = h[7] == 0xFF;
        bi.w = u32le(h);
        bi.h = bi.topdown ? 0u - u32le(h + 4) : u32le(h + 4);
        bi.bits = u16le(h + 10); bi.comp = u32le(h + 12); bi.colors = u32le(h + 28);
        pal_pad = 4;
        if (bi.comp == BI_BITFIELDS) {
            if (hsize >= 56) {
                for (int i = 0; i < 4; i++) mask[i] = u32le(h + 36 + 4 * i);
            } else { /* 40-byte header: three masks follow it, alpha is "reserved" */
                if (len - pos < 12) { *st = ca_fail(CA_E_FORMAT, "%s: truncated BMP (bitfield masks)", name); return NULL; }
                for (int i = 0; i < 3; i++) mask[i] = u32le(b + pos + 4 * i);
                pos += 12;
            }
        }
    }
    if (bi.w == 0 || bi.h == 0 || bi.w > INT_MAX || bi.h > INT_MAX) {
        *st = ca_fail(CA_E_FORMAT, "%s: invalid BMP size %ux%u", name, bi.w, bi.h);
        return NULL;
    }
    uint64_t colors = bi.colors ? bi.colors : bi.bits <= 8 ? 1u << bi.bits : 0;
    /* Pillow: a data offset pointing right after the header skips a (4-byte) palette. */
    if (off == 14 + (uint64_t)hsize && bi.bits <= 8) off += 4 * colors;
    if (bi.bits != 1 && bi.bits != 4 && bi.bits != 8 && bi.bits != 16 && bi.bits != 24 && bi.bits != 32) {
        *st = ca_fail(CA_E_FORMAT, "%s: unsupported BMP bit depth %u", name, bi.bits);
        return NULL;
    }
    int rle = bi.comp == BI_RLE8 || bi.comp == BI_RLE4, l32 = 0, r565 = 0;
    if (bi.comp == BI_BITFIELDS) {
        int ok = 0;
        if (bi.bits == 32) {
            for (l32 = 0; l32 < (int)(sizeof LAYOUTS32 / sizeof LAYOUTS32[0]); l32++)
                if (mask[0] == LAYOUTS32[l32].r && mask[1] == LAYOUTS32[l32].g && mask[2] == LAYOUTS32[l32].b &&
                    mask[3] == LAYOUTS32[l32].a) { ok = 1; break; }
        } else if (bi.bits == 24) {
            ok = mask[0] == 0xFF0000 && mask[1] == 0xFF00 && mask[2] == 0xFF;
        } else if (bi.bits == 16) {
            r565 = mask[0] == 0xF800 && mask[1] == 0x7E0 && mask[2] == 0x1F;
            ok = r565 || (mask[0] == 0x7C00 && mask[1] == 0x3E0 && mask[2] == 0x1F);
        }
        if (!ok) {
            *st = ca_fail(CA_E_FORMAT, "%s: unsupported BMP bitfields layout (%u-bit, masks %08x %08x %08x %08x)",
                          name, bi.bits, mask[0], mask[1], mask[2], mask[3]);
            return NULL;
        }
    } else if (rle) {
        if (bi.bits > 8) {
            *st = ca_fail(CA_E_FORMAT, "%s: unsupported BMP: RLE compression with %u-bit pixels", name, bi.bits);
            return NULL;
        }
    } else if (bi.comp != BI_RGB) {
        *st = ca_fail(CA_E_FORMAT, "%s: unsupported BMP compression %u%s", name, bi.comp,
                      bi.comp == 4 ? " (embedded JPEG)" : bi.comp == 5 ? " (embedded PNG)" : "");
        return NULL;
    }
    /* Palette: read from right after the header (not from the data offset), possibly short. */
    uint8_t pal[256][3];
    int npal = 0, grey = 0;
    if (bi.bits <= 8) {
        if (colors > 256) {
            *st = ca_fail(CA_E_FORMAT, "%s: BMP palette of %llu colours (at most 256)", name, (unsigned long long)colors);
            return NULL;
        }
        size_t avail = len - pos < pal_pad * colors ? len - pos : pal_pad * colors;
        npal = (int)(avail / pal_pad);
        for (int i = 0; i < npal; i++) { /* stored B, G, R(, X) */
            pal[i][0] = b[pos + (size_t)i * pal_pad + 2];
            pal[i][1] = b[pos + (size_t)i * pal_pad + 1];
            pal[i][2] = b[pos + (size_t)i * pal_pad];
        }
        /* Pillow's greyscale test: every entry i is (i, i, i) — with two colours, black and white;
         * it looks at 3 bytes per entry, so a last entry missing only its pad byte still counts. */
        size_t have3 = avail >= 3 ? (avail - 3) / pal_pad + 1 : 0;
        grey = have3 >= colors;
        for (size_t i = 0; grey && i < colors; i++) {
            const uint8_t *e = b + pos + i * pal_pad;
            unsigned v = colors == 2 ? (i ? 255 : 0) : (unsigned)i;
            grey = e[0] == v && e[1] == v && e[2] == v;
        }
        pos += avail;
    }
    if (off == 0) off = pos; /* no data offset: pixels follow the palette */
    if (off > len) {
        *st = ca_fail(CA_E_FORMAT, "%s: BMP pixel data offset %llu is past the end of the file (%zu bytes)", name,
                      (unsigned long long)off, len);
        return NULL;
    }
    ca_pxmode mode = bi.bits <= 8 ? (grey ? CA_PX_L : CA_PX_RGB)
                     : bi.comp == BI_BITFIELDS && bi.bits == 32 && LAYOUTS32[l32].pa >= 0 ? CA_PX_RGBA : CA_PX_RGB;
    /* The limit first, then whether the file holds the rows, then memory. */
    if ((*st = ca_image_check_size((int)bi.w, (int)bi.h, p->max_pixels, name)) != CA_OK) return NULL;
    ca_image *img = NULL;
    size_t w = bi.w, hh = bi.h, n = w * hh;
    uint8_t *idx = NULL;
    const uint8_t *data = b + off;
    size_t dlen = len - (size_t)off;
    size_t stride = 0;
    if (!rle) {
        /* Rows are padded to 4 bytes; like Pillow's raw decoder, the last row needs no padding.
         * Needed: s * (h - 1) + rowb <= dlen, tested without forming the product. */
        uint64_t s = (((uint64_t)bi.w * bi.bits + 31) >> 3) & ~(uint64_t)3;
        uint64_t rowb = ((uint64_t)bi.w * bi.bits + 7) >> 3;
        if (rowb > dlen || (hh > 1 && s > (dlen - rowb) / (hh - 1))) {
            *st = ca_fail(CA_E_FORMAT, "%s: truncated BMP pixel data (%zu rows of %llu bytes at offset %llu, file has %zu)",
                          name, hh, (unsigned long long)s, (unsigned long long)off, len);
            goto fail;
        }
        stride = (size_t)s;
    }
    if (!(img = ca_image_alloc((int)bi.w, (int)bi.h, mode, p->max_pixels, name, st))) return NULL;
    if (bi.bits <= 8 && (!grey || colors == 2)) { img->nearest = 1; img->name = grey ? "1" : "P"; }
    if (bi.bits <= 8) {
        if (!(idx = calloc(n, 1))) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", name); goto fail; }
        if (rle) {
            if ((*st = rle_decode(&bi, (size_t)off, idx)) != CA_OK) goto fail;
        } else {
            for (size_t y = 0; y < hh; y++) {
                const uint8_t *r = data + y * stride;
                uint8_t *o = idx + y * w;
                for (size_t x = 0; x < w; x++)
                    o[x] = bi.bits == 8 ? r[x] : bi.bits == 4 ? (r[x / 2] >> (x % 2 ? 0 : 4)) & 15
                                                              : (r[x / 8] >> (7 - x % 8)) & 1;
            }
        }
    }
    /* Rows in file order; bottom-up files store the last row first. */
    for (size_t y = 0; y < hh; y++) {
        size_t fy = bi.topdown ? y : hh - 1 - y;
        uint8_t *o = img->px + y * w * (size_t)img->c;
        if (idx) {
            const uint8_t *r = idx + fy * w;
            for (size_t x = 0; x < w; x++) {
                unsigned k = r[x];
                /* past the palette: Pillow's palette starts as a grey ramp */
                const uint8_t *c = (int)k < npal ? pal[k] : NULL;
                if (grey) o[x] = c ? c[0] : (uint8_t)k;
                else if (c) memcpy(o + 3 * x, c, 3);
                else o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = (uint8_t)k;
            }
            continue;
        }
        const uint8_t *r = data + fy * stride;
        if (bi.bits == 16) {
            for (size_t x = 0; x < w; x++) {
                unsigned v = u16le(r + 2 * x);
                if (r565) { /* Pillow's BGR;16 unpacker: v * 255 / max per field */
                    o[3 * x] = (uint8_t)(((v >> 11) & 31) * 255 / 31);
                    o[3 * x + 1] = (uint8_t)(((v >> 5) & 63) * 255 / 63);
                } else {    /* BGR;15 */
                    o[3 * x] = (uint8_t)(((v >> 10) & 31) * 255 / 31);
                    o[3 * x + 1] = (uint8_t)(((v >> 5) & 31) * 255 / 31);
                }
                o[3 * x + 2] = (uint8_t)((v & 31) * 255 / 31);
            }
        } else if (bi.bits == 24) {
            for (size_t x = 0; x < w; x++) { o[3 * x] = r[3 * x + 2]; o[3 * x + 1] = r[3 * x + 1]; o[3 * x + 2] = r[3 * x]; }
        } else { /* 32: BI_RGB is BGRX */
            const layout32 *L = &LAYOUTS32[bi.comp == BI_BITFIELDS ? l32 : 0];
            int c = img->c;
            for (size_t x = 0; x < w; x++) {
                const uint8_t *q = r + 4 * x;
                o[c * x] = q[L->pr]; o[c * x + 1] = q[L->pg]; o[c * x + 2] = q[L->pb];
                if (c == 4) o[c * x + 3] = q[L->pa];
            }
        }
    }
    free(idx);
    *st = CA_OK;
    return img;
fail:
    free(idx);
    ca_image_free(img);
    return NULL;
}
