#!/usr/bin/env bash
# check_aarch64.sh — `make check-aarch64`: what an x86-64 Debian machine can check of "clipadapt
# builds on aarch64 with the portable kernels", with Debian's cross compiler
# (gcc-aarch64-linux-gnu; scripts/setup.sh aarch64 installs it).
#
# Covered: every file of src/ and cli/ compiled for aarch64 (-c, -Werror, the Makefile's flags
# without -march and without the x86 dispatch: one copy of the portable C kernels), then linked
# into one shared object, whose undefined symbols must all belong to the libraries the Makefile
# links (so no x86-only helper, CPUID builtin or per-path kernel copy is referenced).
# Not covered: linking against the aarch64 builds of those libraries and running anything — their
# arm64 -dev packages are not installed on an amd64 machine; the third-party headers are the
# host's (their arch-specific config headers, e.g. jconfig.h and openblas_config.h, are x86-64's:
# a compile check only). Ends with "N passed, N failed".
set -u
BUILD=${BUILD:-build}
XCC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
OUT="$BUILD/aarch64"
if ! command -v "$XCC" >/dev/null; then
  echo "check-aarch64: $XCC not found (install: scripts/setup.sh aarch64, as root)" >&2
  echo "0 passed, 1 failed"; exit 1
fi
mkdir -p "$OUT/inc" "$OUT/obj"

# The third-party headers only (never the host's /usr/include as a whole: its libc is x86-64's).
hostinc=/usr/include; multi=/usr/include/x86_64-linux-gnu
for h in cjson utf8proc.h jpeglib.h jmorecfg.h jerror.h png.h pngconf.h pnglibconf.h webp gif_lib.h \
         tiff.h tiffio.h tiffvers.h zlib.h zconf.h microhttpd.h; do
  [ -e "$hostinc/$h" ] && ln -sfn "$hostinc/$h" "$OUT/inc/$h"
done
for h in jconfig.h tiff.h tiffio.h tiffvers.h tiffconf.h zconf.h; do [ -e "$multi/$h" ] && ln -sfn "$multi/$h" "$OUT/inc/$h"; done
for h in cblas.h openblas_config.h; do
  f=$(ls "$multi"/openblas*/"$h" 2>/dev/null | head -n 1)
  [ -n "$f" ] && ln -sfn "$f" "$OUT/inc/$h"
done

echo "check-aarch64: $($XCC --version | head -n 1)"
echo "check-aarch64: compiling src/ and cli/ for aarch64 (portable kernels, no dispatch), then one link"
flags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Werror -O2 -fopenmp -fPIC
       -fvisibility=hidden -Iinclude -Isrc -I"$OUT/inc")
pass=0; fail=0; objs=()
for f in $(find src cli -name '*.c' | sort); do
  o="$OUT/obj/${f%.c}.o"; mkdir -p "$(dirname "$o")"
  if "$XCC" "${flags[@]}" -c "$f" -o "$o" 2>"$o.log"; then
    objs+=("$o"); pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL $f:"; head -n 15 "$o.log" | sed 's/^/    /'
  fi
done
echo "  $pass files compiled, $fail failed"

# No x86 instruction-set code in the objects: their machine is AArch64.
bad=0
for o in "${objs[@]}"; do
  readelf -h "$o" | grep -q 'Machine:.*AArch64' || { echo "FAIL $o is not an AArch64 object"; bad=1; }
done
[ $bad -eq 0 ] && pass=$((pass + 1)) || fail=$((fail + 1))

# Link the library's objects (cli/ has its own main) into one shared object: duplicate or missing
# definitions among our files fail here; what is left undefined must come from the libraries.
lib=(); for o in "${objs[@]}"; do case "$o" in "$OUT/obj/src/"*) lib+=("$o") ;; esac; done
if [ $fail -eq 0 ] && "$XCC" -shared -fopenmp -o "$OUT/libclipadapt.so" "${lib[@]}" \
     -Wl,--unresolved-symbols=ignore-all 2>"$OUT/link.log"; then
  # libc, libm, libgomp, libgcc and the Makefile's libraries (OpenBLAS with its LAPACK, cJSON,
  # utf8proc, libjpeg, libpng, libwebp(demux), giflib, libtiff, zlib)
  # (LAPACK's Fortran names such as dpotrf_ come with OpenBLAS; _ITM_* are crtbegin's weak hooks)
  known='^([sd][a-z0-9]+_$|_ITM_|cblas_|openblas_|LAPACKE_|cJSON_|utf8proc_|jpeg_|png_|WebP|Gif|DGif|EGif|TIFF|_TIFF|deflate|inflate|crc32|adler32|zError|zlibVersion|gz|compress|uncompress|omp_|GOMP_|__)'
  nm -D --undefined-only "$OUT/libclipadapt.so" | awk '{print $NF}' | sed 's/@.*//' | sort -u >"$OUT/undefined.txt"
  # libc/libm symbols come from the cross libc's own shared objects
  libc=$("$XCC" -print-file-name=libc.so.6); libm=$("$XCC" -print-file-name=libm.so.6)
  { nm -D --defined-only "$libc" "$libm" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//'; } | sort -u >"$OUT/libc.txt"
  strange=$(comm -23 "$OUT/undefined.txt" "$OUT/libc.txt" | grep -Ev "$known" || true)
  if [ -z "$strange" ]; then
    pass=$((pass + 1)); echo "  link: libclipadapt.so for aarch64; every undefined symbol is libc/libm/libgomp or a linked library's"
  else
    fail=$((fail + 1)); echo "FAIL undefined symbols no linked library provides:"; echo "$strange" | sed 's/^/    /'
  fi
else
  fail=$((fail + 1)); echo "FAIL link (or skipped after compile failures):"; head -n 20 "$OUT/link.log" 2>/dev/null | sed 's/^/    /'
fi
echo "check-aarch64: not covered: linking the program and tests, running anything (no arm64 libraries here)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
