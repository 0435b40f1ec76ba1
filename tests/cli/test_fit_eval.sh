# test_fit_eval.sh — `clipadapt fit` and `clipadapt eval` on the shared stanford_cars features:
# zero-shot through fit -> file -> eval reproduces the reference 58.17%, and errors are one line.
source tests/cli/lib.sh
CARS=$SHARED/features/stanford_cars.safetensors

expect_ok "fit --help" $CA fit --help
expect_ok "eval --help" $CA eval --help
expect_ok "fit --list" $CA fit --list
grep -qx "zero-shot" "$T/out" && ok "fit --list names zero-shot" || bad "fit --list: $(cat "$T/out")"

expect_ok "fit zero-shot" $CA fit --features "$CARS" --method zero-shot --shots 1 --output "$T/zs.safetensors"
expect_ok "eval zero-shot" $CA eval --classifier "$T/zs.safetensors" --features "$CARS" --json --predictions "$T/pred.tsv"
acc=$(sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p' "$T/out")
[ "$(printf %.2f "$acc")" = "58.17" ] && ok "eval reproduces 58.17%" || bad "eval accuracy: $(cat "$T/out")"
[ "$(wc -l < "$T/pred.tsv")" -eq 1047 ] && ok "one prediction per test row" || bad "predictions: $(wc -l < "$T/pred.tsv") lines"
# the accuracy recomputed from the predictions file agrees
acc=$(awk -F'\t' '{n++; if ($2 == $3) c++} END {printf "%.2f", 100 * c / n}' "$T/pred.tsv")
[ "$acc" = "58.17" ] && ok "predictions agree with accuracy" || bad "predictions give $acc"

# top-5, per-class accuracy, the confusion matrix (CSV) and its heatmap (SVG)
grep -q '"top5": [0-9.]*' "$T/out" && grep -q '"per_class": \[{"class"' "$T/out" && ok "eval --json has top5 and per_class" \
  || bad "eval --json: $(head -c 300 "$T/out")"
expect_ok "eval --confusion --plot --per-class" $CA eval --classifier "$T/zs.safetensors" --features "$CARS" --per-class \
  --confusion "$T/conf.csv" --plot "$T/conf.svg"
grep -q "top-1 accuracy 58.17%, top-5 9[0-9].[0-9][0-9]%" "$T/out" && ok "eval prints top-5" || bad "eval: $(head -2 "$T/out")"
[ "$(wc -l < "$T/out")" -eq 197 ] && ok "eval --per-class: one line per class" || bad "per-class lines: $(wc -l < "$T/out")"
[ "$(wc -l < "$T/conf.csv")" -eq 197 ] && ok "confusion CSV: header + 196 rows" || bad "CSV lines: $(wc -l < "$T/conf.csv")"
# rows sum to the test rows, the diagonal to the top-1 hits (58.17% of 1047 = 609)
sums=$(awk -F, 'NR > 1 { for (i = 2; i <= NF - 2; i++) { t += $i; if (i == NR) d += $i } } END { print t, d }' "$T/conf.csv")
[ "$sums" = "1047 609" ] && ok "confusion CSV sums: 1047 rows, 609 on the diagonal" || bad "confusion CSV sums: $sums"
grep -q '<svg' "$T/conf.svg" && grep -q '</svg>' "$T/conf.svg" && ok "confusion heatmap SVG" || bad "no SVG"
expect_fail "eval --top-k 0" "top-k" $CA eval --classifier "$T/zs.safetensors" --features "$CARS" --top-k 0
# --confusion and --plot go through the output policy: an input, or the other output, is refused before any work
cp "$T/zs.safetensors" "$T/zs-copy.safetensors"
expect_fail "eval --confusion = --classifier" "zs-copy.safetensors: is the same file as the --classifier input" \
  $CA eval --classifier "$T/zs-copy.safetensors" --features "$CARS" --confusion "$T/zs-copy.safetensors"
expect_fail "eval --plot = --confusion" "given for both --confusion and --plot" \
  $CA eval --classifier "$T/zs-copy.safetensors" --features "$CARS" --confusion "$T/c2.csv" --plot "$T/c2.csv"
cmp -s "$T/zs.safetensors" "$T/zs-copy.safetensors" && [ ! -e "$T/c2.csv" ] && ok "refused outputs left the inputs alone" \
  || bad "a refused eval output changed a file"

expect_fail "fit: unknown method" "unknown method" $CA fit --features "$CARS" --method nope --output "$T/x.safetensors"
expect_fail "fit: missing shots split" "train.3shot" $CA fit --features "$CARS" --method zero-shot --shots 3 --output "$T/x.safetensors"
[ ! -e "$T/x.safetensors" ] && ok "no partial output" || bad "output written on failure"
expect_fail "fit: needs text" "text" $CA fit --features "$SHARED/features/caltech101.safetensors" --method zero-shot --output "$T/x.safetensors"
expect_fail "eval: class mismatch" "classes" $CA eval --classifier "$T/zs.safetensors" --features "$SHARED/features/caltech101.safetensors"
expect_fail "eval: not a classifier" "not a clipadapt classifier" $CA eval --classifier "$CARS" --features "$CARS"
expect_fail "eval: bad split" "no split 'train.5shot'" $CA eval --classifier "$T/zs.safetensors" --features "$CARS" --split train.5shot
expect_fail "fit: usage" "required" $CA fit --method zero-shot
finish
