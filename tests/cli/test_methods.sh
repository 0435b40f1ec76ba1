#!/usr/bin/env bash
# test_methods.sh — the issue-16 methods and GDA's --covariance from the command line: help lists
# them, cheap runs succeed, a set without text weights is refused with one line, the KS estimator
# at one shot without views is exactly zero-shot (as the official code), bad values are usage errors.
source "$(dirname "$0")/lib.sh"
CARS=$SHARED/features/stanford_cars.safetensors
PETS=$SHARED/features/oxford_pets.safetensors
export CLIPADAPT_QUIET=1

expect_ok "fewshot help" "$CA" fewshot --help
for m in lp++ zs-lp clap taskres proker ape; do
  grep -q -- "  $m " "$T/out" && ok "help lists $m" || bad "help lists $m"
done
grep -q -- "--covariance" "$T/out" && ok "help has --covariance" || bad "help has --covariance"

# gda-zs with the KS estimator at 1 shot: no within-class scatter, so zero-shot's 58.17
expect_ok "gda-zs ks 1-shot" "$CA" fewshot --features "$CARS" --method gda-zs --covariance ks --shots 1 --json "$T/ks.json"
grep -q "58\.17" "$T/out" && ok "gda-zs ks 1-shot is zero-shot" || bad "gda-zs ks 1-shot is zero-shot: $(cat "$T/out")"
grep -q '"covariance":[[:space:]]*1' "$T/ks.json" && ok "json records covariance" || bad "json records covariance"
expect_ok "gda ks on a set without text" "$CA" fewshot --features "$PETS" --method gda --covariance ks --shots 4

# short runs of the trained probes and LP++; fit + eval round trip of a closed-form method
expect_ok "probes, 5 epochs" "$CA" fewshot --features "$CARS" --method lp++,zs-lp,clap,taskres --shots 1 --epochs 5 --json "$T/p.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==4 and all(0<r["test_acc"]<=100 for r in d)' "$T/p.json" \
  && ok "probe json" || bad "probe json"
expect_ok "fit proker" "$CA" fit --features "$CARS" --method proker --shots 1 --output "$T/pk.safetensors"
expect_ok "eval proker" "$CA" eval --classifier "$T/pk.safetensors" --features "$CARS"

expect_fail "new method without text" "needs a text classifier" "$CA" fewshot --features "$PETS" --method proker --shots 1
expect_fail "bad covariance" "covariance" "$CA" fewshot --features "$CARS" --method gda --covariance nope
[ "$("$CA" fewshot --features "$CARS" --method gda --covariance nope >/dev/null 2>&1; echo $?)" = 2 ] && ok "bad covariance exits 2" || bad "bad covariance exits 2"
expect_fail "fit bad covariance" "covariance" "$CA" fit --features "$CARS" --method gda --covariance x --output "$T/x.safetensors"
[ ! -e "$T/x.safetensors" ] && ok "no partial output" || bad "no partial output"
finish
