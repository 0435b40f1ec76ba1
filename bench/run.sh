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
echo "== methods: every few-shot method x K on the shipped feature sets (test/val accuracy, fit seconds)"
"$BUILD/bench/methods"
echo "== extract: feature-extraction throughput, vit-tiny (bench/extract.c)"; "$BUILD/bench/extract" 256 3
