#!/usr/bin/env bash
# ort.sh — ONNX Runtime as a peer (issue 14 #4; make bench-ort, and a block of make bench): the
# random full-size checkpoints of bench/gen_weights.c exported to ONNX by bench/onnx_export.py
# (Debian's torch, from bench/torch_clip.py's reference graph), run by onnxruntime-node
# (bench/ort_clip.mjs; the npm package ships its CPU library), against clipadapt (bench/peer.c)
# and PyTorch (bench/torch_peer.py) on 2 threads, batch 1 and 32. Each measurement is one short
# process (warm-up, then REPS runs); the engines alternate round by round (ours, ORT, ours BF16,
# PyTorch, ours, ORT, ...) so a load change on a shared machine hits them alike, and the spread
# over the rounds is printed. Skips with one line when node, npm, the package or torch is missing;
# exits 1 when ORT's features and ours differ by more than 1e-4 (relative).
# Env: ORT_MODELS ("vit-b32 rn50 vit-b16": W/M.safetensors), ORT_BATCHES ("1 32"), ORT_ROUNDS (3),
#      ORT_TORCH (1: time PyTorch too; 0 leaves it out), ORT_ONNX_DIR (where the exported
#      M.image.onnx are cached; default W), NODE (node), ORT_NO_INSTALL (1: never run npm).
set -euo pipefail
BUILD=${BUILD:-build}
W=${W:-$BUILD/bench-weights}
export BENCH_NODE=$BUILD/bench-node
OUT=$BUILD/bench-ort
ONNX_DIR=${ORT_ONNX_DIR:-$W}
NODE=${NODE:-node}
MODELS=${ORT_MODELS:-vit-b32 rn50 vit-b16}
BATCHES=${ORT_BATCHES:-1 32}
ROUNDS=${ORT_ROUNDS:-3}
TH=2
PY=/usr/bin/python3

skip() { echo "== ONNX Runtime comparison skipped: $*"; exit 0; }
command -v "$NODE" >/dev/null || skip "no $NODE on PATH (Debian: apt-get install nodejs npm)"
"$PY" -c 'import torch' 2>/dev/null || skip "$PY has no torch to export the ONNX models (apt: python3-torch)"

# onnxruntime-node, pinned by bench/ort/package-lock.json, installed into $BENCH_NODE without its
# install script (which would fetch GPU libraries): the CPU library is inside the package.
if ! cmp -s bench/ort/package-lock.json "$BENCH_NODE/package-lock.json" || ! "$NODE" bench/ort_clip.mjs probe >/dev/null 2>&1; then
  [ "${ORT_NO_INSTALL:-0}" = 1 ] && skip "onnxruntime-node is not installed in $BENCH_NODE (make bench-ort installs it)"
  command -v npm >/dev/null || skip "no npm to install onnxruntime-node (Debian: apt-get install npm)"
  mkdir -p "$BENCH_NODE"
  cp bench/ort/package.json bench/ort/package-lock.json "$BENCH_NODE/"
  (cd "$BENCH_NODE" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
    skip "npm ci of onnxruntime-node into $BENCH_NODE failed (offline?)"
fi
probe=$("$NODE" bench/ort_clip.mjs probe 2>&1) || skip "$probe"
ortv=$(echo "$probe" | sed -n 's/.*"ort":"\([^"]*\)".*/\1/p')
have_torch=${ORT_TORCH:-1}
mkdir -p "$OUT"
mismatch=0

jget() { echo "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
reps_for() { # engine batch: runs per process after the warm-up
  if [ "$2" = 1 ]; then echo 10; elif [ "$1" = torch ]; then echo 1; else echo 3; fi
}

echo "== ONNX Runtime $ortv (onnxruntime-node, CPU, intra-op $TH, inter-op 1, sequential) vs clipadapt vs PyTorch, $TH threads"
echo "   $ROUNDS rounds, engines alternated in each; ms/image: median of the rounds' medians (min; spread = (max-min)/median of"
echo "   the rounds); CPU ms/image over all threads; GFLOP/s from the model's FLOPs; ratios are time ours/peer (<1: ours faster)"
for m in $MODELS; do
  ck="$W/$m.safetensors"
  [ -f "$ck" ] || { echo "   $m: no $ck (make bench writes it with bench/gen_weights)"; continue; }
  mkdir -p "$ONNX_DIR"
  onnx="$ONNX_DIR/$m.image.onnx"
  if [ ! -f "$onnx" ] || [ "$ck" -nt "$onnx" ] || [ bench/torch_clip.py -nt "$onnx" ]; then
    echo "   exporting $onnx (bench/onnx_export.py, once)"
    "$PY" bench/onnx_export.py image "$ck" "$onnx" 2> "$OUT/export.log" || { echo "   $m: ONNX export failed, see $OUT/export.log"; continue; }
  fi
  info=$("$BUILD"/bench/peer "$ck" info $TH)
  gf=$(jget "$info" gflop); peak=$(jget "$info" fma_peak_gflops)
  # correctness: ORT's features vs ours on the same 2 random images
  "$BUILD"/bench/peer "$ck" check "$OUT/$m.check.safetensors" 2
  chk=$("$NODE" bench/ort_clip.mjs check "$onnx" "$OUT/$m.check.safetensors" 1e-4 2>&1) || true
  [ "$(jget "$chk" ok)" = true ] || mismatch=1
  echo "   $m: $gf GFLOP/image, FMA peak $peak GFLOP/s on $TH threads; ORT vs clipadapt F32 features (2 images):" \
       "$(awk -v a="$(jget "$chk" max_abs_diff)" -v r="$(jget "$chk" max_rel)" 'BEGIN{printf "max|d| %.2e, max rel %.2e", a, r}') -> $( [ "$(jget "$chk" ok)" = true ] && echo "same (<= 1e-4)" || echo "MISMATCH: $chk")"
  for b in $BATCHES; do
    declare -A res=()
    for r in $(seq "$ROUNDS"); do
      res[f32]+="$("$BUILD"/bench/peer "$ck" time "$b" $TH "$(reps_for f32 "$b")" || true)"$'\n'
      res[ort]+="$("$NODE" bench/ort_clip.mjs bench "$onnx" "$b" "$(reps_for ort "$b")" || true)"$'\n'
      res[bf16]+="$("$BUILD"/bench/peer "$ck" time "$b" $TH "$(reps_for bf16 "$b")" bf16 || true)"$'\n'
      [ "$have_torch" = 1 ] && res[torch]+="$(OMP_NUM_THREADS=$TH "$PY" bench/torch_peer.py "$ck" "$b" $TH "$(reps_for torch "$b")" || true)"$'\n'
    done
    # per engine: "median min spread% cpu" over the rounds, or empty when it did not run
    stats() {
      echo "${res[$1]:-}" | awk -F'[:,}]' '
        BEGIN { n = 0 }
        { for (i = 1; i < NF; i++) { if ($i ~ /"median_ms"/) md[n] = $(i+1); if ($i ~ /"min_ms"/) mn[n] = $(i+1);
                                      if ($i ~ /"cpu_ms"/) cp[n] = $(i+1) } if (n in md) n++ }
        function med(a, k,   i, j, t, s) { for (i = 0; i < k; i++) s[i] = a[i];
          for (i = 1; i < k; i++) for (j = i; j > 0 && s[j-1] > s[j]; j--) { t = s[j]; s[j] = s[j-1]; s[j-1] = t }
          return k % 2 ? s[int(k/2)] : (s[k/2-1] + s[k/2]) / 2 }
        END { if (!n) exit; lo = hi = md[0]; m = mn[0]
              for (i = 1; i < n; i++) { if (md[i] < lo) lo = md[i]; if (md[i] > hi) hi = md[i]; if (mn[i] < m) m = mn[i] }
              M = med(md, n); printf "%.2f %.2f %.0f %.2f\n", M, m, 100 * (hi - lo) / M, med(cp, n) }'
    }
    read -r f32 f32min f32sp f32cpu <<< "$(stats f32)" || true
    read -r ort ortmin ortsp ortcpu <<< "$(stats ort)" || true
    read -r bf bfmin bfsp bfcpu <<< "$(stats bf16)" || true
    read -r pt ptmin ptsp ptcpu <<< "$(stats torch)" || true
    row() { # label ms min spread cpu
      [ -n "$2" ] || { printf "   %-8s %-3s %-16s %s\n" "$m" "$b" "$1" "not run: $(echo "${res[$6]:-}" | sed -n 's/.*"error":"\([^"]*\)".*/\1/p' | head -n 1)"; return; }
      local g; g=$(awk -v f="$gf" -v t="$2" 'BEGIN{printf "%.0f", f / (t * 1e-3)}')
      printf "   %-8s %-3s %-16s %8.2f ms/image (min %.2f, spread %2d%%)  CPU %8.2f ms/image  %5d GFLOP/s %4.1f%% of FMA peak%s\n" \
        "$m" "$b" "$1" "$2" "$3" "$4" "$5" "$g" "$(awk -v g="$g" -v p="$peak" 'BEGIN{print 100 * g / p}')" "$7"
    }
    ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}' || echo "-"; }
    row "clipadapt F32" "$f32" "$f32min" "$f32sp" "$f32cpu" f32 "  ours/ORT $(ratio "$f32" "$ort")  ours/PyTorch $(ratio "$f32" "$pt")"
    row "clipadapt BF16" "$bf" "$bfmin" "$bfsp" "$bfcpu" bf16 "  ours/ORT $(ratio "$bf" "$ort")  ours/PyTorch $(ratio "$bf" "$pt")"
    row "ORT $ortv" "$ort" "$ortmin" "$ortsp" "$ortcpu" ort ""
    [ "$have_torch" = 1 ] && row "PyTorch" "$pt" "$ptmin" "$ptsp" "$ptcpu" torch ""
    echo "ORTROW | $m | $b | ${f32:--} | ${bf:--} | ${ort:--} | ${pt:--} | $(ratio "$f32" "$ort") | $(ratio "$f32" "$pt") | $(ratio "$bf" "$ort") |"
    unset res
  done
done
[ $mismatch = 0 ] || { echo "   ORT's features differ from clipadapt's (MISMATCH above)"; exit 1; }
