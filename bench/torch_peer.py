#!/usr/bin/python3
"""torch_peer.py — the PyTorch side of bench/ort.sh: times bench/torch_clip.py's reference image
encoder in one short process and prints the JSON line bench/peer.c and bench/ort_clip.mjs print
(median and min wall ms/image, CPU ms/image), so the three engines can be alternated.

  torch_peer.py MODEL.safetensors BATCH THREADS REPS
"""
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_clip  # noqa: E402


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    path, batch, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), max(1, int(sys.argv[4]))
    torch.set_grad_enabled(False)
    torch.set_num_threads(threads)
    W = torch_clip.load_st(path)
    R = torch_clip.image_size(W)
    x = torch.randn(batch, 3, R, R, generator=torch.Generator().manual_seed(1))
    torch_clip.encode_images(W, x)  # warm-up
    ts, c0 = [], time.process_time()
    for _ in range(reps):
        t0 = time.perf_counter()
        torch_clip.encode_images(W, x)
        ts.append(1e3 * (time.perf_counter() - t0) / batch)
    cpu = 1e3 * (time.process_time() - c0) / (reps * batch)
    print(json.dumps({"engine": "PyTorch " + torch.__version__.split("+")[0], "batch": batch, "threads": threads,
                      "reps": reps, "median_ms": round(statistics.median(ts), 3), "min_ms": round(min(ts), 3),
                      "cpu_ms": round(cpu, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
