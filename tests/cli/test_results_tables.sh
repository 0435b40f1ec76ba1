#!/usr/bin/env bash
# test_results_tables.sh — scripts/results_tables.py, which makes the README's results tables:
# pieces run one method per process merge into the records and aggregate of one joint run; the
# table shows mean ± sample std per method and K with GDA's ks rows; pieces that disagree (set,
# seeds, the same run twice) are refused; the README block is replaced between its markers.
source "$(dirname "$0")/lib.sh"
export CLIPADAPT_QUIET=1
RT="python3 $(dirname "$0")/../../scripts/results_tables.py"
F=$T/set.safetensors
python3 "$(dirname "$0")/gen_features.py" "$F" --dim 48 --classes 5 --shots 1,2,4 --views 2 --val 3 --test 12 --noise 4 \
  && ok "generate a set" || bad "generate"
RUN=(fewshot --features "$F" --shots all --seeds 2 --select kshot-val --threads 1 --no-timings)
expect_ok "joint run" "$CA" "${RUN[@]}" --method prototype,gda,proker --json "$T/joint.json"
expect_ok "piece 1" "$CA" "${RUN[@]}" --method prototype --json "$T/p1.json"
expect_ok "piece 2" "$CA" "${RUN[@]}" --method gda,proker --json "$T/p2.json"
expect_ok "merge" $RT merge "$T/m.json" "$T/p1.json" "$T/p2.json"
python3 - "$T/joint.json" "$T/m.json" <<'PY' && ok "merged pieces = the joint run (records, means, stds)" || bad "merge differs from the joint run"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
key = lambda r: (r["method"], r["shots"], r["seed"])
assert sorted(a["runs"], key=key) == sorted(b["runs"], key=key)
ag = {(x["method"], x["shots"]): x for x in a["aggregate"]}
bg = {(x["method"], x["shots"]): x for x in b["aggregate"]}
assert ag.keys() == bg.keys()
for k in ag:
    assert abs(ag[k]["test_mean"] - bg[k]["test_mean"]) < 1e-9 and abs(ag[k]["test_std"] - bg[k]["test_std"]) < 1e-9, k
PY
# refusals: the same run in two pieces; pieces of other seeds
expect_fail "a run in two pieces" "prototype K=1 seed 1 is in two pieces" $RT merge "$T/x.json" "$T/p1.json" "$T/p1.json"
expect_ok "piece, other seeds" "$CA" fewshot --features "$F" --shots all --seeds 3 --select kshot-val --threads 1 --no-timings --method tip-cache --json "$T/p3.json"
expect_fail "pieces of other seeds" "seeds is" $RT merge "$T/x.json" "$T/p1.json" "$T/p3.json"
[ ! -e "$T/x.json" ] && ok "no output on a refused merge" || bad "partial merge output"

# the tables: DIR/<set>.<select>.json and .ks.json; one cell checked against its per-seed values
mkdir -p "$T/d"
cp "$T/m.json" "$T/d/stanford_cars.kshot-val.json"
expect_ok "ks piece" "$CA" "${RUN[@]}" --method gda --covariance ks --json "$T/d/stanford_cars.kshot-val.ks.json"
expect_ok "tables" $RT tables "$T/d" --missing "stanford_cars:clip-adapter=not run here"
# a cell whose seeds differ (so the std is not trivially 0), recomputed here from its records
read -r meth cell < <(python3 - "$T/m.json" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
for a in d["aggregate"]:
    xs = [r["test_acc"] for r in d["runs"] if r["method"] == a["method"] and r["shots"] == a["shots"]]
    if statistics.stdev(xs) > 0:
        print(a["method"], "%.2f ± %.2f" % (statistics.fmean(xs), statistics.stdev(xs)))
        break
PY
)
[ -n "$cell" ] && grep "| $meth | " "$T/out" | grep -qF "$cell" && ok "$meth cell is mean ± sample std ($cell)" \
  || bad "$meth row lacks '$cell': $(grep "| $meth | " "$T/out")"
grep -q "| gda (ks) | " "$T/out" && ok "ks row beside gda" || bad "no ks row"
grep -q "clip-adapter ¹" "$T/out" && grep -q "not run here" "$T/out" && ok "missing cell marked with its reason" || bad "missing cell"
grep -q "tuned (kshot-val)" "$T/out" && bad "covariance table needs both regimes" || ok "no covariance table from one regime"
printf 'intro\n<!-- results:begin -->\nold\n<!-- results:end -->\noutro\n' > "$T/R.md"
expect_ok "--readme" $RT tables "$T/d" --readme "$T/R.md"
grep -q '^old$' "$T/R.md" && bad "old block kept" || ok "README block replaced"
head -1 "$T/R.md" | grep -q intro && tail -1 "$T/R.md" | grep -q outro && ok "text around the markers kept" || bad "README damaged"
printf 'no markers\n' > "$T/N.md"
expect_fail "README without markers" "no <!-- results:begin -->" $RT tables "$T/d" --readme "$T/N.md"
finish
