#!/usr/bin/env bash
# run.sh — runs every benchmark and prints its results (make bench). Timings are noisy on a
# shared machine: each bench reports best and median of several runs.
set -e
BUILD=${BUILD:-build}
export SHARED=${SHARED:-../shared}
echo "== image decode + preprocess (bench/image.c)"; "$BUILD/bench/image"
echo "== model encode (bench/encode.c)"; "$BUILD/bench/encode"
echo "== tokenizer: 80,000 ImageNet prompts on one core (bench/tokenizer.c)"; OMP_NUM_THREADS=1 "$BUILD/bench/tokenizer"
echo "== bench/tip: Tip-Adapter search (fast vs straightforward) and Tip-Adapter-F, stanford_cars 16-shot"
c_out=$("$BUILD/bench/tip" 3)
echo "$c_out"
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "== bench/tip_torch.py: the same in PyTorch CPU"
  t_out=$(THREADS=$(echo "$c_out" | awk '$1=="threads"{print $2}') /usr/bin/python3 bench/tip_torch.py "$SHARED")
  echo "$t_out"
  get() { echo "$1" | awk -v k="$2" '$1==k{print $2}'; }
  awk -v a="$(get "$t_out" torch_search_full_grid_s)" -v b="$(get "$c_out" search_fast_full_grid_s)" \
    'BEGIN{printf "ratio torch_search / clipadapt_search %.1f\n", a/b}'
  awk -v a="$(get "$t_out" torch_tipf_fit_16shot_s)" -v b="$(get "$c_out" tipf_fit_16shot_s)" \
    'BEGIN{printf "ratio torch_tipf / clipadapt_tipf %.2f\n", a/b}'
else
  echo "== bench/tip_torch.py skipped: /usr/bin/python3 has no torch/numpy (apt: python3-torch)"
fi
# ImageNet-size fits (issue 14): a synthetic 1000-class, 16-shot x 10-view set with 10,000 val and
# 50,000 test (bench/gen_features.c, written once), every method (`clipadapt fit --list`; narrow
# with SYN_METHODS="a b") fitted once; wall and user CPU
# seconds and peak RSS from /usr/bin/time (one run each: these take seconds to minutes). With
# BEFORE=path/to/an/older/clipadapt the same fit by that binary is printed beside each figure
# (e.g. BEFORE=/tmp/clipadapt-main-2424f85), and bench/compare_fits.sh checks the two agree.
SYN="$BUILD/bench-syn/syn1000.safetensors"
echo "== ImageNet-size fits: $SYN (bench/gen_features.c), fewshot --shots 16: wall s, user CPU s, peak RSS"
if [ ! -f "$SYN" ]; then mkdir -p "$(dirname "$SYN")"; "$BUILD/bench/gen_features" "$SYN"; fi
syn_fit() { # binary method tag: prints "wall s wall, user s user, MB"
  /usr/bin/time -f "%e %U %M" -o "$BUILD/bench-syn/time.txt" "$1" fewshot --features "$SYN" \
    --method "$2" --shots 16 --no-timings --json "$BUILD/bench-syn/$2.$3.json" > /dev/null
  read -r wall user rss < "$BUILD/bench-syn/time.txt"
  printf "%7.1f s wall %7.1f s user %6.0f MB" "$wall" "$user" "$((rss / 1024))"
}
for m in ${SYN_METHODS:-$("$BUILD/clipadapt" fit --list)}; do
  printf "   %-14s %s" "$m" "$(syn_fit "$BUILD/clipadapt" "$m" new)"
  if [ -n "${BEFORE:-}" ]; then printf "   before: %s" "$(syn_fit "$BEFORE" "$m" before)"; fi
  printf "   test %s%%\n" "$(sed -n 's/.*"test_acc":[[:space:]]*\([0-9.]*\).*/\1/p' "$BUILD/bench-syn/$m.new.json")"
done
echo "== Tip-Adapter and tip-cache at ImageNet size, 3 runs each (bench/fits.sh; alone: make bench-fits)"
BUILD=$BUILD bash bench/fits.sh
echo "== methods: every few-shot method x K on the shipped feature sets (test/val accuracy, fit seconds)"
"$BUILD/bench/methods"
echo "== extract: feature-extraction throughput, vit-tiny (bench/extract.c)"; "$BUILD/bench/extract" 256 3
echo "== GEMM: OpenBLAS vs our AVX-512 kernel on the encoders' shapes (bench/gemm.c), best of 5, GFLOP/s"
"$BUILD"/bench/gemm

# Fast CPU inference (issue 8): full-size random-weight checkpoints, our encoders vs PyTorch on
# the same weights (bench/torch_clip.py), same run. bench/model.c prints every figure.
W="$BUILD/bench-weights"
echo "== full-size checkpoints (bench/gen_weights.c, written once under $W)"
"$BUILD"/bench/gen_weights "$W"
sync  # let the weights' writeback finish before anything is timed
# Bulk prediction (issue 14): predict on a folder of 500x375 JPEGs vs encode on the same images
# preprocessed, ViT-B/32 at batch 32 (alone: make bench-bulk; BULK_BEFORE=old/clipadapt adds "before").
echo "== bulk predict vs encode on preprocessed tensors (bench/bulk.sh)"
BUILD=$BUILD bash bench/bulk.sh
PY=/usr/bin/python3
have_torch=0; "$PY" -c "import torch" 2>/dev/null && have_torch=1
torch_ms() { # model batch [text]: median ms per item of the PyTorch reference on 2 threads
  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$PY" bench/torch_clip.py bench "$1" 2 "$2" 2 $3 |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("%.3f" % (d["median_ms"] / d["batch"]))'
}
# Loading (issue 17 #4): load + pack straight from the mapped file, per format of the same
# ViT-B/32 weights (F16 safetensors, F32 safetensors, F16 TorchScript archive as OpenAI ships,
# written by bench/gen_formats.c) and per model, each beside the figure before the change.
# BEFORE_MODEL=path/to/old/bench/model times the old binary on the same files in the same run.
LW="$BUILD/bench-load"
mkdir -p "$LW"
"$BUILD"/bench/gen_formats "$W/vit-b32.safetensors" "$LW/vit-b32.f32.safetensors" "$LW/vit-b32.jit.pt"
sync
# before: main at 2424f85 (load converting nothing, packing per tensor into malloc'd panels),
# quiet machine 2026-12-01 23:17 for F16; the F32 and TorchScript ones on the loaded machine
# (load average 12-14), old binary beside the new in one loop (docs/perf.md, "Loading fast")
before_of() {
  case "$1" in
    vit-b32.safetensors) echo "1.20-1.39 s (packing 0.76-0.90 s), peak RSS 252 MiB; before issue 17: 3.23 + 1.35 s, 589 MiB" ;;
    vit-b32.f32.safetensors) echo "5.3-7.8 s wall, 2.7-2.9 s CPU at load avg 14, peak RSS 591 MiB" ;;
    vit-b32.jit.pt) echo "3.1-3.7 s wall, 1.3-1.5 s CPU at load avg 14, peak RSS 253 MiB" ;;
    rn50.safetensors) echo "before issue 17: 1.39 + 0.78 s, 400 MiB" ;;
    vit-b16.safetensors) echo "before issue 17: 1.68 + 0.75 s, 582 MiB" ;;
  esac
}
echo "== load + pack, warm page cache, best of 3 (bench/model --load-only: LOAD | file | load+pack | of it packing | weights | peak RSS |)"
for f in "$W/vit-b32.safetensors" "$LW/vit-b32.f32.safetensors" "$LW/vit-b32.jit.pt" "$W/rn50.safetensors" "$W/vit-b16.safetensors"; do
  cat "$f" >/dev/null
  for bin in "$BUILD/bench/model" ${BEFORE_MODEL:+"$BEFORE_MODEL"}; do
    best=""
    for i in 1 2 3; do
      line=$(/usr/bin/time -f "| %e s wall | %U s user | %S s sys | %M KiB max RSS" "$bin" "$f" --load-only 1 2>&1 | grep -v '^==' | tr '\n' ' ')
      t=$(echo "$line" | awk -F'|' '{print $3}' | awk '{print $1}')
      if [ -z "$best" ] || awk -v a="$t" -v b="$bt" 'BEGIN{exit !(a < b)}'; then best=$line; bt=$t; fi
    done
    [ "$bin" = "$BUILD/bench/model" ] && who=now || who="before (BEFORE_MODEL)"
    echo "   $who: $best"
  done
  echo "   before: $(before_of "$(basename "$f")")"
done
echo "== clipadapt predict of one image with ViT-B/32, as a whole process (best of 3)"
echo "   before: 4.2-5.0 s wall, 1.1-1.5 s user at load avg 15-27 (docs/perf.md); target <= 0.4 s"
clf="$W/zero-shot-512.clf.safetensors"
[ -f "$clf" ] || clf="$LW/zero-shot-512.clf.safetensors"
[ -f "$clf" ] || "$BUILD"/clipadapt fit --features "$SHARED/features/stanford_cars.safetensors" \
  --method zero-shot --output "$clf" >/dev/null
img=$(ls "$SHARED"/testdata/preprocess/images/*.jpg | head -n 1)
for m in "$W/vit-b32.safetensors" "$LW/vit-b32.jit.pt"; do
  for i in 1 2 3; do
    /usr/bin/time -f "   predict $(basename "$m"): %e s wall, %U s user, %S s sys, peak RSS %M KiB" \
      "$BUILD"/clipadapt predict --model "$m" --classifier "$clf" "$img" >/dev/null
  done
done

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

# ONNX Runtime as a peer (issue 14 #4): the same checkpoints exported to ONNX and run by
# onnxruntime-node beside clipadapt and PyTorch, alternated, batch 1 and 32 (bench/ort.sh; alone:
# make bench-ort). Skips with one line when node, npm or the package is missing.
BUILD=$BUILD W="$W" bash bench/ort.sh

# The same encoders built with -march=native (make bench builds $NATIVE_BUILD): the portable
# build's run-time dispatch should cost under 3 % (bench/dispatch.sh).
if [ -n "${NATIVE_BUILD:-}" ]; then bash bench/dispatch.sh "$W"; fi
# clipadapt serve (issue 13): loopback load test against offline encode, same run (bench/serve.sh)
echo "== serve: classify throughput and latency at concurrency 1, 8, 32 vs offline encode; RSS over 10,000 requests"
BUILD=$BUILD bash bench/serve.sh
