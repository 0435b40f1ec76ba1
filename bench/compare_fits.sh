#!/usr/bin/env bash
# compare_fits.sh — the fit-speed work must not change results: runs two clipadapt binaries on
# every shipped feature set ($SHARED/features/*.safetensors) at every K and compares what they
# chose and scored, method by method: alpha, beta (Tip-Adapter, Tip-Adapter-F), beta (tip-cache),
# val and test accuracy. Prints one line per fit and exits 1 if any differs.
#   bash bench/compare_fits.sh OLD_BINARY NEW_BINARY [methods]
# e.g. bash bench/compare_fits.sh /tmp/clipadapt-main build/clipadapt tip-adapter,tip-cache
set -euo pipefail
old=${1:?usage: compare_fits.sh OLD_BINARY NEW_BINARY [methods]}
new=${2:?usage: compare_fits.sh OLD_BINARY NEW_BINARY [methods]}
methods=${3:-tip-adapter,tip-cache,tip-adapter-f,clip-adapter}
SHARED=${SHARED:-../shared}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
status=0
for f in "$SHARED"/features/*.safetensors; do
  ds=$(basename "$f" .safetensors)
  m=$methods
  # a set without text weights (text.weights in the safetensors header): only the methods without
  if [ "$(head -c 100000 "$f" | grep -ac text.weights || true)" = 0 ]; then
    m=$(echo "$methods" | tr , '\n' | grep -Ex 'tip-cache|prototype|linear-probe|gda' | paste -sd, || true)
    [ -n "$m" ] || continue
  fi
  for b in old new; do
    "${!b}" fewshot --features "$f" --method "$m" --shots all --no-timings --quiet --json "$T/$ds.$b.json" >/dev/null
  done
  python3 - "$T/$ds.old.json" "$T/$ds.new.json" "$ds" <<'PY' || status=1
import json, sys
old, new = (json.load(open(p)) for p in sys.argv[1:3])
old = old if isinstance(old, list) else [old]
new = new if isinstance(new, list) else [new]
bad = len(old) != len(new)
keys = ("alpha", "beta", "val_acc", "test_acc")
for o, n in zip(old, new):
    po, pn = o.get("params", {}), n.get("params", {})
    same = all(o.get(k) == n.get(k) for k in keys) and po.get("beta") == pn.get("beta") and po.get("alpha") == pn.get("alpha")
    bad |= not same
    fmt = lambda r, p: " ".join("%s=%s" % (k, r.get(k, p.get(k, "-"))) for k in keys)
    print("%-15s %-14s K=%-3s %s  old: %s  new: %s" % (sys.argv[3], o["method"], o["shots"],
          "same" if same else "DIFFERS", fmt(o, po), fmt(n, pn) if not same else ""))
sys.exit(1 if bad else 0)
PY
done
[ $status = 0 ] && echo "compare_fits: identical choices and accuracies" || echo "compare_fits: DIFFERENCES found"
exit $status
