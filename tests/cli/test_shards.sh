#!/usr/bin/env bash
# test_shards.sh — the output policy and sharded checkpoints: an output that is one shard of a
# sharded --model / convert input (given as its index or as its folder), or the index itself, is
# refused before any work (one line naming the shard, exit 1, the shard unchanged); other outputs
# beside the shards still work. The shards are vit-tiny.safetensors split in two at test time
# (python3 standard library: a safetensors file is a JSON header and raw bytes).
source "$(dirname "$0")/lib.sh"
M=$SHARED/testdata/models
CA_ABS=$(cd "$(dirname "$CA")" && pwd)/$(basename "$CA")
D=$T/hf
mkdir -p "$D"
/usr/bin/python3 - "$M/vit-tiny.safetensors" "$D" <<'EOF' || { bad "could not split the fixture"; finish; exit 1; }
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); data = raw[8 + n:]
names = [k for k in hdr if k != "__metadata__"]
wm = {}
for s, part in enumerate((names[:len(names) // 2], names[len(names) // 2:])):
    fn = "model-%05d-of-00002.safetensors" % (s + 1)
    h, blob = {}, b""
    for k in part:
        a, b = hdr[k]["data_offsets"]
        h[k] = {"dtype": hdr[k]["dtype"], "shape": hdr[k]["shape"], "data_offsets": [len(blob), len(blob) + b - a]}
        blob += data[a:b]
        wm[k] = fn
    hj = json.dumps(h).encode()
    hj += b" " * (-len(hj) % 8)
    open(out + "/" + fn, "wb").write(struct.pack("<Q", len(hj)) + hj + blob)
json.dump({"metadata": {}, "weight_map": wm}, open(out + "/model.safetensors.index.json", "w"))
EOF
S1=$D/model-00001-of-00002.safetensors S2=$D/model-00002-of-00002.safetensors IDX=$D/model.safetensors.index.json
cp "$S1" "$T/s1.bak"; cp "$S2" "$T/s2.bak"; cp "$IDX" "$T/idx.bak"
expect_ok "sharded index reads" "$CA" info --model "$IDX"
grep -q "^format: *safetensors-sharded" "$T/out" && ok "info: safetensors-sharded" || bad "info: $(grep format "$T/out")"

# convert: output = a shard, through the index and through the folder; = the index
expect_fail "convert index -> its shard 1 refused" "model-00001-of-00002.safetensors.*refusing to overwrite an input" \
  "$CA" convert "$IDX" "$S1"
[ "$(wc -l <"$T/err")" -eq 1 ] && ok "one line" || bad "error has $(wc -l <"$T/err") lines: $(cat "$T/err")"
expect_fail "convert folder -> its shard 2 refused" "model-00002-of-00002.safetensors.*refusing to overwrite an input" \
  "$CA" convert "$D" "$S2"
expect_fail "convert index -> the index refused" "refusing to overwrite an input" "$CA" convert "$IDX" "$IDX"
expect_fail "convert folder -> the index refused" "IN input's index .*model.safetensors.index.json; refusing to overwrite an input" \
  "$CA" convert "$D" "$IDX"
# through a link to a shard, and with a relative path
ln -s "$S1" "$T/link.safetensors"
expect_fail "convert index -> a link to shard 1 refused" "refusing to overwrite an input" "$CA" convert "$IDX" "$T/link.safetensors"
(cd "$D" && "$CA_ABS" convert model.safetensors.index.json ./model-00002-of-00002.safetensors >"$T/out" 2>"$T/err") \
  && bad "relative shard path accepted" || { grep -q "refusing to overwrite an input" "$T/err" && ok "relative shard path refused" || bad "relative: $(cat "$T/err")"; }

# encode and predict: --output = a shard of --model
"$CA" encode --model "$M/vit-tiny.safetensors" --input "$M/vit-tiny-golden.safetensors" --output "$T/ref.safetensors" 2>/dev/null
expect_fail "encode --output a shard of --model refused" "--model input's shard .*model-00001-of-00002.safetensors" \
  "$CA" encode --model "$IDX" --input "$M/vit-tiny-golden.safetensors" --output "$S1"
expect_fail "encode (folder) --output a shard refused" "--model input's shard .*model-00002-of-00002.safetensors" \
  "$CA" encode --model "$D" --input "$M/vit-tiny-golden.safetensors" --output "$S2"

# nothing was touched
cmp -s "$S1" "$T/s1.bak" && cmp -s "$S2" "$T/s2.bak" && cmp -s "$IDX" "$T/idx.bak" && ok "shards and index unchanged" \
  || bad "a shard or the index changed"

# other outputs beside the shards are fine, and give what the unsharded file gives
expect_ok "encode through the index, output beside the shards" \
  "$CA" encode --model "$IDX" --input "$M/vit-tiny-golden.safetensors" --output "$D/features.safetensors"
cmp -s "$D/features.safetensors" "$T/ref.safetensors" && ok "sharded = unsharded features (byte-identical)" \
  || bad "sharded features differ from the unsharded file's"
expect_ok "convert index -> new file beside the shards" "$CA" convert "$IDX" "$D/merged.safetensors"
expect_ok "merged file reads" "$CA" info --model "$D/merged.safetensors"
finish
