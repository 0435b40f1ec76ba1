# test_serve.sh — `clipadapt serve` on a free loopback port with the shared vit-tiny model: every
# route, every refused input (413 body and pixels, 400 undecodable, 404, 405, 401, 503 with
# Retry-After, hostile names, slow and truncated clients, malformed HTTP), a new class learnt from
# 5 examples through the API with no refit, concurrent adds + classifies, restart after SIGKILL
# (also mid-add) serving exactly the acknowledged examples, and SIGTERM draining.
# Only ever talks to 127.0.0.1; every loop is bounded.
source tests/cli/lib.sh
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
MKIMG=$(dirname "$CA")/tests/test_grow
export CLIPADAPT_QUIET=1
command -v curl >/dev/null || { bad "curl is missing (scripts/setup.sh test installs it)"; finish; exit 1; }
CURL=(curl -s --noproxy '*' --max-time 20)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT

# ---- data: 4 classes of shapes; the 4th (yellow ring) is not in the fitted classifiers ----
"$MKIMG" --make-images "$T/img" 12 || { bad "generate images"; finish; exit 1; }
mkdir -p "$T/three"
for c in red_circle green_square blue_stripes; do ln -s "$T/img/$c" "$T/three/$c"; done
$CA extract --model "$MODEL" --bpe "$BPE" --images "$T/three" --val-split 0.25 --test-split 0.25 --shots 4 \
  --views 2 --output "$T/feats.safetensors" >"$T/out" 2>"$T/err" || { bad "extract: $(cat "$T/err")"; finish; exit 1; }
for m in tip-adapter prototype tip-cache linear-probe; do
  $CA fit --features "$T/feats.safetensors" --method $m --shots 4 --output "$T/$m.safetensors" >"$T/out" 2>"$T/err" \
    || { bad "fit $m: $(cat "$T/err")"; finish; exit 1; }
done
RING=("$T"/img/yellow_ring/*.png)     # 12 images: 5 to add, 7 held out
RED=("$T"/img/red_circle/*.png)

# start_server LOG ARGS...: starts serve on port 0, sets PID and U (base URL)
start_server() {
  local log=$1; shift
  $CA serve --model "$MODEL" --port 0 "$@" >"$log.out" 2>"$log" &
  PID=$!; PIDS+=("$PID")
  local port="" i
  for i in $(seq 1 150); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\)\/.*/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  case "$port" in ''|*[!0-9]*) U=""; return 1;; esac
  U="http://127.0.0.1:$port"
}
# req NAME EXPECTED_CODE METHOD PATH [curl args...]: body in $T/body, headers in $T/hdr
req() {
  local n=$1 want=$2 m=$3 p=$4; shift 4
  local code
  code=$("${CURL[@]}" -o "$T/body" -D "$T/hdr" -w '%{http_code}' -X "$m" "$U$p" "$@")
  if [ "$code" = "$want" ]; then ok "$n ($code)"; else bad "$n: HTTP $code, expected $want: $(head -c 300 "$T/body")"; fi
}
# body_has NAME PATTERN: the last body matches an extended regex
body_has() { if grep -q -E -- "$2" "$T/body"; then ok "$1"; else bad "$1: body lacks '$2': $(head -c 300 "$T/body")"; fi; }
top1() { sed -n 's/.*"top":\[{"class":"\([^"]*\)".*/\1/p' "$T/body"; }
KEY=(-H "Authorization: Bearer s3cret")
ARGS=(--bpe "$BPE" --data-dir "$T/data" --api-key s3cret --timeout 2 --max-body 7M --max-pixels 1000000
      --classifier tip="$T/tip-adapter.safetensors" --classifier proto="$T/prototype.safetensors"
      --classifier lp="$T/linear-probe.safetensors")

start_server "$T/s1.log" "${ARGS[@]}" || { bad "server did not start: $(cat "$T/s1.log")"; finish; exit 1; }
ok "server listens on 127.0.0.1 (port 0 = a free one)"

# ---- read routes ----
req "GET /health" 200 GET /health; body_has "health body" '"status":"ok"'
req "GET /v1/info" 200 GET /v1/info; body_has "info lists classifiers" '"name":"tip".*"name":"proto"'
body_has "info lists methods" '"methods":\[.*"tip-adapter"'
body_has "info lists classes with example counts" '"classes":\[\{"name":"blue stripes","examples":4'
req "GET / (web page)" 200 GET /; body_has "page is HTML with a form" '<form id="form"'
grep -qi '^content-type: text/html' "$T/hdr" && ok "page content type" || bad "page content type: $(cat "$T/hdr")"
req "classify" 200 POST "/v1/classify?classifier=tip&top_k=2" --data-binary @"${RED[0]}"
body_has "classify top-k with probabilities and timings" '"top":\[\{"class":"red circle","index":[0-9],"prob":[0-9.e-]+\},\{[^]]*\}\],"timings_ms"'
req "classify top_k=1" 200 POST "/v1/classify?classifier=proto&top_k=1" --data-binary @"${RED[1]}"
[ "$(top1)" = "red circle" ] && ok "prototype classifies a red circle" || bad "prototype: $(cat "$T/body")"
req "embed image" 200 POST /v1/embed --data-binary @"${RED[0]}"; body_has "image embedding" '"dim":64,"normalized":true,"embeddings":\[\['
req "embed texts" 200 POST /v1/embed -H 'Content-Type: application/json' --data '{"texts":["a red circle","a green square"]}'
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["embeddings"])==2 and len(d["embeddings"][0])==64' "$T/body" \
  && ok "two text embeddings of 64" || bad "text embeddings: $(head -c 200 "$T/body")"
req "GET /metrics" 200 GET /metrics
body_has "metrics: requests by route and status" '^clipadapt_requests_total\{route="classify",code="200"\} [0-9]+'
body_has "metrics: latency histogram" '^clipadapt_request_duration_seconds_bucket\{route="classify",le="0.005"\}'
body_has "metrics: batch sizes" '^clipadapt_batch_size_count [1-9]'
body_has "metrics: queue depth" '^clipadapt_queue_depth [0-9]+'

# ---- refused inputs ----
head -c 8000000 /dev/urandom > "$T/5mb.bin"
req "oversized body -> 413" 413 POST "/v1/classify?classifier=tip" --data-binary @"$T/5mb.bin"
req "oversized chunked body -> 413" 413 POST "/v1/classify?classifier=tip" -H 'Transfer-Encoding: chunked' --data-binary @"$T/5mb.bin"
req "too many pixels -> 413" 413 POST "/v1/classify?classifier=tip" --data-binary @"$T/img/big.png" -H 'Expect:' --max-time 20
head -c 4000 /dev/urandom > "$T/junk.bin"
req "undecodable image -> 400" 400 POST "/v1/classify?classifier=tip" --data-binary @"$T/junk.bin"
body_has "decoder's one-line message" '"error":"upload: not a JPEG, PNG, GIF, WebP, BMP, TIFF or PPM/PGM/PBM image'
head -c 300 "${RED[0]}" > "$T/cut.png"
req "truncated PNG -> 400" 400 POST "/v1/classify?classifier=tip" --data-binary @"$T/cut.png"
req "empty body -> 400" 400 POST "/v1/classify?classifier=tip"
req "unknown classifier -> 404" 404 POST "/v1/classify?classifier=nope" --data-binary @"${RED[0]}"
req "unknown route -> 404" 404 GET /v1/nothing
req "wrong method -> 405" 405 GET /v1/classify
grep -qi '^allow: POST' "$T/hdr" && ok "405 names the allowed method" || bad "405 without Allow: $(cat "$T/hdr")"
req "bad top_k -> 400" 400 POST "/v1/classify?classifier=tip&top_k=x" --data-binary @"${RED[0]}"
req "no classifier named, several loaded -> 400" 400 POST /v1/classify --data-binary @"${RED[0]}"
req "text embedding of bad JSON -> 400" 400 POST /v1/embed -H 'Content-Type: application/json' --data '{"texts": 3}'
req "add without API key -> 401" 401 POST "/v1/classifiers/tip/examples?label=x" --data-binary @"${RED[0]}"
req "add with a wrong API key -> 401" 401 POST "/v1/classifiers/tip/examples?label=x" -H "Authorization: Bearer nope" --data-binary @"${RED[0]}"
req "PUT without API key -> 401" 401 PUT /v1/classifiers/x --data-binary @"$T/tip-cache.safetensors"
req "DELETE without API key -> 401" 401 DELETE /v1/classifiers/tip
req "refit without API key -> 401" 401 POST "/v1/classifiers/tip/refit?method=prototype"
req "add without a label -> 400" 400 POST "/v1/classifiers/tip/examples" "${KEY[@]}" --data-binary @"${RED[0]}"
for name in '..' '.hidden' 'a%20b' 'x%2F..%2F..%2Fetc' "$(printf 'n%.0s' $(seq 70))" '%2E%2E' 'a%00b'; do
  code=$("${CURL[@]}" -o "$T/body" -w '%{http_code}' -X PUT "${KEY[@]}" "$U/v1/classifiers/$name" --data-binary @"$T/tip-cache.safetensors")
  case $code in 400|404) ok "hostile name '$name' refused ($code)";; *) bad "hostile name '$name': HTTP $code";; esac
done
req "PUT a non-classifier -> 400" 400 PUT /v1/classifiers/junk "${KEY[@]}" --data-binary @"$T/junk.bin"
body_has "PUT error names the upload" '"error":"upload: '

# ---- classifiers: upload, replace, delete ----
req "PUT a classifier -> 201" 201 PUT /v1/classifiers/tc "${KEY[@]}" --data-binary @"$T/tip-cache.safetensors"
req "classify with the uploaded one" 200 POST "/v1/classify?classifier=tc" --data-binary @"${RED[2]}"
req "PUT replaces -> 200" 200 PUT /v1/classifiers/tc "${KEY[@]}" --data-binary @"$T/prototype.safetensors"
body_has "replaced" '"method":"prototype".*"replaced":true'
req "DELETE -> 200" 200 DELETE /v1/classifiers/tc "${KEY[@]}"
req "deleted classifier -> 404" 404 POST "/v1/classify?classifier=tc" --data-binary @"${RED[2]}"
req "DELETE again -> 404" 404 DELETE /v1/classifiers/tc "${KEY[@]}"
[ ! -e "$T/data/classifiers/tc" ] && ok "deleted classifier's folder removed" || bad "tc folder left behind"
for i in 1 2 3 4 5 6; do
  f=$T/tip-cache.safetensors; [ $((i % 2)) = 0 ] && f=$T/prototype.safetensors
  echo "-X PUT -H Authorization:Bearer\ s3cret $U/v1/classifiers/race --data-binary @$f"
done > "$T/jobs"
xargs -P 6 -L 1 "${CURL[@]}" -o /dev/null -w '%{http_code}\n' < "$T/jobs" > "$T/codes"
[ "$(grep -c -E '^20[01]$' "$T/codes")" = 6 ] && ok "6 concurrent PUTs of one name answered" || bad "concurrent PUT: $(tr '\n' ' ' < "$T/codes")"
"${CURL[@]}" -o "$T/body" "$U/v1/info"
[ "$(grep -o '"name":"race"' "$T/body" | wc -l)" = 1 ] && ok "one classifier after racing PUTs" || bad "race: $(head -c 300 "$T/body")"
[ "$(ls "$T/data/classifiers" | grep -c race)" = 1 ] && [ -f "$T/data/classifiers/race/base.safetensors" ] && ok "one folder after racing PUTs" || bad "race folders: $(ls -a "$T/data/classifiers")"
req "classify with the raced classifier" 200 POST "/v1/classify?classifier=race" --data-binary @"${RED[2]}"
req "DELETE the raced classifier" 200 DELETE /v1/classifiers/race "${KEY[@]}"

# ---- a new class from 5 examples, no refit ----
req "before: held-out ring is not a known class" 200 POST "/v1/classify?classifier=tip" --data-binary @"${RING[11]}"
for i in 0 1 2 3 4; do
  want=200; [ $i = 0 ] && want=201
  req "add yellow ring example $i (tip)" $want POST "/v1/classifiers/tip/examples?label=yellow%20ring" "${KEY[@]}" --data-binary @"${RING[$i]}"
  req "add yellow ring example $i (proto)" $want POST "/v1/classifiers/proto/examples?label=yellow%20ring" "${KEY[@]}" --data-binary @"${RING[$i]}"
done
body_has "acknowledged as live and on disk" '"live":true,"persisted":true,"class_examples":5'
right=0; right_p=0
for i in 5 6 7 8 9 10 11; do
  "${CURL[@]}" -o "$T/body" -X POST "$U/v1/classify?classifier=tip&top_k=1" --data-binary @"${RING[$i]}"
  [ "$(top1)" = "yellow ring" ] && right=$((right + 1))
  "${CURL[@]}" -o "$T/body" -X POST "$U/v1/classify?classifier=proto&top_k=1" --data-binary @"${RING[$i]}"
  [ "$(top1)" = "yellow ring" ] && right_p=$((right_p + 1))
done
[ $right = 7 ] && ok "tip-adapter: 7 of 7 held-out rings classified as the new class, no refit" || bad "tip-adapter: $right of 7 held-out rings"
[ $right_p = 7 ] && ok "prototype: 7 of 7 held-out rings as the new class" || bad "prototype: $right_p of 7 held-out rings"
# (prototype: the random-weight test model's text tower gives the new class an arbitrary zero-shot
# score, which a tip-adapter adds to every image; trained CLIP text weights do not do that)
"${CURL[@]}" -o "$T/body" -X POST "$U/v1/classify?classifier=proto&top_k=1" --data-binary @"${RED[3]}"
[ "$(top1)" = "red circle" ] && ok "old classes still right after the growth" || bad "red circle now: $(cat "$T/body")"
req "add to a method that needs training" 200 POST "/v1/classifiers/lp/examples?label=red%20circle" "${KEY[@]}" --data-binary @"${RED[4]}"
body_has "not live until a refit" '"live":false,"persisted":true'

# ---- background refit, swapped in when done ----
req "refit lp as prototype -> 202" 202 POST "/v1/classifiers/lp/refit?method=prototype" "${KEY[@]}"
req "refit with an unknown method -> 400" 400 POST "/v1/classifiers/lp/refit?method=magic" "${KEY[@]}"
for i in $(seq 1 100); do
  "${CURL[@]}" -o "$T/body" "$U/v1/info"
  grep -q '"name":"lp","method":"prototype"' "$T/body" && break
  sleep 0.1
done
grep -q '"name":"lp","method":"prototype"' "$T/body" && ok "refit swapped in" || bad "refit never swapped in: $(head -c 400 "$T/body")"
req "classify with the refit classifier" 200 POST "/v1/classify?classifier=lp" --data-binary @"${RED[5]}"
grep -q "refit of 'lp' as prototype started: none: a class has 0 examples" "$T/s1.log" && ok "refit with too few examples: 'none' in the log" \
  || bad "refit none not logged: $(grep refit "$T/s1.log")"
# enough examples (4 per class from the fit, 5 rings): α, β chosen on a seeded held-out part, then
# refit on all: min(n/2, 4) per class = 2 + 2 + 2 + 2 held out
req "refit tip with a held-out split -> 202" 202 POST "/v1/classifiers/tip/refit?method=tip-adapter&seed=7" "${KEY[@]}"
body_has "refit answer says kshot-val and how many are held out" '"selection":"kshot-val","held_out":8,"min_class_examples":4,"seed":7'
req "refit with a bad seed -> 400" 400 POST "/v1/classifiers/tip/refit?method=tip-adapter&seed=x" "${KEY[@]}"
for i in $(seq 1 100); do
  "${CURL[@]}" -o "$T/body" "$U/v1/info"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=[c for c in d["classifiers"] if c["name"]=="tip"][0]; sys.exit(t["refit"]["running"] or t["refit"]["done"] < 1)' "$T/body" && break
  sleep 0.1
done
python3 - "$T/body" <<'EOF2' && ok "kshot-val refit: searched α, β on 8 held out, refit on all 17" || bad "kshot-val refit: $(head -c 600 "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
t = [c for c in d["classifiers"] if c["name"] == "tip"][0]
p, r = t["params"], t["refit"]
assert r["selection"] == "kshot-val" and r["held_out"] == 8 and r["fit_on"] == "all" and "last_error" not in r, r
assert p["searched"] == 1 and p["select_kshot_val"] == 1 and p["select_held_out"] == 8 and p["select_seed"] == 7, p
assert p["cache_size"] == 17 and "search_val_acc" in p, p   # the cache holds every example
EOF2
grep -q "refit of 'tip' as tip-adapter started: kshot-val: hyper-parameters chosen on 8 held-out examples" "$T/s1.log" \
  && ok "kshot-val refit logged" || bad "kshot-val not logged: $(grep refit "$T/s1.log")"
right=0
for i in 5 6 7 8 9 10 11; do
  "${CURL[@]}" -o "$T/body" -X POST "$U/v1/classify?classifier=tip&top_k=1" --data-binary @"${RING[$i]}"
  [ "$(top1)" = "yellow ring" ] && right=$((right + 1))
done
[ $right = 7 ] && ok "after the refit: 7 of 7 held-out rings" || bad "after the refit: $right of 7 held-out rings"

# ---- concurrent adds and classifies ----
: > "$T/codes"
for i in $(seq 0 23); do
  if [ $((i % 3)) = 0 ]; then
    echo "-X POST -H Authorization:Bearer\ s3cret $U/v1/classifiers/tip/examples?label=red%20circle --data-binary @${RED[$((i % 12))]}"
  else
    echo "-X POST $U/v1/classify?classifier=tip --data-binary @${RED[$((i % 12))]}"
  fi
done > "$T/jobs"
xargs -P 8 -L 1 "${CURL[@]}" -o /dev/null -w '%{http_code}\n' < "$T/jobs" >> "$T/codes"
n200=$(grep -c -E '^20[01]$' "$T/codes")
[ "$n200" = 24 ] && ok "24 concurrent adds + classifies all answered 2xx" || bad "concurrent: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
"${CURL[@]}" -o "$T/body" "$U/v1/info"
python3 - "$T/body" <<'EOF' && ok "8 concurrent adds all counted" || bad "concurrent add count: $(head -c 300 "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
tip = [c for c in d["classifiers"] if c["name"] == "tip"][0]
red = [k for k in tip["classes"] if k["name"] == "red circle"][0]
assert red["examples"] == 4 + 8, red
EOF
req "metrics count the examples" 200 GET /metrics
body_has "examples_added_total" '^clipadapt_examples_added_total (1[89]|[2-9][0-9])$'

# ---- misbehaving clients: the server answers others meanwhile and drops them on --timeout ----
exec 3<>/dev/tcp/127.0.0.1/"${U##*:}"
printf 'POST /v1/classify?classifier=tip HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc' >&3
req "server answers while a client stalls mid-upload" 200 GET /health
t0=$(date +%s)
timeout 10 cat <&3 >/dev/null; t1=$(date +%s)
exec 3<&-
[ $((t1 - t0)) -le 6 ] && ok "stalled client dropped after --timeout ($((t1 - t0)) s)" || bad "stalled client held $((t1 - t0)) s"
exec 3<>/dev/tcp/127.0.0.1/"${U##*:}"
printf 'GARBAGE\x01\x02 /\r\n\r\n' >&3
timeout 5 cat <&3 > "$T/garbage.out"; exec 3<&-
req "alive after malformed HTTP" 200 GET /health
exec 3<>/dev/tcp/127.0.0.1/"${U##*:}"
printf 'POST /v1/classifiers/tip/examples?label=cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nContent-Length: 5000\r\n\r\n' >&3
head -c 1000 "${RED[0]}" >&3; exec 3<&-    # vanish mid-upload
req "alive after a truncated upload" 200 GET /health
"${CURL[@]}" -o "$T/body" "$U/v1/info"
grep -q '"name":"cut"' "$T/body" && bad "a truncated upload created a class" || ok "truncated upload added nothing"

# ---- restart after SIGKILL serves exactly the acknowledged examples ----
"${CURL[@]}" -o "$T/before.json" -X POST "$U/v1/classify?classifier=tip&top_k=4" --data-binary @"${RING[8]}"
"${CURL[@]}" -o "$T/info-before.json" "$U/v1/info"
kill -9 "$PID"; wait "$PID" 2>/dev/null
start_server "$T/s2.log" "${ARGS[@]}" || { bad "restart failed: $(cat "$T/s2.log")"; finish; exit 1; }
"${CURL[@]}" -o "$T/after.json" -X POST "$U/v1/classify?classifier=tip&top_k=4" --data-binary @"${RING[8]}"
"${CURL[@]}" -o "$T/info-after.json" "$U/v1/info"
python3 - "$T" <<'EOF' && ok "after SIGKILL + restart: same classes, counts and probabilities" || bad "restart differs"
import json, sys
t = sys.argv[1]
b, a = json.load(open(t + "/before.json")), json.load(open(t + "/after.json"))
assert [x["class"] for x in b["top"]] == [x["class"] for x in a["top"]], (b, a)
assert all(abs(x["prob"] - y["prob"]) < 1e-6 for x, y in zip(b["top"], a["top"])), (b, a)
cls = lambda d: {c["name"]: [(k["name"], k["examples"]) for k in c["classes"]] for c in d["classifiers"]}
ib, ia = cls(json.load(open(t + "/info-before.json"))), cls(json.load(open(t + "/info-after.json")))
assert ib == ia, (ib, ia)
lp = [c for c in json.load(open(t + "/info-after.json"))["classifiers"] if c["name"] == "lp"][0]
assert lp["method"] == "prototype", lp   # the refit result survives too
EOF

# SIGKILL in the middle of a stream of adds: every acknowledged one is there after restart
( for i in $(seq 0 39); do
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST "${KEY[@]}" "$U/v1/classifiers/proto/examples?label=green%20square" \
      --data-binary @"$T/img/green_square/green_square_$(printf %02d $((i % 12))).png")
    echo "$code"
  done > "$T/stream.codes" ) &
SP=$!
for i in $(seq 1 300); do [ "$(grep -c . "$T/stream.codes")" -ge 3 ] && break; sleep 0.05; done
sleep 0.03; kill -9 "$PID"; wait "$SP" 2>/dev/null; wait "$PID" 2>/dev/null
acked=$(grep -c -E '^20[01]$' "$T/stream.codes")
start_server "$T/s3.log" "${ARGS[@]}" || { bad "restart after mid-add kill failed: $(cat "$T/s3.log")"; finish; exit 1; }
"${CURL[@]}" -o "$T/body" "$U/v1/info"
have=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=[c for c in d["classifiers"] if c["name"]=="proto"][0]; print([k["examples"] for k in c["classes"] if k["name"]=="green square"][0])' "$T/body")
# green square: 4 examples from the fit (the prototype's counts) + the adds; at most one add was
# in flight when the kill came
if [ "$acked" -ge 1 ] && [ "$have" -ge $((acked + 4)) ] && [ "$have" -le $((acked + 5)) ]; then ok "SIGKILL mid-add: $acked acknowledged, $have served after restart"
else bad "SIGKILL mid-add: $acked acknowledged but $have served"; fi
# a torn record at the end of the log (a write cut by the kill) is dropped, not fatal
printf 'CAEX\x02\x00\x00\x00garbage' >> "$T/data/classifiers/proto/examples.log"
kill -9 "$PID"; wait "$PID" 2>/dev/null
start_server "$T/s4.log" "${ARGS[@]}" && ok "restart with a torn log tail" || bad "torn tail: $(cat "$T/s4.log")"
grep -q "dropping" "$T/s4.log" && ok "torn tail reported" || bad "torn tail not reported: $(cat "$T/s4.log")"
"${CURL[@]}" -o "$T/body" "$U/v1/info"
grep -q "\"name\":\"green square\",\"examples\":$have" "$T/body" && ok "same examples after the torn tail" || bad "torn tail changed the examples"
bad_files=$(find "$T/data" -mindepth 1 | grep -v -E "^$T/data/classifiers(/(tip|proto|lp)(/(base|current)\.safetensors|/examples\.log)?)?$")
[ -z "$bad_files" ] && ok "data dir holds only classifiers/NAME/{base,current,examples.log}" || bad "unexpected files: $bad_files"

# ---- SIGTERM drains the requests in flight, then exits 0 ----
# an upload still arriving (150 KB at 50 KB/s) when SIGTERM comes is received and answered
head -c 150000 /dev/urandom > "$T/slow.bin"
"${CURL[@]}" --limit-rate 50k -o "$T/drain.body" -w '%{http_code}' -X POST "$U/v1/classify?classifier=tip" \
  --data-binary @"$T/slow.bin" -H 'Expect:' > "$T/drain.code" &
CP=$!
sleep 1; kill -TERM "$PID"; wait "$CP"; wait "$PID"; rc=$?
[ $rc = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"
[ "$(cat "$T/drain.code")" = 400 ] && grep -q 'not a JPEG' "$T/drain.body" && ok "SIGTERM: the upload in flight was finished and answered" \
  || bad "drain: HTTP $(cat "$T/drain.code") $(head -c 200 "$T/drain.body")"
grep -q "stopped" "$T/s4.log" && ok "SIGTERM: clean stop logged" || bad "no stop line: $(tail -2 "$T/s4.log")"

# ---- a full queue answers 503 with Retry-After; bounded ----
start_server "$T/s5.log" --max-queue 1 --workers 1 --max-pixels 5000000 --classifier tip="$T/tip-adapter.safetensors" \
  || { bad "server 5: $(cat "$T/s5.log")"; finish; exit 1; }
for i in $(seq 1 12); do echo "-X POST $U/v1/classify --data-binary @$T/img/big.png"; done > "$T/jobs"
xargs -P 12 -L 1 "${CURL[@]}" -D - -o /dev/null < "$T/jobs" > "$T/busy.hdr"
n503=$(grep -c '^HTTP/1.1 503' "$T/busy.hdr"); n200=$(grep -c '^HTTP/1.1 200' "$T/busy.hdr")
[ "$n503" -ge 1 ] && [ $((n503 + n200)) = 12 ] && ok "full queue: $n503 x 503, $n200 x 200" || bad "queue: $(grep '^HTTP' "$T/busy.hdr" | sort | uniq -c | tr '\n' ' ')"
grep -qi '^retry-after: 1' "$T/busy.hdr" && ok "503 carries Retry-After" || bad "no Retry-After"
req "single classifier is the default" 200 POST /v1/classify --data-binary @"${RED[0]}"
# without --data-dir: uploads and refits stay in memory, nothing is written anywhere
req "PUT in memory" 201 PUT /v1/classifiers/mem --data-binary @"$T/tip-cache.safetensors"
body_has "not persisted" '"persisted":false'
req "add in memory" 201 POST "/v1/classifiers/mem/examples?label=yellow%20ring" --data-binary @"${RING[0]}"
req "refit in memory" 202 POST "/v1/classifiers/mem/refit?method=prototype"
for i in $(seq 1 100); do
  "${CURL[@]}" -o "$T/body" "$U/v1/info"; grep -q '"name":"mem","method":"prototype"' "$T/body" && break; sleep 0.1
done
grep -q '"name":"mem","method":"prototype"' "$T/body" && ok "in-memory refit swapped in" || bad "in-memory refit: $(head -c 300 "$T/body")"
"${CURL[@]}" -o "$T/body" -X POST "$U/v1/classify?classifier=mem&top_k=1" --data-binary @"${RED[2]}"
[ "$(top1)" = "red circle" ] && ok "refit classifier keeps its class names" || bad "after in-memory refit: $(head -c 300 "$T/body")"
# one ring example: too few to hold any out, so tip-cache's published β = 5.5
req "refit with one example of a class -> 202" 202 POST "/v1/classifiers/mem/refit?method=tip-cache"
body_has "refit answer says none" '"selection":"none","held_out":0,"min_class_examples":1'
for i in $(seq 1 100); do
  "${CURL[@]}" -o "$T/body" "$U/v1/info"; grep -q '"name":"mem","method":"tip-cache"' "$T/body" && break; sleep 0.1
done
python3 - "$T/body" <<'EOF2' && ok "none refit: published β 5.5, nothing held out" || bad "none refit: $(head -c 600 "$T/body")"
import json, sys
t = [c for c in json.load(open(sys.argv[1]))["classifiers"] if c["name"] == "mem"][0]
assert t["method"] == "tip-cache" and t["params"]["beta"] == 5.5 and t["params"]["select_kshot_val"] == 0, t
assert t["refit"]["selection"] == "none" and t["refit"]["fit_on"] == "all", t
EOF2
kill -TERM "$PID"; wait "$PID"

# ---- usage errors (exit 2) and the option table ----
expect_usage() {   # expect_usage NAME PATTERN ARGS...: exit 2 and one line matching PATTERN
  local n=$1 pat=$2; shift 2
  $CA serve "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc = 2 ] && grep -q -E -- "$pat" "$T/err"; then ok "$n (exit 2)"; else bad "$n: exit $rc: $(head -c 300 "$T/err")"; fi
}
expect_usage "serve without --model" "model is required"
expect_usage "unknown option" "unknown option '--nope'" --model "$MODEL" --nope
expect_usage "stray argument" "unexpected argument 'extra'" --model "$MODEL" extra
expect_usage "--port out of range" "--port wants an integer in \[0, 65535\]" --model "$MODEL" --port 70000
expect_usage "--threads not a number" "--threads wants an integer" --model "$MODEL" --threads many
expect_usage "--act unknown" "--act wants quickgelu or gelu" --model "$MODEL" --act relu
expect_usage "--max-body 0" "--max-body wants a size" --model "$MODEL" --max-body 0
expect_usage "--max-body junk" "--max-body wants a size" --model "$MODEL" --max-body 12Q
expect_usage "--max-pixels 0" "--max-pixels wants an integer" --model "$MODEL" --max-pixels 0
expect_usage "--timeout 0" "--timeout wants an integer" --model "$MODEL" --timeout 0
expect_usage "--max-connections 0" "--max-connections wants an integer" --model "$MODEL" --max-connections 0
expect_usage "missing value" "--data-dir needs a value" --model "$MODEL" --data-dir
$CA serve --help >"$T/help" 2>&1 && ok "serve --help exits 0" || bad "serve --help failed"
for f in --model --config --act --threads --bf16 --bpe --templates --classifier --data-dir --host --port --api-key \
         --timeout --max-connections --max-body --max-pixels --max-queue --max-batch --batch-wait-ms --workers; do
  grep -q -- "^  $f " "$T/help" || bad "--help lacks $f"
done
ok "--help lists every flag"
grep -q -- "--threads N .*threads" "$T/help" && $CA encode --help | grep -q -- "--threads N .*threads" && ok "--threads reads as in encode" || bad "--threads help"
# --act reaches the model: the same image embeds differently under the two activations
for act in quickgelu gelu; do
  start_server "$T/act-$act.log" --act $act || { bad "serve --act $act did not start: $(cat "$T/act-$act.log")"; continue; }
  "${CURL[@]}" -o "$T/emb-$act.json" -X POST "$U/v1/embed" --data-binary @"${RED[0]}"
  kill -TERM "$PID"; wait "$PID"
done
python3 - "$T" <<'EOF2' && ok "--act quickgelu and gelu give different image features" || bad "--act had no effect"
import json, sys
a, b = (json.load(open(sys.argv[1] + "/emb-%s.json" % k))["embeddings"][0] for k in ("quickgelu", "gelu"))
assert len(a) == len(b) == 64 and max(abs(x - y) for x, y in zip(a, b)) > 1e-4
EOF2
expect_fail "serve with a bad classifier file" "junk.bin" $CA serve --model "$MODEL" --port 0 --classifier x="$T/junk.bin"
expect_fail "serve with a bad classifier name" "bad name" $CA serve --model "$MODEL" --port 0 --classifier '../x'="$T/tip-cache.safetensors"
finish
