#!/usr/bin/env bash
# run.sh — runs every benchmark and prints its results (make bench). Timings are noisy on a
# shared machine: each bench reports best and median of several runs.
set -e
BUILD=${BUILD:-build}
export SHARED=${SHARED:-../shared}
echo "== image decode + preprocess (bench/image.c)"; "$BUILD/bench/image"
echo "== model encode (bench/encode.c)"; "$BUILD/bench/encode"
echo "== tokenizer: 80,000 ImageNet prompts on one core (bench/tokenizer.c)"; OMP_NUM_THREADS=1 "$BUILD/bench/tokenizer"
echo "== extract: feature-extraction throughput, vit-tiny (bench/extract.c)"; "$BUILD/bench/extract" 256 3
