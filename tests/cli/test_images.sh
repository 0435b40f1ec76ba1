# test_images.sh — image folders as users have them: nested sub-folders, TIFF and PPM files,
# hidden files, a file that cannot be decoded (--skip-bad), and the re-run after removing it,
# which must reuse the encoded chunks and give the same feature set as a clean run.
source tests/cli/lib.sh
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
MKIMG=$(dirname "$CA")/tests/test_e2e
export CLIPADAPT_QUIET=1

"$MKIMG" --make-images "$T/img" 10 || { bad "generate images"; finish; exit 1; }
# nested folders, TIFF/PPM fixtures, hidden entries (ignored)
classes=$(ls "$T/img")
for c in $classes; do
  mkdir -p "$T/img/$c/more/deeper" "$T/img/$c/.thumbs"
  cp tests/data/images/rgb.tif "$T/img/$c/more/a.tif"
  cp tests/data/images/rgb.ppm "$T/img/$c/more/deeper/b.ppm"
  cp tests/data/images/gray.pgm "$T/img/$c/more/c.pgm"
  cp tests/data/images/rgb.tif "$T/img/$c/.thumbs/t.tif"
  echo junk > "$T/img/$c/.hidden.jpg"
done
n_top=$(find "$T/img" -maxdepth 2 -type f ! -name '.*' | wc -l)
n_all=$((n_top + 3 * $(echo $classes | wc -w)))
EX=(extract --model "$MODEL" --no-text --images "$T/img" --val-split 0.25 --test-split 0.25
    --shots 4 --views 2 --chunk 3 --batch 4)
expect_ok "extract a nested folder with TIFF/PPM" $CA "${EX[@]}" --output "$T/a.safetensors" -v
# the feature set's image_paths: every val and test image is listed, nested ones too
npaths=$(grep -a -o '/img/[^"]*' "$T/a.safetensors" | sort -u | wc -l)
grep -a -q 'more/deeper/b.ppm' "$T/a.safetensors" && grep -a -q 'more/a.tif' "$T/a.safetensors" \
  && ok "nested TIFF/PPM images are in the feature set ($npaths paths)" || bad "nested images missing ($npaths paths)"
grep -a -q '\.thumbs\|\.hidden' "$T/a.safetensors" && bad "hidden files were used" || ok "hidden files and folders skipped"

# a symlink loop inside a class folder ends (each folder walked once)
c1=$(echo $classes | cut -d' ' -f1)
ln -s "$T/img/$c1" "$T/img/$c1/more/loop"
expect_ok "extract with a link loop" $CA "${EX[@]}" --output "$T/loop.safetensors"
cmp -s "$T/loop.safetensors" "$T/a.safetensors" && ok "link loop changes nothing" || bad "link loop changed the feature set"
rm "$T/img/$c1/more/loop"

# an undecodable file: without --skip-bad one line naming it, exit 1, no output
cp -r "$T/img" "$T/clean"
echo "not an image" > "$T/img/$c1/more/broken.png"
expect_fail "a bad image stops extract" "broken.png" $CA "${EX[@]}" --output "$T/b.safetensors"
[ "$(wc -l < "$T/err")" -eq 1 ] && ok "one line" || bad "$(wc -l < "$T/err") lines: $(head -c 300 "$T/err")"
[ ! -e "$T/b.safetensors" ] && ok "no output after the failure" || bad "output written"
echo "garbage" > "$T/img/$c1/more/deeper/worse.tif"
printf 'P6\n4 4\n255\nab' > "$T/img/$c1/short.ppm"
# with --skip-bad: every bad file named, a count, exit 0; equal to a clean run without them
rm -rf "$T/b.safetensors.parts"
expect_ok "extract --skip-bad" $CA "${EX[@]}" --skip-bad --output "$T/b.safetensors"
for f in broken.png worse.tif short.ppm; do
  grep -q "skipped: .*$f" "$T/err" && ok "skip-bad names $f" || bad "skip-bad does not name $f: $(cat "$T/err")"
done
grep -q "skipped 3 undecodable images" "$T/err" && ok "skip-bad counts them" || bad "no count: $(cat "$T/err")"
# remove the bad files and re-run the same command: the kept chunks are reused
rm "$T/img/$c1/more/broken.png" "$T/img/$c1/more/deeper/worse.tif" "$T/img/$c1/short.ppm"
expect_ok "re-run after removing them" $CA "${EX[@]}" --output "$T/b.safetensors" -v
reused=$(sed -n 's/.*; \([0-9]*\) chunks reused.*/\1/p' "$T/err")
[ "${reused:-0}" -ge 1 ] && ok "re-run reused $reused chunks" || bad "re-run reused ${reused:-0} chunks: $(cat "$T/err")"
# the same images give the same features as a clean run (paths differ only in the root)
$CA "${EX[@]}" --images "$T/clean" --output "$T/c.safetensors" >/dev/null 2>&1
data() { tail -c +$((9 + $(od -An -t u8 -N8 "$1"))) "$1"; }   # the tensors, after the JSON header
if [ -s "$T/c.safetensors" ] && cmp -s <(data "$T/b.safetensors") <(data "$T/c.safetensors"); then ok "skip-bad result = clean run's features"
else bad "skip-bad result differs from a clean run"; fi
# a one-line error, exit 1, when every image of a class is bad
mkdir -p "$T/allbad/a" "$T/allbad/b"
cp "$T/clean/$c1/"*.png "$T/allbad/a/" 2>/dev/null; cp "$T/clean/$c1/"*.jpg "$T/allbad/a/" 2>/dev/null
for i in 1 2 3 4 5 6; do echo x > "$T/allbad/b/$i.jpg"; done
expect_fail "a class with only bad images" "no readable images" $CA "${EX[@]}" --images "$T/allbad" --skip-bad --output "$T/d.safetensors"

# predict: without --skip-bad the first bad image stops it with nothing printed; with it, each is
# named, the others classified, and a count given
expect_ok "fit" $CA fit --features "$T/c.safetensors" --method prototype --shots 4 --output "$T/clf.safetensors"
good=$(ls "$T/clean/$c1/"*.png | head -2)
echo "not an image" > "$T/bad1.jpg"; echo "" > "$T/bad2.tif"
expect_fail "predict: a bad image" "bad1.jpg" $CA predict --model "$MODEL" --classifier "$T/clf.safetensors" --top-k 1 $good "$T/bad1.jpg"
[ ! -s "$T/out" ] && [ "$(wc -l < "$T/err")" -eq 1 ] && ok "predict: one line, no partial output" || bad "predict: $(cat "$T/out" "$T/err" | head -5)"
expect_ok "predict --skip-bad" $CA predict --model "$MODEL" --classifier "$T/clf.safetensors" --top-k 1 --skip-bad "$T/bad1.jpg" $good "$T/bad2.tif" "$T/clean/$c1/more/a.tif"
[ "$(wc -l < "$T/out")" -eq 3 ] && ok "predict --skip-bad classifies the 3 good images" || bad "predict --skip-bad: $(cat "$T/out")"
grep -q "skipped: .*bad1.jpg" "$T/err" && grep -q "skipped: .*bad2.tif" "$T/err" && grep -q "skipped 2 of 5 images" "$T/err" \
  && ok "predict --skip-bad names each bad image and counts them" || bad "predict --skip-bad stderr: $(cat "$T/err")"
expect_fail "predict --skip-bad, nothing readable" "none of the 2 images" $CA predict --model "$MODEL" --classifier "$T/clf.safetensors" --skip-bad "$T/bad1.jpg" "$T/bad2.tif"
finish
