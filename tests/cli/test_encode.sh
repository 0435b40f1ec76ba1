#!/usr/bin/env bash
# test_encode.sh — `clipadapt info` and `clipadapt encode` end to end: help, inferred
# architecture, one-line errors with exit codes, no partial output. (The numerical comparison of
# encode's output with the goldens lives in tests/test_model.c, test_cli_encode.)
source "$(dirname "$0")/lib.sh"
M=$SHARED/testdata/models

expect_ok "encode --help" "$CA" encode --help
expect_ok "info --help" "$CA" info --help

expect_ok "info vit-tiny" "$CA" info --model "$M/vit-tiny.safetensors"
if grep -q "ViT, image 64, patch 16, width 128, layers 2, heads 2" "$T/out" && grep -q "dtype: *F16" "$T/out" \
   && grep -q "parameters: *7244929" "$T/out" && grep -q "logit scale: *100.0299" "$T/out"; then ok "info vit-tiny content"
else bad "info vit-tiny content: $(cat "$T/out")"; fi
expect_ok "info rn-tiny" "$CA" info --model "$M/rn-tiny.safetensors"
if grep -q "ModifiedResNet, image 64, width 8, stages (1,1,1,1), attention-pool heads 4" "$T/out"; then ok "info rn-tiny content"
else bad "info rn-tiny content: $(cat "$T/out")"; fi
expect_ok "info hf with config" "$CA" info --model "$M/vit-tiny-hf.safetensors" --config "$M/vit-tiny-hf.config.json"
if grep -q "names: *hf" "$T/out"; then ok "info hf content"; else bad "info hf content: $(cat "$T/out")"; fi

expect_ok "encode rn-tiny golden inputs" "$CA" encode --model "$M/rn-tiny.safetensors" \
  --input "$M/rn-tiny-golden.safetensors" --output "$T/rn.safetensors" --batch 2
[ -s "$T/rn.safetensors" ] && ok "encode wrote output" || bad "encode wrote no output"

expect_fail "encode missing model" "nope.safetensors" "$CA" encode --model "$T/nope.safetensors" \
  --input "$M/rn-tiny-golden.safetensors" --output "$T/x.safetensors"
expect_fail "encode input without images/tokens" "neither 'images'" "$CA" encode --model "$M/rn-tiny.safetensors" \
  --input "$M/vit-tiny.safetensors" --output "$T/x.safetensors"
head -c 100000 "$M/vit-tiny.safetensors" > "$T/trunc.safetensors"
expect_fail "encode truncated model" "trunc.safetensors" "$CA" encode --model "$T/trunc.safetensors" \
  --input "$M/vit-tiny-golden.safetensors" --output "$T/x.safetensors"
expect_fail "info truncated model" "trunc.safetensors" "$CA" info --model "$T/trunc.safetensors"
[ ! -e "$T/x.safetensors" ] && ok "no partial output" || bad "partial output left behind"

"$CA" encode --model "$M/rn-tiny.safetensors" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "missing options exit 2" || bad "missing options exit $rc"
"$CA" encode --model "$M/rn-tiny.safetensors" --input a --output b --batch 0 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad --batch exit 2" || bad "bad --batch exit $rc"
"$CA" info --bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "info unknown option exit 2" || bad "info unknown option exit $rc"
finish
