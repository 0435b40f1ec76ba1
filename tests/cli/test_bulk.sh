# test_bulk.sh — bulk jobs (issue 14): predict streaming over a folder or a list, JSON lines and
# CSV; --shard I/N + merge byte-identical to one process for extract and predict; a SIGKILLed
# predict --output resumes to the identical file; --skip-bad with corrupt files mixed in; and,
# when the MPI binary was built, mpirun -np 3 byte-identical too.
source tests/cli/lib.sh
MODEL=$SHARED/testdata/models/vit-tiny.safetensors
BPE=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
MKIMG=$(dirname "$CA")/tests/test_e2e
export CLIPADAPT_QUIET=1

"$MKIMG" --make-images "$T/img" 10 || { bad "generate images"; finish; exit 1; }
EX=(extract --model "$MODEL" --bpe "$BPE" --images "$T/img" --shots 1,2 --views 2 --chunk 4 --batch 4)
expect_ok "extract, one process" $CA "${EX[@]}" --output "$T/one.safetensors"
for i in 0 1 2; do expect_ok "extract --shard $i/3" $CA "${EX[@]}" --shard $i/3 --output "$T/x$i.safetensors"; done
expect_ok "merge extract parts (any order)" $CA merge "$T/x2.safetensors" "$T/x0.safetensors" "$T/x1.safetensors" --output "$T/m.safetensors"
cmp -s "$T/one.safetensors" "$T/m.safetensors" && ok "extract: --shard + merge byte-identical" || bad "extract: merged parts differ from one process"
expect_fail "merge: missing part" "is part 0 of 3, but 2 parts" $CA merge "$T/x0.safetensors" "$T/x1.safetensors" --output "$T/z"
expect_fail "merge: part twice" "given twice" $CA merge "$T/x0.safetensors" "$T/x1.safetensors" "$T/x1.safetensors" --output "$T/z"
expect_fail "merge: not a part" "not a part" $CA merge "$T/one.safetensors" --output "$T/z"
[ ! -e "$T/z" ] && ok "failed merge writes nothing" || bad "failed merge left $T/z"

expect_ok "fit" $CA fit --features "$T/one.safetensors" --method tip-adapter --output "$T/clf.safetensors"
P=(predict --model "$MODEL" --classifier "$T/clf.safetensors" --top-k 2 --batch 4)
expect_ok "predict --images DIR --output .jsonl" $CA "${P[@]}" --images "$T/img" --output "$T/a.jsonl"
[ "$(wc -l < "$T/a.jsonl")" -eq 30 ] && ok "one JSON line per image" || bad "jsonl lines: $(wc -l < "$T/a.jsonl")"
python3 -c 'import json,sys; [json.loads(l)["top"][0]["class"] for l in open(sys.argv[1])]' "$T/a.jsonl" 2>/dev/null \
  && ok "each line is a JSON object" || bad "jsonl does not parse"
expect_ok "predict --json to stdout" $CA "${P[@]}" --images "$T/img" --json
cmp -s "$T/out" "$T/a.jsonl" && ok "--json on stdout = the .jsonl file" || bad "--json stdout differs"
expect_ok "predict one image: the table" $CA "${P[@]}" "$T/img/red_circle/red_circle_01.jpg"
img1="$T/img/red_circle/red_circle_01.jpg"
[ "$(wc -l < "$T/out")" -eq 2 ] && awk -F'\t' -v p="$img1" 'NF!=5 || $1!=p || $2!=NR || $3!~/^(0\.[0-9][0-9][0-9][0-9][0-9][0-9]|1\.000000)$/ || $4!~/^[0-9]+$/ {b=1} END{exit b}' "$T/out" \
  && ok "one image: image, rank, prob, index, class per line (tab-separated)" || bad "single-image table changed: $(cat "$T/out")"
expect_ok "predict --help" $CA predict --help
grep -q "one object" "$T/out" && grep -q "per line and image" "$T/out" && ok "--help: --json is one object per line" || bad "--help does not say JSON lines"
find "$T/img" -type f | sort > "$T/list.txt"
expect_ok "predict --list --output .csv" $CA "${P[@]}" --list "$T/list.txt" --output "$T/a.csv"
[ "$(head -1 "$T/a.csv")" = "image,rank,prob,index,class" ] && [ "$(wc -l < "$T/a.csv")" -eq 61 ] && ok "CSV header and 2 rows per image" \
  || bad "csv: $(head -2 "$T/a.csv")"
for i in 0 1 2; do expect_ok "predict --shard $i/3" $CA "${P[@]}" --images "$T/img" --shard $i/3 --output "$T/p$i.jsonl"; done
expect_ok "merge predict parts" $CA merge "$T/p1.jsonl" "$T/p2.jsonl" "$T/p0.jsonl" --output "$T/pm.jsonl"
cmp -s "$T/pm.jsonl" "$T/a.jsonl" && ok "predict: --shard + merge byte-identical" || bad "predict: merged parts differ"
for i in 0 1; do $CA "${P[@]}" --list "$T/list.txt" --shard $i/2 --output "$T/q$i.csv" 2>/dev/null; done
$CA merge "$T/q0.csv" "$T/q1.csv" --output - 2>/dev/null | cmp -s - "$T/a.csv" && ok "CSV parts merge to stdout identical" || bad "csv merge differs"
$CA "${P[@]}" --top-k 1 --images "$T/img" --shard 1/3 --output "$T/k1.jsonl" 2>/dev/null
expect_fail "merge: parts of another job" "another job" $CA merge "$T/p0.jsonl" "$T/k1.jsonl" "$T/p2.jsonl" --output "$T/z"

# resume: a long list (the folder 40 times), killed with SIGKILL mid-way, then re-run
for r in $(seq 40); do cat "$T/list.txt"; done > "$T/long.txt"
expect_ok "predict long list, uninterrupted" $CA "${P[@]}" --list "$T/long.txt" --output "$T/full.jsonl"
$CA "${P[@]}" --list "$T/long.txt" --output "$T/res.jsonl" 2>/dev/null &
pid=$!
for w in $(seq 400); do [ -s "$T/res.jsonl.partial.state" ] && break; sleep 0.01; done
sleep 0.2; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -e "$T/res.jsonl.partial" ] && [ ! -e "$T/res.jsonl" ]; then
  n_part=$(wc -l < "$T/res.jsonl.partial")
  printf '{"image":"torn' >> "$T/res.jsonl.partial"   # a record cut off by the kill
  ok "SIGKILL left a partial file ($n_part of 1200 lines)"
else bad "predict finished before the kill or left no partial file"; fi
expect_ok "predict resumes" $CA "${P[@]}" --list "$T/long.txt" --output "$T/res.jsonl"
grep -q "resuming" "$T/err" && ok "resume reported" || bad "no resume message: $(cat "$T/err")"
cmp -s "$T/res.jsonl" "$T/full.jsonl" && ok "resumed file byte-identical" || bad "resumed file differs"
[ ! -e "$T/res.jsonl.partial" ] && [ ! -e "$T/res.jsonl.partial.state" ] && ok "partial and state removed" || bad "partial files left"

# corrupt files mixed in: --skip-bad counts them; without it, a file output fails whole
cp -r "$T/img" "$T/bad"; printf 'not an image' > "$T/bad/blue_stripes/zz_bad.png"; head -c 100 "$T/img/red_circle/red_circle_01.jpg" > "$T/bad/red_circle/aa_trunc.jpg"
expect_ok "predict --skip-bad" $CA "${P[@]}" --images "$T/bad" --skip-bad --output "$T/sb.jsonl"
grep -q "skipped 2 " "$T/err" && ok "skipped count" || bad "no skip count: $(cat "$T/err")"
sed "s#$T/bad/#$T/img/#" "$T/sb.jsonl" | cmp -s - "$T/a.jsonl" && ok "--skip-bad result = the clean folder's" || bad "--skip-bad output differs from the clean run"
for i in 0 1 2; do $CA "${P[@]}" --images "$T/bad" --skip-bad --shard $i/3 --output "$T/sbp$i.jsonl" 2>/dev/null; done
$CA merge "$T/sbp0.jsonl" "$T/sbp1.jsonl" "$T/sbp2.jsonl" --output "$T/sbm.jsonl" 2>/dev/null
cmp -s "$T/sbm.jsonl" "$T/sb.jsonl" && ok "--skip-bad shards merge identical" || bad "--skip-bad shards differ"
expect_fail "predict without --skip-bad: bad file named" "zz_bad.png|aa_trunc.jpg" $CA "${P[@]}" --images "$T/bad" --output "$T/nb.jsonl"
[ ! -e "$T/nb.jsonl" ] && ok "no output after a bad file" || bad "output written despite a bad file"
expect_fail "predict: --shard usage" "--shard needs I/N" $CA "${P[@]}" --images "$T/img" --shard 3/3

# extract --skip-bad with corrupt files of several kinds mixed in (unrecognised, empty, truncated
# PNG and JPEG), sampled deep enough (8 shots) that they are drawn and the set is drawn again
# without them: every split must leave out the same files as one process
cp -r "$T/img" "$T/bad2"; printf 'not an image' > "$T/bad2/blue_stripes/zz_bad.png"
head -c 100 "$T/img/red_circle/red_circle_01.jpg" > "$T/bad2/red_circle/aa_trunc.jpg"
head -c 300 "$T/img/green_square/green_square_00.png" > "$T/bad2/green_square/green_square_00b.png"
: > "$T/bad2/green_square/empty.jpg"
EXB=(extract --model "$MODEL" --bpe "$BPE" --images "$T/bad2" --shots 2,8 --views 2 --chunk 4 --batch 4 --skip-bad)
expect_ok "extract --skip-bad, one process" $CA "${EXB[@]}" --output "$T/eb.safetensors"
grep -q "skipped 4 undecodable" "$T/err" && ok "extract --skip-bad: 4 bad files counted" || bad "extract skip count: $(tail -1 "$T/err")"
for i in 0 1 2; do expect_ok "extract --skip-bad --shard $i/3" $CA "${EXB[@]}" --shard $i/3 --output "$T/eb$i.safetensors"; done
expect_ok "merge extract --skip-bad parts" $CA merge "$T/eb0.safetensors" "$T/eb1.safetensors" "$T/eb2.safetensors" --output "$T/ebm.safetensors"
cmp -s "$T/ebm.safetensors" "$T/eb.safetensors" && ok "extract --skip-bad: --shard + merge byte-identical" || bad "extract --skip-bad: merged parts differ from one process"

MPI_BIN=$(dirname "$CA")/clipadapt-mpi
if [ -x "$MPI_BIN" ] && command -v mpirun >/dev/null; then
  MR=(mpirun --oversubscribe --allow-run-as-root -np 3)
  # Under SAN, LeakSanitizer reports Open MPI's own allocations at exit (libmpi, libopen-pal,
  # hwloc and unloaded MCA plugins, none of them ours); the same commands run leak-checked above
  # as --shard processes, so only the ranks go without leak detection.
  [ "${SAN:-0}" = 1 ] && MR+=(-x ASAN_OPTIONS=detect_leaks=0)
  expect_ok "mpirun -np 3 extract" "${MR[@]}" "$MPI_BIN" "${EX[@]}" --output "$T/mpi.safetensors"
  cmp -s "$T/mpi.safetensors" "$T/one.safetensors" && ok "mpirun extract byte-identical" || bad "mpirun extract differs"
  expect_ok "mpirun -np 3 predict" "${MR[@]}" "$MPI_BIN" "${P[@]}" --images "$T/bad" --skip-bad --output "$T/mpi.jsonl"
  cmp -s "$T/mpi.jsonl" "$T/sb.jsonl" && ok "mpirun predict byte-identical (corrupt files skipped)" || bad "mpirun predict differs"
  expect_ok "mpirun -np 3 extract --skip-bad" "${MR[@]}" "$MPI_BIN" "${EXB[@]}" --output "$T/mpib.safetensors"
  cmp -s "$T/mpib.safetensors" "$T/eb.safetensors" && ok "mpirun extract --skip-bad byte-identical (corrupt files skipped)" || bad "mpirun extract --skip-bad differs"
else
  echo "skip MPI: build/clipadapt-mpi or mpirun missing" >&2
fi
finish
