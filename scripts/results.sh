#!/usr/bin/env bash
# results.sh — the README's results tables: every method the feature set supports × K ∈
# {1,2,4,8,16} × seeds {1,2,3}, under --select val and --select kshot-val, on the four shipped
# ViT-B/32 feature sets, with the library's default options (CLIP-Adapter 200 epochs,
# Tip-Adapter-F 20). Cells: test accuracy %, mean ± sample std over the seeds; for K < 16 each
# seed draws its K shots per class from train.16shot (`--sample pool`, the default).
# Usage: bash scripts/results.sh [OUTDIR]   (default build/results)
#   SETS="stanford_cars caltech101" SELECTS="val" SEEDS=3 THREADS=2 METHODS=a,b EXTRA="--epochs 20"
#   to narrow the grid; CA=binary.
# Writes OUTDIR/<set>.<select>.json (per-seed records + aggregate, no timings: byte-identical
# for the same thread count), OUTDIR/<set>.<select>.svg and OUTDIR/<set>.<select>.txt (table),
# and the same for GDA's published estimator (gda, gda-zs --covariance ks; the main run uses the
# default, tuned) as OUTDIR/<set>.<select>.ks.{json,txt}. KS=0 skips that run.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
out=${1:-build/results}
SETS=${SETS:-"stanford_cars caltech101 oxford_pets oxford_flowers"}
SELECTS=${SELECTS:-"val kshot-val"}
SEEDS=${SEEDS:-3}
THREADS=${THREADS:-2}
METHODS=${METHODS:-all}
EXTRA=${EXTRA:-}
KS=${KS:-1}
CA=${CA:-build/clipadapt}   # another binary (e.g. a copy, so that rebuilding does not change it mid-run)
mkdir -p "$out"
[ "$CA" = build/clipadapt ] && make -s all
for set in $SETS; do
  for sel in $SELECTS; do
    echo "### $set, --select $sel"
    echo '```'
    CLIPADAPT_QUIET=1 "$CA" fewshot --features "$SHARED/features/$set.safetensors" \
      --method "$METHODS" --shots all --seeds "$SEEDS" --select "$sel" --threads "$THREADS" --no-timings $EXTRA \
      --json "$out/$set.$sel.json" --plot "$out/$set.$sel.svg" 2>&1 | grep -v 'note: skipping' | tee "$out/$set.$sel.txt"
    echo '```'
    if [ "$KS" = 1 ]; then
      echo "### $set, --select $sel, gda and gda-zs with --covariance ks"
      echo '```'
      CLIPADAPT_QUIET=1 "$CA" fewshot --features "$SHARED/features/$set.safetensors" \
        --method gda,gda-zs --covariance ks --shots all --seeds "$SEEDS" --select "$sel" --threads "$THREADS" --no-timings \
        --json "$out/$set.$sel.ks.json" 2>&1 | grep -v 'note: skipping' | tee "$out/$set.$sel.ks.txt"
      echo '```'
    fi
  done
done
