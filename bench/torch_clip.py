#!/usr/bin/python3
"""torch_clip.py — a PyTorch CPU reference forward pass of CLIP (ViT, ModifiedResNet, text tower)
for the benchmarks: same safetensors checkpoints as clipadapt, read by the tiny parser below (no
`safetensors` package), architecture inferred from tensor shapes. Written from the architecture
facts in shared/README.md; it is the yardstick for speed, not part of clipadapt.

  torch_clip.py check GOLDEN MODEL          compare with a reference golden file (max abs error)
  torch_clip.py golden MODEL OUT [N]        write inputs + outputs (golden schema) for N images
  torch_clip.py bench MODEL THREADS BATCH REPS [text]   time; prints one JSON line
"""
import json
import math
import mmap
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

_NP = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64,
       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def load_st(path):
    """safetensors -> {name: float32/int64 torch tensor}"""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n = struct.unpack("<Q", mm[:8])[0]
    header = json.loads(mm[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = mm[base + a:base + b]
        shape = info["shape"]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_NP[info["dtype"]])
        arr = arr.reshape(shape)
        if arr.dtype in (np.float16, np.float64):
            arr = arr.astype(np.float32)
        out[name] = torch.from_numpy(arr.copy())
    return out


def save_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().contiguous().numpy()
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def layer_norm(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


def attention(x, W, p, heads, mask=None):
    # x: (N, T, C); packed in_proj as in nn.MultiheadAttention
    N, T, C = x.shape
    hd = C // heads
    qkv = F.linear(x, W[p + "attn.in_proj_weight"], W[p + "attn.in_proj_bias"])
    q, k, v = qkv.split(C, dim=-1)
    q = q.reshape(N, T, heads, hd).transpose(1, 2) * (hd ** -0.5)
    k = k.reshape(N, T, heads, hd).transpose(1, 2)
    v = v.reshape(N, T, heads, hd).transpose(1, 2)
    s = q @ k.transpose(-1, -2)
    if mask is not None:
        s = s + mask
    o = (s.softmax(-1) @ v).transpose(1, 2).reshape(N, T, C)
    return F.linear(o, W[p + "attn.out_proj.weight"], W[p + "attn.out_proj.bias"])


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def transformer(x, W, prefix, layers, heads, mask=None):
    for i in range(layers):
        p = f"{prefix}transformer.resblocks.{i}."
        x = x + attention(layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"]), W, p, heads, mask)
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"])
        h = quick_gelu(F.linear(h, W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"]))
        x = x + F.linear(h, W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"])
    return x


def count_layers(W, prefix):
    n = 0
    while f"{prefix}transformer.resblocks.{n}.ln_1.weight" in W:
        n += 1
    return n


def encode_vit(W, images):
    conv = W["visual.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    x = F.conv2d(images, conv, stride=patch)
    N = x.shape[0]
    x = x.reshape(N, width, -1).transpose(1, 2)
    cls = W["visual.class_embedding"].reshape(1, 1, width).expand(N, 1, width)
    x = torch.cat([cls, x], 1) + W["visual.positional_embedding"]
    x = layer_norm(x, W["visual.ln_pre.weight"], W["visual.ln_pre.bias"])
    x = transformer(x, W, "visual.", count_layers(W, "visual."), width // 64)
    x = layer_norm(x[:, 0], W["visual.ln_post.weight"], W["visual.ln_post.bias"])
    return x @ W["visual.proj"]


def bn(x, W, p):
    return F.batch_norm(x, W[p + ".running_mean"], W[p + ".running_var"], W[p + ".weight"], W[p + ".bias"],
                        False, 0.0, 1e-5)


def encode_rn(W, images):
    x = images
    for i, stride in ((1, 2), (2, 1), (3, 1)):
        x = F.relu(bn(F.conv2d(x, W[f"visual.conv{i}.weight"], stride=stride, padding=1), W, f"visual.bn{i}"))
    x = F.avg_pool2d(x, 2)
    for s in range(1, 5):
        b = 0
        while f"visual.layer{s}.{b}.conv1.weight" in W:
            p = f"visual.layer{s}.{b}"
            stride = 2 if (s > 1 and b == 0) else 1
            out = F.relu(bn(F.conv2d(x, W[p + ".conv1.weight"]), W, p + ".bn1"))
            out = F.relu(bn(F.conv2d(out, W[p + ".conv2.weight"], padding=1), W, p + ".bn2"))
            if stride > 1:
                out = F.avg_pool2d(out, stride)
            out = bn(F.conv2d(out, W[p + ".conv3.weight"]), W, p + ".bn3")
            idt = x
            if p + ".downsample.0.weight" in W:
                if stride > 1:
                    idt = F.avg_pool2d(idt, stride)
                idt = bn(F.conv2d(idt, W[p + ".downsample.0.weight"]), W, p + ".downsample.1")
            x = F.relu(out + idt)
            b += 1
    # attention pool: query = mean token, keys/values = mean + every position
    N, C, H, Wd = x.shape
    x = x.reshape(N, C, H * Wd).transpose(1, 2)
    x = torch.cat([x.mean(1, keepdim=True), x], 1) + W["visual.attnpool.positional_embedding"]
    heads = C // 64
    hd = C // heads
    q = F.linear(x[:, :1], W["visual.attnpool.q_proj.weight"], W["visual.attnpool.q_proj.bias"])
    k = F.linear(x, W["visual.attnpool.k_proj.weight"], W["visual.attnpool.k_proj.bias"])
    v = F.linear(x, W["visual.attnpool.v_proj.weight"], W["visual.attnpool.v_proj.bias"])
    T = x.shape[1]
    q = q.reshape(N, 1, heads, hd).transpose(1, 2) * (hd ** -0.5)
    k = k.reshape(N, T, heads, hd).transpose(1, 2)
    v = v.reshape(N, T, heads, hd).transpose(1, 2)
    o = ((q @ k.transpose(-1, -2)).softmax(-1) @ v).transpose(1, 2).reshape(N, C)
    return F.linear(o, W["visual.attnpool.c_proj.weight"], W["visual.attnpool.c_proj.bias"])


def encode_images(W, images):
    return encode_vit(W, images) if "visual.class_embedding" in W else encode_rn(W, images)


def encode_text(W, tokens):
    x = W["token_embedding.weight"][tokens] + W["positional_embedding"]
    T = tokens.shape[1]
    width = x.shape[-1]
    mask = torch.full((T, T), float("-inf")).triu_(1)
    x = transformer(x, W, "", count_layers(W, ""), width // 64, mask)
    x = layer_norm(x, W["ln_final.weight"], W["ln_final.bias"])
    x = x[torch.arange(x.shape[0]), tokens.argmax(-1)]
    return x @ W["text_projection"]


def image_size(W):
    if "visual.class_embedding" in W:
        g = int(round(math.sqrt(W["visual.positional_embedding"].shape[0] - 1)))
        return g * W["visual.conv1.weight"].shape[-1]
    g = int(round(math.sqrt(W["visual.attnpool.positional_embedding"].shape[0] - 1)))
    return 32 * g


def bench_tokens(n, seed=0):
    """prompt-like rows: SOT, 5..15 ids, EOT, zero padding (like 'a photo of a {class}.')"""
    g = torch.Generator().manual_seed(seed)
    t = torch.zeros(n, 77, dtype=torch.int64)
    for i in range(n):
        L = 5 + (i * 7) % 11
        t[i, 0] = 49406
        t[i, 1:1 + L] = torch.randint(1, 49000, (L,), generator=g)
        t[i, 1 + L] = 49407
    return t


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    torch.set_grad_enabled(False)
    if cmd == "check":
        G, W = load_st(sys.argv[2]), load_st(sys.argv[3])
        fi = encode_images(W, G["input.images"])
        ft = encode_text(W, G["input.tokens"])
        ei = (fi - G["output.image_features"]).abs().max().item()
        et = (ft - G["output.text_features"]).abs().max().item()
        print(json.dumps({"image_max_abs": ei, "text_max_abs": et}))
        return 0 if max(ei, et) < 1e-4 else 1
    if cmd == "golden":
        W = load_st(sys.argv[2])
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 2
        R = image_size(W)
        g = torch.Generator().manual_seed(1234)
        images = torch.randn(n, 3, R, R, generator=g)
        tokens = bench_tokens(4, 7)
        save_st(sys.argv[3], {"input.images": images, "input.tokens": tokens,
                              "output.image_features": encode_images(W, images),
                              "output.text_features": encode_text(W, tokens)})
        return 0
    if cmd == "bench":
        path, threads, batch, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        text = len(sys.argv) > 6 and sys.argv[6] == "text"
        torch.set_num_threads(threads)
        W = load_st(path)
        if text:
            x = bench_tokens(batch)
            fn = lambda: encode_text(W, x)
        else:
            R = image_size(W)
            x = torch.randn(batch, 3, R, R, generator=torch.Generator().manual_seed(1))
            fn = lambda: encode_images(W, x)
        fn()  # warm-up
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        print(json.dumps({"model": path, "threads": threads, "batch": batch, "text": text,
                          "median_ms": 1e3 * statistics.median(ts), "best_ms": 1e3 * min(ts)}))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
