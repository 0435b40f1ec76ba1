/* decoders.h — the per-format decoders behind ca_image_decode (image.c), one file each.
 * They build on image_buf.h's buffer helpers and never call one another. Not public API. */
#ifndef CA_IO_DECODERS_H
#define CA_IO_DECODERS_H

#include "io/image_buf.h"

/* Decoders: buffer in, image out (NULL on failure with *st and ca_last_error set).
 * *orientation receives the EXIF orientation (1..8) when found, else 1. */
ca_image *ca_decode_jpeg(const uint8_t *data, size_t len, const char *name,
                         const ca_image_params *p, int *orientation, ca_status *st);
ca_image *ca_decode_png(const uint8_t *data, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st);

ca_image *ca_decode_webp(const uint8_t *data, size_t len, const char *name,
                         const ca_image_params *p, int *orientation, ca_status *st);
ca_image *ca_decode_gif(const uint8_t *data, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st);
ca_image *ca_decode_tiff(const uint8_t *data, size_t len, const char *name,
                         const ca_image_params *p, int *orientation, ca_status *st);
ca_image *ca_decode_ppm(const uint8_t *data, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st);
ca_image *ca_decode_bmp(const uint8_t *data, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st);

#endif
