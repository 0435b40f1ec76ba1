#!/usr/bin/env bash
# run.sh — runs every benchmark and prints its results (make bench).
set -e
BUILD=${BUILD:-build}
echo "== model encode (bench/encode.c)"; "$BUILD"/bench/encode

echo "== GEMM: OpenBLAS vs our AVX-512 kernel on the encoders' shapes (bench/gemm.c), best of 5, GFLOP/s"
"$BUILD"/bench/gemm

# Fast CPU inference (issue 8): full-size random-weight checkpoints, our encoders vs PyTorch on
# the same weights (bench/torch_clip.py), same run. bench/model.c prints every figure.
W="$BUILD/bench-weights"
echo "== full-size checkpoints (bench/gen_weights.c, written once under $W)"
"$BUILD"/bench/gen_weights "$W"
PY=/usr/bin/python3
have_torch=0; "$PY" -c "import torch" 2>/dev/null && have_torch=1
torch_ms() { # model batch [text]: median ms per item of the PyTorch reference on 2 threads
  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$PY" bench/torch_clip.py bench "$1" 2 "$2" 2 $3 |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("%.3f" % (d["median_ms"] / d["batch"]))'
}
for m in vit-b32 rn50 vit-b16; do
  ck="$W/$m.safetensors"; args=()
  if [ $have_torch = 1 ]; then
    [ -f "$W/$m.torch-golden.safetensors" ] ||
      "$PY" bench/torch_clip.py golden "$ck" "$W/$m.torch-golden.safetensors" 2
    tb=8; [ $m = vit-b32 ] && tb=32    # PyTorch takes ~10 s per batch of 32 B/32 images here
    ti=$(torch_ms "$ck" $tb)
    args+=(--torch-golden "$W/$m.torch-golden.safetensors" --torch-img-ms "$ti")
    echo "   PyTorch $m: $ti ms/image (batch $tb, 2 threads, median of 2 after a warm-up)"
    if [ $m = vit-b32 ]; then
      tt=$(torch_ms "$ck" 64 text); args+=(--torch-text-ms "$tt")
      echo "   PyTorch text: $tt ms/prompt (batch 64, 2 threads; all 77 positions, as the reference)"
    fi
  fi
  "$BUILD"/bench/model "$ck" --reps 3 "${args[@]}"
done
