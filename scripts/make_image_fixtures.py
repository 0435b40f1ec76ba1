#!/usr/bin/python3
"""make_image_fixtures.py — developer tool (not run by the build or tests): writes small images in
the modes the shared goldens do not cover (palette, 1-bit, 16-bit grey, LA, CMYK and grey JPEG,
RGBA with zero alpha, EXIF-rotated JPEG) into tests/data/images/, plus expected.safetensors with
Pillow's own uint8 RGB output (U8 [N,N,3]) of the CLIP pipeline and of a few crop+resize boxes.
Needs Debian's python3-pil (Pillow 9.4): run as /usr/bin/python3 scripts/make_image_fixtures.py."""
import io, json, math, os, random, struct
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "images")
rnd = random.Random(6)


def pattern(w, h, bands, rng=None):
    """Smooth gradients plus noise and a hard edge, so resampling has something to get wrong."""
    rng = rng or rnd
    data = bytearray()
    for y in range(h):
        for x in range(w):
            for b in range(bands):
                v = (x * 255 // max(w - 1, 1) * (b % 2) + y * 255 // max(h - 1, 1) * (1 - b % 2)) // 2
                v += rng.randint(0, 90) + (100 if (x > w // 3) ^ (y > h // 2) else 0)
                data.append(max(0, min(255, v)))
    return bytes(data)


def raw_png(w, h, color_type, depth, samples, plte=b""):
    """A PNG written by hand (Pillow cannot write these): samples are big-endian values."""
    import zlib
    chan = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    rows = b""
    for y in range(h):
        row = samples[y * w * chan:(y + 1) * w * chan]
        if depth == 16:
            rows += b"\0" + b"".join(struct.pack(">H", v) for v in row)
        elif depth == 8:
            rows += b"\0" + bytes(row)
        else:  # 1, 2, 4 bits, packed MSB first
            bits, acc, n = b"", 0, 0
            for v in row:
                acc = acc << depth | v
                n += depth
                if n == 8:
                    bits += bytes([acc]); acc, n = 0, 0
            if n:
                bits += bytes([acc << (8 - n)])
            rows += b"\0" + bits

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    pl = chunk(b"PLTE", plte) if plte else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + pl + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def clip_pipeline(im, n):
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    nl = int(n * long / short)
    nw, nh = (n, nl) if w <= h else (nl, n)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - n) / 2.0)), int(round((nw - n) / 2.0))
    im = im.crop((left, top, left + n, top + n))
    return im.convert("RGB").tobytes()


def crop_resize(im, box, n):
    x, y, w, h = box
    return im.convert("RGB").crop((x, y, x + w, y + h)).resize((n, n), Image.BICUBIC).tobytes()


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    rgb = Image.frombytes("RGB", (41, 29), pattern(41, 29, 3))
    files["palette.png"] = (rgb.quantize(200), {"transparency": 3})
    files["palette4.png"] = (rgb.quantize(16), {"bits": 4})
    files["bilevel.png"] = (Image.frombytes("L", (37, 31), pattern(37, 31, 1)).convert("1"), {})
    i16 = Image.new("I;16", (33, 27))
    i16.putdata([rnd.randint(0, 320) for _ in range(33 * 27)])
    files["gray16.png"] = (i16, {})
    la = Image.frombytes("LA", (30, 44), pattern(30, 44, 2))
    files["gray-alpha.png"] = (la, {})
    rgba = bytearray(pattern(45, 35, 4))
    for i in range(3, len(rgba), 4):
        if (i // 4) % 7 == 0:
            rgba[i] = 0
    files["rgba-holes.png"] = (Image.frombytes("RGBA", (45, 35), bytes(rgba)), {})
    files["cmyk.jpg"] = (Image.frombytes("CMYK", (39, 30), pattern(39, 30, 4)), {"quality": 90})
    files["gray.jpg"] = (Image.frombytes("L", (50, 34), pattern(50, 34, 1)), {"quality": 90})
    exif = Image.Exif()
    exif[0x0112] = 6
    files["exif6.jpg"] = (Image.frombytes("RGB", (40, 26), pattern(40, 26, 3)), {"quality": 92, "exif": exif.tobytes()})
    raw = {
        "rgb16.png": raw_png(31, 27, 2, 16, [rnd.randint(0, 65535) for _ in range(31 * 27 * 3)]),
        "gray-alpha16.png": raw_png(25, 31, 4, 16, [rnd.randint(0, 65535) for _ in range(25 * 31 * 2)]),
        "gray2.png": raw_png(29, 27, 0, 2, [rnd.randint(0, 3) for _ in range(29 * 27)]),
        # indices past a 5-entry PLTE: Pillow shows its default grey ramp (i, i, i) there
        "pal-short.png": raw_png(26, 25, 3, 8, [(x * 9 + y * 7) % 256 if (x + y) % 3 else (x + y) % 5
                                                for y in range(25) for x in range(26)],
                                 plte=bytes([220, 30, 40, 30, 200, 60, 20, 40, 210, 250, 240, 90, 90, 60, 30])),
    }
    for name, data in raw.items():
        files[name] = (None, data)
    tensors = {}
    for name, (im, kw) in files.items():
        path = os.path.join(OUT, name)
        if im is None:
            with open(path, "wb") as f:
                f.write(kw)
        else:
            im.save(path, **kw)
        ref = Image.open(path)
        for n in (16, 24):
            tensors[f"{name}@{n}"] = clip_pipeline(ref, n)
        tensors[f"{name}@rot16"] = clip_pipeline(ImageOps.exif_transpose(Image.open(path)), 16)
        tensors[f"{name}@box16"] = crop_resize(Image.open(path), (3, 2, 21, 17), 16)
        tensors[f"{name}@box20"] = crop_resize(Image.open(path), (5, 0, 17, 25), 20)
    write_expected(os.path.join(OUT, "expected.safetensors"), tensors)


def write_expected(path, tensors):
    header, blob = {}, b""
    for k in sorted(tensors):
        v = tensors[k]
        n = int(math.isqrt(len(v) // 3))
        header[k] = {"dtype": "U8", "shape": [n, n, 3], "data_offsets": [len(blob), len(blob) + len(v)]}
        blob += v
    header["__metadata__"] = {"pillow": Image.__version__,
                              "what": "uint8 RGB after Resize(N, bicubic)+CenterCrop(N)+convert('RGB'); "
                                      "@rotN after exif_transpose; @boxN = convert('RGB').crop(box).resize((N,N), BICUBIC) "
                                      "with box x,y,w,h 3,2,21,17 (N=16) / 5,0,17,25 (N=20)"}
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + blob)


# ---- GIF, WebP and BMP (tests/data/images/expected-formats.safetensors) ----

def lzw_stream(indices, code_size):
    """GIF LZW data that never compresses: literal codes only, a clear code often enough that
    the code width stays code_size + 1. Enough to write any index layout by hand."""
    clear, width = 1 << code_size, code_size + 1
    per_clear = (1 << code_size) - 3
    codes = []
    for i, v in enumerate(indices):
        if i % per_clear == 0:
            codes.append(clear)
        codes.append(v)
    codes.append(clear + 1)
    acc = nbits = 0
    out = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 255); acc >>= 8; nbits -= 8
    if nbits:
        out.append(acc & 255)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + out[i:i + 255] for i in range(0, len(out), 255))
    return bytes([code_size]) + blocks + b"\0"


def gif_file(screen, gpal, frame, fpal=None, trns=None, interlace=False, code_size=8):
    """A one-frame GIF: screen (w, h); gpal/fpal lists of (r, g, b) (length a power of 2) or None;
    frame (x, y, w, h, indices)."""
    def ctab(pal):
        return (len(pal).bit_length() - 2), b"".join(bytes(c) for c in pal)
    flags, gtab = 0, b""
    if gpal:
        bits, gtab = ctab(gpal)
        flags = 0x80 | 0x70 | bits
    out = b"GIF89a" + struct.pack("<HHBBB", screen[0], screen[1], flags, 0, 0) + gtab
    if trns is not None:
        out += b"\x21\xf9\x04" + bytes([1]) + b"\0\0" + bytes([trns]) + b"\0"
    x, y, w, h, idx = frame
    lflags, ltab = (0x40 if interlace else 0), b""
    if fpal:
        bits, ltab = ctab(fpal)
        lflags |= 0x80 | bits
    rows = list(range(h))
    if interlace:
        rows = list(range(0, h, 8)) + list(range(4, h, 8)) + list(range(2, h, 4)) + list(range(1, h, 2))
    data = [v for r in rows for v in idx[r * w:(r + 1) * w]]
    out += b"," + struct.pack("<HHHHB", x, y, w, h, lflags) + ltab + lzw_stream(data, code_size)
    return out + b";"


def bmp_file(w, h, bits, rows, hsize=40, comp=0, masks=None, palette=None, topdown=False, colors=0, pal_pad=4):
    """A BMP written by hand: rows are the already packed pixel rows (top row first) or, for RLE,
    the whole compressed stream; masks (r, g, b[, a]) go in the header (hsize >= 56) or after it."""
    if comp in (1, 2):
        data = rows
    else:
        stride = ((w * bits + 31) >> 3) & ~3
        order = rows if topdown else rows[::-1]
        data = b"".join(r + b"\0" * (stride - len(r)) for r in order)
    pal = b"".join(bytes([c[2], c[1], c[0]]) + b"\0" * (pal_pad - 3) for c in palette or [])
    if hsize == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        info = struct.pack("<IiiHHIIiiII", hsize, w, -h if topdown else h, 1, bits, comp, len(data), 2835, 2835, colors, 0)
        m = list(masks or []) + [0] * (4 - len(masks or []))
        if hsize >= 56:
            info += struct.pack("<IIII", *m)
        elif masks:
            pal = struct.pack("<III", *m[:3]) + pal
        info += b"\0" * (hsize - len(info))
    off = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + pal + data


def pack_bits(vals, bits):
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = acc << bits | v; n += bits
        if n == 8:
            out.append(acc); acc = n = 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def rle_encode(rows, rle4, delta=False):
    """RLE8/RLE4 stream, bottom row first: runs of equal pixels as encoded runs, other stretches as
    absolute runs (RLE4: odd lengths too — Pillow 9.4 drops their last pixel, which the
    reference then shows), 00 00 after each row, 00 01 at the end. delta puts one 00 02 escape
    in the middle (Pillow reads its right/up from the two bytes after the ones the spec uses)."""
    out = bytearray()
    for ri, row in enumerate(rows[::-1]):
        i = 0
        while i < len(row):
            j = i
            while j < len(row) and row[j] == row[i] and j - i < 255:
                j += 1
            if j - i >= 3 or j == len(row):
                out += bytes([j - i, (row[i] << 4 | row[i]) if rle4 else row[i]])
                i = j
                continue
            j = i
            while j < len(row) and j - i < 40 and not (j + 2 < len(row) and row[j] == row[j + 1] == row[j + 2]):
                j += 1
            if j - i < 3:
                out += bytes([1, (row[i] << 4 | row[i]) if rle4 else row[i]])
                i += 1
                continue
            seg = row[i:j]
            out += bytes([0, len(seg)])
            body = pack_bits(seg, 4) if rle4 else bytes(seg)
            out += body + (b"\0" if len(body) % 2 else b"")
            i = j
        if delta and ri == len(rows) // 2:
            out += bytes([0, 2, 4, 0, 3, 1])
        out += bytes([0, 1]) if ri == len(rows) - 1 else bytes([0, 0])
    return bytes(out)


def formats():
    rng = random.Random(7)
    files = {}  # name -> bytes (hand-written) or (image, save kwargs)

    def rgb_im(w, h):
        return Image.frombytes("RGB", (w, h), pattern(w, h, 3, rng))

    def rgba_im(w, h, holes=7):
        px = bytearray(pattern(w, h, 4, rng))
        for i in range(3, len(px), 4):
            if (i // 4) % holes == 0:
                px[i] = 0
        return Image.frombytes("RGBA", (w, h), bytes(px))

    # WebP: what Pillow writes, lossy and lossless, with and without alpha, animated, EXIF.
    files["lossy.webp"] = (rgb_im(41, 29), {"quality": 80})
    files["lossless.webp"] = (rgb_im(33, 27), {"lossless": True})
    files["lossless-alpha.webp"] = (rgba_im(35, 30), {"lossless": True})
    files["lossy-alpha.webp"] = (rgba_im(38, 26), {"quality": 75})
    frames = [rgba_im(30, 34, holes=5 + k) for k in range(3)]
    files["anim.webp"] = (frames[0], {"save_all": True, "append_images": frames[1:], "duration": 80, "lossless": False})
    exif = Image.Exif()
    exif[0x0112] = 6
    files["exif6.webp"] = (rgb_im(40, 26), {"quality": 85, "exif": exif.tobytes()})

    # GIF: Pillow's own (interlaced by default from 16 px), transparency, animation, grey.
    files["palette.gif"] = (rgb_im(41, 29).quantize(200), {})
    t = rgb_im(36, 27).quantize(64)
    files["trns.gif"] = (t, {"transparency": 5, "interlace": False})
    gframes = [rgb_im(32, 28).quantize(32) for _ in range(3)]
    files["anim.gif"] = (gframes[0], {"save_all": True, "append_images": gframes[1:], "duration": 50, "transparency": 2, "loop": 0})
    files["gray.gif"] = (Image.frombytes("L", (34, 26), pattern(34, 26, 1, rng)), {})
    pal16 = [(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)) for _ in range(16)]
    # a frame inside a larger screen, indices past its 16-entry local palette, transparent index 3
    files["offset.gif"] = gif_file((36, 30), None, (7, 5, 20, 18, [rng.randint(0, 40) for _ in range(20 * 18)]),
                                   fpal=pal16, trns=3)
    # a frame sticking out of the screen (the image grows), 4-entry global palette, 6-bit codes
    pal4 = [(200, 30, 40), (20, 180, 60), (10, 20, 220), (250, 250, 120)]
    files["grow.gif"] = gif_file((20, 16), pal4, (4, 3, 30, 26, [rng.randint(0, 63) if rng.random() < 0.2 else rng.randint(0, 3)
                                                                  for _ in range(30 * 26)]), interlace=True, code_size=6)
    # no palette at all: mode L, the indices are grey levels (resized bicubic, not nearest)
    files["nopal.gif"] = gif_file((28, 25), None, (0, 0, 28, 25, list(pattern(28, 25, 1, rng))))

    # BMP: Pillow writes 1/8/24/32-bit; the rest by hand.
    files["rgb24.bmp"] = (rgb_im(37, 29), {})
    files["pal8.bmp"] = (rgb_im(41, 29).quantize(200), {})
    files["gray8.bmp"] = (Image.frombytes("L", (34, 27), pattern(34, 27, 1, rng)), {})
    files["bw1.bmp"] = (Image.frombytes("L", (45, 30), pattern(45, 30, 1, rng)).convert("1"), {})

    def rows_of(im, fn):
        w, h = im.size
        b = im.tobytes()
        n = len(b) // (w * h)
        return [fn(b[y * w * n:(y + 1) * w * n]) for y in range(h)]

    def bgr(r):
        return b"".join(bytes([r[i + 2], r[i + 1], r[i]]) for i in range(0, len(r), 3))
    im = rgb_im(31, 27)
    files["rgb24-topdown.bmp"] = bmp_file(31, 27, 24, rows_of(im, bgr), topdown=True)
    im = rgb_im(30, 25)
    files["rgb32.bmp"] = bmp_file(30, 25, 32, rows_of(im, lambda r: b"".join(
        bytes([r[i + 2], r[i + 1], r[i], rng.randint(0, 255)]) for i in range(0, len(r), 3))))
    im = rgba_im(33, 28)
    files["bgra32-v4.bmp"] = bmp_file(33, 28, 32, rows_of(im, lambda r: b"".join(
        bytes([r[i + 2], r[i + 1], r[i], r[i + 3]]) for i in range(0, len(r), 4))), hsize=108, comp=3,
        masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000))
    im = rgba_im(29, 31, holes=4)
    files["rgba32-v5-topdown.bmp"] = bmp_file(29, 31, 32, rows_of(im, bytes), hsize=124, comp=3,
                                              masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000), topdown=True)
    im = rgb_im(26, 30)
    files["xbgr32-bf.bmp"] = bmp_file(26, 30, 32, rows_of(im, lambda r: b"".join(
        bytes([rng.randint(0, 255), r[i + 2], r[i + 1], r[i]]) for i in range(0, len(r), 3))), comp=3,
        masks=(0xFF000000, 0xFF0000, 0xFF00))
    files["rgb555.bmp"] = bmp_file(35, 26, 16, [b"".join(struct.pack("<H", rng.randint(0, 0xFFFF)) for _ in range(35))
                                                for _ in range(26)])
    smooth = rgb_im(27, 33).tobytes()
    files["rgb565-bf.bmp"] = bmp_file(27, 33, 16, [b"".join(struct.pack("<H", (smooth[3 * (y * 27 + x)] >> 3) << 11 |
                                                                         (smooth[3 * (y * 27 + x) + 1] >> 2) << 5 |
                                                                         smooth[3 * (y * 27 + x) + 2] >> 3) for x in range(27))
                                                   for y in range(33)], comp=3, masks=(0xF800, 0x7E0, 0x1F))
    pal20 = [(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)) for _ in range(20)]
    files["pal8-short.bmp"] = bmp_file(30, 26, 8, [bytes(rng.randint(0, 19) if rng.random() < 0.7 else rng.randint(0, 255)
                                                         for _ in range(30)) for _ in range(26)], palette=pal20, colors=20)
    q16 = rgb_im(37, 25).quantize(16)
    idx = q16.tobytes()
    p16 = q16.getpalette()[:48]
    p16 = [tuple(p16[3 * i:3 * i + 3]) for i in range(16)]
    files["pal4.bmp"] = bmp_file(37, 25, 4, [pack_bits(idx[y * 37:(y + 1) * 37], 4) for y in range(25)], palette=p16)
    files["pal1.bmp"] = bmp_file(39, 26, 1, [pack_bits([1 if rng.random() < 0.5 + 0.4 * ((x > 19) - 0.5) else 0
                                                       for x in range(39)], 1) for _ in range(26)],
                                 palette=[(30, 80, 200), (250, 200, 20)])
    q = rgb_im(32, 25).quantize(256)
    pq = q.getpalette()[:768] + [0] * (768 - len(q.getpalette()[:768]))
    files["os2-pal8.bmp"] = bmp_file(32, 25, 8, [q.tobytes()[y * 32:(y + 1) * 32] for y in range(25)], hsize=12,
                                     palette=[tuple(pq[3 * i:3 * i + 3]) for i in range(256)], pal_pad=3)

    def blocky(w, h, ncol):  # runs for RLE: blocks of colour with some noise
        return [[((x // 5 + y // 4) % ncol) if rng.random() < 0.75 else rng.randint(0, ncol - 1) for x in range(w)]
                for y in range(h)]
    pal8 = [(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)) for _ in range(256)]
    rows = blocky(36, 28, 12)
    files["rle8.bmp"] = bmp_file(36, 28, 8, rle_encode(rows, False), comp=1, palette=pal8)
    rows = blocky(33, 26, 16)
    files["rle4.bmp"] = bmp_file(33, 26, 4, rle_encode(rows, True), comp=2, palette=pal16)
    rows = blocky(30, 27, 9)
    files["rle8-delta.bmp"] = bmp_file(30, 27, 8, rle_encode(rows, False, delta=True), comp=1, palette=pal8)

    tensors, table = {}, []
    for name, v in files.items():
        path = os.path.join(OUT, name)
        if isinstance(v, bytes):
            with open(path, "wb") as f:
                f.write(v)
        else:
            im, kw = v
            im.save(path, **kw)
        ref = Image.open(path)
        table.append((name, ref.mode, ref.size[0], ref.size[1]))
        for n in (16, 24):
            tensors[f"{name}@{n}"] = clip_pipeline(Image.open(path), n)
        if "exif" in name:  # elsewhere exif_transpose changes nothing
            tensors[f"{name}@rot16"] = clip_pipeline(ImageOps.exif_transpose(Image.open(path)), 16)
        tensors[f"{name}@box16"] = crop_resize(Image.open(path), (3, 2, 21, 17), 16)
        tensors[f"{name}@box20"] = crop_resize(Image.open(path), (5, 0, 17, 25), 20)
    write_expected(os.path.join(OUT, "expected-formats.safetensors"), tensors)
    for name, mode, w, h in table:  # for test_modes in tests/test_image.c
        print(f'{{"{name}", "{mode}", {w}, {h}}},')


# ---- TIFF and PPM/PGM/PBM (tests/data/images/expected-tiff-ppm.safetensors) ----

def pack_samples(vals, bps, big):
    """One row of samples: 1/2/4 bits MSB first, 8, 16 or 32 bits in the file's byte order."""
    if bps < 8:
        return pack_bits(vals, bps)
    fmt = {8: "B", 16: "H", 32: "I"}[bps]
    return b"".join(struct.pack((">" if big else "<") + fmt, v & ((1 << bps) - 1)) for v in vals)


def packbits(data):
    """PackBits (TIFF compression 32773): literal runs of at most 128 bytes, repeats as runs."""
    out, i = bytearray(), 0
    while i < len(data):
        j = i
        while j < len(data) and j - i < 128 and data[j] == data[i]:
            j += 1
        if j - i >= 3:
            out += bytes([257 - (j - i), data[i]])
            i = j
            continue
        j = i
        while j < len(data) and j - i < 128 and not (j + 2 < len(data) and data[j] == data[j + 1] == data[j + 2]):
            j += 1
        out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out)


def tiff_file(w, h, photo, bps, spp, samples, big=False, extras=(), sf=None, planar=1, tile=None, rps=None,
              compression=1, predictor=1, orientation=None, colormap=None, fillorder=1, pages=1):
    """A TIFF written by hand. samples: h*w*spp ints, chunky order. compression 1 (none), 8 (zlib
    deflate) or 32773 (PackBits); predictor 2 = horizontal differencing (8/16-bit); tile (tw, th);
    pages > 1 appends copies of the image with another IFD each (a multi-page file)."""
    import zlib
    E = ">" if big else "<"

    def plane_rows(s_idx, x0, y0, ww, hh, full_w):
        rows = []
        for y in range(y0, y0 + hh):
            if planar == 1:
                vals = []
                for x in range(x0, x0 + ww):
                    if y < h and x < w:
                        vals += samples[(y * w + x) * spp:(y * w + x + 1) * spp]
                    else:
                        vals += [0] * spp
                n = spp
            else:
                vals = [samples[(y * w + x) * spp + s_idx] if (y < h and x < w) else 0 for x in range(x0, x0 + ww)]
                n = 1
            if predictor == 2:
                d = list(vals)
                for i in range(len(vals) - 1, n - 1, -1):
                    d[i] = (vals[i] - vals[i - n]) & ((1 << bps) - 1)
                vals = d
            row = pack_samples(vals, bps, big)
            if fillorder == 2:
                row = bytes(int(f"{b:08b}"[::-1], 2) for b in row)
            rows.append(row)
        return b"".join(rows)

    def enc(data):
        return zlib.compress(data) if compression == 8 else packbits(data) if compression == 32773 else data

    chunks = []  # encoded strips or tiles, in TIFF order (plane-major when planar == 2)
    planes = spp if planar == 2 else 1
    for s_idx in range(planes):
        if tile:
            tw, th = tile
            for ty in range(0, h, th):
                for tx in range(0, w, tw):
                    chunks.append(enc(plane_rows(s_idx, tx, ty, tw, th, w)))
        else:
            r = rps or h
            for y0 in range(0, h, r):
                chunks.append(enc(plane_rows(s_idx, 0, y0, w, min(r, h - y0), w)))

    def ifd_bytes(base, data_off, next_off):
        """IFD at `base`; strip data already placed at data_off (list of offsets)."""
        tags = []  # (tag, type, values)
        tags.append((256, 4, [w]))
        tags.append((257, 4, [h]))
        tags.append((258, 3, [bps] * spp))
        tags.append((259, 3, [compression]))
        tags.append((262, 3, [photo]))
        if fillorder != 1:
            tags.append((266, 3, [fillorder]))
        if not tile:
            tags.append((273, 4, data_off))
        if orientation:
            tags.append((274, 3, [orientation]))
        tags.append((277, 3, [spp]))
        if not tile:
            tags.append((278, 4, [rps or h]))
            tags.append((279, 4, [len(c) for c in chunks]))
        tags.append((284, 3, [planar]))
        if predictor != 1:
            tags.append((317, 3, [predictor]))
        if colormap:
            tags.append((320, 3, colormap))
        if tile:
            tags.append((322, 4, [tile[0]]))
            tags.append((323, 4, [tile[1]]))
            tags.append((324, 4, data_off))
            tags.append((325, 4, [len(c) for c in chunks]))
        if extras:
            tags.append((338, 3, list(extras)))
        if sf:
            tags.append((339, 3, [sf] * spp))
        tags.sort()
        size = {3: 2, 4: 4}
        head = struct.pack(E + "H", len(tags))
        extra = b""
        extra_base = base + 2 + 12 * len(tags) + 4
        for tag, typ, vals in tags:
            raw = b"".join(struct.pack(E + ("H" if typ == 3 else "I"), v) for v in vals)
            if len(raw) <= 4:
                head += struct.pack(E + "HHI", tag, typ, len(vals)) + raw + b"\0" * (4 - len(raw))
            else:
                head += struct.pack(E + "HHII", tag, typ, len(vals), extra_base + len(extra))
                extra += raw + b"\0" * (len(raw) % 2)
        return head + struct.pack(E + "I", next_off) + extra

    out = bytearray((b"MM\0*" if big else b"II*\0") + b"\0\0\0\0")
    prev_next_pos = 4
    for page in range(pages):
        offs = []
        for c in chunks:
            offs.append(len(out))
            out += c + b"\0" * (len(c) % 2)
        ifd_at = len(out)
        struct.pack_into(E + "I", out, prev_next_pos, ifd_at)
        ifd = ifd_bytes(ifd_at, offs, 0)
        prev_next_pos = ifd_at + 2 + 12 * struct.unpack(E + "H", ifd[:2])[0]
        out += ifd
    return bytes(out)


def tiff_ppm():
    rng = random.Random(8)
    files = {}

    def rgb_im(w, h):
        return Image.frombytes("RGB", (w, h), pattern(w, h, 3, rng))

    def vals(w, h, bands, bits=8):
        """Pattern samples scaled to `bits`."""
        px = pattern(w, h, bands, rng)
        if bits == 8:
            return list(px)
        if bits < 8:
            return [v >> (8 - bits) for v in px]
        return [(v << (bits - 8)) | rng.randint(0, (1 << (bits - 8)) - 1) for v in px]

    # TIFF written by Pillow (libtiff for the compressed ones)
    files["rgb.tif"] = (rgb_im(41, 29), {})
    files["rgb-lzw.tif"] = (rgb_im(37, 30), {"compression": "tiff_lzw"})
    files["rgb-deflate.tif"] = (rgb_im(33, 27), {"compression": "tiff_adobe_deflate"})
    files["rgb-jpeg.tif"] = (rgb_im(40, 32), {"compression": "jpeg", "quality": 90})
    files["gray-packbits.tif"] = (Image.frombytes("L", (35, 26), pattern(35, 26, 1, rng)), {"compression": "packbits"})
    files["bilevel-g4.tif"] = (Image.frombytes("L", (45, 30), pattern(45, 30, 1, rng)).convert("1"), {"compression": "group4"})
    files["palette.tif"] = (rgb_im(39, 28).quantize(200), {})
    files["cmyk.tif"] = (Image.frombytes("CMYK", (30, 27), pattern(30, 27, 4, rng)), {"compression": "tiff_lzw"})
    rgba = bytearray(pattern(36, 29, 4, rng))
    for i in range(3, len(rgba), 4):
        if (i // 4) % 6 == 0:
            rgba[i] = 0
    files["rgba.tif"] = (Image.frombytes("RGBA", (36, 29), bytes(rgba)), {"compression": "tiff_deflate"})
    files["gray-alpha.tif"] = (Image.frombytes("LA", (31, 33), pattern(31, 33, 2, rng)), {})
    i32 = Image.new("I", (29, 26))
    i32.putdata([rng.randint(-300, 600) for _ in range(29 * 26)])
    files["int32.tif"] = (i32, {})
    pages = [rgb_im(30, 25) for _ in range(3)]
    files["multipage.tif"] = (pages[0], {"save_all": True, "append_images": pages[1:], "compression": "tiff_lzw"})

    # TIFF written by hand: layouts Pillow does not write
    w, h = 34, 27
    files["rgb16-be-tiled.tif"] = tiff_file(w, h, 2, 16, 3, vals(w, h, 3, 16), big=True, tile=(16, 16))
    files["rgb-planar-deflate.tif"] = tiff_file(w, h, 2, 8, 3, vals(w, h, 3), planar=2, compression=8, rps=5)
    files["rgb-predictor.tif"] = tiff_file(31, 26, 2, 8, 3, vals(31, 26, 3), compression=8, predictor=2, rps=7)
    pm = bytearray(vals(30, 28, 4))
    for i in range(0, len(pm), 4):  # associated alpha: colour <= alpha
        a = pm[i + 3] if (i // 4) % 5 else 0
        pm[i + 3] = a
        for k in range(3):
            pm[i + k] = pm[i + k] * a // 255
    files["rgba-assoc.tif"] = tiff_file(30, 28, 2, 8, 4, list(pm), extras=(1,))
    files["rgbx.tif"] = tiff_file(29, 27, 2, 8, 4, vals(29, 27, 4), extras=(0,), compression=32773)
    files["rgba16.tif"] = tiff_file(27, 25, 2, 16, 4, vals(27, 25, 4, 16), extras=(2,))
    files["gray-minwhite.tif"] = tiff_file(33, 29, 0, 8, 1, vals(33, 29, 1))
    files["gray4.tif"] = tiff_file(35, 26, 1, 4, 1, vals(35, 26, 1, 4), compression=32773)
    files["gray2-minwhite.tif"] = tiff_file(31, 27, 0, 2, 1, vals(31, 27, 1, 2))
    files["gray16-be.tif"] = tiff_file(29, 25, 1, 16, 1, [rng.randint(0, 400) for _ in range(29 * 25)], big=True, rps=4)
    files["gray16s.tif"] = tiff_file(28, 26, 1, 16, 1, [rng.randint(-200, 400) for _ in range(28 * 26)], sf=2)
    cmap = [rng.randint(0, 65535) for _ in range(3 * 16)]
    files["pal4.tif"] = tiff_file(37, 25, 3, 4, 1, vals(37, 25, 1, 4), colormap=cmap, tile=(16, 16))
    files["bilevel-fill2.tif"] = tiff_file(43, 28, 1, 1, 1, vals(43, 28, 1, 1), fillorder=2)
    files["orient6.tif"] = tiff_file(40, 26, 2, 8, 3, vals(40, 26, 3), orientation=6)
    files["orient3-gray.tif"] = tiff_file(33, 26, 1, 8, 1, vals(33, 26, 1), orientation=3, rps=6)
    files["cmyk-planar.tif"] = tiff_file(30, 26, 5, 8, 4, vals(30, 26, 4), planar=2)
    files["twopage-gray.tif"] = tiff_file(32, 27, 1, 8, 1, vals(32, 27, 1), pages=2)

    # PPM/PGM/PBM: Pillow writes P4, P5 (8 and 16-bit) and P6; the rest by hand
    files["rgb.ppm"] = (rgb_im(41, 29), {})
    files["gray.pgm"] = (Image.frombytes("L", (34, 27), pattern(34, 27, 1, rng)), {})
    files["bits.pbm"] = (Image.frombytes("L", (45, 30), pattern(45, 30, 1, rng)).convert("1"), {})
    g16 = Image.new("I", (31, 26))
    g16.putdata([rng.randint(0, 700) for _ in range(31 * 26)])
    files["gray16.pgm"] = (g16, {})

    def netpbm(magic, w, h, maxval, data, comment=b""):
        head = magic + b"\n" + comment + b"%d %d\n" % (w, h)
        if maxval is not None:
            head += b"%d\n" % maxval
        return head + data
    files["gray-max15.pgm"] = netpbm(b"P5", 33, 25, 15, bytes(v >> 4 for v in pattern(33, 25, 1, rng)),
                                     comment=b"# a comment line\n")
    files["gray-max1000.pgm"] = netpbm(b"P5", 30, 27, 1000, b"".join(struct.pack(">H", rng.randint(0, 1000))
                                                                       for _ in range(30 * 27)))
    files["rgb-max1023.ppm"] = netpbm(b"P6", 29, 26, 1023, b"".join(struct.pack(">H", v << 2 | rng.randint(0, 3))
                                                                      for v in pattern(29, 26, 3, rng)))
    files["rgb-max100.ppm"] = netpbm(b"P6", 31, 25, 100, bytes(v * 100 // 255 for v in pattern(31, 25, 3, rng)))
    txt = " ".join(str(v) for v in pattern(27, 25, 1, rng)).encode()
    # a comment inside the width token ("2#...\n7" reads as 27), plain data with a comment too
    files["plain.pgm"] = b"P2\n2#split token\n7 25 255\n" + txt[:200] + b" # mid-data comment\n" + txt[200:]
    files["plain16.pgm"] = netpbm(b"P2", 26, 25, 4000, " ".join(str(rng.randint(0, 4000)) for _ in range(26 * 25)).encode())
    files["plain.ppm"] = netpbm(b"P3", 28, 26, 200, "\n".join(" ".join(str(v * 200 // 255) for v in pattern(28, 1, 3, rng))
                                                             for _ in range(26)).encode())
    bits = "".join("1" if rng.random() < 0.3 + 0.4 * (x > 20) else "0" for _ in range(27) for x in range(40))
    files["plain.pbm"] = netpbm(b"P1", 40, 27, None, "\n".join(bits[i:i + 70] for i in range(0, len(bits), 70)).encode())

    tensors, table = {}, []
    for name, v in files.items():
        path = os.path.join(OUT, name)
        if isinstance(v, bytes):
            with open(path, "wb") as f:
                f.write(v)
        else:
            im, kw = v
            im.save(path, **kw)
        ref = Image.open(path)
        ref.load()  # a TIFF's Orientation tag is applied by load(); sizes are read after it
        table.append((name, ref.mode, ref.size[0], ref.size[1]))
        # Pillow 9.4 cannot resize "I;16" ("image has wrong mode"): the pipeline then runs on
        # convert("I"), the mode clipadapt decodes it to; the crop boxes convert to RGB first.
        src = (lambda: Image.open(path).convert("I")) if ref.mode.startswith("I;16") else (lambda: Image.open(path))
        for n in (16, 24):
            im = src()
            im.load()
            tensors[f"{name}@{n}"] = clip_pipeline(im, n)
        if "orient" in name:  # exif_transpose finds the tag again after load() applied it
            tensors[f"{name}@rot16"] = clip_pipeline(ImageOps.exif_transpose(Image.open(path)), 16)
        tensors[f"{name}@box16"] = crop_resize(Image.open(path), (3, 2, 21, 17), 16)
        tensors[f"{name}@box20"] = crop_resize(Image.open(path), (5, 0, 17, 25), 20)
    write_expected(os.path.join(OUT, "expected-tiff-ppm.safetensors"), tensors)
    for name, mode, w, h in table:  # for test_modes in tests/test_image.c
        print(f'{{"{name}", "{mode}", {w}, {h}}},')


if __name__ == "__main__":
    import sys
    if "--tiff-ppm-only" not in sys.argv:
        main()
        formats()
    tiff_ppm()
