#!/usr/bin/env bash
# results.sh — the README's results table: every method the feature set supports at every K on
# the four shipped ViT-B/32 feature sets, with the library's default options (CLIP-Adapter 200
# epochs, Tip-Adapter-F 20). Test accuracy % with val accuracy % in brackets; seed 1.
# Usage: bash scripts/results.sh [OUTDIR]   (JSON per set lands in OUTDIR, default build/results)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
out=${1:-build/results}
mkdir -p "$out"
make -s all
for set in stanford_cars caltech101 oxford_pets oxford_flowers; do
  echo "### $set"
  echo '```'
  CLIPADAPT_QUIET=1 build/clipadapt fewshot --features "$SHARED/features/$set.safetensors" \
    --method all --shots all --json "$out/$set.json" 2>&1 | grep -v 'note: skipping'
  echo '```'
done
