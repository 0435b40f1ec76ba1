#!/usr/bin/env bash
# test_preprocess.sh — `clipadapt preprocess` end to end: tensors byte-identical to the shipped
# Pillow goldens, bad files reported one line each, --skip-bad, no partial output on failure.
. "$(dirname "$0")/lib.sh"
IMG="$SHARED/testdata/preprocess/images"
GOLD="$SHARED/testdata/preprocess/preprocess-golden.safetensors"

# tensor_bytes FILE NAME: the raw data bytes of tensor NAME (parsed from the JSON header)
tensor_bytes() {
  local f=$1 name=$2 hlen hdr range a b
  hlen=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
  hdr=$(dd if="$f" bs=1 skip=8 count="$hlen" status=none)
  range=$(printf '%s' "$hdr" | grep -o "\"$name\":{[^}]*}" | grep -o 'data_offsets":\[[0-9]*,[0-9]*' | grep -o '[0-9]*,[0-9]*')
  [ -n "$range" ] || return 1
  a=${range%,*}; b=${range#*,}
  tail -c +$((8 + hlen + a + 1)) "$f" | head -c $((b - a))
}

expect_ok "help" "$CA" preprocess --help
grep -q -- "--skip-bad" "$T/out" && ok "help lists --skip-bad" || bad "help lists --skip-bad"

# every shipped image at 64, and three at 224, byte-identical to the reference
expect_ok "preprocess 64" "$CA" preprocess --size 64 --output "$T/p64.safetensors" "$IMG"/*
expect_ok "preprocess 224" "$CA" preprocess --size 224 --output "$T/p224.safetensors" \
  "$IMG/fight2-alpha.png" "$IMG/fight1-gray.png" "$IMG/orange-tall.jpg"
for f in "$IMG"/*; do
  n="$(basename "$f")@64"
  if cmp -s <(tensor_bytes "$T/p64.safetensors" "$n") <(tensor_bytes "$GOLD" "$n") && [ "$(tensor_bytes "$T/p64.safetensors" "$n" | wc -c)" -eq 49152 ]; then
    ok "golden $n"; else bad "golden $n differs"; fi
done
for n in fight2-alpha.png@224 fight1-gray.png@224 orange-tall.jpg@224; do
  cmp -s <(tensor_bytes "$T/p224.safetensors" "$n") <(tensor_bytes "$GOLD" "$n") && ok "golden $n" || bad "golden $n differs"
done
grep -q '"shape":\[3,224,224\]' <(head -c 2000 "$T/p224.safetensors") && ok "shape [3,224,224]" || bad "shape"

# bad inputs: one line each naming the file; without --skip-bad nothing is written
printf 'not an image' > "$T/text.jpg"; : > "$T/empty.png"
head -c 3000 "$IMG/fight2.jpg" > "$T/trunc.jpg"; head -c 2000 "$IMG/orange.png" > "$T/trunc.png"
expect_fail "bad files fail" "trunc\.png" "$CA" preprocess --size 32 --output "$T/bad.safetensors" \
  "$IMG/fight2.jpg" "$T/text.jpg" "$T/empty.png" "$T/trunc.jpg" "$T/trunc.png"
for f in text.jpg empty.png trunc.jpg trunc.png; do
  [ "$(grep -c "$f" "$T/err")" -eq 1 ] && ok "one line for $f" || bad "one line for $f: $(cat "$T/err")"
done
[ ! -e "$T/bad.safetensors" ] && ok "no partial output" || bad "partial output written"
[ -z "$(ls "$T" | grep -F '.tmp')" ] && ok "no temporary left" || bad "temporary left behind"
expect_ok "skip-bad" "$CA" preprocess --size 32 --skip-bad --output "$T/skip.safetensors" \
  "$IMG/fight2.jpg" "$T/text.jpg" "$T/empty.png" "$T/trunc.jpg" "$IMG/play1.jpg"
grep -q "text.jpg" "$T/err" && ok "skip-bad still reports" || bad "skip-bad silent"
h=$(head -c 1000 "$T/skip.safetensors" | tr -d '\000')
[[ $h == *'fight2.jpg@32'* && $h == *'play1.jpg@32'* && $h != *'text.jpg'* ]] && ok "skip-bad keeps good" || bad "skip-bad content: $h"
expect_fail "all bad" "no image" "$CA" preprocess --size 32 --skip-bad --output "$T/none.safetensors" "$T/text.jpg"
expect_fail "missing file" "nope\.jpg" "$CA" preprocess --size 32 --output "$T/x.safetensors" "$T/nope.jpg"
expect_fail "too many pixels" "over the limit" "$CA" preprocess --size 32 --max-pixels 1000 --output "$T/x.safetensors" "$IMG/fight2.jpg"

# usage errors exit 2
"$CA" preprocess --output "$T/x.safetensors" "$IMG/fight2.jpg" 2>/dev/null; [ $? -eq 2 ] && ok "no --size: exit 2" || bad "no --size"
"$CA" preprocess --size 0 --output "$T/x.safetensors" "$IMG/fight2.jpg" 2>/dev/null; [ $? -eq 2 ] && ok "size 0: exit 2" || bad "size 0"
"$CA" preprocess --size 32 --output "$T/x.safetensors" 2>/dev/null; [ $? -eq 2 ] && ok "no images: exit 2" || bad "no images"
"$CA" preprocess --size 32 --output "$T/x.safetensors" "$IMG/fight2.jpg" "$T/../$(basename "$T")/../$(basename "$T")/text.jpg" "$T/text.jpg" 2>/dev/null; [ $? -eq 2 ] && ok "duplicate names: exit 2" || bad "duplicate names"

# --exif-rotate swaps the sides of an orientation-6 JPEG: output differs from the default
expect_ok "exif default" "$CA" preprocess --size 16 --output "$T/e0.safetensors" tests/data/images/exif6.jpg
expect_ok "exif rotate" "$CA" preprocess --size 16 --exif-rotate --output "$T/e1.safetensors" tests/data/images/exif6.jpg
cmp -s <(tensor_bytes "$T/e0.safetensors" exif6.jpg@16) <(tensor_bytes "$T/e1.safetensors" exif6.jpg@16) && bad "exif-rotate changed nothing" || ok "exif-rotate changes output"
# GIF, WebP and BMP files are read by content (their bytes match Pillow's in test_image)
D=tests/data/images
expect_ok "gif webp bmp" "$CA" preprocess --size 16 --output "$T/fmt.safetensors" "$D/anim.gif" "$D/lossy-alpha.webp" "$D/rle4.bmp"
for n in anim.gif@16 lossy-alpha.webp@16 rle4.bmp@16; do
  [ "$(tensor_bytes "$T/fmt.safetensors" "$n" | wc -c)" -eq 3072 ] && ok "tensor $n" || bad "tensor $n missing"
done
head -c 700 "$D/rgb24.bmp" > "$T/cut.bmp"; cp "$D/rgb24.bmp" "$T/renamed.jpg"
expect_fail "truncated bmp" "cut\.bmp: truncated BMP pixel data" "$CA" preprocess --size 16 --output "$T/x.safetensors" "$T/cut.bmp"
expect_ok "extension does not matter" "$CA" preprocess --size 16 --output "$T/r.safetensors" "$T/renamed.jpg"
finish
