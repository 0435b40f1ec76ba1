/* fuzz_image.c — libFuzzer target for the decoders' wrapper: arbitrary bytes must either be
 * refused with a status and a message, or decode into an image that preprocessing and
 * augmentation can read entirely. The pixel limit keeps huge declared sizes cheap. */
#include "clipadapt.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ca_image_params p = ca_image_default_params();
    p.max_pixels = 1 << 22;
    p.exif_rotate = size > 0 && (data[size - 1] & 1);
    ca_status st;
    ca_image *img = ca_image_decode(data, size, "fuzz", &p, &st);
    if (!img) {
        if (st == CA_OK || !ca_last_error()[0]) abort(); /* a failure must say why */
        return 0;
    }
    if (ca_image_width(img) <= 0 || ca_image_height(img) <= 0) abort();
    float out[3 * 16 * 16];
    if (ca_preprocess(img, 16, out) != CA_OK) abort();
    if (ca_augment(img, 16, 1, 2, 3, out) != CA_OK) abort();
    ca_image_free(img);
    return 0;
}
