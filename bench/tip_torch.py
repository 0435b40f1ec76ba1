#!/usr/bin/env python3
"""bench/tip_torch.py — the same Tip-Adapter search and Tip-Adapter-F training in PyTorch (CPU,
float32) on stanford_cars 16-shot, for timing against bench/tip.c and as an independent check of
the chosen alpha/beta. Reads safetensors itself (8-byte header length, JSON header, raw data);
no network. Prints "name value" lines. Usage: tip_torch.py [SHARED_DIR] [--no-train]"""
import json, os, struct, sys, time
import numpy as np
import torch

DT = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DT[v["dtype"]]).reshape(v["shape"])
    return out


def acc(logits, y):
    return float((logits.argmax(1) == y).float().mean()) * 100


def search(aff, clip, y, values, sb=20, sa=10, nb=200, na=20):
    """Official search_hp grid and first-strictly-better rule; affinity precomputed once."""
    betas = [i * (sb - 0.1) / nb + 0.1 for i in range(nb)]
    alphas = [i * (sa - 0.1) / na + 0.1 for i in range(na)]
    best, bb, ba = 0, 0, 0
    for beta in betas:
        cache = ((-1) * (beta - beta * aff)).exp() @ values
        for alpha in alphas:
            a = acc(clip + cache * alpha, y)
            if a > best:
                best, bb, ba = a, beta, alpha
    return ba, bb, best


def main():
    shared = next((a for a in sys.argv[1:] if not a.startswith("--")), "../shared")
    d = load(f"{shared}/features/stanford_cars.safetensors")
    t = lambda k: torch.from_numpy(d[k].astype(np.float32))
    keys, ky = t("train.16shot.features"), torch.from_numpy(d["train.16shot.labels"].astype(np.int64))
    vx, vy = t("val.features"), torch.from_numpy(d["val.labels"].astype(np.int64))
    tx, ty = t("test.features"), torch.from_numpy(d["test.labels"].astype(np.int64))
    W = t("text.weights")
    C = W.shape[0]
    values = torch.nn.functional.one_hot(ky, C).float()
    torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count() or 1)))  # same cores as the C bench
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}")
    with torch.no_grad():
        t0 = time.perf_counter()
        aff, clip = vx @ keys.t(), 100.0 * vx @ W.t()
        a, b, v = search(aff, clip, vy, values)
        ts = time.perf_counter() - t0
        tlog = 100.0 * tx @ W.t() + ((-1) * (b - b * (tx @ keys.t()))).exp() @ values * a
    print(f"torch_search_full_grid_s {ts:.4f}   # affinity once, exp + one-hot matmul per beta")
    print(f"torch_tip_choice alpha {a:g} beta {b:g} val {v:.2f} test {acc(tlog, ty):.2f}")
    if "--no-train" in sys.argv:
        return
    # Tip-Adapter-F: keys trainable, AdamW(1e-3, eps 1e-4, wd 0.01), cosine, batch 256, 20 epochs,
    # CE at alpha = beta = 1, best epoch on val, then the search on val.
    torch.manual_seed(1)
    t0 = time.perf_counter()
    K = torch.nn.Parameter(keys.clone())
    opt = torch.optim.AdamW([K], lr=1e-3, eps=1e-4, weight_decay=0.01)
    E, B, N = 20, 256, keys.shape[0]
    steps = (N + B - 1) // B
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, E * steps)
    clip_tr, clip_v = 100.0 * keys @ W.t(), 100.0 * vx @ W.t()
    best_acc, best_k = -1, None
    for e in range(E):
        perm = torch.randperm(N)
        for s in range(steps):
            idx = perm[s * B:(s + 1) * B]
            x = keys[idx]
            logits = clip_tr[idx] + ((-1) * (1 - 1 * (x @ K.t()))).exp() @ values * 1
            loss = torch.nn.functional.cross_entropy(logits, ky[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            va = acc(clip_v + ((-1) * (1 - vx @ K.t())).exp() @ values, vy)
        if va > best_acc:
            best_acc, best_k = va, K.detach().clone()
    with torch.no_grad():
        a, b, v = search(vx @ best_k.t(), clip_v, vy, values)
        tlog = 100.0 * tx @ W.t() + ((-1) * (b - b * (tx @ best_k.t()))).exp() @ values * a
    tf = time.perf_counter() - t0
    print(f"torch_tipf_fit_16shot_s {tf:.3f}   # 20 epochs + val selection + search")
    print(f"torch_tipf_choice alpha {a:g} beta {b:g} val {v:.2f} test {acc(tlog, ty):.2f}")


if __name__ == "__main__":
    main()
