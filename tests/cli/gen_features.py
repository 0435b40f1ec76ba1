#!/usr/bin/env python3
"""gen_features.py — write a small synthetic feature set in the schema of ../shared/features
(safetensors, F32 features, I64 labels) with the shape a test asks for, using only the standard
library. Each class has a random unit direction; an image is its class direction plus Gaussian
noise, L2-normalised; text.weights (optional) are the directions seen through less noise.

usage: gen_features.py OUT --dim D --classes C --shots K[,K2...] [--views V] [--val N|none|empty]
                           [--test N] [--no-text] [--val-no-labels] [--seed S]
--val N: N val rows per class; none: no val.* tensors at all; empty: val of shape [0, D].
"""
import argparse, json, math, random, struct


def unit(v):
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--shots", default="1")
    ap.add_argument("--views", type=int, default=0)
    ap.add_argument("--val", default="4")
    ap.add_argument("--test", type=int, default=10)
    ap.add_argument("--no-text", action="store_true")
    ap.add_argument("--val-no-labels", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--noise", type=float, default=0.9)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    D, C = a.dim, a.classes
    dirs = [unit([rng.gauss(0, 1) for _ in range(D)]) for _ in range(C)]
    sigma = a.noise / math.sqrt(D)

    def image(c):
        return unit([x + rng.gauss(0, sigma) for x in dirs[c]])

    tensors = {}   # name -> (dtype, shape, bytes)

    def f32(name, rows, shape):
        tensors[name] = ("F32", shape, struct.pack("<%df" % (len(rows)), *rows))

    def i64(name, labels):
        tensors[name] = ("I64", [len(labels)], struct.pack("<%dq" % len(labels), *labels))

    def split(prefix, per_class, views=0, labels=True):
        ys = [c for c in range(C) for _ in range(per_class)]
        xs = [image(c) for c in ys]
        f32(prefix + ".features", [v for x in xs for v in x], [len(ys), D])
        if labels:
            i64(prefix + ".labels", ys)
        if views:
            vx = [unit([v + rng.gauss(0, sigma / 2) for v in x]) for _ in range(views) for x in xs]
            f32(prefix + ".views", [v for x in vx for v in x], [views, len(ys), D])

    for k in sorted(int(s) for s in a.shots.split(",")):
        split("train.%dshot" % k, k, a.views)
    if a.val == "empty":
        f32("val.features", [], [0, D])
        i64("val.labels", [])
    elif a.val != "none":
        split("val", int(a.val), labels=not a.val_no_labels)
    split("test", a.test)
    if not a.no_text:
        f32("text.weights", [v for d in dirs for v in unit([x + rng.gauss(0, sigma / 3) for x in d])], [C, D])

    header, off, blobs = {}, 0, []
    for name in sorted(tensors):
        dt, shape, b = tensors[name]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "clipadapt.features.v1", "num_classes": str(C), "views": str(a.views),
                              "class_names": json.dumps(["class %d" % c for c in range(C)])}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(a.out, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
