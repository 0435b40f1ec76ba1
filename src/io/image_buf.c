/* image_buf.c — the pixel buffer behind ca_image: allocation with size limits, accessors,
 * wrapping caller pixels, and reading the EXIF orientation tag. The decoders build on this file;
 * it calls none of them (image.c does the dispatch). */
#include "io/image_buf.h"

#include <stdlib.h>
#include <string.h>

static int mode_channels(ca_pxmode m) {
    switch (m) {
    case CA_PX_L: return 1;
    case CA_PX_LA: return 2;
    case CA_PX_RGB: return 3;
    case CA_PX_RGBA: return 4;
    case CA_PX_CMYK: return 4;
    case CA_PX_I32: return 1;
    }
    return 0;
}

static const char *mode_name(ca_pxmode m) {
    switch (m) {
    case CA_PX_L: return "L";
    case CA_PX_LA: return "LA";
    case CA_PX_RGB: return "RGB";
    case CA_PX_RGBA: return "RGBA";
    case CA_PX_CMYK: return "CMYK";
    case CA_PX_I32: return "I";
    }
    return "?";
}

size_t ca_image_row_bytes(const ca_image *img) {
    return (size_t)img->w * (size_t)img->c * (img->mode == CA_PX_I32 ? 4u : 1u);
}

ca_status ca_image_check_size(int w, int h, int64_t max_pixels, const char *name) {
    if (w <= 0 || h <= 0) return ca_fail(CA_E_FORMAT, "%s: invalid image size %dx%d", name, w, h);
    if (max_pixels > 0 && (int64_t)w * (int64_t)h > max_pixels)
        return ca_fail(CA_E_RANGE, "%s: image is %dx%d = %lld pixels, over the limit of %lld", name, w, h,
                       (long long)w * h, (long long)max_pixels);
    return CA_OK;
}

ca_image *ca_image_alloc(int w, int h, ca_pxmode mode, int64_t max_pixels, const char *name,
                         ca_status *st) {
    if ((*st = ca_image_check_size(w, h, max_pixels, name)) != CA_OK) return NULL;
    ca_image *img = calloc(1, sizeof *img);
    if (!img) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", name); return NULL; }
    img->w = w; img->h = h; img->mode = mode; img->c = mode_channels(mode);
    img->name = mode_name(mode);
    size_t n;
    if (!ca_mul_size(ca_image_row_bytes(img), (size_t)h, &n) || !(img->px = malloc(n ? n : 1))) {
        free(img);
        *st = ca_fail(CA_E_NOMEM, "%s: out of memory for %dx%d pixels", name, w, h);
        return NULL;
    }
    return img;
}

void ca_image_free(ca_image *img) {
    if (!img) return;
    free(img->px);
    free(img);
}

int ca_image_width(const ca_image *img) { return img ? img->w : 0; }
int ca_image_height(const ca_image *img) { return img ? img->h : 0; }
int ca_image_channels(const ca_image *img) { return img ? img->c : 0; }
const char *ca_image_mode(const ca_image *img) { return img ? img->name : ""; }
const uint8_t *ca_image_pixels(const ca_image *img) { return img ? img->px : NULL; }

ca_image *ca_image_from_pixels(const uint8_t *pixels, int width, int height, int channels,
                               size_t stride, ca_status *st) {
    CA_ENTER();
    static const ca_pxmode modes[] = {CA_PX_L, CA_PX_LA, CA_PX_RGB, CA_PX_RGBA};
    ca_status dummy;
    if (!st) st = &dummy;
    if (!pixels || channels < 1 || channels > 4 || width <= 0 || height <= 0 ||
        stride < (size_t)width * (size_t)channels) {
        *st = ca_fail(CA_E_ARG, "ca_image_from_pixels: bad arguments (%dx%d, channels %d, stride %zu)",
                      width, height, channels, stride);
        return NULL;
    }
    ca_image *img = ca_image_alloc(width, height, modes[channels - 1], 0, "pixels", st);
    if (!img) return NULL;
    size_t row = ca_image_row_bytes(img);
    for (int y = 0; y < height; y++) memcpy(img->px + (size_t)y * row, pixels + (size_t)y * stride, row);
    return img;
}

/* ---- EXIF orientation ---- */

static unsigned rd16(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int ca_exif_orientation(const uint8_t *t, size_t len) {
    if (len < 8) return 1;
    int le;
    if (t[0] == 'I' && t[1] == 'I') le = 1;
    else if (t[0] == 'M' && t[1] == 'M') le = 0;
    else return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > len || len - ifd < 2) return 1;
    unsigned n = rd16(t + ifd, le);
    for (unsigned i = 0; i < n; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > len) return 1;
        if (rd16(t + e, le) == 0x0112 && rd16(t + e + 2, le) == 3) {
            unsigned v = rd16(t + e + 8, le);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
}

/* Apply orientation o (2..8) as Pillow's ImageOps.exif_transpose: returns a new image. */
ca_image *ca_image_orient(const ca_image *in, int o, const char *name, ca_status *st) {
    int w = in->w, h = in->h, swap = o >= 5;
    ca_image *out = ca_image_alloc(swap ? h : w, swap ? w : h, in->mode, 0, name, st);
    if (!out) return NULL;
    out->nearest = in->nearest; out->name = in->name;
    size_t bpp = ca_image_row_bytes(in) / (size_t)w;
    for (int y = 0; y < out->h; y++)
        for (int x = 0; x < out->w; x++) {
            int sx, sy; /* source pixel of output (x, y) */
            switch (o) {
            case 2: sx = w - 1 - x; sy = y; break;              /* mirror left-right */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;      /* rotate 180 */
            case 4: sx = x; sy = h - 1 - y; break;              /* mirror top-bottom */
            case 5: sx = y; sy = x; break;                      /* transpose */
            case 6: sx = y; sy = h - 1 - x; break;              /* rotate 90 clockwise */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;      /* transverse */
            default: sx = w - 1 - y; sy = x; break;             /* 8: rotate 90 counter-clockwise */
            }
            memcpy(out->px + ((size_t)y * out->w + x) * bpp, in->px + ((size_t)sy * w + sx) * bpp, bpp);
        }
    return out;
}
