#!/usr/bin/env bash
# test_protocol.sh — issue 16 from the command line: `fewshot --seeds` (mean ± std table, JSON
# with per-seed records and the aggregate, SVG error bars, byte-identical JSON for the same
# seeds and threads), `--select` regimes and `--sample`, clean usage errors; `extract --prompts`.
source "$(dirname "$0")/lib.sh"
CARS=$SHARED/features/stanford_cars.safetensors
PETS=$SHARED/features/oxford_pets.safetensors
export CLIPADAPT_QUIET=1
FAST=(--method zero-shot,tip-adapter,tip-adapter-f,clip-adapter,gda-zs --shots 1,2 --search-steps 10,4 --epochs 2 --threads 2)

expect_ok "help documents seeds and selection" "$CA" fewshot --help
grep -q -- "--seeds" "$T/out" && grep -q "kshot-val" "$T/out" && grep -q "resampled" "$T/out" && grep -q -- "--no-timings" "$T/out" \
  && ok "help: --seeds, --select, resampled, --no-timings" || bad "help lacks the protocol flags"

expect_ok "--seeds 3" "$CA" fewshot --features "$CARS" "${FAST[@]}" --seeds 3 --no-timings --json "$T/a.json" --plot "$T/a.svg"
grep -qE "tip-adapter +[0-9.]+ ± +[0-9.]+" "$T/out" && ok "table shows mean ± std" || bad "table: $(head -c 400 "$T/out")"
grep -q "3 seeds (1,2,3)" "$T/out" && ok "table names the seeds" || bad "table header: $(head -1 "$T/out")"
for k in '"seeds"' '"runs"' '"aggregate"' '"test_mean"' '"test_std"' '"resampled":[[:space:]]*true' '"seed":[[:space:]]*3' '"n_seeds":[[:space:]]*3'; do
  grep -qE "$k" "$T/a.json" && ok "json has $k" || bad "json lacks $k"
done
grep -q "seconds" "$T/a.json" && bad "--no-timings left a timing in the JSON" || ok "no timings in the JSON"
[ "$(grep -c 'class="errorbar"' "$T/a.svg")" -eq 10 ] && ok "svg: one error bar per method and K" || bad "svg error bars: $(grep -c errorbar "$T/a.svg")"

# determinism: the same command twice gives the same bytes (timings excluded, threads fixed)
expect_ok "--seeds 1,2,3 again" "$CA" fewshot --features "$CARS" "${FAST[@]}" --seeds 1,2,3 --no-timings --json "$T/b.json"
cmp -s "$T/a.json" "$T/b.json" && ok "same seeds, byte-identical JSON" || bad "JSON differs between identical runs"
expect_ok "--seeds 2,3" "$CA" fewshot --features "$CARS" "${FAST[@]}" --seeds 2,3 --no-timings --json "$T/c.json"
cmp -s "$T/a.json" "$T/c.json" && bad "other seeds, same JSON" || ok "other seeds change the JSON"
# the timings are there by default
expect_ok "timings by default" "$CA" fewshot --features "$CARS" --method zero-shot --shots 1 --seeds 2 --json "$T/t.json"
grep -q '"seconds"' "$T/t.json" && ok "json has seconds by default" || bad "json lacks seconds by default"

# selection regimes: val_n per run; none has no val accuracy
expect_ok "--select kshot-val" "$CA" fewshot --features "$CARS" --method tip-adapter --shots 2 --search-steps 10,4 --select kshot-val --json "$T/k.json"
grep -qE '"val_n":[[:space:]]*392' "$T/k.json" && grep -qE '"select":[[:space:]]*"kshot-val"' "$T/k.json" \
  && ok "kshot-val: 2 val images per class at K=2" || bad "kshot-val json: $(grep -E 'val_n|select' "$T/k.json")"
grep -q "selection: kshot-val" "$T/out" && ok "table names the regime" || bad "table header: $(head -1 "$T/out")"
expect_ok "--select none" "$CA" fewshot --features "$CARS" --method all --shots 1 --epochs 2 --select none --json "$T/n.json"
grep -qE '"val_acc":[[:space:]]*null' "$T/n.json" && ! grep -qE '"val_n":[[:space:]]*[1-9]' "$T/n.json" \
  && ok "none: no val images, val_acc null" || bad "none json: $(grep -E 'val_' "$T/n.json" | head -4)"
grep -qE '"alpha":[[:space:]]*1,' "$T/n.json" && grep -qE '"beta":[[:space:]]*5.5' "$T/n.json" \
  && ok "none: tip-adapter at the paper's alpha 1, beta 5.5" || bad "none: tip-adapter alpha/beta"
expect_fail "ratio search without val" "ratio-mode search needs val" "$CA" fewshot --features "$CARS" --method clip-adapter --shots 1 --epochs 1 --ratio-mode search --select none
# sampling: fixed = the stored split (not resampled); pool allows K that is not stored
expect_ok "--sample fixed" "$CA" fewshot --features "$CARS" --method prototype --shots 1 --sample fixed --json "$T/f.json"
grep -qE '"resampled":[[:space:]]*false' "$T/f.json" && ok "fixed: not resampled" || bad "fixed json"
expect_ok "K=3 from the pool" "$CA" fewshot --features "$PETS" --method prototype --shots 3 --json "$T/p3.json"
grep -qE '"train_n":[[:space:]]*111' "$T/p3.json" && ok "3 shots x 37 classes drawn" || bad "K=3: $(grep train_n "$T/p3.json")"

# usage errors: exit 2, one line
for bad_args in "--seeds 0" "--seeds 1,1" "--seeds x" "--select best" "--sample some" "--seed 1 --seeds 2"; do
  # shellcheck disable=SC2086
  "$CA" fewshot --features "$CARS" $bad_args >"$T/out" 2>"$T/err"; rc=$?; _untsan "$T/err"
  [ $rc -eq 2 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && ok "usage error: $bad_args" || bad "usage error '$bad_args': exit $rc, $(cat "$T/err")"
done

# extract --prompts: per-class prompt lists; a missing class is named with the file
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
MKIMG=$(dirname "$CA")/tests/test_e2e
if "$MKIMG" --make-images "$T/img" 4; then
  EX=(extract --model "$MODEL" --bpe "$BPE" --images "$T/img" --val-split 0.25 --test-split 0.25 --shots 1 --views 0)
  printf '%s\n' '{"red circle": ["a photo of a red circle.", "a red round thing."],' \
    '"green_square": ["a photo of a green square."], "Blue Stripes": ["blue stripes.", "a striped blue image."]}' > "$T/p.json"
  expect_ok "extract --prompts" "$CA" "${EX[@]}" --prompts "$T/p.json" --output "$T/fp.safetensors"
  expect_ok "fit zero-shot on prompt weights" "$CA" fit --features "$T/fp.safetensors" --method zero-shot --shots 1 --output "$T/zs.safetensors"
  grep -aq '"prompts":"p.json"' "$T/fp.safetensors" && ok "metadata names the prompt file" || bad "no prompts metadata"
  printf '%s\n' '{"red circle": ["a red circle."], "green square": ["a green square."]}' > "$T/miss.json"
  expect_fail "missing class" "miss.json: no prompts for class 'blue stripes'" "$CA" "${EX[@]}" --prompts "$T/miss.json" --output "$T/miss.safetensors"
  [ ! -e "$T/miss.safetensors" ] && ok "no output on a missing class" || bad "partial output"
  printf '{"red circle": "not a list"}' > "$T/bad.json"
  expect_fail "malformed prompts" "bad.json: class 'red circle': expected a non-empty array" "$CA" "${EX[@]}" --prompts "$T/bad.json" --output "$T/bad.safetensors"
  expect_fail "missing prompt file" "absent.json" "$CA" "${EX[@]}" --prompts "$T/absent.json" --output "$T/x.safetensors"
  "$CA" "${EX[@]}" --prompts "$T/p.json" --templates imagenet --output "$T/y.safetensors" >"$T/out" 2>"$T/err"
  [ $? -eq 2 ] && grep -q "not both" "$T/err" && ok "--prompts with --templates is a usage error" || bad "--prompts + --templates: $(cat "$T/err")"
else
  bad "generate images"
fi
finish
