#!/usr/bin/env bash
# fits.sh — fits at ImageNet size (issue 14): `fewshot --shots 16` of each METHOD given (default
# tip-adapter tip-cache; also tip-adapter-f, clip-adapter, any method) on the synthetic 1000-class set of bench/gen_features.c (16,000 keys, 10,000 val, 50,000 test), REPS
# runs each (FITS_REPS, default 3). Prints min and median of the whole command's wall seconds, user
# CPU seconds and peak RSS (/usr/bin/time), and of its phases from the JSON: "search" (the fit's
# α/β or β search with its val affinities, params.search_seconds) and "scoring" (the rest of the
# command's fit + val and test scoring time, seconds − search). Beside each, the figure before
# (main at 286eaa0, nearly idle machine, 2026-12-02 ~01:55, one run) or, with BEFORE=old/clipadapt,
# that binary timed in the same loop (alternating runs). The target: <= 10 s wall on 2 cores.
#   make bench-fits [BEFORE=/tmp/clipadapt-main-286eaa0] [FITS_REPS=5]
#   BEFORE=/tmp/clipadapt-main-286eaa0 bash bench/fits.sh tip-adapter-f clip-adapter
set -euo pipefail
BUILD=${BUILD:-build}
REPS=${FITS_REPS:-${REPEATS:-3}}
SYN="$BUILD/bench-syn/syn1000.safetensors"
if [ ! -f "$SYN" ]; then mkdir -p "$(dirname "$SYN")"; "$BUILD/bench/gen_features" "$SYN" >/dev/null; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
run() { # binary method out: appends "wall user rss_MB search total" to out
  /usr/bin/time -f "%e %U %M" -o "$T/time" "$1" fewshot --features "$SYN" --method "$2" --shots 16 \
    --json "$T/run.json" >/dev/null 2>&1
  read -r wall user rss <"$T/time"
  python3 - "$T/run.json" "$wall" "$user" "$rss" >>"$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d = d[0] if isinstance(d, list) else d
s = d.get("params", {}).get("search_seconds", float("nan"))
print(sys.argv[2], sys.argv[3], int(sys.argv[4]) // 1024, s, d["seconds"], d.get("alpha", "-"), d.get("beta"), d["val_acc"], d["test_acc"])
PY
}
summary() { # file: "wall min/median, user, RSS, search, scoring" and the choice
  python3 - "$1" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
col = lambda i: sorted(float(r[i]) for r in rows)
f = lambda v: "%.2f/%.2f" % (v[0], st.median(v))
score = sorted(float(r[4]) - float(r[3]) for r in rows)
phases = ("search %s s, scoring %s s" % (f(col(3)), f(score)) if rows[0][3] != "nan"
          else "no phases (the binary records no search_seconds)")
print("wall %s s, user %s s, peak RSS %d MB, %s (min/median of %d); alpha %s beta %s val %s test %s"
      % (f(col(0)), f(col(1)), max(int(r[2]) for r in rows), phases, len(rows), *rows[0][5:9]))
PY
}
before_of() {
  case "$1" in
    tip-adapter) echo "15.8 s wall, 26.0 s user, 1.21 GB peak RSS (one run)" ;;
    tip-cache) echo "26.3 s wall, 47.0 s user, 0.94 GB peak RSS (one run)" ;;
    tip-adapter-f) echo "236.4 s user, 1.57 GB peak RSS (one run, loaded machine: wall not comparable)" ;;
    clip-adapter) echo "105.7 s wall, 104.8 s user, 705 MB peak RSS (main f567121's step, nearly idle, one run); at load 7-11 in one loop with the new step: 171.2/173.4 s wall, 119.3 s user" ;;
    *) echo "no recorded figure: give BEFORE=older/clipadapt" ;;
  esac
}
[ $# -gt 0 ] || set -- tip-adapter tip-cache
echo "== ImageNet-size fits, $SYN, fewshot --shots 16, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for m in "$@"; do
  : >"$T/new"; : >"$T/old"
  for _ in $(seq "$REPS"); do
    run "$BUILD/clipadapt" "$m" "$T/new"
    if [ -n "${BEFORE:-}" ]; then run "$BEFORE" "$m" "$T/old"; fi
  done
  printf "   %-12s now:    %s\n" "$m" "$(summary "$T/new")"
  if [ -n "${BEFORE:-}" ]; then printf "   %-12s before: %s\n" "$m" "$(summary "$T/old")"
  else printf "   %-12s before: %s\n" "$m" "$(before_of "$m")"; fi
done
