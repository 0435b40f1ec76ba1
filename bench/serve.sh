#!/usr/bin/env bash
# serve.sh — load test of `clipadapt serve` on loopback with random-weight ViT-B/32 (make bench):
# offline `clipadapt encode` throughput at batch 32 and single-image time, then classify
# throughput and p50/p99 at concurrency 1, 8 and 32, then RSS before and after 10,000 requests.
# Every phase is bounded in requests and seconds; only 127.0.0.1 is ever contacted.
# Env: SERVE_RSS_REQUESTS (default 10000), SERVE_RSS_SECONDS (default 900).
set -euo pipefail
BUILD=${BUILD:-build}
CA=$BUILD/clipadapt
LOAD=$BUILD/bench/serve_load
W=$BUILD/bench-weights
T=$BUILD/bench-serve
mkdir -p "$T"
export CLIPADAPT_QUIET=1
"$BUILD"/bench/gen_weights "$W" vit-b32 >/dev/null
M=$W/vit-b32.safetensors
for n in 1 17 32 192; do [ -f "$T/in$n.safetensors" ] || "$LOAD" --make-input "$T/in$n.safetensors" $n 224; done
[ -f "$T/clf.safetensors" ] || "$LOAD" --make-classifier "$T/clf.safetensors" 512 10 16
[ -d "$T/img" ] || "$BUILD"/tests/test_grow --make-images "$T/img" 1 >/dev/null
IMG=$T/img/red_circle/red_circle_00.png   # a 64x64 PNG: decoding is not what is measured

secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t0 $t1" | awk '{printf "%.4f", $2 - $1}'; }
# offline: the difference of two runs cancels loading and packing the weights
e32=$(secs "$CA" encode --model "$M" --input "$T/in32.safetensors" --output "$T/o.safetensors" --batch 32)
e192=$(secs "$CA" encode --model "$M" --input "$T/in192.safetensors" --output "$T/o.safetensors" --batch 32)
offline=$(awk -v a="$e32" -v b="$e192" 'BEGIN{printf "%.2f", 160 / (b - a)}')
s1=$(secs "$CA" encode --model "$M" --input "$T/in1.safetensors" --output "$T/o.safetensors" --batch 1)
s17=$(secs "$CA" encode --model "$M" --input "$T/in17.safetensors" --output "$T/o.safetensors" --batch 1)
single_ms=$(awk -v a="$s1" -v b="$s17" 'BEGIN{printf "%.2f", 1000 * (b - a) / 16}')
echo "offline clipadapt encode, batch 32: $offline images/s ((192-32) images in $e192 - $e32 s)"
echo "offline clipadapt encode, batch 1: $single_ms ms/image ((17-1) images in $s17 - $s1 s)"

"$CA" serve --model "$M" --port 0 --max-batch 32 --batch-wait-ms 5 --classifier b32="$T/clf.safetensors" 2>"$T/serve.log" &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
port=""
for i in $(seq 1 600); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\)\/.*/\1/p' "$T/serve.log")
  [ -n "$port" ] && break
  kill -0 $PID 2>/dev/null || { cat "$T/serve.log"; exit 1; }
  sleep 0.1
done
case "$port" in ''|*[!0-9]*) echo "serve did not start"; cat "$T/serve.log"; exit 1;; esac
P="/v1/classify?classifier=b32&top_k=5"
"$LOAD" "$port" "$P" "$IMG" 4 32 60 >/dev/null   # warm-up
declare -A tput p99
for c in 1 8 32; do
  n=$((c == 1 ? 100 : c * 20))
  out=$("$LOAD" "$port" "$P" "$IMG" $c $n 180)
  echo "serve classify: $out"
  tput[$c]=$(echo "$out" | awk '{for (i=1;i<NF;i++) if ($i=="throughput") print $(i+1)}')
  p99[$c]=$(echo "$out" | awk '{for (i=1;i<NF;i++) if ($i=="p99") print $(i+1)}')
done
rss() { awk '/^VmRSS/{print $2}' /proc/$PID/status; }
r0=$(rss)
out=$("$LOAD" "$port" "$P" "$IMG" 32 "${SERVE_RSS_REQUESTS:-10000}" "${SERVE_RSS_SECONDS:-900}") || true
r1=$(rss)
echo "serve classify (RSS run): $out"
echo "RSS before $r0 KiB, after $r1 KiB: $(awk -v a="$r0" -v b="$r1" 'BEGIN{printf "%+.2f%%", 100 * (b - a) / a}')"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/metrics" | grep -E '^clipadapt_batch_size_(sum|count)' | tr '\n' ' '; echo
kill -TERM $PID; wait $PID || true
trap - EXIT
awk -v t="${tput[32]}" -v o="$offline" -v p="${p99[1]}" -v s="$single_ms" 'BEGIN{
  printf "c=32 throughput / offline batch-32: %.1f%% (target >= 85%%)\n", 100 * t / o;
  printf "c=1 p99 / single-image encode: %.2fx (target <= 1.5x)\n", p / s }'
