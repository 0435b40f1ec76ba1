#!/usr/bin/env bash
# results.sh — the README's results tables: every method the feature set supports × K ∈
# {1,2,4,8,16} × seeds {1,2,3}, under --select val and --select kshot-val, on the four shipped
# ViT-B/32 feature sets, with the library's default options (CLIP-Adapter 200 epochs,
# Tip-Adapter-F 20). Cells: test accuracy %, mean ± sample std over the seeds; for K < 16 each
# seed draws its K shots per class from train.16shot (`--sample pool`, the default).
# Usage: bash scripts/results.sh [OUTDIR]   (default build/results)
#   SETS="stanford_cars caltech101" SELECTS="val" SEEDS=3 THREADS=2 METHODS=a,b EXTRA="--epochs 20"
#   to narrow the grid; CA=binary. A grid run in pieces (one METHODS each, into separate OUTDIRs)
#   is joined with `python3 scripts/results_tables.py merge OUT.json PIECE.json...`, which gives
#   the cells of one run: each run's randomness depends on its seed, method and K only.
# Writes OUTDIR/<set>.<select>.json (per-seed records + aggregate, no timings: byte-identical
# for the same thread count), OUTDIR/<set>.<select>.svg and OUTDIR/<set>.<select>.txt (table),
# and the same for GDA's published estimator (gda, and gda-zs when the set has text weights,
# with --covariance ks; the main run uses the default, tuned) as OUTDIR/<set>.<select>.ks.{json,txt}.
# KS=0 skips that run, KS=only runs it alone. The README's tables come from these JSON files:
# `python3 scripts/results_tables.py tables DIR --readme README.md`.
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
# does a safetensors file hold tensor NAME? (its JSON header, read with the standard library)
has_tensor() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    sys.exit(0 if sys.argv[2] in json.loads(f.read(n)) else 1)
PY
}
for set in $SETS; do
  feats="$SHARED/features/$set.safetensors"
  ks_methods=gda
  has_tensor "$feats" text.weights && ks_methods=gda,gda-zs
  for sel in $SELECTS; do
    if [ "$KS" != only ]; then
      echo "### $set, --select $sel"
      echo '```'
      CLIPADAPT_QUIET=1 "$CA" fewshot --features "$feats" \
        --method "$METHODS" --shots all --seeds "$SEEDS" --select "$sel" --threads "$THREADS" --no-timings $EXTRA \
        --json "$out/$set.$sel.json" --plot "$out/$set.$sel.svg" 2>&1 | grep -v 'note: skipping' | tee "$out/$set.$sel.txt"
      echo '```'
    fi
    if [ "$KS" != 0 ]; then
      echo "### $set, --select $sel, $ks_methods with --covariance ks"
      echo '```'
      CLIPADAPT_QUIET=1 "$CA" fewshot --features "$feats" \
        --method "$ks_methods" --covariance ks --shots all --seeds "$SEEDS" --select "$sel" --threads "$THREADS" --no-timings \
        --json "$out/$set.$sel.ks.json" 2>&1 | grep -v 'note: skipping' | tee "$out/$set.$sel.ks.txt"
      echo '```'
    fi
  done
done
