# test_e2e.sh — the user's journey on a generated image folder (3 classes of coloured shapes) with
# the shared vit-tiny model: extract -> fit (every method) -> eval and predict, whose predictions
# must agree image by image; resuming a killed extraction; split files; one-line errors.
source tests/cli/lib.sh
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
MKIMG=$(dirname "$CA")/tests/test_e2e
export CLIPADAPT_QUIET=1

"$MKIMG" --make-images "$T/img" 10 || { bad "generate images"; finish; exit 1; }
EX=(extract --model "$MODEL" --bpe "$BPE" --images "$T/img" --val-split 0.25 --test-split 0.25
    --shots 1,2 --views 2 --chunk 4 --batch 4 --templates imagenet)

expect_ok "extract --help" $CA extract --help
expect_ok "extract" $CA "${EX[@]}" --output "$T/feats.safetensors" -v
grep -q "3 classes" "$T/err" && ok "extract summary" || bad "summary: $(cat "$T/err")"
[ ! -e "$T/feats.safetensors.parts" ] && ok "chunk folder removed after success" || bad "parts left behind"

# on a terminal: a progress bar with images/s and ETA (script(1) provides the pseudo-terminal)
if command -v script >/dev/null; then
  rm -f "$T/tty.safetensors"
  env -u CLIPADAPT_QUIET script -qec "$CA ${EX[*]} --views 0 --output $T/tty.safetensors" /dev/null > "$T/tty.txt" 2>&1
  grep -q "extract .*/s  ETA" "$T/tty.txt" && grep -q "images/s" "$T/tty.txt" && ok "progress bar on a terminal" \
    || bad "no progress bar on a terminal: $(tr '\r' '\n' < "$T/tty.txt" | tail -3)"
fi
$CA "${EX[@]}" --views 0 --output "$T/quiet.safetensors" > "$T/q.out" 2> "$T/q.err"; _untsan "$T/q.err"
[ ! -s "$T/q.err" ] && [ ! -s "$T/q.out" ] && ok "quiet when not a terminal" || bad "output when not a terminal: $(head -c 200 "$T/q.err")"

# fit every method; eval's test-split predictions must equal predict's on the same image files
n_methods=0
for m in $($CA fit --list); do
  n_methods=$((n_methods + 1))
  if ! $CA fit --features "$T/feats.safetensors" --method "$m" --shots 2 --output "$T/clf-$m.safetensors" >"$T/out" 2>"$T/err"; then
    bad "fit $m: $(head -c 300 "$T/err")"; continue
  fi
  $CA eval --classifier "$T/clf-$m.safetensors" --features "$T/feats.safetensors" --predictions "$T/pred-$m.tsv" >"$T/out" 2>"$T/err" \
    || { bad "eval $m: $(head -c 300 "$T/err")"; continue; }
  cut -f5 "$T/pred-$m.tsv" > "$T/images-$m.txt"
  cut -f4 "$T/pred-$m.tsv" > "$T/eval-classes-$m.txt"
  mapfile -t imgs < "$T/images-$m.txt"
  if [ ${#imgs[@]} -eq 0 ] || [ -z "${imgs[0]}" ]; then bad "eval $m: no image paths in predictions"; continue; fi
  $CA predict --model "$MODEL" --classifier "$T/clf-$m.safetensors" --top-k 1 "${imgs[@]}" >"$T/pred.txt" 2>"$T/err" \
    || { bad "predict $m: $(head -c 300 "$T/err")"; continue; }
  cut -f5 "$T/pred.txt" > "$T/predict-classes-$m.txt"
  if cmp -s "$T/eval-classes-$m.txt" "$T/predict-classes-$m.txt"; then ok "predict = eval for $m (${#imgs[@]} images)"
  else bad "predict != eval for $m: $(paste "$T/eval-classes-$m.txt" "$T/predict-classes-$m.txt" | head -5 | tr '\n' ';')"; fi
done
[ $n_methods -ge 1 ] && ok "fit --list gave $n_methods methods" || bad "no methods"
# labels, features and files line up: a class-mean classifier separates the coloured shapes
# (zero-shot is chance here: the test model's text tower has random weights)
for m in prototype linear-probe; do
  [ -e "$T/pred-$m.tsv" ] || continue
  acc=$(awk -F'\t' '{n++; if ($2 == $3) c++} END {printf "%d", 100 * c / n}' "$T/pred-$m.tsv")
  [ "$acc" -ge 88 ] && ok "$m separates the shapes ($acc%)" || bad "$m accuracy $acc% on trivially separable images"
done

# the shapes are easy: zero-shot is random here (random-weight text tower), prototypes are not
if [ -e "$T/pred-zero-shot.tsv" ]; then
  expect_ok "predict --json" $CA predict --model "$MODEL" --classifier "$T/clf-zero-shot.safetensors" --json --top-k 2 "${imgs[0]}"
  grep -q '"prob"' "$T/out" && grep -q '"class"' "$T/out" && ok "json has class and prob" || bad "json: $(cat "$T/out")"
fi

# --bf16 on predict: the prototype classifier still separates the shapes, one line per image
if [ -e "$T/clf-prototype.safetensors" ] && [ -n "${imgs[0]:-}" ]; then
  if $CA predict --model "$MODEL" --classifier "$T/clf-prototype.safetensors" --top-k 1 --bf16 "${imgs[@]}" >"$T/pbf.txt" 2>"$T/err"; then
    n_bf=$(wc -l < "$T/pbf.txt"); same=$(paste <(cut -f5 "$T/pbf.txt") "$T/predict-classes-prototype.txt" | awk -F'\t' '$1 == $2' | wc -l)
    [ "$n_bf" -eq ${#imgs[@]} ] && [ $((100 * same / n_bf)) -ge 88 ] && ok "predict --bf16 ($same/$n_bf as float32)" \
      || bad "predict --bf16: $n_bf lines, $same agree with float32"
  elif grep -q 'AVX512-BF16' "$T/err"; then ok "predict --bf16 refused on a CPU without AVX512-BF16"
  else bad "predict --bf16: $(head -c 300 "$T/err")"; fi
fi

# resume: kill an extraction after its first chunk, re-run: the result is byte-identical to the
# uninterrupted run and the finished chunks are reused
rm -rf "$T/r.safetensors" "$T/r.safetensors.parts" "$T/keep"; mkdir "$T/keep"
$CA "${EX[@]}" --output "$T/r.safetensors" >/dev/null 2>&1 &
pid=$!
# builtins only in the wait loop (no fork per poll); the first finished chunk is hard-linked
# aside at once, so it survives even if the run completes and clears its parts before the kill
while kill -0 $pid 2>/dev/null; do
  if compgen -G "$T/r.safetensors.parts/chunk-*" >/dev/null; then
    ln "$T/r.safetensors.parts/"chunk-* "$T/keep/" 2>/dev/null && break
  fi
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -e "$T/r.safetensors" ]; then
  # finished before the kill (fast machine): put the kept chunks back, the same resume path
  ok "extraction finished before the kill; resuming from the chunks kept aside"
  rm -f "$T/r.safetensors"; mkdir -p "$T/r.safetensors.parts"
  ln "$T/keep/"* "$T/r.safetensors.parts/" 2>/dev/null || bad "no chunk was seen during the run"
fi
expect_ok "re-run after kill" $CA "${EX[@]}" --output "$T/r.safetensors" -v
reused=$(sed -n 's/.*; \([0-9]*\) chunks reused.*/\1/p' "$T/err")
[ "${reused:-0}" -ge 1 ] && ok "re-run reused $reused chunks" || bad "re-run reused ${reused:-0} chunks: $(cat "$T/err")"
cmp -s "$T/r.safetensors" "$T/feats.safetensors" && ok "resumed output identical" || bad "resumed output differs"

# --f16: half the bytes, same schema (the loader converts)
expect_ok "extract --f16" $CA "${EX[@]}" --f16 --output "$T/h.safetensors"
[ "$(stat -c %s "$T/h.safetensors")" -lt "$(stat -c %s "$T/feats.safetensors")" ] && ok "f16 file is smaller" || bad "f16 not smaller"
expect_ok "eval on f16 features" $CA eval --classifier "$T/clf-zero-shot.safetensors" --features "$T/h.safetensors"

# CoOp split file over the same images
python_free_split() { # train = first 6 of each class, val = next 2, test = last 2
  local first=1 c i s
  printf '{'
  for s in train val test; do
    [ $s != train ] && printf ', '
    printf '"%s": [' $s; first=1
    for c in 0 1 2; do
      d=$(ls "$T/img" | sed -n "$((c + 1))p")
      case $s in train) r="0 1 2 3 4 5";; val) r="6 7";; test) r="8 9";; esac
      for i in $r; do
        f=$(ls "$T/img/$d" | sed -n "$((i + 1))p")
        [ $first = 0 ] && printf ', '; first=0
        printf '["%s/%s", %d, "%s"]' "$d" "$f" $c "$d"
      done
    done
    printf ']'
  done
  printf '}\n'
}
python_free_split > "$T/split_zhou_toy.json"
expect_ok "extract --split-file" $CA extract --model "$MODEL" --bpe "$BPE" --split-file "$T/split_zhou_toy.json" --image-root "$T/img" \
  --shots 4 --views 0 --val-shots 1 --output "$T/split.safetensors"
expect_ok "fit on split features" $CA fit --features "$T/split.safetensors" --method zero-shot --output "$T/split-clf.safetensors"
expect_ok "eval on split features" $CA eval --classifier "$T/split-clf.safetensors" --features "$T/split.safetensors" --predictions "$T/sp.tsv"
[ "$(wc -l < "$T/sp.tsv")" -eq 6 ] && ok "split file: 2 test images per class" || bad "split test rows: $(wc -l < "$T/sp.tsv")"
expect_ok "extract --no-text" $CA extract --model "$MODEL" --no-text --split-file "$T/split_zhou_toy.json" --image-root "$T/img" \
  --shots 4 --views 0 --output "$T/notext.safetensors"
expect_fail "zero-shot needs text.weights" "text" $CA fit --features "$T/notext.safetensors" --method zero-shot --output "$T/x.safetensors"

# errors: one line naming the file, exit 1, no partial output
cp "$T/img/blue_stripes/blue_stripes_00.png" "$T/bad.png"
printf 'not a png' > "$T/img/blue_stripes/blue_stripes_zz.png"
expect_fail "extract: corrupt image" "blue_stripes_zz.png" $CA "${EX[@]}" --output "$T/bad.safetensors"
[ ! -e "$T/bad.safetensors" ] && ok "no output after a failed extract" || bad "partial output"
rm -f "$T/img/blue_stripes/blue_stripes_zz.png"
expect_fail "extract: missing folder" "$T/nope" $CA extract --model "$MODEL" --no-text --images "$T/nope" --output "$T/x.safetensors"
expect_fail "extract: missing model" "nope.safetensors" $CA extract --model "$T/nope.safetensors" --no-text --images "$T/img" --output "$T/x.safetensors"
expect_fail "extract: bad templates" "templates" $CA "${EX[@]}" --templates "$T/none.txt" --output "$T/x.safetensors"
expect_fail "extract: usage" "--images" $CA extract --model "$MODEL" --no-text --output "$T/x.safetensors"
expect_fail "predict: bad image" "bad image or not found|cannot|$T/missing.png" $CA predict --model "$MODEL" --classifier "$T/split-clf.safetensors" "$T/missing.png"
$CA fit --features "$SHARED/features/stanford_cars.safetensors" --method zero-shot --shots 1 --output "$T/zs-cars.safetensors" >/dev/null
expect_fail "predict: classifier of another model" "zs-cars.safetensors: expects 512-d features but .* gives 64-d" $CA predict --model "$MODEL" --classifier "$T/zs-cars.safetensors" "$T/bad.png"
# same 64-d features, another model: the classifier carries the extracting model's signature
if [ -e "$T/clf-prototype.safetensors" ] && [ -n "${imgs[0]:-}" ]; then
  expect_fail "predict: classifier of another model, same dimension" "fit on features of another model" \
    $CA predict --model "$SHARED/testdata/models/rn-tiny.safetensors" --classifier "$T/clf-prototype.safetensors" "${imgs[0]}"
  expect_ok "predict: same weights under HF names" $CA predict --model "$SHARED/testdata/models/vit-tiny-hf.safetensors" \
    --config "$SHARED/testdata/models/vit-tiny-hf.config.json" --classifier "$T/clf-prototype.safetensors" "${imgs[0]}"
  $CA extract --model "$SHARED/testdata/models/rn-tiny.safetensors" --no-text --images "$T/img" --val-split 0.25 \
    --test-split 0.25 --shots 1,2 --views 0 --output "$T/feats-rn.safetensors" >/dev/null 2>&1 || bad "extract with rn-tiny"
  expect_fail "eval: features of another model" "features of another model" \
    $CA eval --classifier "$T/clf-prototype.safetensors" --features "$T/feats-rn.safetensors"
fi
finish
