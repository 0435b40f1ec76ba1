#!/usr/bin/env bash
# test_fewshot.sh — `clipadapt fewshot` end to end: the zero-shot figure, JSON fields, the plot,
# and clean failures (corrupt, truncated, wrong shapes, missing text weights, bad flags).
source "$(dirname "$0")/lib.sh"
CARS=$SHARED/features/stanford_cars.safetensors
PETS=$SHARED/features/oxford_pets.safetensors
export CLIPADAPT_QUIET=1

expect_ok "help" "$CA" fewshot --help
grep -q -- "--search-steps" "$T/out" && grep -q "tip-adapter-f" "$T/out" && ok "help lists flags and methods" || bad "help lists flags and methods"

expect_ok "zero-shot runs" "$CA" fewshot --features "$CARS" --method zero-shot --shots 1
grep -q "58\.17" "$T/out" && ok "zero-shot prints 58.17" || bad "zero-shot prints 58.17: $(cat "$T/out")"

# one run -> one JSON object with the documented fields; small grid keeps it quick
expect_ok "tip-adapter json" "$CA" fewshot --features "$CARS" --method tip-adapter --shots 1 --search-steps 20,5 --json "$T/r.json"
for k in method shots val_acc test_acc alpha beta seconds params cache_size search_val_acc; do
  grep -q "\"$k\":" "$T/r.json" && ok "json has $k" || bad "json has $k"
done
grep -q '"method":[[:space:]]*"tip-adapter"' "$T/r.json" && ok "json method name" || bad "json method name"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["shots"]==1 and 0<d["test_acc"]<=100 and d["alpha"]>0' "$T/r.json" \
    && ok "json parses" || bad "json parses"
fi

# several runs -> an array on stdout with '-', the table on stderr; plot written
expect_ok "two methods, json to stdout, plot" "$CA" fewshot --features "$CARS" --method zero-shot,tip-adapter --shots 1,2 \
  --search-steps 10,4 --json - --plot "$T/p.svg"
head -c 1 "$T/out" | grep -q '\[' && ok "array on stdout" || bad "array on stdout: $(head -c 100 "$T/out")"
grep -q "K=2" "$T/err" && ok "table on stderr" || bad "table on stderr"
grep -q "<svg" "$T/p.svg" && grep -q "</svg>" "$T/p.svg" && [ "$(grep -c '<polyline' "$T/p.svg")" -eq 2 ] \
  && ok "svg has two lines" || bad "svg has two lines"
grep -q "tip-adapter</text>" "$T/p.svg" && ok "svg legend" || bad "svg legend"

# failures: one clear line, exit 1 (2 for usage), no crash, no partial output
expect_fail "missing --features" "required" "$CA" fewshot --method zero-shot
expect_fail "unknown method" "unknown method 'nope'" "$CA" fewshot --features "$CARS" --method nope
expect_fail "unknown K (fixed sample)" "no 3-shot split.*available K: 1,2,4,8,16" "$CA" fewshot --features "$CARS" --method zero-shot --shots 3 --sample fixed
expect_fail "K above the pool" "no 32-shot split.*available K: 1,2,4,8,16" "$CA" fewshot --features "$CARS" --method zero-shot --shots 32
expect_fail "bad steps" "search-steps" "$CA" fewshot --features "$CARS" --method tip-adapter --search-steps 0,5
expect_fail "zero-shot without text" "text" "$CA" fewshot --features "$PETS" --method zero-shot --shots 1 --json "$T/none.json"
[ ! -e "$T/none.json" ] && ok "no partial json" || bad "no partial json"
expect_fail "missing file" "$T/absent.safetensors" "$CA" fewshot --features "$T/absent.safetensors"
head -c 4096 /dev/urandom > "$T/rand.safetensors"
expect_fail "corrupt file" "rand.safetensors" "$CA" fewshot --features "$T/rand.safetensors" --method zero-shot
head -c 100000 "$CARS" > "$T/trunc.safetensors"
expect_fail "truncated file" "trunc.safetensors" "$CA" fewshot --features "$T/trunc.safetensors" --method zero-shot

# hand-made safetensors: labels with the wrong length for their features
st_file() { # path, json header; data = N zero bytes
  local path=$1 hdr=$2 nbytes=$3 len
  len=${#hdr}
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((len & 255)) $(((len >> 8) & 255)) $(((len >> 16) & 255)) $(((len >> 24) & 255)))" > "$path"
  printf '%s' "$hdr" >> "$path"
  head -c "$nbytes" /dev/zero >> "$path"
}
st_file "$T/shape.safetensors" '{"train.1shot.features":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]},"train.1shot.labels":{"dtype":"I64","shape":[3],"data_offsets":[32,56]}}' 56
expect_fail "wrong label shape" "train.1shot.labels" "$CA" fewshot --features "$T/shape.safetensors" --method zero-shot
st_file "$T/dim.safetensors" '{"train.1shot.features":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]},"train.1shot.labels":{"dtype":"I64","shape":[2],"data_offsets":[32,48]},"val.features":{"dtype":"F32","shape":[2,3],"data_offsets":[48,72]},"val.labels":{"dtype":"I64","shape":[2],"data_offsets":[72,88]}}' 88
expect_fail "wrong feature dim" "val.features" "$CA" fewshot --features "$T/dim.safetensors" --method zero-shot
finish
