#!/usr/bin/env bash
# test_cpu.sh — run-time choice of the SIMD path: `clipadapt --version` names it; CLIPADAPT_CPU
# forces each path this CPU has, and an unknown path, or one the CPU lacks, is refused in one
# line with exit 1. (The numerics of each path: run_tests.sh reruns the golden tests on each.)
source "$(dirname "$0")/lib.sh"
MODEL=$SHARED/testdata/models/vit-tiny.safetensors

expect_ok "--version" $CA --version
grep -qE '^clipadapt [0-9]+\.[0-9]+\.[0-9]+ \(kernels: (generic|avx2|avx512)\)$' "$T/out" && ok "version names the path" \
  || bad "version line: $(cat "$T/out")"
best=$(sed -n 's/.*(kernels: \(.*\))/\1/p' "$T/out")

expect_fail "unknown path refused" "CLIPADAPT_CPU=sse9: unknown path" env CLIPADAPT_CPU=sse9 $CA --version
[ "$(wc -l <"$T/err")" -eq 1 ] && ok "one line" || bad "refusal is $(wc -l <"$T/err") lines"
expect_fail "unknown path refused by commands too" "CLIPADAPT_CPU=sse9" env CLIPADAPT_CPU=sse9 $CA info --model "$MODEL"

# Which paths this CPU has, from the kernel's own view (same test as cpu.c's: x86-64 levels).
have() { case $1 in generic) return 0 ;; avx2) for f in avx2 fma bmi1 bmi2; do grep -qw $f /proc/cpuinfo || return 1; done ;;
                     avx512) for f in avx512f avx512bw avx512vl avx512dq avx512cd; do grep -qw $f /proc/cpuinfo || return 1; done ;; esac; }
portable=1; CLIPADAPT_CPU=generic $CA --version >/dev/null 2>&1 || portable=0   # ARCH builds have one path
for p in generic avx2 avx512; do
  if [ $portable = 1 ] && have $p; then
    expect_ok "CLIPADAPT_CPU=$p" env CLIPADAPT_CPU=$p $CA --version
    grep -q "(kernels: $p)" "$T/out" && ok "$p path in use" || bad "$p: $(cat "$T/out")"
  elif [ $portable = 1 ]; then
    expect_fail "CLIPADAPT_CPU=$p refused on this CPU" "this CPU lacks" env CLIPADAPT_CPU=$p $CA --version
  fi
done
# encoding works on each path (the golden comparison itself is in tests/test_model.c)
for p in generic avx2 avx512; do
  [ $portable = 1 ] && have $p || continue
  expect_ok "encode on $p" env CLIPADAPT_CPU=$p $CA encode --model "$SHARED/testdata/models/rn-tiny.safetensors" \
    --input "$SHARED/testdata/models/rn-tiny-golden.safetensors" --output "$T/$p.safetensors" --batch 2
done
[ -n "$best" ] && ok "default path: $best" || bad "no default path"
finish
