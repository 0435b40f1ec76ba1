# test_serve_faults.sh — load-and-fault review of `clipadapt serve` on 127.0.0.1 with the tiny
# model: malformed HTTP, 50 MB bodies, truncated uploads, hostile classifier names, slow clients
# (headers and bodies trickled), many concurrent big uploads (bounded memory), SIGKILL during
# concurrent adds and during a PUT, restart. Checks: no crash, no hang (every client has a
# timeout), no acknowledged example lost, no file written outside --data-dir. The raw-socket
# clients are in serve_faults.py. Only ever talks to 127.0.0.1; every loop is bounded.
source tests/cli/lib.sh
SHARED=$(cd "$SHARED" && pwd)   # the server runs in another folder
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
CA=$(cd "$(dirname "$CA")" && pwd)/$(basename "$CA")
MKIMG=$(dirname "$CA")/tests/test_grow
HERE=$PWD
export CLIPADAPT_QUIET=1
command -v curl >/dev/null || { bad "curl is missing (scripts/setup.sh test installs it)"; finish; exit 1; }
CURL=(curl -s --noproxy '*' --max-time 20)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT

"$MKIMG" --make-images "$T/img" 8 >/dev/null || { bad "generate images"; finish; exit 1; }
$CA extract --model "$MODEL" --bpe "$BPE" --images "$T/img" --val-split 0.25 --shots 4 --output "$T/feats.safetensors" \
  >"$T/out" 2>"$T/err" || { bad "extract: $(cat "$T/err")"; finish; exit 1; }
for m in tip-adapter tip-cache; do
  $CA fit --features "$T/feats.safetensors" --method $m --shots 4 --output "$T/$m.safetensors" >"$T/out" 2>"$T/err" \
    || { bad "fit $m: $(cat "$T/err")"; finish; exit 1; }
done
cp "$T/img/red_circle/red_circle_00.png" "$T/red.png"

# The server runs in an empty folder beside its data dir: a file appearing anywhere but inside
# --data-dir is a failure.
mkdir -p "$T/root/cwd"
DATA=$T/root/data
start_server() {   # start_server LOG: sets PID and PORT
  local log=$1 i
  (cd "$T/root/cwd" && exec "$CA" serve --model "$MODEL" --bpe "$BPE" --port 0 --data-dir "$DATA" --api-key k \
     --timeout 2 --request-timeout 4 --max-body-total 64M --classifier tip="$T/tip-adapter.safetensors") >"$log.out" 2>"$log" &
  PID=$!; PIDS+=("$PID"); PORT=""
  for i in $(seq 1 150); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\)\/.*/\1/p' "$log")
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  case "$PORT" in ''|*[!0-9]*) return 1;; esac
}
phase() {   # phase NAME: run serve_faults.py NAME (bounded) and count its lines
  timeout 240 python3 "$HERE/tests/cli/serve_faults.py" "$1" "$PORT" "$PID" "$T" >"$T/phase.out" 2>&1
  local rc=$?
  while IFS= read -r l; do
    case "$l" in "ok "*) ok "${l#ok }";; "FAIL "*) bad "${l#FAIL }";; esac
  done < "$T/phase.out"
  [ $rc = 0 ] || bad "phase $1 exited $rc: $(grep -v -E '^(ok|FAIL) ' "$T/phase.out" | tail -3)"
}
no_crash() {   # no_crash LOG: the server is alive and its log has no sanitizer or crash report
  if kill -0 "$PID" 2>/dev/null && ! grep -q -E 'Sanitizer|runtime error|Segmentation|Aborted' "$1"; then ok "no crash ($2)"
  else bad "crash ($2): $(grep -E 'Sanitizer|runtime error|Segmentation|Aborted' "$1" | head -3)"; fi
}
base_url() { echo "http://127.0.0.1:$PORT"; }

start_server "$T/s1.log" || { bad "server did not start: $(cat "$T/s1.log")"; finish; exit 1; }
for p in http big truncated names slow memory; do
  phase $p
  no_crash "$T/s1.log" "after $p"
done

# ---- SIGKILL during 4 concurrent streams of adds, each to its own class: every acknowledged
# example is served after the restart (at most the one in flight per stream more) ----
for s in 0 1 2 3; do
  ( for i in $(seq 0 29); do
      "${CURL[@]}" -o /dev/null -w '%{http_code}\n' -X POST -H 'Authorization: Bearer k' \
        "$(base_url)/v1/classifiers/tip/examples?label=stream$s" --data-binary @"$T/img/green_square/green_square_0$((i % 8)).png"
    done > "$T/stream$s.codes" ) &
  SP[$s]=$!
done
for i in $(seq 1 400); do [ "$(cat "$T"/stream*.codes 2>/dev/null | grep -c .)" -ge 12 ] && break; sleep 0.05; done
kill -9 "$PID"; for s in 0 1 2 3; do wait "${SP[$s]}" 2>/dev/null; done; wait "$PID" 2>/dev/null
start_server "$T/s2.log" || { bad "restart after SIGKILL failed: $(cat "$T/s2.log")"; finish; exit 1; }
"${CURL[@]}" -o "$T/info.json" "$(base_url)/v1/info"
for s in 0 1 2 3; do
  acked=$(grep -c -E '^20[01]$' "$T/stream$s.codes")
  have=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=[c for c in d["classifiers"] if c["name"]=="tip"][0]; print(([k["examples"] for k in t["classes"] if k["name"]==sys.argv[2]] or [0])[0])' "$T/info.json" stream$s)
  if [ "$have" -ge "$acked" ] && [ "$have" -le $((acked + 1)) ]; then ok "stream $s: $acked acknowledged, $have served after SIGKILL + restart"
  else bad "stream $s: $acked acknowledged but $have served"; fi
done
# the same after a second restart (the log replays the same way)
kill -9 "$PID"; wait "$PID" 2>/dev/null
start_server "$T/s3.log" || { bad "second restart failed: $(cat "$T/s3.log")"; finish; exit 1; }
"${CURL[@]}" -o "$T/info2.json" "$(base_url)/v1/info"
python3 - "$T/info.json" "$T/info2.json" <<'PY' && ok "a second restart serves the same examples" || bad "second restart differs"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
cls = lambda d: {c["name"]: [(k["name"], k["examples"]) for k in c["classes"]] for c in d["classifiers"]}
assert cls(a) == cls(b), (cls(a), cls(b))
PY

# ---- SIGKILL during PUTs: after the restart the name serves a whole classifier or none ----
( for i in $(seq 1 20); do
    "${CURL[@]}" -o /dev/null -X PUT -H 'Authorization: Bearer k' "$(base_url)/v1/classifiers/putkill" --data-binary @"$T/tip-cache.safetensors"
  done ) &
PP=$!
sleep 0.4; kill -9 "$PID"; wait "$PP" 2>/dev/null; wait "$PID" 2>/dev/null
start_server "$T/s4.log" || { bad "restart after SIGKILL mid-PUT failed: $(cat "$T/s4.log")"; finish; exit 1; }
code=$("${CURL[@]}" -o "$T/body" -w '%{http_code}' -X POST "$(base_url)/v1/classify?classifier=putkill" --data-binary @"$T/red.png")
case $code in 200|404) ok "after SIGKILL mid-PUT: classifier whole or absent ($code)";; *) bad "mid-PUT: HTTP $code $(head -c 200 "$T/body")";; esac
no_crash "$T/s4.log" "after the restarts"

# ---- nothing outside --data-dir; inside it only classifiers/NAME/{base,current,examples.log} ----
outside=$(cd "$T/root" && find . -mindepth 1 | grep -v -E '^\./(cwd|data)$|^\./data/')
[ -z "$outside" ] && ok "no file outside --data-dir" || bad "files outside --data-dir: $outside"
inside=$(cd "$DATA" && find . -mindepth 1 | grep -v -E '^\./classifiers(/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(/(base\.safetensors|current\.safetensors|examples\.log))?)?$')
[ -z "$inside" ] && ok "--data-dir holds only classifiers/NAME/{base,current}.safetensors and examples.log" || bad "unexpected in --data-dir: $inside"
links=$(find "$DATA" -type l)
[ -z "$links" ] && ok "no links in --data-dir" || bad "links: $links"

kill -TERM "$PID"; wait "$PID"; rc=$?
[ $rc = 0 ] && ok "SIGTERM after the faults: exit 0" || bad "SIGTERM: exit $rc"
finish
