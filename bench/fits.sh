#!/usr/bin/env bash
# fits.sh — ImageNet-size fit timings (issue 14) with repeats: each method fitted REPEATS times
# (default 3) on the synthetic 1000-class set (bench/gen_features.c, written once), printing the
# min and median of wall and user CPU seconds, the largest peak RSS and the test accuracy. With
# BEFORE=path/to/an/older/clipadapt the old binary's runs alternate with the new one's (so both
# see the same machine load) and its figures print beside; bench/compare_fits.sh checks results.
#   BEFORE=/tmp/clipadapt-main-286eaa0 bash bench/fits.sh tip-adapter-f clip-adapter
# One line per method and binary:
#   tip-adapter-f  new     wall min 41.2 med 41.9 s  user min 80.1 med 80.6 s  peak 1.58 GB  test 61.21 %
set -euo pipefail
BUILD=${BUILD:-build}
REPEATS=${REPEATS:-3}
SYN=${SYN:-$BUILD/bench-syn/syn1000.safetensors}
if [ ! -f "$SYN" ]; then mkdir -p "$(dirname "$SYN")"; "$BUILD/bench/gen_features" "$SYN"; fi
[ $# -gt 0 ] || set -- tip-adapter-f clip-adapter
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
bins=(new)
[ -n "${BEFORE:-}" ] && bins+=(before)
echo "== ImageNet-size fits, $REPEATS runs each: $SYN, fewshot --shots 16 (machine load now: $(cut -d' ' -f1-3 /proc/loadavg))"
for m in "$@"; do
  for r in $(seq "$REPEATS"); do
    for b in "${bins[@]}"; do
      bin="$BUILD/clipadapt"
      [ "$b" = before ] && bin=$BEFORE
      /usr/bin/time -f "%e %U %M" -o "$T/$m.$b.$r.time" "$bin" fewshot --features "$SYN" --method "$m" --shots 16 \
        --no-timings --quiet --json "$T/$m.$b.json" > /dev/null 2> "$T/err" || { cat "$T/err" >&2; exit 1; }
    done
  done
  for b in "${bins[@]}"; do
    acc=$(sed -n 's/.*"test_acc":[[:space:]]*\([0-9.]*\).*/\1/p' "$T/$m.$b.json" | head -1)
    cat "$T/$m.$b".*.time | awk -v m="$m" -v b="$b" -v acc="$acc" '
      { w[NR] = $1; u[NR] = $2; if ($3 > rss) rss = $3 }
      function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      END { n = NR; mw = med(w, n); mu = med(u, n)
            printf "   %-14s %-7s wall min %6.1f med %6.1f s  user min %6.1f med %6.1f s  peak %.2f GB  test %s %%\n",
                   m, b, w[1], mw, u[1], mu, rss / 1048576, acc }'
  done
done
