# test_serve_page.sh — the web page of `clipadapt serve` in headless Chromium (Debian's chromium,
# driven through the DevTools protocol by tests/cli/serve_page_test.py): load the page, submit an
# image through the form, check the top-k bars and the class table in the DOM, add an example.
# SCREENSHOT=docs/serve-page.png keeps the page as it looks at the end. Loopback only.
source tests/cli/lib.sh
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
export CLIPADAPT_QUIET=1
PID=""
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$T"' EXIT
command -v chromium >/dev/null || { bad "chromium is missing (scripts/setup.sh test installs it)"; finish; exit 1; }
"$(dirname "$CA")"/tests/test_grow --make-images "$T/img" 8 || { bad "generate images"; finish; exit 1; }
rm -rf "$T/img/yellow_ring" "$T/img/big.png"
$CA extract --model "$MODEL" --bpe "$BPE" --images "$T/img" --val-split 0.25 --test-split 0.25 --shots 2 --views 1 \
  --output "$T/f.safetensors" >"$T/out" 2>"$T/err" || { bad "extract: $(cat "$T/err")"; finish; exit 1; }
$CA fit --features "$T/f.safetensors" --method tip-adapter --shots 2 --output "$T/tip.safetensors" >"$T/out" 2>"$T/err" \
  || { bad "fit: $(cat "$T/err")"; finish; exit 1; }
$CA serve --model "$MODEL" --bpe "$BPE" --port 0 --data-dir "$T/data" --api-key k3y --classifier tip="$T/tip.safetensors" 2>"$T/serve.log" &
PID=$!
port=""
for i in $(seq 1 150); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\)\/.*/\1/p' "$T/serve.log"); [ -n "$port" ] && break; sleep 0.1
done
case "$port" in ''|*[!0-9]*) bad "server did not start: $(cat "$T/serve.log")"; finish; exit 1;; esac
python3 tests/cli/serve_page_test.py "http://127.0.0.1:$port" "$T/img/red_circle/red_circle_07.png" k3y ${SCREENSHOT:+"$SCREENSHOT"} > "$T/page.out" 2>&1
while IFS= read -r l; do
  case "$l" in "ok   "*) ok "${l#ok   }";; "FAIL "*) bad "${l#FAIL }";; esac
done < "$T/page.out"
grep -q -E '^(ok|FAIL) ' "$T/page.out" || bad "browser test gave no result: $(tail -5 "$T/page.out")"
kill -TERM $PID; wait $PID; PID=""
finish
