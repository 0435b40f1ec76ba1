#!/usr/bin/python3
"""gda_official_check.py — `--covariance ks` against the official GDA code (Wang et al., ICLR 2024,
github.com/mrflogs/ICLR24) on the same precomputed features. Bench only: it runs the `run()`
function of the user's checkout of that repository (main_few_shots.py, read with `ast` and
executed as written, with `.cuda()` as a no-op and an identity image encoder), never a copy of it.

Both sides see the same data: the stored train.{K}shot split of each K (`fewshot --sample
fixed`), every view of it when the set has `train.{K}shot.views` (the official code's
augment_epoch passes), the whole val split for α, test once. With text weights the official
method (zero-shot + α·GDA) is compared with our `gda-zs --covariance ks`; a set without text is
compared with our `gda --covariance ks` by giving the official code a zero text classifier, so
that its logits are α·GDA alone (argmax does not depend on α > 0).

usage: gda_official_check.py OFFICIAL_DIR CLIPADAPT FEATURES.safetensors...   (needs torch, numpy)
       gda_official_check.py --synthetic OUT.safetensors C D VIEWS SEED [notext]
Prints one row per set × K: ours, official, difference; exits 1 when any |difference| > 0.2.
Excluded from the tolerance (and marked): `gda` alone at one sample per class, where the official
estimator has no within-class scatter (pinv(0) = 0, every logit equal, so it predicts class 0)
and ours falls back to the nearest class mean by design (docs/methods.md).
--synthetic writes a CLIP-like random feature set (a shared cone + class directions + image and
view noise, L2-normalised; train.{1,2,4,8,16}shot with VIEWS stored views each when VIEWS > 0)
to exercise shapes the shipped sets do not have.
"""
import ast
import contextlib
import io
import json
import struct
import subprocess
import sys

import numpy as np
import torch

TOL = 0.2


def read_safetensors(path):
    """name -> numpy array (F16/F32/F64/I64/I32 are all the feature sets use)."""
    dt = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, v in head.items():
        if name == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[name] = np.frombuffer(data[s:e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out


def official_run(official_dir):
    """The official run() and cls_acc(), compiled from the checkout's own source files."""
    ns = {"torch": torch, "F": torch.nn.functional, "np": np, "tqdm": lambda it, *a, **k: it}
    for fname, fn in (("utils.py", "cls_acc"), ("main_few_shots.py", "run")):
        src = open(f"{official_dir}/{fname}").read()
        node = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == fn)
        exec(compile(ast.Module(body=[node], type_ignores=[]), f"{official_dir}/{fname}", "exec"), ns)
    return ns


class Views:
    """The official train_loader_cache: pass p over it yields view p of every shot, in batches."""
    def __init__(self, views, labels):
        self.views, self.labels, self.epoch = views, labels, 0

    def __iter__(self):
        x = self.views[self.epoch % len(self.views)]
        self.epoch += 1
        for i in range(0, len(x), 256):
            yield torch.from_numpy(x[i:i + 256]), torch.from_numpy(self.labels[i:i + 256])


class Encoder:
    def encode_image(self, x):
        return x.clone()


def ours(clipadapt, path, method):
    """test accuracy and whether ours took the 1-sample-per-class fallback, per K"""
    out = subprocess.run([clipadapt, "fewshot", "--features", path, "--method", method, "--covariance", "ks",
                          "--sample", "fixed", "--shots", "all", "--select", "val", "--threads", "1",
                          "--no-timings", "--quiet", "--json", "-"], check=True, capture_output=True, text=True)
    recs = json.loads(out.stdout)
    return {r["shots"]: (r["test_acc"], r["params"].get("isotropic", 0) == 1)
            for r in (recs if isinstance(recs, list) else [recs])}


def write_safetensors(path, tensors, meta=None):
    names = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    head, off, blobs = {}, 0, []
    for k, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        head[k] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    if meta:
        head["__metadata__"] = meta
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def synthetic(path, C, D, V, seed, text=True):
    rng = np.random.default_rng(seed)
    unit = lambda a: (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    cone = unit(rng.standard_normal(D))
    cls = unit(rng.standard_normal((C, D)))
    # anisotropic image noise (a few strong directions), so that the covariance matters
    mix = rng.standard_normal((D, D)).astype(np.float32) * (np.linspace(2.0, 0.2, D)[:, None] / D)
    img = lambda y: cone + 0.1 * cls[y] + 0.25 * rng.standard_normal((len(y), D)) @ mix
    t = {}
    for k in (1, 2, 4, 8, 16):
        y = np.repeat(np.arange(C), k).astype(np.int64)
        base = img(y)
        if V > 0:
            views = np.stack([unit(base + 0.1 / np.sqrt(D) * rng.standard_normal(base.shape)) for _ in range(V)])
            t[f"train.{k}shot.features"] = unit(views.mean(0))
            t[f"train.{k}shot.views"] = views
        else:
            t[f"train.{k}shot.features"] = unit(base)
        t[f"train.{k}shot.labels"] = y
    for split, n in (("val", 4), ("test", 30)):
        y = np.repeat(np.arange(C), n).astype(np.int64)
        t[f"{split}.features"], t[f"{split}.labels"] = unit(img(y)), y
    if text:
        t["text.weights"] = unit(cone + 0.1 * cls + 0.4 / np.sqrt(D) * rng.standard_normal((C, D)))
    write_safetensors(path, t)


def main():
    if len(sys.argv) >= 7 and sys.argv[1] == "--synthetic":
        a = sys.argv
        synthetic(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]), text=not (len(a) > 7 and a[7] == "notext"))
        return
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    official_dir, clipadapt, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    torch.Tensor.cuda = lambda self, *a, **k: self   # CPU only; the code is otherwise unchanged
    ns = official_run(official_dir)
    worst = 0.0
    print(f"{'set':<28} {'K':>3} {'method':<7} {'ours':>7} {'official':>9} {'diff':>6}")
    for path in paths:
        t = read_safetensors(path)
        f32 = lambda a: np.array(a, dtype=np.float32)
        has_text = "text.weights" in t
        method = "gda-zs" if has_text else "gda"
        mine = ours(clipadapt, path, method)
        ns["val_features"] = torch.from_numpy(f32(t["val.features"]))
        ns["val_labels"] = torch.from_numpy(t["val.labels"].astype(np.int64))
        ns["test_features"] = torch.from_numpy(f32(t["test.features"]))
        ns["test_labels"] = torch.from_numpy(t["test.labels"].astype(np.int64))
        C = int(max(t["val.labels"].max(), t["test.labels"].max())) + 1
        D = t["val.features"].shape[1]
        # clip_weights is (D, C) in the official code
        w = torch.from_numpy(f32(t["text.weights"]).T.copy()) if has_text else torch.zeros(D, C)
        for k in sorted(mine):
            lab = t[f"train.{k}shot.labels"].astype(np.int64)
            views = t.get(f"train.{k}shot.views")
            views = [f32(v) for v in views] if views is not None else [f32(t[f"train.{k}shot.features"])]
            C = max(C, int(lab.max()) + 1)
            with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):   # its own prints
                acc = ns["run"]({"augment_epoch": len(views)}, Views(views, lab), w, Encoder())
            mk, fallback = mine[k]
            d = mk - acc
            if not fallback:
                worst = max(worst, abs(d))
            note = "  (excluded: 1 sample/class, see --help)" if fallback else ""
            print(f"{path.split('/')[-1]:<28} {k:>3} {method:<7} {mk:7.2f} {acc:9.2f} {d:+6.2f}{note}", flush=True)
    print(f"largest |difference|: {worst:.2f} points (tolerance {TOL})")
    sys.exit(1 if worst > TOL else 0)


if __name__ == "__main__":
    main()
