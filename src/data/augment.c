/* augment.c — seeded training augmentation as Tip-Adapter builds its cache: the image is
 * converted to RGB first (its loader opens images with convert("RGB")), then torchvision's
 * RandomResizedCrop(size, scale (0.5, 1), ratio (3/4, 4/3), bicubic) and RandomHorizontalFlip
 * (p = 0.5). Random draws come from one counter-based stream per (seed, image, view), so a view
 * never depends on thread count or on which other views were drawn. Not torch's RNG stream. */
#include "data/preprocess.h"

#include <math.h>
#include <string.h>

/* torchvision RandomResizedCrop.get_params with scale (0.5, 1), ratio (3/4, 4/3). */
void ca_rrc_params(ca_rng *r, int width, int height, ca_rect *out) {
    const double smin = 0.5, smax = 1.0, rmin = 3.0 / 4.0, rmax = 4.0 / 3.0;
    double area = (double)width * height, lr0 = log(rmin), lr1 = log(rmax);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (smin + (smax - smin) * ca_rng_uniform(r));
        double aspect = exp(lr0 + (lr1 - lr0) * ca_rng_uniform(r));
        double wd = rint(sqrt(target * aspect)), hd = rint(sqrt(target / aspect)); /* Python round */
        if (wd > 0 && wd <= width && hd > 0 && hd <= height) {
            int w = (int)wd, h = (int)hd;
            out->y = (int)ca_rng_below(r, (uint32_t)(height - h + 1));
            out->x = (int)ca_rng_below(r, (uint32_t)(width - w + 1));
            out->w = w; out->h = h;
            return;
        }
    }
    /* fallback: centre crop clamped to the ratio range */
    double in_ratio = (double)width / height;
    int w, h;
    if (in_ratio < rmin) { w = width; h = (int)rint(w / rmin); }
    else if (in_ratio > rmax) { h = height; w = (int)rint(h * rmax); }
    else { w = width; h = height; }
    if (w > width) w = width;
    if (h > height) h = height;
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    out->x = (width - w) / 2; out->y = (height - h) / 2; out->w = w; out->h = h;
}

ca_rng ca_augment_rng(uint64_t seed, uint64_t image_index, uint64_t view_index) {
    return ca_rng_make(seed, ca_hash64(ca_hash64(image_index) + view_index));
}

ca_status ca_augment(const ca_image *img, int size, uint64_t seed, uint64_t image_index,
                     uint64_t view_index, float *out) {
    CA_ENTER();
    if (!img || !out || size <= 0 || size > 16384)
        return ca_fail(CA_E_ARG, "ca_augment: bad arguments (size %d)", size);
    ca_status st = CA_OK;
    ca_image *rgb_img = NULL;
    const ca_image *src = img;
    if (img->mode != CA_PX_RGB || img->nearest) {
        if (!(rgb_img = ca_image_to_rgb(img, &st))) return st;
        src = rgb_img;
    }
    ca_rng r = ca_augment_rng(seed, image_index, view_index);
    ca_rect crop;
    ca_rrc_params(&r, src->w, src->h, &crop);
    int flip = ca_rng_uniform(&r) < 0.5;
    uint8_t *rgb = ca_malloc2((size_t)size * size, 3);
    if (!rgb) { ca_image_free(rgb_img); return CA_E_NOMEM; }
    ca_rect win = {0, 0, size, size};
    st = ca_resize_crop_rgb(src, crop, size, size, win, rgb);
    if (!st) ca_normalize_rgb(rgb, size, flip, out);
    free(rgb);
    ca_image_free(rgb_img);
    return st;
}
