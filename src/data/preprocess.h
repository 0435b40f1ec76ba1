/* preprocess.h — internal resampling API shared by preprocess.c and augment.c: Pillow 9.4's
 * Image.resize (bicubic, or nearest for P/1 images) of a sub-rectangle, windowed so that only
 * the output pixels that are kept get computed, followed by Pillow's convert("RGB"). */
#ifndef CA_DATA_PREPROCESS_H
#define CA_DATA_PREPROCESS_H

#include "io/image_buf.h"

/* Resampling coefficients of one axis for outputs [first, first + n) of an in_size -> out_size
 * resize (Pillow's precompute_coeffs with the bicubic filter, a = -0.5). */
typedef struct {
    int first, n, ksize;
    int *bounds;   /* (n, 2): first input index, number of taps */
    double *kd;    /* (n, ksize): normalised weights (used by the 32-bit "I" path) */
    int32_t *k;    /* (n, ksize): kd in fixed point, 22 fractional bits (the 8-bit path) */
} ca_coeffs;

ca_status ca_coeffs_make(ca_coeffs *c, int in_size, int out_size, int first, int n);
void ca_coeffs_free(ca_coeffs *c);

/* A rectangle: x, y, width, height. */
typedef struct { int x, y, w, h; } ca_rect;

/* Take the sub-image src of img (like PIL crop), resize it to rw x rh as PIL Image.resize with
 * BICUBIC in the image's own mode (NEAREST for P and 1, premultiplied alpha for LA and RGBA),
 * keep the window win of the result, and convert it to RGB as PIL convert("RGB").
 * rgb: (win.h, win.w, 3) uint8. Only the kept window is computed. Thread-safe. */
ca_status ca_resize_crop_rgb(const ca_image *img, ca_rect src, int rw, int rh, ca_rect win,
                             uint8_t *rgb);
/* The same by the most literal route (full resize, then crop): the test oracle. */
ca_status ca_resize_crop_rgb_ref(const ca_image *img, ca_rect src, int rw, int rh, ca_rect win,
                                 uint8_t *rgb);

/* rgb (size, size, 3) uint8 -> out (3, size, size) float32: v/255, then (x - mean)/std with
 * CLIP's mean/std, in float32 like torchvision's ToTensor + Normalize. flip mirrors left-right. */
void ca_normalize_rgb(const uint8_t *rgb, int size, int flip, float *out);

/* torchvision Resize(size) output size for a w x h image: short side = size, long side =
 * int(size * long / short). */
void ca_resize_short_side(int w, int h, int size, int *rw, int *rh);

/* Pillow convert("RGB") of a whole image into a new RGB image (caller frees). */
ca_image *ca_image_to_rgb(const ca_image *img, ca_status *st);

/* Augmentation internals (augment.c), exposed for tests: the stream of one view, and
 * torchvision's RandomResizedCrop.get_params (scale (0.5, 1), ratio (3/4, 4/3)) drawn from it. */
ca_rng ca_augment_rng(uint64_t seed, uint64_t image_index, uint64_t view_index);
void ca_rrc_params(ca_rng *r, int width, int height, ca_rect *out);

#endif
