/* image_png.c — PNG decoding with libpng into Pillow 9.4's modes (PngImagePlugin's table):
 * grey 1 -> "1", grey 2/4/8 -> L (scaled x85 / x17), grey 16 -> I (full 16-bit value),
 * grey+alpha 8 -> LA, grey+alpha 16 -> RGBA, RGB(A) 16 -> high byte, palette -> P (indices
 * expanded through PLTE here, but resized with NEAREST like Pillow does for P). tRNS is never
 * turned into alpha: Pillow keeps it as metadata that convert("RGB") ignores. No gamma. */
#include "io/decoders.h"

#include <png.h>
#include <setjmp.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    char msg[200];
    jmp_buf jb;
} png_src;

static void on_error(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    longjmp(s->jb, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void on_read(png_structp png, png_bytep out, png_size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated file (unexpected end of data)");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

ca_image *ca_decode_png(const uint8_t *data, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st) {
    png_src src;
    memset(&src, 0, sizeof src);
    src.data = data; src.len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        *st = ca_fail(CA_E_NOMEM, "%s: out of memory (libpng)", name);
        return NULL;
    }
    ca_image *volatile img = NULL;
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    volatile int done = 0;
    if (setjmp(src.jb)) {
        if (done) goto finished; /* an error after the pixels (in trailing chunks) is ignored */
        png_destroy_read_struct(&png, &info, NULL);
        ca_image_free(img); free(raw); free(rows);
        *st = ca_fail(CA_E_FORMAT, "%s: corrupt PNG: %s", name, src.msg);
        return NULL;
    }
    png_set_read_fn(png, &src, on_read);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ct, il;
    png_get_IHDR(png, info, &w, &h, &depth, &ct, &il, NULL, NULL);
    if (w > 0x7fffffff || h > 0x7fffffff) png_error(png, "image size out of range");
    ca_pxmode mode;
    int nearest = 0;
    const char *pname = NULL;
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth < 8) png_set_packing(png);
        mode = depth == 16 ? CA_PX_I32 : CA_PX_L;
        if (depth == 1) { nearest = 1; pname = "1"; }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        mode = depth == 16 ? CA_PX_RGBA : CA_PX_LA;
        if (depth == 16) { png_set_strip_16(png); png_set_gray_to_rgb(png); }
        break;
    case PNG_COLOR_TYPE_RGB:
        mode = CA_PX_RGB;
        if (depth == 16) png_set_strip_16(png);
        break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
        mode = CA_PX_RGBA;
        if (depth == 16) png_set_strip_16(png);
        break;
    case PNG_COLOR_TYPE_PALETTE:
        if (depth < 8) png_set_packing(png);
        mode = CA_PX_RGB; nearest = 1; pname = "P";
        break;
    default: png_error(png, "unknown colour type");
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    ca_status ast;
    img = ca_image_alloc((int)w, (int)h, mode, p->max_pixels, name, &ast);
    if (!img) {
        png_destroy_read_struct(&png, &info, NULL);
        *st = ast;
        return NULL;
    }
    img->nearest = nearest;
    if (pname) img->name = pname;
    size_t rb = png_get_rowbytes(png, info);
    size_t want = (size_t)w * (depth == 16 && ct == PNG_COLOR_TYPE_GRAY ? 2u
                                : ct == PNG_COLOR_TYPE_PALETTE ? 1u : (size_t)img->c);
    if (rb != want) png_error(png, "unexpected row size");
    raw = ca_malloc2(rb, h);
    rows = ca_malloc2(sizeof(png_bytep), h);
    if (!raw || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = raw + (size_t)y * rb;
    png_read_image(png, rows);
    done = 1;
    /* Convert the libpng rows into the Pillow mode's samples. */
    size_t n = (size_t)w * h;
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_colorp pal = NULL;
        int npal = 0;
        png_get_PLTE(png, info, &pal, &npal);
        for (size_t i = 0; i < n; i++) {
            unsigned k = raw[i];
            uint8_t *o = img->px + 3 * i;
            if ((int)k < npal) { o[0] = pal[k].red; o[1] = pal[k].green; o[2] = pal[k].blue; }
            else o[0] = o[1] = o[2] = (uint8_t)k; /* past PLTE: Pillow's palette starts as a grey ramp */
        }
    } else if (mode == CA_PX_I32) {
        int32_t *o = (int32_t *)(void *)img->px;
        for (size_t i = 0; i < n; i++) o[i] = raw[2 * i] << 8 | raw[2 * i + 1];
    } else if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) {
        unsigned scale = depth == 1 ? 255 : depth == 2 ? 85 : 17;
        for (size_t i = 0; i < n; i++) img->px[i] = (uint8_t)(raw[i] * scale);
    } else {
        memcpy(img->px, raw, n * img->c);
    }
    *orientation = 1;
    if (p->exif_rotate) {
        png_read_end(png, info);
#ifdef PNG_eXIf_SUPPORTED
        png_uint_32 ne = 0;
        png_bytep ex = NULL;
        if (png_get_eXIf_1(png, info, &ne, &ex) && ex) *orientation = ca_exif_orientation(ex, ne);
#endif
    }
finished:
    png_destroy_read_struct(&png, &info, NULL);
    free(raw); free(rows);
    *st = CA_OK;
    return img;
}
