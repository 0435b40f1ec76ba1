/* image_gif.c — the first frame of a GIF, decoded with giflib into Pillow 9.4's frame-0 image
 * (GifImagePlugin without seeking): mode "P" with the local palette, else the global one; mode
 * "L" when there is none or it is the identity grey ramp (Pillow drops such palettes). The
 * canvas is the logical screen grown to hold the frame, filled with the frame's transparent
 * index when its graphic control block sets one, else 0; transparency itself is metadata that
 * convert("RGB") ignores. Indices past the palette read Pillow's default grey ramp (i, i, i).
 * Not here: later frames, disposal, LZW itself (giflib). */
#include "io/decoders.h"

#include <gif_lib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    int pad, padded; /* past the end of the pixel data, read zeros (see gif_read) */
} gif_src;

/* A short read is giflib's "read failed". Inside the image data, though, a block length read
 * at the very end of the file reads as 0: a file cut off right after its last LZW block (no
 * block terminator, no trailer) then decodes, as in Pillow, while data cut off earlier fails —
 * inside a block as a short read, between blocks as an empty block before the end code. */
static int gif_read(GifFileType *g, GifByteType *out, int n) {
    gif_src *s = g->UserData;
    size_t want = n > 0 ? (size_t)n : 0, k = want;
    if (k > s->len - s->pos) k = s->len - s->pos;
    memcpy(out, s->data + s->pos, k);
    s->pos += k;
    if (k == 0 && want == 1 && s->pad) {
        out[0] = 0;
        s->padded = 1;
        return (int)want;
    }
    return (int)k;
}

static const char *gif_err(int code) {
    switch (code) {
    case D_GIF_ERR_READ_FAILED: return "truncated or corrupt GIF (unexpected end of data)";
    case D_GIF_ERR_EOF_TOO_SOON: return "corrupt GIF (image data ends before the last pixel)";
    case D_GIF_ERR_IMAGE_DEFECT: return "corrupt GIF (bad LZW code)";
    case D_GIF_ERR_NOT_ENOUGH_MEM: return "out of memory (giflib)";
    case D_GIF_ERR_WRONG_RECORD: return "corrupt GIF (unknown block type)";
    case D_GIF_ERR_NO_SCRN_DSCR: return "truncated or corrupt GIF (screen descriptor or global palette)";
    case D_GIF_ERR_NO_IMAG_DSCR: return "truncated or corrupt GIF (image descriptor or local palette)";
    default: {
        const char *m = GifErrorString(code);
        return m ? m : "corrupt GIF";
    }
    }
}

/* Pillow's _is_palette_needed: a palette whose entry i is (i, i, i) for every i is no palette. */
static int palette_needed(const ColorMapObject *m) {
    for (int i = 0; i < m->ColorCount; i++)
        if (m->Colors[i].Red != i || m->Colors[i].Green != i || m->Colors[i].Blue != i) return 1;
    return 0;
}

ca_image *ca_decode_gif(const uint8_t *data, size_t len, const char *name,
                        const ca_image_params *p, int *orientation, ca_status *st) {
    *orientation = 1;
    gif_src src = {data, len, 0, 0, 0};
    int err = 0;
    GifFileType *g = DGifOpen(&src, gif_read, &err);
    if (!g) {
        *st = ca_fail(err == D_GIF_ERR_NOT_ENOUGH_MEM ? CA_E_NOMEM : CA_E_FORMAT, "%s: %s", name, gif_err(err));
        return NULL;
    }
    ca_image *img = NULL;
    uint8_t *idx = NULL, *line = NULL;
    int trns = -1;
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(g, &rt) == GIF_ERROR) goto gif_error;
        if (rt == TERMINATE_RECORD_TYPE) {
            *st = ca_fail(CA_E_FORMAT, "%s: GIF has no image", name);
            goto fail;
        }
        if (rt == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext;
            if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) goto gif_error;
            /* Graphic control: ext[0] is the block length, then flags, delay (2), index. */
            if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4 && (ext[1] & 1)) trns = ext[4];
            while (ext)
                if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) goto gif_error;
            continue;
        }
        if (rt != IMAGE_DESC_RECORD_TYPE) continue;
        if (DGifGetImageDesc(g) == GIF_ERROR) goto gif_error;
        src.pad = 1;
        break;
    }
    const GifImageDesc *d = &g->Image;
    if (d->Width <= 0 || d->Height <= 0) {
        *st = ca_fail(CA_E_FORMAT, "%s: GIF frame has no pixels (%dx%d)", name, d->Width, d->Height);
        goto fail;
    }
    /* Pillow grows the image to hold a frame that sticks out of the logical screen
     * (all values are 16-bit, so no overflow). */
    int w = d->Left + d->Width > g->SWidth ? d->Left + d->Width : g->SWidth;
    int h = d->Top + d->Height > g->SHeight ? d->Top + d->Height : g->SHeight;
    const ColorMapObject *pal = d->ColorMap ? d->ColorMap : g->SColorMap;
    if (pal && !palette_needed(pal)) pal = NULL; /* a local grey ramp also hides the global palette */
    img = ca_image_alloc(w, h, pal ? CA_PX_RGB : CA_PX_L, p->max_pixels, name, st);
    if (!img) goto fail;
    if (pal) { img->nearest = 1; img->name = "P"; }
    idx = ca_malloc2((size_t)w, (size_t)h);
    line = malloc((size_t)d->Width);
    if (!idx || !line) {
        *st = ca_fail(CA_E_NOMEM, "%s: out of memory for %dx%d pixels", name, w, h);
        goto fail;
    }
    memset(idx, trns >= 0 ? trns : 0, (size_t)w * h);
    /* Interlaced rows come in four passes: every 8th from 0, every 8th from 4, every 4th from 2,
     * every 2nd from 1. */
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    int passes = d->Interlace ? 4 : 1;
    for (int pass = 0; pass < passes; pass++)
        for (int y = d->Interlace ? start[pass] : 0; y < d->Height; y += d->Interlace ? step[pass] : 1) {
            if (DGifGetLine(g, line, d->Width) == GIF_ERROR) goto gif_error;
            memcpy(idx + (size_t)(d->Top + y) * w + d->Left, line, (size_t)d->Width);
        }
    size_t n = (size_t)w * h;
    if (pal) {
        for (size_t i = 0; i < n; i++) {
            unsigned k = idx[i];
            uint8_t *o = img->px + 3 * i;
            if ((int)k < pal->ColorCount) { o[0] = pal->Colors[k].Red; o[1] = pal->Colors[k].Green; o[2] = pal->Colors[k].Blue; }
            else o[0] = o[1] = o[2] = (uint8_t)k; /* Pillow's palette starts as a grey ramp */
        }
    } else {
        memcpy(img->px, idx, n);
    }
    free(idx); free(line);
    DGifCloseFile(g, &err);
    *st = CA_OK;
    return img;
gif_error:
    *st = ca_fail(g->Error == D_GIF_ERR_NOT_ENOUGH_MEM ? CA_E_NOMEM : CA_E_FORMAT, "%s: %s", name,
                  src.padded ? "truncated GIF (image data cut off)" : gif_err(g->Error));
fail:
    free(idx); free(line);
    ca_image_free(img);
    DGifCloseFile(g, &err);
    return NULL;
}
