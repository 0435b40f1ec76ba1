# lib.sh — helpers for the CLI end-to-end tests (sourced). Each script ends with `finish`,
# which prints "N passed, N failed". Paths: $CA (the binary), $SHARED, $T (scratch dir).
CA=${CA:-build/clipadapt}
SHARED=${SHARED:-../shared}
T=$(mktemp -d "${TMPDIR:-/tmp}/ca-cli-XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
_pass=0; _fail=0
# Under `make test TSAN=1`, LLVM's OpenMP tool (Archer) prints one start-up line to stderr of every
# process, asking for TSAN_OPTIONS=ignore_noninstrumented_modules=1 (which we do not set: only the
# documented tests/tsan.supp rules apply). It is not clipadapt's output, so the checks of
# clipadapt's stderr (one line per error, progress lines) drop exactly that line.
_untsan() { [ "${TSAN:-0}" = 1 ] && [ -f "$1" ] && sed -i "/^Warning: please export TSAN_OPTIONS='ignore_noninstrumented_modules=1'/d" "$1"; return 0; }
ok()   { _pass=$((_pass+1)); echo "ok   $1" >&2; }
bad()  { _fail=$((_fail+1)); echo "FAIL $1" >&2; }
# expect_ok NAME CMD...: the command exits 0
expect_ok() { local n=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then _untsan "$T/err"; ok "$n"; else bad "$n (exit $?): $(head -c 300 "$T/err")"; fi; }
# expect_fail NAME PATTERN CMD...: exits non-zero (not a crash: < 128), stderr has one line matching PATTERN
expect_fail() {
  local n=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  _untsan "$T/err"
  if [ $rc -eq 0 ]; then bad "$n (exit 0)"; return; fi
  if [ $rc -ge 128 ]; then bad "$n (crashed, exit $rc)"; return; fi
  if ! grep -q -E -- "$pat" "$T/err"; then bad "$n (stderr lacks '$pat': $(head -c 300 "$T/err"))"; return; fi
  ok "$n"
}
finish() { echo "$_pass passed, $_fail failed"; [ $_fail -eq 0 ]; }
