/* preprocess.c — CLIP image preprocessing, bit-exact with Pillow 9.4 + torchvision: separable
 * bicubic resampling (horizontal pass first, 22-bit fixed-point weights, 8-bit clamped
 * intermediate), windowed so only kept pixels are computed; premultiplied alpha for LA/RGBA,
 * nearest for P/1, a float path for 16-bit grey ("I"); convert("RGB"); ToTensor + Normalize.
 * Not here: decoding (src/io/image*.c) and random crops (augment.c). */
#include "data/preprocess.h"

#include <math.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

/* GCC -O2 only vectorises loops it is told to; clang vectorises on its own and warns about the
 * pragma in unoptimised sanitizer builds. Integer lanes: the result is the same either way. */
#if defined(__clang__) || !defined(_OPENMP)
#define CA_SIMD
#else
#define CA_SIMD _Pragma("omp simd")
#endif

/* ---- coefficients ---- */

static double bicubic(double x) { /* Keys cubic with a = -0.5, support 2 */
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

void ca_coeffs_free(ca_coeffs *c) {
    if (!c) return;
    free(c->bounds); free(c->kd); free(c->k);
    memset(c, 0, sizeof *c);
}

ca_status ca_coeffs_make(ca_coeffs *c, int in_size, int out_size, int first, int n) {
    memset(c, 0, sizeof *c);
    if (in_size <= 0 || out_size <= 0 || first < 0 || n <= 0 || first + n > out_size)
        return ca_fail(CA_E_ARG, "resample: bad sizes (in %d, out %d, window %d+%d)", in_size, out_size, first, n);
    /* Pillow passes the box edges as float; here they are 0 and in_size (exact in float). */
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->first = first; c->n = n; c->ksize = ksize;
    c->bounds = ca_malloc2((size_t)n * 2, sizeof(int));
    c->kd = ca_malloc2((size_t)n * ksize, sizeof(double));
    c->k = ca_malloc2((size_t)n * ksize, sizeof(int32_t));
    if (!c->bounds || !c->kd || !c->k) { ca_coeffs_free(c); return CA_E_NOMEM; }
    for (int i = 0; i < n; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); /* truncation, as Pillow */
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize; /* cannot happen; keeps the table in bounds */
        double *k = c->kd + (size_t)i * ksize;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        for (x = 0; x < ksize; x++) {
            double v = k[x] * (1 << PRECISION_BITS);
            c->k[(size_t)i * ksize + x] = (int32_t)(k[x] < 0 ? -0.5 + v : 0.5 + v);
        }
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax;
    }
    return CA_OK;
}

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS; /* arithmetic shift: floor, like Pillow's lookup index */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* ---- 8-bit passes on interleaved samples (C channels) ---- */

/* Horizontal, 8 rows at a time: the 8 rows' samples are first interleaved column by column
 * (t: (x, row, C)), so that each tap becomes one multiply-add over 8*C contiguous lanes that
 * the compiler vectorises; sums and rounding are exactly Pillow's per-sample ones.
 * in: rows of span*C samples (row stride is); out: (rows, cx.n, C); t: scratch (span, 8, C). */
static inline void hpass8(const uint8_t *in, size_t is, int rows, int span, const ca_coeffs *cx,
                          uint8_t *out, uint8_t *t, const int C) {
    const int L = 8 * C;
    for (int y0 = 0; y0 < rows; y0 += 8) {
        int nr = rows - y0 < 8 ? rows - y0 : 8;
        for (int x = 0; x < span; x++) {
            uint8_t *d = t + (size_t)x * L;
            for (int r = 0; r < nr; r++)
                for (int ch = 0; ch < C; ch++) d[r * C + ch] = in[(size_t)(y0 + r) * is + (size_t)x * C + ch];
            for (int j = nr * C; j < L; j++) d[j] = 0;
        }
        for (int i = 0; i < cx->n; i++) {
            const int32_t *k = cx->k + (size_t)i * cx->ksize;
            const uint8_t *p = t + (size_t)cx->bounds[2 * i] * L;
            int cnt = cx->bounds[2 * i + 1];
            int32_t acc[32];
            for (int j = 0; j < L; j++) acc[j] = 1 << (PRECISION_BITS - 1);
            for (int x = 0; x < cnt; x++) {
                int32_t kv = k[x];
                const uint8_t *q = p + (size_t)x * L;
                CA_SIMD
                for (int j = 0; j < L; j++) acc[j] += q[j] * kv;
            }
            for (int r = 0; r < nr; r++)
                for (int ch = 0; ch < C; ch++)
                    out[((size_t)(y0 + r) * cx->n + i) * C + ch] = clip8(acc[r * C + ch]);
        }
    }
}

static void hpass8_any(const uint8_t *in, size_t is, int rows, int span, const ca_coeffs *cx, uint8_t *out,
                       uint8_t *t, int C) {
    switch (C) { /* a constant C lets the compiler unroll and vectorise the lane loops */
    case 1: hpass8(in, is, rows, span, cx, out, t, 1); break;
    case 2: hpass8(in, is, rows, span, cx, out, t, 2); break;
    case 3: hpass8(in, is, rows, span, cx, out, t, 3); break;
    default: hpass8(in, is, rows, span, cx, out, t, 4); break;
    }
}

/* Vertical: in (rows, width) bytes where row 0 is input row `row0`; out (cy.n, width). */
static void vpass8(const uint8_t *in, size_t width, int row0, const ca_coeffs *cy, uint8_t *out, int32_t *acc) {
    for (int i = 0; i < cy->n; i++) {
        const int32_t *k = cy->k + (size_t)i * cy->ksize;
        int ymin = cy->bounds[2 * i] - row0, cnt = cy->bounds[2 * i + 1];
        for (size_t x = 0; x < width; x++) acc[x] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < cnt; y++) {
            const uint8_t *r = in + (size_t)(ymin + y) * width;
            int32_t kv = k[y];
            CA_SIMD
            for (size_t x = 0; x < width; x++) acc[x] += r[x] * kv;
        }
        uint8_t *o = out + (size_t)i * width;
        for (size_t x = 0; x < width; x++) o[x] = clip8(acc[x]);
    }
}

/* ---- mode conversions (Pillow's Convert.c formulas) ---- */

static inline uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* LA/RGBA -> La/RGBa over n pixels of C channels (alpha last). */
static void premultiply(const uint8_t *in, uint8_t *out, size_t n, int C) {
    for (size_t i = 0; i < n; i++, in += C, out += C) {
        unsigned a = in[C - 1];
        for (int ch = 0; ch < C - 1; ch++) out[ch] = muldiv255(in[ch], a);
        out[C - 1] = (uint8_t)a;
    }
}

/* La/RGBa -> LA/RGBA in place; alpha 0 and 255 leave the colour as it is. */
static void unpremultiply(uint8_t *p, size_t n, int C) {
    for (size_t i = 0; i < n; i++, p += C) {
        unsigned a = p[C - 1];
        if (a == 0 || a == 255) continue;
        for (int ch = 0; ch < C - 1; ch++) {
            unsigned v = 255u * p[ch] / a;
            p[ch] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

/* Pillow convert("RGB") of n pixels in the given mode. */
static void to_rgb(const uint8_t *in, ca_pxmode mode, size_t n, uint8_t *rgb) {
    for (size_t i = 0; i < n; i++, rgb += 3) {
        switch (mode) {
        case CA_PX_L: rgb[0] = rgb[1] = rgb[2] = in[i]; break;
        case CA_PX_LA: rgb[0] = rgb[1] = rgb[2] = in[2 * i]; break;
        case CA_PX_RGB: memcpy(rgb, in + 3 * i, 3); break;
        case CA_PX_RGBA: memcpy(rgb, in + 4 * i, 3); break;
        case CA_PX_CMYK: {
            const uint8_t *p = in + 4 * i;
            int nk = 255 - p[3];
            for (int ch = 0; ch < 3; ch++) {
                int v = nk - muldiv255(p[ch], (unsigned)nk);
                rgb[ch] = (uint8_t)(v < 0 ? 0 : v);
            }
            break;
        }
        case CA_PX_I32: {
            int32_t v;
            memcpy(&v, in + 4 * i, 4);
            rgb[0] = rgb[1] = rgb[2] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v);
            break;
        }
        }
    }
}

ca_image *ca_image_to_rgb(const ca_image *img, ca_status *st) {
    ca_image *o = ca_image_alloc(img->w, img->h, CA_PX_RGB, 0, "image", st);
    if (!o) return NULL;
    size_t is = ca_image_row_bytes(img);
    for (int y = 0; y < img->h; y++)
        to_rgb(img->px + (size_t)y * is, img->mode, (size_t)img->w, o->px + (size_t)y * img->w * 3);
    return o;
}

static int check_args(const ca_image *img, ca_rect s, int rw, int rh, ca_rect win, const uint8_t *rgb) {
    if (!img || !rgb || s.w <= 0 || s.h <= 0 || s.x < 0 || s.y < 0 || s.x > img->w - s.w ||
        s.y > img->h - s.h || rw <= 0 || rh <= 0 || win.w <= 0 || win.h <= 0 || win.x < 0 ||
        win.y < 0 || win.x > rw - win.w || win.y > rh - win.h)
        return 0;
    return 1;
}

/* ---- nearest (P and 1): Pillow's ImagingScaleAffine ---- */

static ca_status nearest_rgb(const ca_image *img, ca_rect s, int rw, int rh, ca_rect win, uint8_t *rgb) {
    int *xs = ca_malloc2((size_t)win.w, sizeof(int));
    if (!xs) return CA_E_NOMEM;
    /* Pillow accumulates the source coordinate in double from half a step in; replaying the
     * accumulation up to the window keeps its exact rounding. */
    double sx = (double)s.w / rw, sy = (double)s.h / rh, xo = sx * 0.5, yo = sy * 0.5;
    for (int x = 0; x < win.x + win.w; x++, xo += sx) {
        if (x < win.x) continue;
        int xi = xo < 0.0 ? -1 : (int)xo;
        xs[x - win.x] = xi < 0 ? 0 : xi >= s.w ? s.w - 1 : xi;
    }
    size_t bpp = (size_t)img->c, is = ca_image_row_bytes(img);
    for (int y = 0; y < win.y + win.h; y++, yo += sy) {
        if (y < win.y) continue;
        int yi = yo < 0.0 ? -1 : (int)yo;
        yi = yi < 0 ? 0 : yi >= s.h ? s.h - 1 : yi;
        const uint8_t *r = img->px + (size_t)(s.y + yi) * is + (size_t)s.x * bpp;
        uint8_t *o = rgb + (size_t)(y - win.y) * win.w * 3;
        for (int x = 0; x < win.w; x++) to_rgb(r + xs[x] * bpp, img->mode, 1, o + 3 * x);
    }
    free(xs);
    return CA_OK;
}

/* ---- 32-bit ("I", 16-bit grey PNG): double weights, ROUND_UP, no clamping in between ---- */

static inline int32_t round_up(double f) { return (int32_t)(f >= 0.0 ? f + 0.5f : f - 0.5f); }

static ca_status resize_i32(const ca_image *img, ca_rect s, int rw, int rh, ca_rect win, uint8_t *rgb) {
    const int32_t *px = (const int32_t *)(const void *)img->px;
    int needh = rw != s.w, needv = rh != s.h;
    ca_coeffs cx = {0}, cy = {0};
    ca_status st = CA_OK;
    if (needh && (st = ca_coeffs_make(&cx, s.w, rw, win.x, win.w))) return st;
    if (needv && (st = ca_coeffs_make(&cy, s.h, rh, win.y, win.h))) { ca_coeffs_free(&cx); return st; }
    int y0 = needv ? cy.bounds[0] : win.y;
    int y1 = needv ? cy.bounds[2 * (win.h - 1)] + cy.bounds[2 * (win.h - 1) + 1] : win.y + win.h;
    int32_t *tmp = ca_malloc2((size_t)(y1 - y0) * win.w, sizeof(int32_t));
    int32_t *out = ca_malloc2((size_t)win.h * win.w, sizeof(int32_t));
    if (!tmp || !out) { st = CA_E_NOMEM; goto done; }
    for (int y = y0; y < y1; y++) {
        const int32_t *r = px + (size_t)(s.y + y) * img->w + s.x;
        int32_t *o = tmp + (size_t)(y - y0) * win.w;
        for (int i = 0; i < win.w; i++) {
            if (!needh) { o[i] = r[win.x + i]; continue; }
            const double *k = cx.kd + (size_t)i * cx.ksize;
            double ss = 0.0;
            for (int x = 0; x < cx.bounds[2 * i + 1]; x++) ss += r[cx.bounds[2 * i] + x] * k[x];
            o[i] = round_up(ss);
        }
    }
    for (int j = 0; j < win.h; j++)
        for (int i = 0; i < win.w; i++) {
            if (!needv) { out[(size_t)j * win.w + i] = tmp[(size_t)j * win.w + i]; continue; }
            const double *k = cy.kd + (size_t)j * cy.ksize;
            double ss = 0.0;
            for (int y = 0; y < cy.bounds[2 * j + 1]; y++)
                ss += tmp[(size_t)(cy.bounds[2 * j] - y0 + y) * win.w + i] * k[y];
            out[(size_t)j * win.w + i] = round_up(ss);
        }
    to_rgb((const uint8_t *)out, CA_PX_I32, (size_t)win.w * win.h, rgb);
done:
    free(tmp); free(out);
    ca_coeffs_free(&cx); ca_coeffs_free(&cy);
    return st;
}

/* ---- the windowed 8-bit path ---- */

ca_status ca_resize_crop_rgb(const ca_image *img, ca_rect s, int rw, int rh, ca_rect win, uint8_t *rgb) {
    if (!check_args(img, s, rw, rh, win, rgb))
        return ca_fail(CA_E_ARG, "resize: source, output size or window out of range");
    if (img->nearest) return nearest_rgb(img, s, rw, rh, win, rgb);
    if (img->mode == CA_PX_I32) return resize_i32(img, s, rw, rh, win, rgb);
    const int C = img->c, alpha = img->mode == CA_PX_LA || img->mode == CA_PX_RGBA;
    const int needh = rw != s.w, needv = rh != s.h;
    ca_coeffs cx = {0}, cy = {0};
    ca_status st;
    if (needh && (st = ca_coeffs_make(&cx, s.w, rw, win.x, win.w))) return st;
    if (needv && (st = ca_coeffs_make(&cy, s.h, rh, win.y, win.h))) { ca_coeffs_free(&cx); return st; }
    st = CA_OK;
    /* Source rows and columns that reach the window. */
    int y0 = needv ? cy.bounds[0] : win.y;
    int y1 = needv ? cy.bounds[2 * (win.h - 1)] + cy.bounds[2 * (win.h - 1) + 1] : win.y + win.h;
    int x0 = needh ? cx.bounds[0] : win.x;
    int x1 = needh ? cx.bounds[2 * (win.w - 1)] + cx.bounds[2 * (win.w - 1) + 1] : win.x + win.w;
    size_t is = ca_image_row_bytes(img);
    const uint8_t *src = img->px + (size_t)(s.y + y0) * is + (size_t)(s.x + x0) * C;
    uint8_t *pre = NULL, *tmp = NULL, *out = NULL, *tr = NULL;
    int32_t *acc = NULL;
    size_t tw = (size_t)win.w * C; /* intermediate row width in bytes */
    if (alpha) { /* Pillow resizes LA/RGBA as La/RGBa (premultiplied) */
        size_t pw = (size_t)(x1 - x0) * C;
        pre = ca_malloc2((size_t)(y1 - y0), pw);
        if (!pre) { st = CA_E_NOMEM; goto done; }
        for (int y = y0; y < y1; y++) premultiply(src + (size_t)(y - y0) * is, pre + (size_t)(y - y0) * pw, (size_t)(x1 - x0), C);
        src = pre; is = pw;
    }
    if (needh) {
        for (int i = 0; i < cx.n; i++) cx.bounds[2 * i] -= x0; /* relative to src */
        tmp = ca_malloc2((size_t)(y1 - y0), tw);
        tr = ca_malloc2((size_t)(x1 - x0) * 8, (size_t)C);
        if (!tmp || !tr) { st = CA_E_NOMEM; goto done; }
        hpass8_any(src, is, y1 - y0, x1 - x0, &cx, tmp, tr, C);
    }
    const uint8_t *mid = needh ? tmp : src;
    size_t ms = needh ? tw : is;
    out = ca_malloc2((size_t)win.h, tw);
    if (!out) { st = CA_E_NOMEM; goto done; }
    if (needv) {
        if (ms != tw) { /* no horizontal pass: make the rows contiguous for vpass8 */
            uint8_t *c2 = ca_malloc2((size_t)(y1 - y0), tw);
            if (!c2) { st = CA_E_NOMEM; goto done; }
            for (int y = 0; y < y1 - y0; y++) memcpy(c2 + (size_t)y * tw, mid + (size_t)y * ms, tw);
            free(tmp); tmp = c2; mid = c2;
        }
        acc = ca_malloc2(tw, sizeof(int32_t));
        if (!acc) { st = CA_E_NOMEM; goto done; }
        vpass8(mid, tw, y0, &cy, out, acc);
    } else {
        for (int y = 0; y < win.h; y++) memcpy(out + (size_t)y * tw, mid + (size_t)y * ms, tw);
    }
    if (alpha) unpremultiply(out, (size_t)win.w * win.h, C);
    to_rgb(out, img->mode, (size_t)win.w * win.h, rgb);
done:
    free(pre); free(tmp); free(out); free(acc); free(tr);
    ca_coeffs_free(&cx); ca_coeffs_free(&cy);
    return st;
}

/* ---- the oracle: whole image, Pillow's loop order, then crop ---- */

ca_status ca_resize_crop_rgb_ref(const ca_image *img, ca_rect s, int rw, int rh, ca_rect win, uint8_t *rgb) {
    if (!check_args(img, s, rw, rh, win, rgb))
        return ca_fail(CA_E_ARG, "resize: source, output size or window out of range");
    if (img->nearest || img->mode == CA_PX_I32) /* these have one straightforward path already */
        return img->nearest ? nearest_rgb(img, s, rw, rh, win, rgb) : resize_i32(img, s, rw, rh, win, rgb);
    const int C = img->c, alpha = img->mode == CA_PX_LA || img->mode == CA_PX_RGBA;
    size_t is = ca_image_row_bytes(img);
    uint8_t *a = ca_malloc2((size_t)s.w * s.h, (size_t)C);   /* source in working mode */
    uint8_t *b = ca_malloc2((size_t)rw * s.h, (size_t)C);    /* after horizontal */
    uint8_t *c = ca_malloc2((size_t)rw * rh, (size_t)C);     /* after vertical */
    uint8_t *w = ca_malloc2((size_t)win.w * win.h, (size_t)C);
    ca_coeffs cx = {0}, cy = {0};
    ca_status st = CA_OK;
    if (!a || !b || !c || !w) { st = CA_E_NOMEM; goto done; }
    for (int y = 0; y < s.h; y++) {
        const uint8_t *r = img->px + (size_t)(s.y + y) * is + (size_t)s.x * C;
        if (alpha) premultiply(r, a + (size_t)y * s.w * C, (size_t)s.w, C);
        else memcpy(a + (size_t)y * s.w * C, r, (size_t)s.w * C);
    }
    if (rw != s.w) {
        if ((st = ca_coeffs_make(&cx, s.w, rw, 0, rw))) goto done;
        for (int y = 0; y < s.h; y++)
            for (int i = 0; i < rw; i++)
                for (int ch = 0; ch < C; ch++) {
                    int32_t acc = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < cx.bounds[2 * i + 1]; x++)
                        acc += a[((size_t)y * s.w + cx.bounds[2 * i] + x) * C + ch] * cx.k[(size_t)i * cx.ksize + x];
                    b[((size_t)y * rw + i) * C + ch] = clip8(acc);
                }
    } else {
        memcpy(b, a, (size_t)s.w * s.h * C);
    }
    if (rh != s.h) {
        if ((st = ca_coeffs_make(&cy, s.h, rh, 0, rh))) goto done;
        for (int j = 0; j < rh; j++)
            for (int i = 0; i < rw; i++)
                for (int ch = 0; ch < C; ch++) {
                    int32_t acc = 1 << (PRECISION_BITS - 1);
                    for (int y = 0; y < cy.bounds[2 * j + 1]; y++)
                        acc += b[((size_t)(cy.bounds[2 * j] + y) * rw + i) * C + ch] * cy.k[(size_t)j * cy.ksize + y];
                    c[((size_t)j * rw + i) * C + ch] = clip8(acc);
                }
    } else {
        memcpy(c, b, (size_t)rw * rh * C);
    }
    if (alpha) unpremultiply(c, (size_t)rw * rh, C);
    for (int y = 0; y < win.h; y++)
        memcpy(w + (size_t)y * win.w * C, c + ((size_t)(win.y + y) * rw + win.x) * C, (size_t)win.w * C);
    to_rgb(w, img->mode, (size_t)win.w * win.h, rgb);
done:
    free(a); free(b); free(c); free(w);
    ca_coeffs_free(&cx); ca_coeffs_free(&cy);
    return st;
}

/* ---- normalisation and the public entry point ---- */

void ca_normalize_rgb(const uint8_t *rgb, int size, int flip, float *out) {
    /* torch stores the Python floats as float32; casting the doubles reproduces that rounding */
    const float mean[3] = {(float)0.48145466, (float)0.4578275, (float)0.40821073};
    const float stdv[3] = {(float)0.26862954, (float)0.26130258, (float)0.27577711};
    size_t plane = (size_t)size * size;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            const uint8_t *p = rgb + ((size_t)y * size + (flip ? size - 1 - x : x)) * 3;
            for (int ch = 0; ch < 3; ch++) {
                float v = (float)p[ch] / 255.0f; /* ToTensor */
                out[ch * plane + (size_t)y * size + x] = (v - mean[ch]) / stdv[ch];
            }
        }
}

void ca_resize_short_side(int w, int h, int size, int *rw, int *rh) {
    int s = w < h ? w : h, l = w < h ? h : w;
    int nl = (int)((double)size * l / s); /* Python: int(size * long / short) */
    if (w <= h) { *rw = size; *rh = nl; }
    else { *rw = nl; *rh = size; }
}

ca_status ca_preprocess(const ca_image *img, int size, float *out) {
    CA_ENTER();
    if (!img || !out || size <= 0 || size > 16384)
        return ca_fail(CA_E_ARG, "ca_preprocess: bad arguments (size %d)", size);
    if ((double)size * (img->w > img->h ? img->w : img->h) / (img->w < img->h ? img->w : img->h) > 1e8)
        return ca_fail(CA_E_RANGE, "ca_preprocess: aspect ratio of %dx%d too extreme", img->w, img->h);
    int rw, rh;
    ca_resize_short_side(img->w, img->h, size, &rw, &rh);
    /* CenterCrop: int(round((h - size) / 2.0)), Python's round halves to even (rint does too) */
    ca_rect win = {(int)rint((rw - size) / 2.0), (int)rint((rh - size) / 2.0), size, size};
    ca_rect src = {0, 0, img->w, img->h};
    uint8_t *rgb = ca_malloc2((size_t)size * size, 3);
    if (!rgb) return CA_E_NOMEM;
    ca_status st = ca_resize_crop_rgb(img, src, rw, rh, win, rgb);
    if (!st) ca_normalize_rgb(rgb, size, 0, out);
    free(rgb);
    return st;
}
