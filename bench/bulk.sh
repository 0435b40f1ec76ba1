#!/usr/bin/env bash
# bulk.sh — bulk prediction throughput (issue 14, make bench-bulk; also a block of make bench):
# `clipadapt predict` on a folder of N 500x375 JPEGs (bench/gen_jpegs: made once from the shared
# photos, no downloads) against `clipadapt encode` on the same images already decoded and
# preprocessed, ViT-B/32, batch 32, the same thread count, in the same run, alternated round by
# round. Both are whole processes (model load included on both sides). Prints images/s of each,
# wall and user CPU seconds, and the ratio (target: predict >= 0.90 x encode); with
# BULK_BEFORE=path/to/an/older/clipadapt its predict is timed in the same rounds too ("before").
set -e
BUILD=${BUILD:-build}
export SHARED=${SHARED:-../shared}
N=${BULK_N:-256}; ROUNDS=${BULK_ROUNDS:-3}; THREADS=${BULK_THREADS:-2}; R=224
W=${BULK_MODEL:-$BUILD/bench-weights/vit-b32.safetensors}
D=$BUILD/bench-bulk
CA=$BUILD/clipadapt
export CLIPADAPT_QUIET=1
[ -f "$W" ] || { echo "bulk: $W missing (make bench writes it: bench/gen_weights)"; exit 1; }
mkdir -p "$D"
if [ ! -f "$D/jpegs-$N.done" ]; then
  rm -rf "$D/jpegs-$N"
  "$BUILD/bench/gen_jpegs" "$D/jpegs-$N" "$N" "$D/pre-$N.safetensors" $R
  touch "$D/jpegs-$N.done"
fi
clf="$D/zero-shot-512.clf.safetensors"   # any 512-d classifier: the stanford_cars zero-shot head
[ -f "$clf" ] || "$CA" fit --features "$SHARED/features/stanford_cars.safetensors" --method zero-shot --output "$clf" >/dev/null
sync

# run NAME CMD...: one timed whole process; appends "wall user" to $D/NAME.times
run() {
  local name=$1; shift
  /usr/bin/time -f "%e %U" -o "$D/t.txt" "$@" >/dev/null 2>"$D/err.txt" || { cat "$D/err.txt"; exit 1; }
  cat "$D/t.txt" >> "$D/$name.times"
}
rm -f "$D"/*.times
for r in $(seq "$ROUNDS"); do
  run encode "$CA" encode --model "$W" --input "$D/pre-$N.safetensors" --output "$D/enc.safetensors" --batch 32 --threads "$THREADS"
  run predict "$CA" predict --model "$W" --classifier "$clf" --images "$D/jpegs-$N" --batch 32 --threads "$THREADS" --output "$D/preds.jsonl"
  [ -n "$BULK_BEFORE" ] && run before "$BULK_BEFORE" predict --model "$W" --classifier "$clf" --images "$D/jpegs-$N" \
    --batch 32 --threads "$THREADS" --output "$D/preds-before.jsonl"
done
# median wall of the rounds, and the user CPU of that round
med() { sort -n "$D/$1.times" | awk '{w[NR]=$1; u[NR]=$2} END{m=int((NR+1)/2); print w[m], u[m]}'; }
read -r ew eu <<<"$(med encode)"; read -r pw pu <<<"$(med predict)"
echo "bulk predict: $N JPEGs 500x375, $(basename "$W"), batch 32, $THREADS threads, median of $ROUNDS alternated rounds (whole processes)"
awk -v n="$N" -v w="$ew" -v u="$eu" 'BEGIN{printf "   %-44s %7.2f images/s  (%.2f s wall, %.2f s user)\n", "encode, preprocessed tensors:", n/w, w, u}'
awk -v n="$N" -v w="$pw" -v u="$pu" 'BEGIN{printf "   %-44s %7.2f images/s  (%.2f s wall, %.2f s user)\n", "predict, JPEG folder (this build):", n/w, w, u}'
awk -v a="$ew" -v b="$pw" 'BEGIN{printf "   ratio predict / encode throughput            %.3f  (target >= 0.90)\n", a/b}'
if [ -n "$BULK_BEFORE" ]; then
  read -r bw bu <<<"$(med before)"
  awk -v n="$N" -v w="$bw" -v u="$bu" -v p="$BULK_BEFORE" 'BEGIN{printf "   %-44s %7.2f images/s  (%.2f s wall, %.2f s user)\n", "before: predict of " p ":", n/w, w, u}'
  awk -v a="$ew" -v b="$bw" 'BEGIN{printf "   before: ratio predict / encode               %.3f\n", a/b}'
  cmp -s "$D/preds.jsonl" "$D/preds-before.jsonl" && echo "   predictions byte-identical to before" || echo "   predictions DIFFER from before"
fi
