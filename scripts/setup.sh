#!/usr/bin/env bash
# setup.sh — install the Debian 12 packages clipadapt needs, when missing.
# Usage: scripts/setup.sh build|test|tsan|bench|aarch64. As root it runs apt-get; otherwise it names the
# packages to install and fails. Nothing is downloaded at run time by clipadapt itself.
set -euo pipefail
what=${1:-build}

# build: compiler (binutils: objcopy, nm), OpenBLAS (GEMM), cJSON (JSON headers/splits), utf8proc
# (Unicode for the tokenizer), libjpeg-turbo, libpng, libwebp, giflib and libtiff (image decoding;
# BMP and PPM are hand-written), zlib (gzip vocabulary, CRC32 of the serve examples log),
# libmicrohttpd (the HTTP server of `clipadapt serve`)
pkgs=(gcc g++ make libopenblas-dev libcjson-dev libutf8proc-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev libtiff-dev zlib1g-dev libmicrohttpd-dev)
case "$what" in
  build) ;;
  test)  pkgs+=(clang libclang-rt-14-dev python3 pkg-config curl chromium libopenmpi-dev openmpi-bin) ;; # libFuzzer for the fuzz
                              # targets; python3: scripts/check_layers.py; pkg-config:
                              # tests/cli/test_install.sh; serve tests: HTTP client, headless browser;
                              # Open MPI: build/clipadapt-mpi and its mpirun -np 3 test
  tsan)  pkgs+=(clang libclang-rt-14-dev libomp-dev python3 pkg-config curl chromium libopenmpi-dev openmpi-bin) ;;
                              # make test TSAN=1: the test packages, and LLVM's OpenMP runtime with
                              # Archer (libomp-dev), which TSAN can see
  bench) pkgs+=(python3 python3-torch python3-numpy curl) ;;  # the PyTorch CPU reference, bench only
  aarch64) pkgs=(gcc-aarch64-linux-gnu binutils libopenblas-dev libcjson-dev libutf8proc-dev libjpeg62-turbo-dev
                 libpng-dev libwebp-dev libgif-dev libtiff-dev zlib1g-dev libmicrohttpd-dev) ;; # make check-aarch64
  *) echo "setup.sh: unknown target '$what' (build|test|tsan|bench|aarch64)" >&2; exit 2 ;;
esac

# bench, optional: Node.js and npm (Debian: nodejs, npm) for the ONNX Runtime peer — bench/ort.sh
# installs onnxruntime-node (bench/ort/package-lock.json) from the npm registry with them into
# build/bench-node. Checked by command, not by package, since a nodejs from another apt source
# carries its own npm; without them bench/ort.sh prints one line and skips, so this never fails.
if [ "$what" = bench ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >/dev/null 2>&1; then
    echo "clipadapt: installed nodejs npm (the ONNX Runtime peer of make bench)" >&2
  else
    echo "clipadapt: no node/npm (apt-get install nodejs npm): make bench will skip ONNX Runtime" >&2
  fi
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "clipadapt: missing Debian packages: ${missing[*]}" >&2
  echo "clipadapt: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "clipadapt: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
