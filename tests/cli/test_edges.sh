# test_edges.sh — the edges a new user hits (issue 15): no output may destroy an input or replace
# a special file or link, no exit 0 with a wrong or non-finite answer, every failure one line
# naming the user's file. Runs on a generated image folder with the shared vit-tiny model.
source tests/cli/lib.sh
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
TOOLS=$(dirname "$CA")/tests
export CLIPADAPT_QUIET=1

# expect_fail1 NAME PATTERN CMD...: exit 1 (not 0, not a crash) and exactly one stderr line matching PATTERN
expect_fail1() {
  local n=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  _untsan "$T/err"
  if [ $rc -ne 1 ]; then bad "$n (exit $rc): $(head -c 300 "$T/err")"; return; fi
  if [ "$(wc -l < "$T/err")" -ne 1 ]; then bad "$n (not one line): $(head -c 400 "$T/err")"; return; fi
  grep -q -E -- "$pat" "$T/err" && ok "$n" || bad "$n (stderr lacks '$pat': $(head -c 300 "$T/err"))"
}
sums() { md5sum "$@" 2>/dev/null; }

"$TOOLS/test_e2e" --make-images "$T/img" 8 || { bad "generate images"; finish; exit 1; }
EX=(extract --model "$MODEL" --bpe "$BPE" --shots 2 --views 1 --chunk 8)
expect_ok "extract" $CA "${EX[@]}" --images "$T/img" --output "$T/f.st"
expect_ok "fit" $CA fit --features "$T/f.st" --method prototype --output "$T/c.st"
cp "$MODEL" "$T/model.st"; cp "$BPE" "$T/bpe.gz"
IMG1=$(ls "$T/img/red_circle" | head -1)
before=$(sums "$T/f.st" "$T/c.st" "$T/model.st" "$T/bpe.gz" "$T/img/red_circle/$IMG1")

# ---- 1. an output that is an input is refused before any work, and nothing changes ----
expect_fail1 "extract --output = --model" "model.st: is the same file as the --model input" \
  $CA extract --model "$T/model.st" --bpe "$BPE" --images "$T/img" --output "$T/model.st"
expect_fail1 "extract --output = --bpe" "bpe.gz: is the same file as the --bpe input" \
  $CA extract --model "$MODEL" --bpe "$T/bpe.gz" --images "$T/img" --output "$T/bpe.gz"
expect_fail1 "extract --output = an image under --images" "$IMG1: is inside the --images folder" \
  $CA "${EX[@]}" --images "$T/img" --output "$T/img/red_circle/$IMG1"
expect_fail1 "fit --output = --features" "f.st: is the same file as the --features input" \
  $CA fit --features "$T/f.st" --method prototype --output "$T/f.st"
expect_fail1 "eval --predictions = --features" "f.st: is the same file as the --features input" \
  $CA eval --classifier "$T/c.st" --features "$T/f.st" --predictions "$T/f.st"
expect_fail1 "eval --predictions = --classifier" "c.st: is the same file as the --classifier input" \
  $CA eval --classifier "$T/c.st" --features "$T/f.st" --predictions "$T/c.st"
expect_fail1 "fewshot --json = --features" "f.st: is the same file as the --features input" \
  $CA fewshot --features "$T/f.st" --method prototype --json "$T/f.st"
ln -s f.st "$T/flink"; ln "$T/f.st" "$T/fhard"
expect_fail1 "output = a link to an input" "flink: is the same file as the --features input" \
  $CA fit --features "$T/f.st" --method prototype --output "$T/flink"
expect_fail1 "output = a hard link of an input" "fhard: is the same file as the --features input" \
  $CA fit --features "$T/f.st" --method prototype --output "$T/fhard"
expect_fail1 "output = an existing directory" "$T/img: is a directory" \
  $CA fit --features "$T/f.st" --method prototype --output "$T/img"
expect_fail1 "output in a missing folder" "nowhere/c.st: cannot create: its folder does not exist" \
  $CA fit --features "$T/f.st" --method prototype --output "$T/nowhere/c.st"
expect_fail1 "fewshot --json and --plot the same file" "given for both --json and --plot" \
  $CA fewshot --features "$T/f.st" --method prototype --json "$T/same" --plot "$T/same"
[ "$(sums "$T/f.st" "$T/c.st" "$T/model.st" "$T/bpe.gz" "$T/img/red_circle/$IMG1")" = "$before" ] \
  && ok "no input changed" || bad "an input changed"
[ -z "$(ls -A "$T" | grep '\.tmp\.')" ] && ok "no temporaries left" || bad "temporaries: $(ls -A "$T" | grep tmp)"

# ---- 2. links, FIFOs, character devices and '-' ----
ln -s c2.st "$T/clink"
expect_ok "output through a symlink" $CA fit --features "$T/f.st" --method prototype --output "$T/clink"
[ -L "$T/clink" ] && [ -s "$T/c2.st" ] && ok "the link stays, its target is written" || bad "link replaced or target missing"
mkfifo "$T/fifo"
( cat "$T/fifo" > "$T/fifo.out" ) & reader=$!
expect_ok "eval --predictions FIFO" timeout 60 $CA eval --classifier "$T/c.st" --features "$T/f.st" --predictions "$T/fifo"
wait $reader
[ -p "$T/fifo" ] && [ "$(wc -l < "$T/fifo.out")" -ge 3 ] && ok "FIFO written through, still a FIFO" || bad "FIFO: $(ls -l "$T/fifo")"
expect_ok "--predictions /dev/null" $CA eval --classifier "$T/c.st" --features "$T/f.st" --predictions /dev/null
[ -c /dev/null ] && ok "/dev/null is still a character device" || bad "/dev/null replaced"
CA_ABS="$(cd "$(dirname "$CA")" && pwd)/$(basename "$CA")"
(cd "$T" && "$CA_ABS" eval --classifier c.st --features f.st --predictions - > pred.out 2> pred.err)
[ ! -e "$T/-" ] && [ "$(grep -c $'\t' "$T/pred.out")" -ge 3 ] && ok "--predictions - is stdout" || bad "'-' made a file or printed nothing"
$CA eval --classifier "$T/c.st" --features "$T/f.st" --predictions /dev/stdout > "$T/dev.out" 2>&1
[ "$(grep -c $'\t' "$T/dev.out")" -ge 3 ] && grep -q "accuracy" "$T/dev.out" && ok "--predictions /dev/stdout keeps the redirection" || bad "/dev/stdout: $(head -3 "$T/dev.out")"
if [ -w /dev/full ]; then
  expect_fail1 "stdout on a full disk" "standard output: write failed: No space left on device" \
    sh -c "$CA eval --classifier '$T/c.st' --features '$T/f.st' > /dev/full"
  expect_fail1 "--predictions /dev/full" "/dev/full: write failed: No space left on device" \
    $CA eval --classifier "$T/c.st" --features "$T/f.st" --predictions /dev/full
  expect_fail1 "fit --output - on a full disk" "write failed: No space left on device" \
    sh -c "$CA fit --features '$T/f.st' --method prototype --output - > /dev/full"
fi

# ---- 3. no silent wrong answers ----
"$TOOLS/test_edges" --nan-copy "$MODEL" "$T/nan.st" visual.transformer.resblocks.0.mlp.c_fc.weight \
  || bad "make a NaN model"
expect_fail1 "NaN weights refused by extract, tensor named" "nan.st: tensor 'visual.transformer.resblocks.0.mlp.c_fc.weight': non-finite" \
  $CA "${EX[@]}" --model "$T/nan.st" --images "$T/img" --output "$T/nan-f.st"
expect_fail1 "NaN weights refused by predict" "nan.st: tensor .*non-finite" \
  $CA predict --model "$T/nan.st" --classifier "$T/c.st" "$T/img/red_circle/$IMG1"
[ ! -e "$T/nan-f.st" ] && ok "no feature set from NaN weights" || bad "NaN feature set written"
# the same classes in another order (folder names sort differently): remapped by name
mkdir -p "$T/ord1" "$T/ord2"
cp -r "$T/img/red_circle" "$T/ord1/shape_a"; cp -r "$T/img/green_square" "$T/ord1/shape b"; cp -r "$T/img/blue_stripes" "$T/ord1/shape_c"
cp -r "$T/img/red_circle" "$T/ord2/shape a"; cp -r "$T/img/green_square" "$T/ord2/shape b"; cp -r "$T/img/blue_stripes" "$T/ord2/shape c"
expect_ok "extract order 1" $CA "${EX[@]}" --images "$T/ord1" --output "$T/o1.st"
expect_ok "extract order 2" $CA "${EX[@]}" --images "$T/ord2" --output "$T/o2.st"
expect_ok "fit on order 1" $CA fit --features "$T/o1.st" --method prototype --output "$T/o1.clf"
a1=$($CA eval --classifier "$T/o1.clf" --features "$T/o1.st" --json 2>/dev/null | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
a2=$($CA eval --classifier "$T/o1.clf" --features "$T/o2.st" --json 2>/dev/null | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
[ -n "$a1" ] && [ "$a1" = "$a2" ] && ok "reordered classes scored by name ($a1 = $a2)" || bad "reordered classes: $a1 vs $a2"
mkdir -p "$T/other"; cp -r "$T/img/red_circle" "$T/other/cat"; cp -r "$T/img/green_square" "$T/other/dog"; cp -r "$T/img/blue_stripes" "$T/other/fox"
expect_ok "extract other classes" $CA "${EX[@]}" --images "$T/other" --output "$T/other.st"
expect_fail1 "eval on other classes refused" "other.st: class 'cat' is not one of the classes of" \
  $CA eval --classifier "$T/o1.clf" --features "$T/other.st"
# class names that collide after '_' -> ' ', and a single class
mkdir -p "$T/col"; cp -r "$T/img/red_circle" "$T/col/sea_lion"; cp -r "$T/img/green_square" "$T/col/sea lion"
expect_fail1 "class-name collision refused" "col: two classes are both named 'sea lion'" \
  $CA "${EX[@]}" --images "$T/col" --output "$T/col.st"
mkdir -p "$T/one"; cp -r "$T/img/red_circle" "$T/one/cat"
expect_fail1 "one class refused" "one: 1 class found; a classifier needs at least 2" \
  $CA "${EX[@]}" --images "$T/one" --output "$T/one.st"
# a diverged training run
for m in clip-adapter tip-adapter-f; do
  expect_fail1 "fit $m --lr 1e10 diverges" "f.st: .*training diverged" \
    $CA fit --features "$T/f.st" --method $m --lr 1e10 --epochs 20 --output "$T/div-$m.st"
  [ ! -e "$T/div-$m.st" ] && ok "no diverged classifier written ($m)" || bad "diverged $m classifier written"
done

# ---- 4. clear errors ----
expect_fail1 "predict DIR" "$T/img: is a directory" $CA predict --model "$MODEL" --classifier "$T/c.st" "$T/img"
$CA fewshot --features "$SHARED/features/caltech101.safetensors" --method prototype --shots 1 --json "$T/cal.json" >/dev/null 2>&1
expect_ok "fit a 512-d classifier" $CA fit --features "$SHARED/features/caltech101.safetensors" --method prototype --shots 1 --output "$T/big.clf"
expect_fail1 "classifier of another model refused once for many images" "big.clf: expects 512-d features" \
  $CA predict --model "$MODEL" --classifier "$T/big.clf" "$T"/img/red_circle/*
expect_fail1 "missing vocabulary: reason given" "nothere.gz: cannot open: No such file or directory" \
  $CA "${EX[@]}" --bpe "$T/nothere.gz" --images "$T/img" --output "$T/x.st"

# ---- 5. checks before work: a folder of thousands of undecodable files fails on the prompt, fast ----
for c in a b c; do mkdir -p "$T/big/$c"; (cd "$T/big/$c" && seq 1 1000 | sed 's/$/.jpg/' | xargs touch); done
printf 'a photo of a {}%s\n' "$(printf ' very%.0s' $(seq 1 80))" > "$T/long.txt"
t0=$(date +%s.%N)
expect_fail1 "too-long prompt found before any image" "long.txt: prompt 'a photo of a a very .*' is [0-9]+ tokens" \
  $CA "${EX[@]}" --images "$T/big" --templates "$T/long.txt" --output "$T/big.st"
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 5) }' && ok "checked in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s (3000 files)" \
  || bad "validation took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"
expect_fail1 "output check before the images are read" "nowhere/x.st: cannot create" \
  $CA "${EX[@]}" --images "$T/big" --output "$T/nowhere/x.st"

# ---- 6. say what happened ----
$CA "${EX[@]}" --images "$T/img" --shots 50 --output "$T/short.st" 2>"$T/warn.err" >/dev/null
grep -q "warning: .*3 of 3 classes have fewer than 50 training images" "$T/warn.err" && ok "short classes warned with counts" \
  || bad "no short-class warning: $(cat "$T/warn.err")"
mkdir -p "$T/thin/a" "$T/thin/b"; cp "$T"/img/red_circle/* "$T/thin/a/"; cp "$(ls -d "$T"/img/*/ | sed -n 2p)"/$(ls "$(ls -d "$T"/img/*/ | sed -n 2p)" | head -1) "$T/thin/b/"
$CA "${EX[@]}" --images "$T/thin" --shots 1 --val-split 0.2 --test-split 0.2 --output "$T/thin.st" 2>"$T/thin.err" >/dev/null
grep -q "warning: .*1 of 2 classes have no test image" "$T/thin.err" && ok "a class without test images is warned" \
  || bad "no no-test warning: $(cat "$T/thin.err")"
expect_ok "extract --test-split 0" $CA "${EX[@]}" --images "$T/img" --test-split 0 --output "$T/notest.st"
expect_ok "fit on a set without test" $CA fit --features "$T/notest.st" --method tip-adapter --output "$T/notest.clf"
expect_fail1 "fewshot on a set without test says why" "no test rows" $CA fewshot --features "$T/notest.st" --method prototype
env -u CLIPADAPT_QUIET $CA "${EX[@]}" --images "$T/img" --views 0 --output "$T/prog.st" 2>"$T/prog.err" >/dev/null
grep -q "^clipadapt: extract: 100% " "$T/prog.err" && grep -q "^clipadapt: text: 100% " "$T/prog.err" && ! grep -q $'\r' "$T/prog.err" \
  && ok "progress lines when stderr is not a terminal (images and text)" || bad "progress: $(head -c 300 "$T/prog.err")"

# ---- 7. fit and fewshot share options; names, not numbers ----
expect_ok "fit --optimizer sgd --ratio-mode search --warmup-epochs 1" $CA fit --features "$T/f.st" --method clip-adapter \
  --optimizer sgd --ratio-mode search --warmup-epochs 1 --epochs 2 --output "$T/sgd.clf"
grep -q "optimizer *sgd" "$T/out" && grep -q "ratio_mode *search" "$T/out" && ok "enums printed by name" || bad "enums: $(cat "$T/out")"
expect_ok "fit --search-steps --init-alpha" $CA fit --features "$T/f.st" --method tip-adapter-f --search-steps 10,5 --init-alpha 2 --beta 3 --epochs 2 --output "$T/tf.clf"
grep -q "init_alpha *2" "$T/out" && grep -q "init_beta *3" "$T/out" && ok "--init-alpha and the --beta alias" || bad "init: $(cat "$T/out")"
expect_ok "fewshot takes the same flags" $CA fewshot --features "$T/f.st" --method clip-adapter --shots 2 --optimizer sgd --alpha 2 --epochs 2 --json "$T/fs.json"
grep -q '"optimizer":[[:space:]]*"sgd"' "$T/fs.json" && ok "JSON stores the optimizer by name" || bad "json: $(grep -o '"optimizer[^,]*' "$T/fs.json")"
for cmd in fit fewshot; do $CA $cmd --help > "$T/help-$cmd.txt"; done
for f in --seed --search-scale --search-steps --init-alpha --init-beta --epochs --batch --lr --weight-decay --reduction --ratio --ratio-mode --optimizer --warmup-epochs --threads; do
  grep -q -- "^  $f " "$T/help-fit.txt" && grep -q -- "^  $f " "$T/help-fewshot.txt" || bad "$f missing from fit or fewshot --help"
done
ok "fit and fewshot --help list every training option"
expect_fail "bad enum is a usage error" "optimizer wants one of default, sgd, adamw" $CA fit --features "$T/f.st" --method clip-adapter --optimizer adam --output "$T/x.clf"
[ "$(cat "$T/err" | wc -l)" -eq 1 ] && $CA fit --features "$T/f.st" --method clip-adapter --optimizer adam --output "$T/x.clf" 2>/dev/null; [ $? -eq 2 ] && ok "usage errors exit 2" || bad "usage exit status"
finish
