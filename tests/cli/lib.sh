# lib.sh — helpers for the CLI end-to-end tests (sourced). Each script ends with `finish`,
# which prints "N passed, N failed". Paths: $CA (the binary), $SHARED, $T (scratch dir).
CA=${CA:-build/clipadapt}
SHARED=${SHARED:-../shared}
T=$(mktemp -d "${TMPDIR:-/tmp}/ca-cli-XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
_pass=0; _fail=0
ok()   { _pass=$((_pass+1)); echo "ok   $1" >&2; }
bad()  { _fail=$((_fail+1)); echo "FAIL $1" >&2; }
# expect_ok NAME CMD...: the command exits 0
expect_ok() { local n=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then ok "$n"; else bad "$n (exit $?): $(head -c 300 "$T/err")"; fi; }
# expect_fail NAME PATTERN CMD...: exits non-zero (not a crash: < 128), stderr has one line matching PATTERN
expect_fail() {
  local n=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -eq 0 ]; then bad "$n (exit 0)"; return; fi
  if [ $rc -ge 128 ]; then bad "$n (crashed, exit $rc)"; return; fi
  if ! grep -q -E -- "$pat" "$T/err"; then bad "$n (stderr lacks '$pat': $(head -c 300 "$T/err"))"; return; fi
  ok "$n"
}
finish() { echo "$_pass passed, $_fail failed"; [ $_fail -eq 0 ]; }
