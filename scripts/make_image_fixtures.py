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
    tensors = {}
    for name, (im, kw) in files.items():
        path = os.path.join(OUT, name)
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
