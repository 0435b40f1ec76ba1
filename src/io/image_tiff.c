/* image_tiff.c — TIFF decoding with libtiff, from memory (TIFFClientOpenExt with per-handle
 * error handlers, so it is thread-safe), into the mode Pillow 9.4's TiffImagePlugin gives: its
 * OPEN_INFO table keyed by byte order, photometric, sample format, bits and extra samples.
 * First directory only (Pillow opens frame 0); the Orientation tag is applied as Pillow's
 * load_end does. Strips or tiles, contiguous or planar, every libtiff codec; YCbCr through
 * libtiff's RGBA interface (JPEG-compressed: libjpeg's own RGB conversion), as Pillow does.
 * Not here (refused, as Pillow refuses them or cannot resize them): float samples ("F"), "PA",
 * "LAB", 12-bit grey, old-style JPEG, layouts outside Pillow's table. */
#include "io/decoders.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

typedef struct {
    const uint8_t *b;
    uint64_t len, pos;
    char msg[256];   /* the first libtiff error */
} tiff_src;

static tmsize_t rd(thandle_t h, void *buf, tmsize_t n) {
    tiff_src *s = h;
    if (n < 0 || s->pos >= s->len) return 0;
    uint64_t k = (uint64_t)n < s->len - s->pos ? (uint64_t)n : s->len - s->pos;
    memcpy(buf, s->b + s->pos, (size_t)k);
    s->pos += k;
    return (tmsize_t)k;
}
static tmsize_t wr(thandle_t h, void *buf, tmsize_t n) { (void)h; (void)buf; (void)n; return 0; }
static toff_t sk(thandle_t h, toff_t off, int whence) {
    tiff_src *s = h;
    uint64_t base = whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->len : 0;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    s->pos = base + off;
    return s->pos;
}
static int cl(thandle_t h) { (void)h; return 0; }
static toff_t sz(thandle_t h) { return ((tiff_src *)h)->len; }
static int mp(thandle_t h, void **base, toff_t *size) {
    tiff_src *s = h;
    *base = (void *)s->b;
    *size = s->len;
    return 1;
}
static void ump(thandle_t h, void *base, toff_t size) { (void)h; (void)base; (void)size; }

static int on_error(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) {
    (void)t; (void)module;
    tiff_src *s = user;
    if (!s->msg[0]) vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    return 1; /* handled: libtiff's global handler would print */
}
static int on_warning(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) {
    (void)t; (void)user; (void)module; (void)fmt; (void)ap;
    return 1;
}

/* How raw samples become the image: the Pillow raw mode, in a few families. */
typedef enum {
    U_BITS,      /* 1-bit: "1" (invert: "1;I"), stored as L 0/255 */
    U_GREY,      /* 2/4/8-bit grey to L, scaled by 255/(2^bps-1) (invert: "L;…I") */
    U_I16,       /* 16-bit unsigned grey: "I;16" kept as int32 */
    U_I16S,      /* 16-bit signed grey: "I" */
    U_I32,       /* 32-bit grey, signed or not, reinterpreted as int32: "I" */
    U_PAL,       /* palette indices of 1/2/4/8 bits: "P", expanded */
    U_CHUNKY,    /* 8/16-bit samples: the first `keep` of each pixel (16-bit: high byte) */
    U_PREMUL,    /* like U_CHUNKY with RGB + associated alpha: "RGBa", un-premultiplied */
    U_RGBA_IF    /* YCbCr: libtiff's RGBA interface */
} unpack_kind;

typedef struct {
    ca_pxmode mode;
    const char *name;
    unpack_kind kind;
    int invert, keep;
} tiff_layout;

/* Pillow's OPEN_INFO, in rules. Returns 0 (with *why) when Pillow has no entry or we refuse. */
static int layout_of(int big, int photo, int sf, int bps, int spp, const uint16_t *ex, int nex, int compression,
                     int planar, tiff_layout *L, const char **why) {
    memset(L, 0, sizeof *L);
    *why = NULL;
    if (photo == 0 || photo == 1) {
        if (spp == 1 && nex == 0 && sf == 1 && bps <= 8 && (bps == 1 || bps == 2 || bps == 4 || bps == 8)) {
            *L = (tiff_layout){CA_PX_L, bps == 1 ? "1" : "L", bps == 1 ? U_BITS : U_GREY, photo == 0, 1};
            return 1;
        }
        if (spp == 1 && nex == 0 && bps == 16 && sf == 1 && (!big || photo == 1)) {
            *L = (tiff_layout){CA_PX_I32, big ? "I;16B" : "I;16", U_I16, 0, 1};
            return 1;
        }
        if (spp == 1 && nex == 0 && bps == 16 && sf == 2 && photo == 1) {
            *L = (tiff_layout){CA_PX_I32, "I", U_I16S, 0, 1};
            return 1;
        }
        if (spp == 1 && nex == 0 && bps == 32 && photo == 1 && (sf == 2 || (sf == 1 && !big))) {
            *L = (tiff_layout){CA_PX_I32, "I", U_I32, 0, 1};
            return 1;
        }
        if (spp == 2 && bps == 8 && sf == 1 && photo == 1 && nex == 1 && ex[0] == 2) {
            *L = (tiff_layout){CA_PX_LA, "LA", U_CHUNKY, 0, 2};
            return 1;
        }
        if (bps == 32 && sf == 3) *why = "32-bit float samples (Pillow mode F)";
        else if (bps == 12) *why = "12-bit grey samples";
    } else if (photo == 2 && sf == 1 && (bps == 8 || bps == 16) && spp >= 3 && spp <= (bps == 8 ? 6 : 4)) {
        int extra = spp - 3;
        if (extra == 0 && nex == 0) { *L = (tiff_layout){CA_PX_RGB, "RGB", U_CHUNKY, 0, 3}; return 1; }
        if (extra == 1 && (nex == 0 || (nex == 1 && (ex[0] == 2 || (ex[0] == 999 && bps == 8))))) {
            *L = (tiff_layout){CA_PX_RGBA, "RGBA", U_CHUNKY, 0, 4};
            return 1;
        }
        int zeros = nex >= 1;
        for (int i = 1; i < nex; i++) zeros &= ex[i] == 0;
        if (nex == extra && zeros && ex[0] == 0) { *L = (tiff_layout){CA_PX_RGB, "RGBX", U_CHUNKY, 0, 3}; return 1; }
        if (nex == extra && zeros && ex[0] == 1) { *L = (tiff_layout){CA_PX_RGBA, "RGBA", U_PREMUL, 0, 4}; return 1; }
        if (nex == extra && zeros && ex[0] == 2 && extra >= 2 && bps == 8) { *L = (tiff_layout){CA_PX_RGBA, "RGBA", U_CHUNKY, 0, 4}; return 1; }
    } else if (photo == 3 && sf == 1 && spp == 1 && nex == 0 && (bps == 1 || bps == 2 || bps == 4 || bps == 8)) {
        *L = (tiff_layout){CA_PX_RGB, "P", U_PAL, 0, 1};
        return 1;
    } else if (photo == 3 && spp == 2) {
        *why = "palette with alpha (Pillow mode PA)";
    } else if (photo == 5 && sf == 1 && ((bps == 8 && spp >= 4 && spp <= 6) || (bps == 16 && spp == 4 && !big))) {
        int zeros = 1;
        for (int i = 0; i < nex; i++) zeros &= ex[i] == 0;
        if (nex == spp - 4 && zeros) { *L = (tiff_layout){CA_PX_CMYK, "CMYK", U_CHUNKY, 0, 4}; return 1; }
    } else if (photo == 6 && sf == 1 && bps == 8 && spp == 3 && nex == 0) {
        /* JPEG in one plane: libjpeg converts to RGB; otherwise libtiff's RGBA interface */
        *L = (tiff_layout){CA_PX_RGB, "RGB", compression == COMPRESSION_JPEG && planar == PLANARCONFIG_CONTIG ? U_CHUNKY : U_RGBA_IF, 0, 3};
        return 1;
    } else if (photo == 8) {
        *why = "CIE L*a*b* colour (Pillow mode LAB)";
    }
    if (!*why) *why = "a sample layout Pillow does not read";
    return 0;
}

/* Read the whole image as chunky rows of rowb bytes (planar files interleaved here). */
static ca_status read_raw(TIFF *t, tiff_src *src, const char *name, uint32_t w, uint32_t h, int bps, int spp,
                          int planar, uint8_t *raw, size_t rowb) {
    int planes = planar == PLANARCONFIG_SEPARATE && spp > 1 ? spp : 1;
    int bs = bps / 8; /* bytes per sample when planes > 1 (bps >= 8 then) */
    size_t prow = planes > 1 ? (size_t)w * (size_t)bs : rowb; /* bytes per row of one plane */
    ca_status st = CA_OK;
    uint8_t *buf = NULL;
    if (TIFFIsTiled(t)) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
        tmsize_t ts = TIFFTileSize(t);
        size_t trow = ((uint64_t)tw * (uint64_t)bps * (uint64_t)(planes > 1 ? 1 : spp) + 7) / 8;
        if (!tw || !th || ts <= 0 || (uint64_t)trow * th > (uint64_t)ts || (tw * (uint64_t)bps) % 8)
            return ca_fail(CA_E_FORMAT, "%s: corrupt TIFF: bad tile layout %ux%u", name, tw, th);
        /* a tile far larger than the image would only cost memory */
        if ((uint64_t)tw * th > (uint64_t)w * h + ((uint64_t)1 << 22))
            return ca_fail(CA_E_FORMAT, "%s: corrupt TIFF: %ux%u tiles for a %ux%u image", name, tw, th, w, h);
        if (!(buf = malloc((size_t)ts))) return ca_fail(CA_E_NOMEM, "%s: out of memory", name);
        for (int s = 0; st == CA_OK && s < planes; s++)
            for (uint32_t y = 0; st == CA_OK && y < h; y += th)
                for (uint32_t x = 0; st == CA_OK && x < w; x += tw) {
                    if (TIFFReadTile(t, buf, x, y, 0, (uint16_t)s) < 0) {
                        st = ca_fail(CA_E_FORMAT, "%s: corrupt TIFF: %s", name, src->msg[0] ? src->msg : "cannot read a tile");
                        break;
                    }
                    uint32_t cw = w - x < tw ? w - x : tw, ch = h - y < th ? h - y : th;
                    size_t xoff = (size_t)x * bps * (planes > 1 ? 1 : spp) / 8;
                    size_t cbytes = ((uint64_t)cw * bps * (planes > 1 ? 1 : spp) + 7) / 8;
                    for (uint32_t r = 0; r < ch; r++) {
                        const uint8_t *from = buf + (size_t)r * trow;
                        uint8_t *to = raw + (size_t)(y + r) * rowb;
                        if (planes == 1) { memcpy(to + xoff, from, cbytes); continue; }
                        for (uint32_t c = 0; c < cw; c++)
                            memcpy(to + ((size_t)(x + c) * spp + s) * bs, from + (size_t)c * bs, (size_t)bs);
                    }
                }
    } else {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rps);
        if (rps == 0 || rps > h) rps = h;
        if (!(buf = malloc(prow * rps))) return ca_fail(CA_E_NOMEM, "%s: out of memory", name);
        uint32_t per_plane = (h + rps - 1) / rps;
        for (int s = 0; st == CA_OK && s < planes; s++)
            for (uint32_t k = 0; k < per_plane; k++) {
                uint32_t y0 = k * rps, n = h - y0 < rps ? h - y0 : rps;
                uint32_t strip = k + (uint32_t)s * per_plane;
                if (strip >= TIFFNumberOfStrips(t) ||
                    TIFFReadEncodedStrip(t, strip, buf, (tmsize_t)(prow * n)) < (tmsize_t)(prow * n)) {
                    st = ca_fail(CA_E_FORMAT, "%s: corrupt TIFF: %s", name, src->msg[0] ? src->msg : "truncated strip data");
                    break;
                }
                for (uint32_t r = 0; r < n; r++) {
                    uint8_t *to = raw + (size_t)(y0 + r) * rowb;
                    const uint8_t *from = buf + (size_t)r * prow;
                    if (planes == 1) { memcpy(to, from, rowb); continue; }
                    for (uint32_t c = 0; c < w; c++) memcpy(to + ((size_t)c * spp + s) * bs, from + (size_t)c * bs, (size_t)bs);
                }
            }
    }
    free(buf);
    return st;
}

static unsigned clip8(unsigned v) { return v > 255 ? 255 : v; }

/* Raw chunky rows to the image's pixels, as Pillow's unpackers do. */
static void unpack(const tiff_layout *L, const uint8_t *raw, size_t rowb, int bps, int spp, const uint8_t pal[256][3],
                   ca_image *img) {
    size_t w = (size_t)img->w;
    for (size_t y = 0; y < (size_t)img->h; y++) {
        const uint8_t *r = raw + y * rowb;
        uint8_t *o = img->px + y * ca_image_row_bytes(img);
        for (size_t x = 0; x < w; x++) {
            switch (L->kind) {
            case U_BITS: case U_GREY: case U_PAL: {
                unsigned v = bps == 8 ? r[x] : (r[x * bps / 8] >> (8 - bps - (x * bps) % 8)) & ((1u << bps) - 1);
                if (L->kind == U_PAL) { memcpy(o + 3 * x, pal[v], 3); break; }
                v = v * 255 / ((1u << bps) - 1);
                o[x] = (uint8_t)(L->invert ? 255 - v : v);
                break;
            }
            case U_I16: case U_I16S: case U_I32: {
                int32_t v;
                if (L->kind == U_I32) memcpy(&v, r + 4 * x, 4);
                else {
                    uint16_t u;
                    memcpy(&u, r + 2 * x, 2);
                    v = L->kind == U_I16S ? (int32_t)(int16_t)u : (int32_t)u;
                }
                memcpy(o + 4 * x, &v, 4);
                break;
            }
            case U_CHUNKY: case U_PREMUL: {
                int c = img->c;
                uint8_t s[6];
                for (int k = 0; k < L->keep && k < 6; k++) {
                    if (bps == 8) s[k] = r[x * spp + k];
                    else { uint16_t u; memcpy(&u, r + 2 * (x * spp + k), 2); s[k] = (uint8_t)(u >> 8); }
                }
                if (L->kind == U_PREMUL) { /* Pillow's unpackRGBa */
                    unsigned a = s[3];
                    if (!a) s[0] = s[1] = s[2] = 0;
                    else if (a != 255)
                        for (int k = 0; k < 3; k++) s[k] = (uint8_t)clip8(s[k] * 255u / a);
                }
                memcpy(o + (size_t)c * x, s, (size_t)c);
                break;
            }
            case U_RGBA_IF: break;
            }
        }
    }
}

ca_image *ca_decode_tiff(const uint8_t *data, size_t len, const char *name,
                         const ca_image_params *p, int *orientation, ca_status *st) {
    *orientation = 1;
    tiff_src src = {data, len, 0, ""};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", name); return NULL; }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, &src);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, &src);
    /* libtiff's own allocations (strip buffers, tag arrays) stay within what the pixel limit allows */
    int64_t cap = p->max_pixels > 0 && p->max_pixels < (INT64_MAX / 16) ? p->max_pixels * 16 : (int64_t)1 << 34;
    if (cap < ((int64_t)64 << 20)) cap = (int64_t)64 << 20;
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)cap);
    TIFF *t = TIFFClientOpenExt(name, "r", &src, rd, wr, sk, cl, sz, mp, ump, opts);
    TIFFOpenOptionsFree(opts);
    if (!t) {
        *st = ca_fail(CA_E_FORMAT, "%s: corrupt TIFF: %s", name, src.msg[0] ? src.msg : "cannot read the header");
        return NULL;
    }
    ca_image *img = NULL;
    uint8_t *raw = NULL;
    uint32_t *rgba = NULL;
    uint32_t w = 0, h = 0;
    uint16_t bps = 1, spp = 1, photo = 0, sf = 1, compression = 1, planar = 1, orient = 1, nex = 0, *ex = NULL;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo); /* missing: 0, as Pillow */
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &sf);
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &compression);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(t, TIFFTAG_ORIENTATION, &orient);
    TIFFGetField(t, TIFFTAG_EXTRASAMPLES, &nex, &ex);
    if (compression == COMPRESSION_OJPEG) {
        *st = ca_fail(CA_E_FORMAT, "%s: unsupported TIFF: old-style JPEG compression", name);
        goto done;
    }
    tiff_layout L;
    const char *why;
    if (!layout_of(TIFFIsBigEndian(t), photo, sf, bps, spp, ex, nex, compression, planar, &L, &why)) {
        *st = ca_fail(CA_E_FORMAT, "%s: unsupported TIFF: %s (photometric %u, %u samples of %u bits, sample format %u)",
                      name, why, photo, spp, bps, sf);
        goto done;
    }
    if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX) {
        *st = ca_fail(CA_E_FORMAT, "%s: invalid TIFF size %ux%u", name, w, h);
        goto done;
    }
    if ((*st = ca_image_check_size((int)w, (int)h, p->max_pixels, name)) != CA_OK) goto done;
    uint8_t pal[256][3];
    if (L.kind == U_PAL) {
        uint16_t *pr, *pg, *pb;
        if (!TIFFGetField(t, TIFFTAG_COLORMAP, &pr, &pg, &pb)) {
            *st = ca_fail(CA_E_FORMAT, "%s: corrupt TIFF: palette image without a colour map", name);
            goto done;
        }
        for (unsigned i = 0; i < (1u << bps); i++) { /* Pillow keeps the high byte: b // 256 */
            pal[i][0] = (uint8_t)(pr[i] >> 8); pal[i][1] = (uint8_t)(pg[i] >> 8); pal[i][2] = (uint8_t)(pb[i] >> 8);
        }
    }
    if (!(img = ca_image_alloc((int)w, (int)h, L.mode, p->max_pixels, name, st))) goto done;
    img->name = L.name;
    img->nearest = L.kind == U_BITS || L.kind == U_PAL;
    if (L.kind == U_RGBA_IF) {
        size_t n;
        if (!ca_mul_size((size_t)w * 4, h, &n) || !(rgba = malloc(n))) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", name); goto done; }
        if (!TIFFReadRGBAImageOriented(t, w, h, rgba, ORIENTATION_TOPLEFT, 0)) {
            *st = ca_fail(CA_E_FORMAT, "%s: corrupt TIFF: %s", name, src.msg[0] ? src.msg : "cannot decode YCbCr data");
            goto done;
        }
        for (size_t i = 0; i < (size_t)w * h; i++) {
            img->px[3 * i] = (uint8_t)TIFFGetR(rgba[i]);
            img->px[3 * i + 1] = (uint8_t)TIFFGetG(rgba[i]);
            img->px[3 * i + 2] = (uint8_t)TIFFGetB(rgba[i]);
        }
    } else {
        if (photo == PHOTOMETRIC_YCBCR) TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
        size_t rowb = ((uint64_t)w * bps * spp + 7) / 8, n;
        if (!ca_mul_size(rowb, h, &n) || !(raw = malloc(n ? n : 1))) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", name); goto done; }
        if ((*st = read_raw(t, &src, name, w, h, bps, spp, planar, raw, rowb)) != CA_OK) goto done;
        unpack(&L, raw, rowb, bps, spp, pal, img);
    }
    /* Pillow's TiffImageFile.load_end transposes by the Orientation tag; exif_transpose would
     * then find the same tag and apply it once more, so the caller gets it too. */
    if (orient >= 2 && orient <= 8) {
        ca_image *r = ca_image_orient(img, orient, name, st);
        ca_image_free(img);
        img = r;
        *orientation = orient;
    }
    if (img) *st = CA_OK;
done:
    if (*st != CA_OK) { ca_image_free(img); img = NULL; }
    free(raw);
    free(rgba);
    TIFFClose(t);
    return img;
}
