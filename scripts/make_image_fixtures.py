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


def pattern(w, h, bands):
    """Smooth gradients plus noise and a hard edge, so resampling has something to get wrong."""
    data = bytearray()
    for y in range(h):
        for x in range(w):
            for b in range(bands):
                v = (x * 255 // max(w - 1, 1) * (b % 2) + y * 255 // max(h - 1, 1) * (1 - b % 2)) // 2
                v += rnd.randint(0, 90) + (100 if (x > w // 3) ^ (y > h // 2) else 0)
                data.append(max(0, min(255, v)))
    return bytes(data)


def raw_png(w, h, color_type, depth, samples):
    """A PNG written by hand (Pillow cannot write these): samples are big-endian values."""
    import zlib
    chan = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
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
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


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
    with open(os.path.join(OUT, "expected.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + blob)


if __name__ == "__main__":
    main()
