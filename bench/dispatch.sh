#!/usr/bin/env bash
# dispatch.sh — the portable build's encoders (kernels chosen at run time) against the same code
# built with -march=native: CPU ms/image on one thread (bench/cputime.c), the two builds
# interleaved three times, best of each. CPU time because on a shared machine wall times move
# far more than the 3 % this checks. Usage: BUILD=build NATIVE_BUILD=build-native
# bash bench/dispatch.sh WEIGHTS_DIR [MODELS...] (make bench runs it; WEIGHTS_DIR as run.sh's).
set -e
BUILD=${BUILD:-build}; NATIVE_BUILD=${NATIVE_BUILD:-build-native}
W=${1:-$BUILD/bench-weights}; shift || true
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(vit-b32 rn50 vit-b16)
echo "== portable vs -march=native encoders (bench/dispatch.sh): CPU ms/image, 1 thread, batch 16, best of 3 x 5"
for m in "${models[@]}"; do
  out=$(for r in 1 2 3; do
          for b in "$BUILD" "$NATIVE_BUILD"; do
            echo "$b $(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$b"/bench/cputime "$W/$m.safetensors" 5 16)"
          done
        done)
  echo "$out" | sed 's/^/   /'
  echo "$out" | awk -v M="$m" -v P="$BUILD" '{ v = $5 + 0; if (!($1 in best) || v < best[$1]) best[$1] = v }
      END { for (b in best) if (b != P) q = best[b]; p = best[P]
            if (p > 0 && q > 0) printf "   %s: portable %.2f vs -march=native %.2f CPU ms/image (%+.1f%%)\n", M, p, q, 100 * (p / q - 1) }'
done
