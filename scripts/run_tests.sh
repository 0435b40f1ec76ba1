#!/usr/bin/env bash
# run_tests.sh — runs every unit/golden test binary, every CLI test script and a short run of
# each fuzz target; sums their "N passed, N failed" lines. A crash counts as one failure.
set -u
BUILD=${BUILD:-build}; SHARED=${SHARED:-../shared}; SAN=${SAN:-0}; TSAN=${TSAN:-0}
export SHARED SAN CA="$BUILD/clipadapt" ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=print_stacktrace=1
if [ "$TSAN" = 1 ]; then
  # Archer makes libomp's synchronisation visible to TSAN; see the Makefile and tests/tsan.supp
  export OMP_TOOL_LIBRARIES=/usr/lib/llvm-14/lib/libarcher.so
  # OpenBLAS's pthread pool hands work over through spin flags TSAN cannot see, so every product
  # it splits would be reported; one BLAS thread keeps its work on the calling thread (an
  # environment setting, not a suppression: clipadapt's own threading is unchanged)
  export OPENBLAS_NUM_THREADS=1
  export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp exitcode=66 ${TSAN_OPTIONS:-}"
fi
total_p=0; total_f=0
start=$(date +%s)

tally() { # name, output file, exit code
  local name=$1 out=$2 rc=$3 line p f
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  if [ -z "$line" ]; then
    echo "  $name: no summary line (exit $rc) — counted as 1 failure"; tail -n 20 "$out" | sed 's/^/    /'
    total_f=$((total_f + 1)); return
  fi
  p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "  $name: exit $rc despite 0 failures"; fi
  total_p=$((total_p + p)); total_f=$((total_f + f))
  printf '  %-28s %s\n' "$name" "$line"
  if [ "$f" -ne 0 ]; then grep -E '^(FAIL|  )' "$out" | head -n 40 | sed 's/^/    /'; fi
}

echo "== unit and golden tests ($BUILD)"
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  out=$(mktemp); "$t" >"$out" 2>&1; rc=$?
  tally "$(basename "$t")" "$out" $rc; rm -f "$out"
done

# The golden, fast-path and concurrency (test_session) tests again on every other SIMD path this CPU has (portable builds
# choose one at run time; CLIPADAPT_CPU forces it). A build with fixed ARCH flags has one path.
cur=$("$CA" --version 2>/dev/null | sed -n 's/.*(kernels: \(.*\))/\1/p')
for p in generic avx2 avx512; do
  [ "$p" = "$cur" ] && continue
  CLIPADAPT_CPU=$p "$CA" --version >/dev/null 2>&1 || continue
  echo "== golden and fast-path tests on the $p path (CLIPADAPT_CPU=$p)"
  path_tests="test_kernels test_fastpath test_model test_model_full test_session test_safetensors"
  if [ "$TSAN" = 1 ]; then
    # ThreadSanitizer runs ~10-20x slower: on the other paths only the concurrency test, whose
    # races (per-path kernel copies) are what TSAN is for; the numerics ran on the first path
    path_tests="test_session"
    echo "  (TSAN: reduced form on this path: test_session only; golden and fast-path numerics ran above)"
  fi
  for t in $path_tests; do
    [ -x "$BUILD/tests/$t" ] || continue
    out=$(mktemp); CLIPADAPT_CPU=$p "$BUILD/tests/$t" >"$out" 2>&1; rc=$?
    tally "$t [$p]" "$out" $rc; rm -f "$out"
  done
  # the Tip-Adapter search's per-path loops against the row oracle (no training: test_tip --search)
  if [ "$TSAN" != 1 ] && [ -x "$BUILD/tests/test_tip" ]; then
    out=$(mktemp); CLIPADAPT_CPU=$p "$BUILD/tests/test_tip" --search >"$out" 2>&1; rc=$?
    tally "test_tip --search [$p]" "$out" $rc; rm -f "$out"
  fi
done

echo "== structure"
out=$(mktemp); python3 scripts/check_layers.py "$BUILD" >"$out" 2>&1; rc=$?
tally "check_layers.py" "$out" $rc; rm -f "$out"
out=$(mktemp); python3 scripts/check_entry.py . >"$out" 2>&1; rc=$?
tally "check_entry.py" "$out" $rc; rm -f "$out"

echo "== CLI end-to-end tests"
for s in tests/cli/test_*.sh; do
  [ -f "$s" ] || continue
  out=$(mktemp); bash "$s" >"$out" 2>&1; rc=$?
  tally "$(basename "$s")" "$out" $rc; rm -f "$out"
done

if [ "$SAN" != 1 ] && [ "$TSAN" != 1 ] && command -v clang >/dev/null && ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
  echo "== fuzz targets (short runs)"
  if make -s -j2 fuzz >/tmp/ca-fuzz-build.log 2>&1; then
    for fz in "$BUILD"/fuzz/fuzz_*; do
      name=$(basename "$fz"); corpus="tests/fuzz/corpus/${name#fuzz_}"
      mkdir -p "$BUILD/fuzz/work-$name"
      args=("$BUILD/fuzz/work-$name"); [ -d "$corpus" ] && args+=("$corpus")
      out=$(mktemp)
      if "$fz" -max_total_time="${FUZZ_SECONDS:-8}" -rss_limit_mb=2048 -timeout=10 "${args[@]}" >"$out" 2>&1; then
        echo "1 passed, 0 failed" >>"$out"
      else
        echo "0 passed, 1 failed" >>"$out"; grep -E 'ERROR|SUMMARY' "$out" | head -5
      fi
      tally "$name" "$out" 0; rm -f "$out"
    done
  else
    echo "  fuzz build failed:"; tail -n 20 /tmp/ca-fuzz-build.log; total_f=$((total_f + 1))
  fi
fi

if [ "$SAN" = 1 ] || [ "$TSAN" = 1 ]; then
  echo "== fuzz targets: not run under SAN=1/TSAN=1 (each is its own ASan+UBSan build; make test runs them)"
fi

echo "== done in $(( $(date +%s) - start )) s"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
