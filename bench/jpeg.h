/* bench/jpeg.h — RGB pixels to an in-memory JPEG with libjpeg (quality 90, 4:2:0): how the
 * benches make realistic photo files from the shared images. Not a library API. */
#ifndef CA_BENCH_JPEG_H
#define CA_BENCH_JPEG_H

#include <jpeglib.h>
#include <stdint.h>

/* rgb (h, w, 3) -> a malloc'd JPEG of *len bytes (caller frees). */
static unsigned char *bench_encode_jpeg(const uint8_t *rgb, int w, int h, unsigned long *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *buf = NULL;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, len);
    c.image_width = (JDIMENSION)w; c.image_height = (JDIMENSION)h;
    c.input_components = 3; c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return buf;
}

#endif
