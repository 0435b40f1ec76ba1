/* image_buf.h — internal layout of a decoded image and the buffer helpers (image_buf.c) that the
 * decoders share; the decoders themselves are declared in decoders.h. Pixels stay in the file's
 * own Pillow mode (L, LA, RGB, RGBA, CMYK, I, P, 1) because the reference resizes before it
 * converts to RGB. Not public API. */
#ifndef CA_IO_IMAGE_BUF_H
#define CA_IO_IMAGE_BUF_H

#include "core/core.h"

typedef enum {
    CA_PX_L,     /* 1 byte: grey; also Pillow "1" (values 0/255) */
    CA_PX_LA,    /* 2 bytes: grey, alpha */
    CA_PX_RGB,   /* 3 bytes; also Pillow "P" (palette already expanded) */
    CA_PX_RGBA,  /* 4 bytes, straight (not premultiplied) alpha */
    CA_PX_CMYK,  /* 4 bytes, Pillow's polarity (0 = no ink) */
    CA_PX_I32    /* one int32 per pixel: Pillow "I" (16-bit grey PNG) */
} ca_pxmode;

struct ca_image {
    int w, h;
    int c;             /* samples per pixel (I32: 1) */
    ca_pxmode mode;
    int nearest;       /* Pillow modes "P" and "1": Image.resize silently uses NEAREST for them */
    const char *name;  /* Pillow mode name: "L", "LA", "RGB", "RGBA", "CMYK", "I", "P", "1" */
    uint8_t *px;       /* h rows of w*c samples (I32: w int32), tightly packed */
};

/* Allocate an image after checking w*h against max_pixels (CA_E_RANGE) and overflow.
 * name is the file name used in error messages. */
ca_image *ca_image_alloc(int w, int h, ca_pxmode mode, int64_t max_pixels, const char *name,
                         ca_status *st);
/* The size checks of ca_image_alloc alone, for decoders that validate before allocating. */
ca_status ca_image_check_size(int w, int h, int64_t max_pixels, const char *name);
size_t ca_image_row_bytes(const ca_image *img);

/* A new image transposed by orientation o (2..8) as Pillow's ImageOps.exif_transpose (and TIFF's
 * load_end); keeps mode, name and the nearest flag. */
ca_image *ca_image_orient(const ca_image *in, int o, const char *name, ca_status *st);

/* EXIF orientation from a TIFF-structured block (starting at "II*\0" or "MM\0*"); 1 if absent. */
int ca_exif_orientation(const uint8_t *tiff, size_t len);

#endif
