#!/usr/bin/env bash
# test_tokenize.sh — `clipadapt tokenize`: ids per line, padded rows, truncation, vocabulary
# lookup ($CLIPADAPT_BPE, --bpe), invalid UTF-8 and usage errors.
source tests/cli/lib.sh
BPE="$SHARED/clip/bpe_simple_vocab_16e6.txt.gz"
unset CLIPADAPT_BPE

expect_ok "help" "$CA" tokenize --help
grep -q -- "--context" "$T/out" && ok "help names --context" || bad "help names --context"

printf 'a photo of a dog.\nhello &amp; world\n\nit'"'"'s\n' >"$T/in"
if "$CA" tokenize --bpe "$BPE" <"$T/in" >"$T/o" 2>"$T/e" &&
   [ "$(cat "$T/o")" = $'[320, 1125, 539, 320, 1929, 269]\n[3306, 261, 1002]\n[]\n[585, 568]' ]; then ok "ids per line"
else bad "ids per line: $(cat "$T/o" "$T/e")"; fi

if CLIPADAPT_BPE="$BPE" "$CA" tokenize --context 10 <<<'a photo of a dog.' >"$T/o" 2>"$T/e" &&
   [ "$(cat "$T/o")" = '[49406, 320, 1125, 539, 320, 1929, 269, 49407, 0, 0]' ]; then ok "context row via CLIPADAPT_BPE"
else bad "context row via CLIPADAPT_BPE: $(cat "$T/o" "$T/e")"; fi

# golden texts without JSON escapes (the first 300 such) through the CLI give the golden ids
grep -v '\\' "$SHARED/testdata/tokenizer/tokenizer_golden.jsonl" | head -n 300 >"$T/g"
sed -e 's/^{"text": "\(.*\)", "ids": \(\[.*\]\)}$/\1/' "$T/g" >"$T/gt"
sed -e 's/^{"text": ".*", "ids": \(\[.*\]\)}$/\1/' "$T/g" >"$T/gi"
if [ "$(wc -l <"$T/g")" -eq 300 ] && "$CA" tokenize --bpe "$BPE" <"$T/gt" >"$T/o" 2>"$T/e" && cmp -s "$T/o" "$T/gi"; then ok "300 golden lines"
else bad "300 golden lines: $(diff "$T/o" "$T/gi" | head -5)"; fi

long=$(printf 'a %.0s' $(seq 100))
expect_fail "too long without --truncate" "line 2: .*context length 77" "$CA" tokenize --bpe "$BPE" --context 77 <<<"ok
$long"
[ ! -s "$T/out" ] && ok "no partial output" || bad "no partial output: $(head -c 100 "$T/out")"
if "$CA" tokenize --bpe "$BPE" --context 77 --truncate <<<"$long" >"$T/o" 2>"$T/e" &&
   [ "$(tr -d '[]' <"$T/o" | tr ',' '\n' | sed -n '77p' | tr -d ' ')" = 49407 ]; then ok "--truncate ends with EOT"
else bad "--truncate ends with EOT: $(cat "$T/e")"; fi

printf 'ok\nab\xffcd\n' >"$T/bad"
expect_fail "invalid UTF-8" "line 2: invalid UTF-8 at byte offset 2" "$CA" tokenize --bpe "$BPE" <"$T/bad"
printf 'x\0y\n' >"$T/nul"
if "$CA" tokenize --bpe "$BPE" <"$T/nul" >"$T/o" 2>"$T/e" && [ "$(cat "$T/o")" = '[343, 444, 344]' ]; then ok "NUL in a line"
else bad "NUL in a line: $(cat "$T/o" "$T/e")"; fi

expect_fail "no vocabulary" "no vocabulary.*CLIPADAPT_BPE" "$CA" tokenize </dev/null
expect_fail "missing vocabulary file" "nope.txt.gz: cannot open" "$CA" tokenize --bpe "$T/nope.txt.gz" </dev/null
expect_fail "bad --context" "--context wants an integer in \[2, 1000000\]" "$CA" tokenize --bpe "$BPE" --context 1 </dev/null
expect_fail "--truncate alone" "--truncate needs --context" "$CA" tokenize --bpe "$BPE" --truncate </dev/null
expect_fail "unknown option" "unknown option" "$CA" tokenize --frobnicate </dev/null
"$CA" tokenize --frobnicate </dev/null 2>/dev/null; [ $? -eq 2 ] && ok "usage exit 2" || bad "usage exit 2"
finish
