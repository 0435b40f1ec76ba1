#!/usr/bin/env bash
# gda_official_check.sh — does `--covariance ks` give the official GDA code's accuracy (ICLR 2024,
# github.com/mrflogs/ICLR24) to 0.2 points at every K? Bench only, fetches nothing: pass the path
# of your own checkout of that repository (its main_few_shots.py and utils.py are executed as
# they are, on CPU; nothing of it is copied here). Needs /usr/bin/python3 with torch and numpy
# (Debian: python3-torch, python3-numpy).
# Usage: bash bench/gda_official_check.sh OFFICIAL_CHECKOUT [FEATURES.safetensors...]
#   default sets: the four shipped ../shared/features/*.safetensors, plus four generated sets
#   with shapes those lack (stored views, D = 768/96/64/128, 3..40 classes, with and without text).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
CA=${CA:-build/clipadapt}
PY=${PY:-/usr/bin/python3}
official=${1:-}
if [ -z "$official" ] || [ ! -f "$official/main_few_shots.py" ] || [ ! -f "$official/utils.py" ]; then
  echo "gda_official_check: no checkout of the official GDA code at '${official}' (need main_few_shots.py and utils.py;" >&2
  echo "  git clone https://github.com/mrflogs/ICLR24 yourself and pass its path)" >&2
  exit 2
fi
shift
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "gda_official_check: $PY lacks torch or numpy (apt-get install python3-torch python3-numpy)" >&2; exit 2; }
[ "$CA" = build/clipadapt ] && make -s all
if [ $# -eq 0 ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  # name classes dim views seed [notext]
  while read -r name c d v s t; do
    "$PY" bench/gda_official_check.py --synthetic "$tmp/$name.safetensors" "$c" "$d" "$v" "$s" $t
  done <<'SETS'
syn-views-d768-c7 7 768 4 1
syn-d96-c3 3 96 0 2
syn-views-notext-d64-c5 5 64 3 3 notext
syn-notext-d128-c40 40 128 0 4 notext
SETS
  set -- "$SHARED"/features/*.safetensors "$tmp"/*.safetensors
fi
"$PY" bench/gda_official_check.py "$official" "$CA" "$@"
