#!/usr/bin/env bash
# test_torch.sh — PyTorch checkpoints through the CLI: `info` names the format and activation,
# hostile pickles are refused (one line, exit 1, their command never runs), `convert` round-trips
# (the converted file encodes byte-identically), the activation note when none is known, GELU
# from open_clip_config.json, --act, and damaged files give one-line errors. (The comparison of
# `clipadapt encode` with the goldens lives in tests/test_torchfile.c, test_cli_encode.)
source "$(dirname "$0")/lib.sh"
M=$SHARED/testdata/models
P=$M/pytorch

expect_ok "convert --help" "$CA" convert --help

# info: the format found, by content (a copy under a misleading name still reads)
for pair in "vit-tiny.jit.pt torchscript" "rn-tiny.jit.pt torchscript" "vit-tiny.open_clip.pt pytorch-zip" \
            "vit-tiny.legacy.pt pytorch-legacy" "vit-tiny.train_ckpt.pt pytorch-zip" "vit-tiny-hf.pytorch_model.bin pytorch-zip"; do
  set -- $pair
  expect_ok "info $1" "$CA" info --model "$P/$1"
  grep -q "^format: *$2\$" "$T/out" && ok "info $1 format $2" || bad "info $1 format: $(grep format "$T/out")"
done
cp "$P/vit-tiny.legacy.pt" "$T/weights.safetensors"
expect_ok "info by content, not extension" "$CA" info --model "$T/weights.safetensors"
grep -q "^format: *pytorch-legacy" "$T/out" && ok "legacy file named .safetensors read as legacy" || bad "by-content: $(cat "$T/out")"
expect_ok "info jit activation" "$CA" info --model "$P/vit-tiny.jit.pt"
grep -q "^activation: *quickgelu (TorchScript" "$T/out" && ok "TorchScript = QuickGELU" || bad "jit activation: $(grep activation "$T/out")"

# hostile pickles: refused, one line naming the file and the global, exit 1, no side effect
rm -f /tmp/clipadapt-pwned
for e in evil-system.pt evil-eval.pt evil-legacy.pt; do
  for cmd in info encode convert; do
    case $cmd in
      info) "$CA" info --model "$P/$e" >"$T/out" 2>"$T/err" ;;
      encode) "$CA" encode --model "$P/$e" --input "$M/vit-tiny-golden.safetensors" --output "$T/x.safetensors" >"$T/out" 2>"$T/err" ;;
      convert) "$CA" convert "$P/$e" "$T/x.safetensors" >"$T/out" 2>"$T/err" ;;
    esac
    rc=$?
    _untsan "$T/err"
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -E "$e: pickle calls '(posix\.system|__builtin__\.eval)': refused" "$T/err"; then
      ok "$cmd $e refused"
    else bad "$cmd $e: exit $rc, stderr: $(cat "$T/err")"; fi
  done
done
[ ! -e /tmp/clipadapt-pwned ] && ok "the hostile command never ran" || bad "/tmp/clipadapt-pwned exists"
[ ! -e "$T/x.safetensors" ] && ok "no output from refused files" || bad "output written for a refused file"

# convert: names and dtypes kept; the converted file encodes byte-identically
for f in vit-tiny.jit.pt vit-tiny.legacy.pt rn-tiny.jit.pt vit-tiny.train_ckpt.pt; do
  expect_ok "convert $f" "$CA" convert "$P/$f" "$T/conv.safetensors"
  expect_ok "info converted $f" "$CA" info --model "$T/conv.safetensors"
  grep -q "^format: *safetensors" "$T/out" && grep -q "^dtype: *F16" "$T/out" && ok "converted $f is F16 safetensors" ||
    bad "converted $f: $(cat "$T/out")"
  case $f in rn-*) G=$M/rn-tiny-golden.safetensors ;; *) G=$M/vit-tiny-golden.safetensors ;; esac
  expect_ok "encode $f" "$CA" encode --model "$P/$f" --input "$G" --output "$T/a.safetensors"
  expect_ok "encode converted $f" "$CA" encode --model "$T/conv.safetensors" --input "$G" --output "$T/b.safetensors"
  cmp -s "$T/a.safetensors" "$T/b.safetensors" && ok "converted $f encodes identically" || bad "converted $f encodes differently"
done
expect_fail "convert missing args" "required" "$CA" convert "$P/vit-tiny.jit.pt"
# convert goes through the one output routine: an output that is the input (or the checkpoint a
# folder holds) is refused before anything is written; '-' is stdout; --act is an option-table row
cp "$P/vit-tiny.legacy.pt" "$T/same.pt"
expect_fail "convert onto its input" "same file as the IN input" "$CA" convert "$T/same.pt" "$T/same.pt"
cmp -s "$P/vit-tiny.legacy.pt" "$T/same.pt" && ok "input intact after refused convert" || bad "convert changed its input"
mkdir -p "$T/hub"
cp "$P/vit-tiny.open_clip.pt" "$T/hub/open_clip_pytorch_model.bin"
expect_fail "convert onto the folder's checkpoint" "same file as the IN input" "$CA" convert "$T/hub" "$T/hub/open_clip_pytorch_model.bin"
cmp -s "$P/vit-tiny.open_clip.pt" "$T/hub/open_clip_pytorch_model.bin" && ok "folder checkpoint intact" || bad "convert changed the folder's checkpoint"
expect_fail "convert into a directory" "is a directory" "$CA" convert "$P/vit-tiny.jit.pt" "$T/hub"
expect_fail "convert extra argument" "too many arguments" "$CA" convert "$P/vit-tiny.jit.pt" "$T/a" "$T/b"
expect_fail "convert unknown option" "unknown option '--nope'" "$CA" convert --nope "$P/vit-tiny.jit.pt" "$T/a"
expect_ok "convert jit" "$CA" convert "$P/vit-tiny.jit.pt" "$T/jit.safetensors"
"$CA" convert "$P/vit-tiny.jit.pt" - 2>/dev/null | cmp -s - "$T/jit.safetensors" && ok "convert to stdout" || bad "convert - differs from a file"
for cmd in extract encode predict info; do
  "$CA" $cmd --help 2>/dev/null | grep -q -- "--act quickgelu|gelu" && ok "$cmd --help lists --act" || bad "$cmd --help lacks --act"
done

# activation: the note when it is assumed; GELU from the OpenCLIP config; --act
mkdir -p "$T/oc"
cp "$M/vit-tiny.safetensors" "$T/oc/open_clip_model.safetensors"
expect_ok "encode without config" "$CA" encode --model "$T/oc/open_clip_model.safetensors" --input "$M/vit-tiny-golden.safetensors" --output "$T/q.safetensors"
grep -q "QuickGELU assumed" "$T/err" && ok "the log says QuickGELU was assumed" || bad "no note: $(cat "$T/err")"
cp "$P/vit-tiny-gelu.open_clip_config.json" "$T/oc/open_clip_config.json"
expect_ok "encode with open_clip_config.json" "$CA" encode --model "$T/oc/open_clip_model.safetensors" --input "$M/vit-tiny-golden.safetensors" --output "$T/g.safetensors"
grep -q "assumed" "$T/err" && bad "note printed although the config says GELU" || ok "no assumption with a config"
expect_ok "info folder with config" "$CA" info --model "$T/oc"
grep -q "^activation: *gelu (open_clip_config.json: model_cfg.quick_gelu absent" "$T/out" && ok "info says GELU and why" || bad "info: $(cat "$T/out")"
cmp -s "$T/q.safetensors" "$T/g.safetensors" && bad "GELU and QuickGELU features are identical" || ok "GELU changes the features"
expect_ok "encode --act gelu" "$CA" encode --act gelu --model "$M/vit-tiny.safetensors" --input "$M/vit-tiny-golden.safetensors" --output "$T/a.safetensors"
cmp -s "$T/a.safetensors" "$T/g.safetensors" && ok "--act gelu = the config's GELU" || bad "--act gelu differs from the config's GELU"
"$CA" encode --act relu --model "$M/vit-tiny.safetensors" --input a --output b >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad --act exit 2" || bad "bad --act exit $rc"
echo '{"model_cfg": {"embed_dim": 32}}' > "$T/oc/open_clip_config.json"
expect_fail "config contradicting the weights" "open_clip_config.json: model_cfg.embed_dim = 32 but the weights imply 64" \
  "$CA" info --model "$T/oc"

# damaged copies: one line naming the file, exit 1
for f in vit-tiny.jit.pt vit-tiny.legacy.pt vit-tiny.open_clip.pt; do
  head -c 5000000 "$P/$f" > "$T/cut-$f"
  expect_fail "truncated $f" "cut-$f" "$CA" info --model "$T/cut-$f"
  [ "$(wc -l <"$T/err")" -eq 1 ] && ok "truncated $f: one line" || bad "truncated $f: $(cat "$T/err")"
done
printf 'PK\003\004garbage' > "$T/junk.pt"
expect_fail "junk zip" "junk.pt" "$CA" info --model "$T/junk.pt"
finish
