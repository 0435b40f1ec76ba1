/* image_jpeg.c — JPEG decoding with libjpeg-turbo, configured as Pillow 9.4 uses it: default
 * ISLOW DCT and fancy upsampling, grey -> L, 3 components -> RGB, 4 -> CMYK with Adobe's
 * inverted polarity undone (Pillow's "CMYK;I" raw mode). A truncated stream is an error (Pillow
 * raises "image file is truncated"); other libjpeg warnings are ignored as Pillow ignores them. */
#include "io/decoders.h"

#include <setjmp.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int truncated;
} jerr_mgr;

static void on_error(j_common_ptr c) {
    jerr_mgr *e = (jerr_mgr *)c->err;
    longjmp(e->jb, 1);
}

static void on_message(j_common_ptr c, int level) {
    jerr_mgr *e = (jerr_mgr *)c->err;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

static int find_exif(j_decompress_ptr c) {
    for (jpeg_saved_marker_ptr m = c->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && !memcmp(m->data, "Exif\0\0", 6))
            return ca_exif_orientation(m->data + 6, m->data_length - 6);
    return 1;
}

ca_image *ca_decode_jpeg(const uint8_t *data, size_t len, const char *name,
                         const ca_image_params *p, int *orientation, ca_status *st) {
    struct jpeg_decompress_struct c;
    jerr_mgr err;
    ca_image *volatile img = NULL;
    memset(&c, 0, sizeof c);
    c.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.truncated = 0;
    if (setjmp(err.jb)) {
        char msg[JMSG_LENGTH_MAX];
        err.pub.format_message((j_common_ptr)&c, msg);
        jpeg_destroy_decompress(&c);
        ca_image_free(img);
        *st = ca_fail(CA_E_FORMAT, "%s: corrupt JPEG: %s", name, msg);
        return NULL;
    }
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, data, (unsigned long)len);
    if (p->exif_rotate) jpeg_save_markers(&c, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&c, TRUE);
    ca_pxmode mode;
    switch (c.num_components) {
    case 1: mode = CA_PX_L; c.out_color_space = JCS_GRAYSCALE; break;
    case 3: mode = CA_PX_RGB; c.out_color_space = JCS_RGB; break;
    case 4: mode = CA_PX_CMYK; c.out_color_space = JCS_CMYK; break;
    default:
        jpeg_destroy_decompress(&c);
        *st = ca_fail(CA_E_UNSUPPORTED, "%s: JPEG with %d components is not supported", name, c.num_components);
        return NULL;
    }
    *orientation = p->exif_rotate ? find_exif(&c) : 1;
    if (c.image_width > INT32_MAX || c.image_height > INT32_MAX) {
        jpeg_destroy_decompress(&c);
        *st = ca_fail(CA_E_RANGE, "%s: JPEG size %ux%u too large", name, c.image_width, c.image_height);
        return NULL;
    }
    img = ca_image_alloc((int)c.image_width, (int)c.image_height, mode, p->max_pixels, name, st);
    if (!img) {
        jpeg_destroy_decompress(&c);
        return NULL;
    }
    jpeg_start_decompress(&c);
    if ((int)c.output_width != img->w || (int)c.output_height != img->h || c.output_components != img->c)
        ERREXIT(&c, JERR_BAD_DCTSIZE); /* cannot happen without scaling; keeps the buffer safe */
    size_t row = ca_image_row_bytes(img);
    while (c.output_scanline < c.output_height && !err.truncated) {
        JSAMPROW r = img->px + (size_t)c.output_scanline * row;
        jpeg_read_scanlines(&c, &r, 1);
    }
    if (err.truncated) {
        jpeg_destroy_decompress(&c);
        ca_image_free(img);
        *st = ca_fail(CA_E_FORMAT, "%s: truncated JPEG (premature end of data)", name);
        return NULL;
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
    if (mode == CA_PX_CMYK) { /* Adobe writes inverted CMYK; Pillow's "CMYK;I" flips it back */
        size_t n = row * (size_t)img->h;
        for (size_t i = 0; i < n; i++) img->px[i] = (uint8_t)(255 - img->px[i]);
    }
    *st = CA_OK;
    return img;
}
