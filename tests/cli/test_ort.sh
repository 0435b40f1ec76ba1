#!/usr/bin/env bash
# test_ort.sh — the ONNX Runtime peer of make bench (bench/ort.sh) on the tiny test models: the
# export (bench/onnx_export.py) of a ViT and a ResNet runs in onnxruntime-node with the same
# features as clipadapt, ORT's check catches a changed feature, and the bench prints a row per
# engine. Skips (passing) when node, torch or the installed package is missing: make test never
# downloads; make bench-ort installs the package.
source "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-build}
M=$SHARED/testdata/models
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null || ! command -v node >/dev/null ||
   ! BENCH_NODE=$BUILD/bench-node node bench/ort_clip.mjs probe >/dev/null 2>&1 || [ ! -x "$BUILD/bench/peer" ]; then
  echo "skip: no torch, node, $BUILD/bench-node (make bench-ort) or $BUILD/bench/peer" >&2
  finish; exit
fi
export BENCH_NODE=$BUILD/bench-node

# the whole bench on both tiny models, one round, ONNX files into the scratch dir
expect_ok "ort.sh on vit-tiny, rn-tiny" env BUILD="$BUILD" W="$M" ORT_ONNX_DIR="$T" ORT_MODELS="vit-tiny rn-tiny" \
  ORT_BATCHES=2 ORT_ROUNDS=1 ORT_NO_INSTALL=1 bash bench/ort.sh
for m in vit-tiny rn-tiny; do
  grep -q "^   $m: .*-> same (<= 1e-4)" "$T/out" && ok "$m: ORT features = ours" || bad "$m check: $(grep "$m:" "$T/out")"
  for e in "clipadapt F32" "ORT" "PyTorch"; do
    grep -q -E "^   $m +2 +$e.* [0-9.]+ ms/image .*GFLOP/s" "$T/out" && ok "$m: $e row" || bad "$m: no $e row: $(cat "$T/out")"
  done
  grep -q -E "^ORTROW \| $m \| 2 \| [0-9.]+ \| .* \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|" "$T/out" && ok "$m: ORTROW" ||
    bad "$m: ORTROW: $(grep ORTROW "$T/out")"
  [ -s "$T/$m.image.onnx" ] && ok "$m: ONNX cached in ORT_ONNX_DIR" || bad "$m: no $T/$m.image.onnx"
done

# the check fails when a feature moves by more than the tolerance
expect_ok "peer check" "$BUILD/bench/peer" "$M/vit-tiny.safetensors" check "$T/gold.safetensors" 2
/usr/bin/python3 - "$T/gold.safetensors" "$T/bad.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
off = 8 + n + json.loads(b[8:8 + n])["output.image_features"]["data_offsets"][0]
b[off:off + 4] = struct.pack("<f", struct.unpack("<f", b[off:off + 4])[0] + 0.01)
open(sys.argv[2], "wb").write(b)
PY
expect_ok "ORT check, same features" node bench/ort_clip.mjs check "$T/vit-tiny.image.onnx" "$T/gold.safetensors" 1e-4
grep -q '"ok":true' "$T/out" && ok "check ok:true" || bad "check: $(cat "$T/out")"
node bench/ort_clip.mjs check "$T/vit-tiny.image.onnx" "$T/bad.safetensors" 1e-4 >"$T/out" 2>&1
[ $? = 1 ] && grep -q '"ok":false' "$T/out" && ok "a feature moved by 0.01: check fails" || bad "perturbed check: $(cat "$T/out")"
expect_fail "ORT check of a truncated file" "too short|past the end|not an in-bounds" node bench/ort_clip.mjs check \
  "$T/vit-tiny.image.onnx" <(head -c 5 "$T/gold.safetensors") 1e-4

# no node: one line, exit 0, nothing measured
NODE=$T/no-node BUILD="$BUILD" W="$M" bash bench/ort.sh >"$T/out" 2>&1
[ $? = 0 ] && [ "$(wc -l < "$T/out")" = 1 ] && grep -q "skipped: no .*no-node" "$T/out" && ok "no node: one skip line" ||
  bad "no node: $(cat "$T/out")"
finish
