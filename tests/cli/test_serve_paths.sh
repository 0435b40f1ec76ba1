# test_serve_paths.sh — `clipadapt serve` answers the same whichever path a request takes: alone
# (decoded, encoded and finished on the encoder thread), in a batch (decoded on a worker, encoded
# with others), or alone but too big for the short path (decoded on a worker); each answer equals
# `clipadapt predict` on the same image and classifier, and embeddings agree across the paths.
# Also: the answer's stage timings, and that requests arriving together are still batched.
# Only ever talks to 127.0.0.1; every loop is bounded.
source tests/cli/lib.sh
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
MKIMG=$(dirname "$CA")/tests/test_grow
export CLIPADAPT_QUIET=1
command -v curl >/dev/null || { bad "curl is missing (scripts/setup.sh test installs it)"; finish; exit 1; }
CURL=(curl -s --noproxy '*' --max-time 30)
PID=""
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

"$MKIMG" --make-images "$T/img" 8 >/dev/null || { bad "generate images"; finish; exit 1; }
$CA extract --model "$MODEL" --bpe "$BPE" --images "$T/img" --val-split 0.25 --test-split 0.25 --shots 2 \
  --output "$T/feats.safetensors" >"$T/out" 2>"$T/err" || { bad "extract: $(cat "$T/err")"; finish; exit 1; }
$CA fit --features "$T/feats.safetensors" --method tip-adapter --shots 2 --output "$T/tip.safetensors" >"$T/out" 2>"$T/err" \
  || { bad "fit: $(cat "$T/err")"; finish; exit 1; }
IMGS=("$T"/img/*/*_0[0-2].png)
# an upload over the 256 KiB of the short path: 400x400 noise, stored (incompressible)
python3 - "$T/big.png" <<'EOF'
import random, struct, sys, zlib
w = h = 400
random.seed(7)
raw = b"".join(b"\0" + bytes(random.getrandbits(8) for _ in range(3 * w)) for _ in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))
EOF
[ "$(stat -c %s "$T/big.png")" -gt 262144 ] && ok "a PNG over 256 KiB" || bad "big PNG is $(stat -c %s "$T/big.png") bytes"
ALL=("${IMGS[@]}" "$T/big.png")

$CA predict --model "$MODEL" --classifier "$T/tip.safetensors" --top-k 3 --json --output "$T/predict.jsonl" "${ALL[@]}" \
  >"$T/out" 2>"$T/err" || { bad "predict: $(cat "$T/err")"; finish; exit 1; }
ok "predict on ${#ALL[@]} images"

# a long batch wait, so that requests sent together meet in the encoder's queue
$CA serve --model "$MODEL" --port 0 --max-batch 8 --batch-wait-ms 300 --classifier tip="$T/tip.safetensors" 2>"$T/s.log" &
PID=$!
port=""
for i in $(seq 1 150); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\)\/.*/\1/p' "$T/s.log")
  [ -n "$port" ] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
case "$port" in ''|*[!0-9]*) bad "server did not start: $(cat "$T/s.log")"; finish; exit 1;; esac
U="http://127.0.0.1:$port"
classify() { "${CURL[@]}" -o "$2" -X POST --data-binary @"$1" "$U/v1/classify?classifier=tip&top_k=3"; }
embed() { "${CURL[@]}" -o "$2" -X POST --data-binary @"$1" "$U/v1/embed"; }

# alone, one after the other: the short path (the big one: a worker)
mkdir -p "$T/alone" "$T/together"
i=0
for f in "${ALL[@]}"; do classify "$f" "$T/alone/$i.json"; embed "$f" "$T/alone/e$i.json"; i=$((i + 1)); done
# together: every image at once, twice over, so that they meet in batches
i=0; pids=()
for f in "${ALL[@]}" "${ALL[@]}"; do
  classify "$f" "$T/together/$i.json" & pids+=($!)
  embed "$f" "$T/together/e$i.json" & pids+=($!)
  i=$((i + 1))
done
for p in "${pids[@]}"; do wait "$p"; done

python3 - "$T" "${#ALL[@]}" <<'EOF' >"$T/check" 2>&1
import json, math, sys
T, n = sys.argv[1], int(sys.argv[2])
pred = [json.loads(l) for l in open(T + "/predict.jsonl")]
assert len(pred) == n, "predict gave %d lines" % len(pred)
def load(p):
    return json.load(open(p))
def same_top(a, b, what):
    ta, tb = a["top"], b["top"]
    assert [t["index"] for t in ta] == [t["index"] for t in tb], "%s: top %s vs predict %s" % (what, ta, tb)
    for x, y in zip(ta, tb):
        assert abs(x["prob"] - y["prob"]) <= 1e-5, "%s: prob %r vs predict %r" % (what, x["prob"], y["prob"])
stages = ("receive", "wait_decode", "decode", "wait_encode", "encode", "queue_and_encode", "finish", "total", "batch")
batches_alone, batches_together = [], []
for i in range(n):
    a = load("%s/alone/%d.json" % (T, i))
    same_top(a, pred[i], "alone %d" % i)
    t = a["timings_ms"]
    assert all(k in t for k in stages), "timings_ms lacks a stage: %s" % t
    assert t["encode"] > 0 and t["total"] >= t["encode"], "stage times do not add up: %s" % t
    batches_alone.append(t["batch"])
    ea = load("%s/alone/e%d.json" % (T, i))["embeddings"][0]
    for k in (i, i + n):
        b = load("%s/together/%d.json" % (T, k))
        same_top(b, pred[i], "together %d" % k)
        batches_together.append(b["timings_ms"]["batch"])
        eb = load("%s/together/e%d.json" % (T, k))["embeddings"][0]
        d = max(abs(x - y) for x, y in zip(ea, eb))
        assert d <= 1e-5, "embedding of image %d: alone vs together differ by %g" % (i, d)
assert set(batches_alone) == {1}, "alone, one by one, but batches %s" % batches_alone
assert max(batches_together) > 1, "sent together, never batched: %s" % batches_together
print("ok %d images, batches together up to %d" % (n, max(batches_together)))
EOF
if grep -q '^ok ' "$T/check"; then
  ok "every answer equals predict's, alone and together; embeddings agree ($(cat "$T/check"))"
else
  bad "answers differ: $(tail -c 600 "$T/check")"
fi

# an undecodable upload alone (short path) and together: the decoder's message, 400, and the
# server still answers
printf 'not an image' >"$T/junk"
code=$("${CURL[@]}" -o "$T/junk.json" -w '%{http_code}' -X POST --data-binary @"$T/junk" "$U/v1/classify?classifier=tip")
[ "$code" = 400 ] && grep -q 'unrecognised signature' "$T/junk.json" && ok "undecodable alone -> 400 with the decoder's message" \
  || bad "undecodable alone: $code $(head -c 200 "$T/junk.json")"
classify "${IMGS[0]}" "$T/after.json"
grep -q '"top":\[' "$T/after.json" && ok "answers after a bad upload" || bad "after a bad upload: $(head -c 200 "$T/after.json")"

kill -TERM "$PID"; wait "$PID"; rc=$?; PID=""
[ $rc = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"
finish
