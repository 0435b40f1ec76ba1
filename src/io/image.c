/* image.c — decoding entry points: format sniffing, dispatch to the decoders and the optional
 * EXIF orientation. Decoding itself lives in image_jpeg.c, image_png.c, image_gif.c,
 * image_webp.c, image_bmp.c, image_tiff.c and image_ppm.c (signatures as Pillow's plugins accept them); the pixel buffer
 * they fill lives in image_buf.c; resampling lives in src/data/preprocess.c. */
#include "io/decoders.h"

#include <string.h>

ca_image_params ca_image_default_params(void) {
    ca_image_params p;
    p.max_pixels = 178956970; /* Pillow's MAX_IMAGE_PIXELS x 2: where Pillow raises, not warns */
    p.exif_rotate = 0;
    return p;
}

ca_image *ca_image_decode(const void *data, size_t len, const char *name, const ca_image_params *p,
                          ca_status *st) {
    CA_ENTER();
    ca_status dummy;
    if (!st) st = &dummy;
    ca_image_params defp = ca_image_default_params();
    if (!p) p = &defp;
    if (!name) name = "image";
    const uint8_t *b = data;
    if (!data || len == 0) { *st = ca_fail(CA_E_FORMAT, "%s: empty file", name); return NULL; }
    int o = 1;
    ca_image *img;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        img = ca_decode_jpeg(b, len, name, p, &o, st);
    else if (len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        img = ca_decode_png(b, len, name, p, &o, st);
    else if (len >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
        img = ca_decode_gif(b, len, name, p, &o, st);
    else if (len >= 16 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4) &&
             (!memcmp(b + 12, "VP8 ", 4) || !memcmp(b + 12, "VP8L", 4) || !memcmp(b + 12, "VP8X", 4)))
        img = ca_decode_webp(b, len, name, p, &o, st);
    else if (len >= 2 && b[0] == 'B' && b[1] == 'M')
        img = ca_decode_bmp(b, len, name, p, &o, st);
    else if (len >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4) || !memcmp(b, "II+\0", 4) ||
                          !memcmp(b, "MM\0+", 4) || !memcmp(b, "MM*\0", 4) || !memcmp(b, "II\0*", 4)))
        img = ca_decode_tiff(b, len, name, p, &o, st); /* Pillow's TIFF prefixes, BigTIFF included */
    else if (len >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6')
        img = ca_decode_ppm(b, len, name, p, &o, st);
    else {
        *st = ca_fail(CA_E_FORMAT, "%s: not a JPEG, PNG, GIF, WebP, BMP, TIFF or PPM/PGM/PBM image (unrecognised signature)", name);
        return NULL;
    }
    if (img && p->exif_rotate && o > 1) {
        ca_image *r = ca_image_orient(img, o, name, st);
        ca_image_free(img);
        img = r;
    }
    if (img) *st = CA_OK;
    return img;
}

ca_image *ca_image_load(const char *path, const ca_image_params *p, ca_status *st) {
    CA_ENTER();
    ca_status dummy;
    if (!st) st = &dummy;
    size_t len;
    char *buf = ca_read_file(path, &len, st);
    if (!buf) return NULL;
    ca_image *img = ca_image_decode(buf, len, path, p, st);
    free(buf);
    return img;
}
