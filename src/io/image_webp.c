/* image_webp.c — WebP decoding with libwebp the way Pillow 9.4 does it: every file (still or
 * animated) goes through WebPAnimDecoder with default options (MODE_RGBA, fancy upsampling),
 * and only the first frame is kept, on a zero-filled canvas. The mode follows WebPGetFeatures:
 * RGBA when the file declares alpha, else RGB (Pillow's "RGBX" raw mode). Not here: encoding,
 * later animation frames, ICC profiles. */
#include "io/decoders.h"

#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

static const char *vp8_status(VP8StatusCode c) {
    switch (c) {
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated WebP (not enough data)";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported WebP feature";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory (libwebp)";
    default: return "corrupt WebP (invalid bitstream)";
    }
}

/* EXIF orientation from the container's EXIF chunk; Pillow accepts it with or without the
 * "Exif\0\0" prefix that some writers put in front of the TIFF header. */
static int webp_orientation(const WebPDemuxer *dmx) {
    WebPChunkIterator it;
    int o = 1;
    if (!WebPDemuxGetChunk(dmx, "EXIF", 1, &it)) return 1;
    const uint8_t *e = it.chunk.bytes;
    size_t n = it.chunk.size;
    if (n >= 6 && !memcmp(e, "Exif\0\0", 6)) { e += 6; n -= 6; }
    o = ca_exif_orientation(e, n);
    WebPDemuxReleaseChunkIterator(&it);
    return o;
}

ca_image *ca_decode_webp(const uint8_t *data, size_t len, const char *name,
                         const ca_image_params *p, int *orientation, ca_status *st) {
    *orientation = 1;
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(data, len, &f);
    if (vs != VP8_STATUS_OK) {
        *st = ca_fail(vs == VP8_STATUS_OUT_OF_MEMORY ? CA_E_NOMEM : CA_E_FORMAT, "%s: %s", name, vp8_status(vs));
        return NULL;
    }
    /* The canvas (up to 2^24 per side) is allocated by libwebp: check the limit before. */
    ca_image *img = ca_image_alloc(f.width, f.height, f.has_alpha ? CA_PX_RGBA : CA_PX_RGB,
                                   p->max_pixels, name, st);
    if (!img) return NULL;
    WebPData wd = {data, len};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, NULL); /* NULL: MODE_RGBA, as Pillow */
    WebPAnimInfo info;
    uint8_t *rgba = NULL;
    int ts = 0;
    if (!dec) {
        *st = ca_fail(CA_E_FORMAT, "%s: corrupt or truncated WebP (cannot parse the container)", name);
        goto fail;
    }
    if (!WebPAnimDecoderGetInfo(dec, &info) || info.frame_count < 1 ||
        (int)info.canvas_width != f.width || (int)info.canvas_height != f.height) {
        *st = ca_fail(CA_E_FORMAT, "%s: corrupt WebP (inconsistent canvas size)", name);
        goto fail;
    }
    if (!WebPAnimDecoderGetNext(dec, &rgba, &ts) || !rgba) {
        *st = ca_fail(CA_E_FORMAT, "%s: corrupt or truncated WebP (cannot decode the first frame)", name);
        goto fail;
    }
    size_t n = (size_t)f.width * (size_t)f.height;
    if (img->c == 4) memcpy(img->px, rgba, n * 4);
    else
        for (size_t i = 0; i < n; i++) memcpy(img->px + 3 * i, rgba + 4 * i, 3);
    if (p->exif_rotate) *orientation = webp_orientation(WebPAnimDecoderGetDemuxer(dec));
    WebPAnimDecoderDelete(dec);
    *st = CA_OK;
    return img;
fail:
    WebPAnimDecoderDelete(dec);
    ca_image_free(img);
    return NULL;
}
