#!/usr/bin/env bash
# serve.sh — load test of `clipadapt serve` on loopback with random-weight ViT-B/32 (make bench,
# make bench-serve). In the same run, alternating SERVE_ROUNDS times: offline `clipadapt encode`
# throughput at batch 32 and the single-image encode time (`serve_load --encode-single`: the
# request's image, decoded and preprocessed once, encoded one per call on a model and session made
# as serve makes them: serve's work minus HTTP and decoding), then classify throughput and
# p50/p90/p99 at concurrency 1, 8 and 32 against one server, with the server's own stage times at
# concurrency 1; the medians (and min-max spread) are compared with the issue's targets. Then the
# RSS run: SERVE_RSS_REQUESTS classifies at concurrency 32, resident memory before and after.
# Every phase is bounded in requests and seconds; only 127.0.0.1 is ever contacted.
# Env: SERVE_ROUNDS (default 3; 0: the RSS run only), SERVE_C1_REQUESTS (default 500: enough for a
# p99 that is not the maximum), SERVE_SINGLE_IMAGES (default 100), SERVE_RSS_REQUESTS (default
# 10000), SERVE_RSS_SECONDS (default 1200), BUILD (default build).
set -euo pipefail
BUILD=${BUILD:-build}
CA=$BUILD/clipadapt
LOAD=$BUILD/bench/serve_load
W=$BUILD/bench-weights
T=$BUILD/bench-serve
ROUNDS=${SERVE_ROUNDS:-3}
RSS_N=${SERVE_RSS_REQUESTS:-10000}
RSS_S=${SERVE_RSS_SECONDS:-1200}
C1_N=${SERVE_C1_REQUESTS:-500}
SINGLE_N=${SERVE_SINGLE_IMAGES:-100}
mkdir -p "$T"
export CLIPADAPT_QUIET=1
"$BUILD"/bench/gen_weights "$W" vit-b32 >/dev/null   # kept when it exists
M=$W/vit-b32.safetensors
for n in 32 192; do [ -f "$T/in$n.safetensors" ] || "$LOAD" --make-input "$T/in$n.safetensors" $n 224; done
[ -f "$T/clf.safetensors" ] || "$LOAD" --make-classifier "$T/clf.safetensors" 512 10 16
[ -d "$T/img" ] || "$BUILD"/tests/test_grow --make-images "$T/img" 1 >/dev/null
IMG=$T/img/red_circle/red_circle_00.png   # a 64x64 PNG: decoding is not what is measured
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"

# wall and user+sys CPU seconds of a command (user CPU beside wall: the machine may be shared)
timed() {
  local TIMEFORMAT='%R %U %S'
  { time "$@" >"$T/timed.out" 2>"$T/timed.err"; } 2>&1 | awk '{printf "%.4f %.2f\n", $1, $2 + $3}'
}
enc() { "$CA" encode --model "$M" --input "$T/in$1.safetensors" --output "$T/o.safetensors" --batch "$2"; }

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
"$LOAD" "$port" "$P" "$IMG" 32 256 300 >/dev/null 2>&1 || true   # warm-up: let the encoder session see full batches of 32 (its scratch grows to the largest batch) before RSS is first read
srv_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$PID/stat; }
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }

: > "$T/rounds.txt"
for r in $(seq 1 "$ROUNDS"); do   # (none when ROUNDS is 0)
  # offline: the difference of two runs cancels loading and packing the weights
  read -r w32 c32 < <(timed enc 32 32)
  read -r w192 c192 < <(timed enc 192 32)
  off=$(awk -v a="$w32" -v b="$w192" 'BEGIN{printf "%.2f", 160 / (b - a)}')
  echo "round $r: offline encode batch 32: $off images/s (192 images: ${w192} s wall, ${c192} s CPU; 32: ${w32} s, ${c32} s CPU)"
  # the reference of the latency target: the mean time to encode one preprocessed image
  single=$("$LOAD" --encode-single "$M" "$IMG" "$SINGLE_N") || { echo "round $r: $single"; exit 1; }
  echo "round $r: $single"
  echo "offline $off" >> "$T/rounds.txt"
  echo "single $(echo "$single" | field mean)" >> "$T/rounds.txt"
  echo "single_p50 $(echo "$single" | field p50)" >> "$T/rounds.txt"
  echo "single_p99 $(echo "$single" | field p99)" >> "$T/rounds.txt"
  echo "cpu_off $(awk -v a="$c32" -v b="$c192" 'BEGIN{printf "%.2f", 1000 * (b - a) / 160}')" >> "$T/rounds.txt"
  for c in 1 8 32; do
    n=$((c == 1 ? C1_N : c * 20))
    s0=$(srv_cpu)
    out=$("$LOAD" "$port" "$P" "$IMG" $c $n 180 2>"$T/stages.txt") || { echo "round $r c=$c: $out"; exit 1; }
    sc=$(awk -v a="$s0" -v b="$(srv_cpu)" 'BEGIN{printf "%.2f", b - a}')
    echo "round $r: serve classify: $out (server CPU $sc s)"
    [ "$c" = 1 ] && echo "round $r: c=1 $(cat "$T/stages.txt")"
    echo "cpu$c $(awk -v s="$sc" -v n="$(echo "$out" | field ok)" 'BEGIN{printf "%.2f", 1000 * s / n}')" >> "$T/rounds.txt"
    echo "tput$c $(echo "$out" | field throughput)" >> "$T/rounds.txt"
    echo "p50_$c $(echo "$out" | field p50)" >> "$T/rounds.txt"
    echo "p90_$c $(echo "$out" | field p90)" >> "$T/rounds.txt"
    echo "p99_$c $(echo "$out" | field p99)" >> "$T/rounds.txt"
  done
done
# median (min-max) of a figure over the rounds
med() { awk -v k="$1" '$1 == k {v[n++] = $2} END {
  for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) {t = v[i]; v[i] = v[j]; v[j] = t}
  m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; printf "%.2f %.2f %.2f\n", m, v[0], v[n - 1]}' "$T/rounds.txt"; }

rss() { awk '/^VmRSS/{print $2}' /proc/$PID/status; }
r0=$(rss); s0=$(srv_cpu)
read -r wr cr < <(timed "$LOAD" "$port" "$P" "$IMG" 32 "$RSS_N" "$RSS_S" || true)
r1=$(rss)
rss_ok=$(field ok < "$T/timed.out"); rss_err=$(field errors < "$T/timed.out")
echo "RSS run: $(cat "$T/timed.out") ($wr s wall; server CPU $(awk -v a="$s0" -v b="$(srv_cpu)" 'BEGIN{printf "%.2f", b - a}') s)"
batches=$(curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/metrics" | grep -E '^clipadapt_batch_size_(sum|count)' | tr '\n' ' ')
echo "batches (metrics): $batches"
kill -TERM $PID; wait $PID || true
trap - EXIT

echo
if [ "$ROUNDS" = 0 ]; then   # the RSS run only
  awk -v a="$r0" -v b="$r1" -v n="${rss_ok:-0}" -v e="${rss_err:-?}" 'BEGIN{ g = 100 * (b - a) / a;
    printf "RSS over %d requests answered 200 (%s errors): %d -> %d KiB, %+.2f %%   (target <= 5 %% over 10000)   %s\n", n, e, a, b, g, (g <= 5 && n >= 10000 && e == 0 ? "met" : "NOT met") }'
  exit 0
fi
echo "== figures (median of $ROUNDS alternating rounds, min-max in brackets; machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
read -r off offlo offhi < <(med offline); read -r one onelo onehi < <(med single)
read -r one50 a b < <(med single_p50); read -r one99 a b < <(med single_p99)
printf "offline clipadapt encode, batch 32:   %8.2f images/s  [%.2f-%.2f]\n" "$off" "$offlo" "$offhi"
printf "single-image encode (in-process):     %8.2f ms mean   [%.2f-%.2f]  p50 %.2f ms  p99 %.2f ms\n" "$one" "$onelo" "$onehi" "$one50" "$one99"
for c in 1 8 32; do
  read -r t tlo thi < <(med tput$c); read -r p50 a b < <(med p50_$c); read -r p90 a b < <(med p90_$c); read -r p99 plo phi < <(med p99_$c)
  printf "serve classify, concurrency %2d:       %8.2f req/s    [%.2f-%.2f]  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms [%.2f-%.2f]\n" \
    "$c" "$t" "$tlo" "$thi" "$p50" "$p90" "$p99" "$plo" "$phi"
done
read -r co a b < <(med cpu_off); read -r cs a b < <(med cpu32)
printf "CPU per image (user+sys; robust to a shared machine): offline batch 32 %.1f ms, serve c=32 %.1f ms (%.1f %% of serve's CPU is encoding work offline does too)\n" \
  "$co" "$cs" "$(awk -v a="$co" -v b="$cs" 'BEGIN{printf "%.1f", 100 * a / b}')"
read -r t32 t32lo t32hi < <(med tput32); read -r p99 p99lo p99hi < <(med p99_1)
awk -v t="$t32" -v o="$off" -v p="$p99" -v s="$one" -v a="$r0" -v b="$r1" -v n="${rss_ok:-0}" -v e="${rss_err:-?}" 'BEGIN{
  r1 = 100 * t / o; r2 = p / s; g = 100 * (b - a) / a;
  printf "throughput at c=32 / offline batch 32:  %6.1f %%   (target >= 85 %%)   %s   [before: 100.3 %%]\n", r1, (r1 >= 85 ? "met" : "NOT met");
  printf "p99 at c=1 / single-image encode:       %6.2f x   (target <= 1.5 x)   %s   [before: 1.68 x]\n", r2, (r2 <= 1.5 ? "met" : "NOT met");
  printf "RSS over %d requests answered 200 (%s errors): %d -> %d KiB, %+.2f %%   (target <= 5 %% over 10000)   %s   [before: +0.23 %%]\n", n, e, a, b, g, (g <= 5 && n >= 10000 && e == 0 ? "met" : "NOT met") }'
echo "[before: the figures of the previous serve code, nearly idle machine, 2026-12-02 01:56-02:02: c=32 33.47 vs offline 33.37 images/s;"
echo " c=1 p50 42.51 ms, p99 61.16 ms (60 requests) vs single-image encode 36.44 ms (two encode processes differenced); RSS 284,112 -> 284,752 KiB]"
paste -d' ' <(awk '$1 == "p99_1" {print $2}' "$T/rounds.txt") <(awk '$1 == "single" {print $2}' "$T/rounds.txt") |
  awk '{printf "%s%.2f x (%.2f / %.2f ms)", NR == 1 ? "p99 at c=1 / single-image encode, round by round: " : ", ", $1 / $2, $1, $2} END {print ""}'
