#!/usr/bin/env bash
# test_install.sh — `make install PREFIX=... [DESTDIR=...]` lays out a C library (header, static
# and shared library with its links, the program, clipadapt.pc), and examples/classify.c builds
# against the installed copy through pkg-config, linked shared and static, and runs.
source "$(dirname "$0")/lib.sh"
B=$(dirname "$CA")
P=$T/prefix
MK=(make --no-print-directory -s BUILD="$B" SAN="${SAN:-0}" TSAN="${TSAN:-0}")

expect_ok "make install PREFIX" "${MK[@]}" install PREFIX="$P"
for f in include/clipadapt.h lib/libclipadapt.a lib/libclipadapt.so lib/libclipadapt.so.0 bin/clipadapt lib/pkgconfig/clipadapt.pc; do
  [ -e "$P/$f" ] && ok "installed $f" || bad "missing $P/$f"
done
ls "$P"/lib/libclipadapt.so.*.*.* >/dev/null 2>&1 && ok "installed the versioned library" || bad "no libclipadapt.so.X.Y.Z"
expect_ok "installed program runs" "$P/bin/clipadapt" --version

export PKG_CONFIG_PATH=$P/lib/pkgconfig
ver=$(sed -n 's/^#define CA_VERSION "\([^"]*\)".*/\1/p' include/clipadapt.h)
# under SAN=1 / TSAN=1 the installed library is the sanitized build: the example must link the
# same runtime (and, under TSAN, the compiler and OpenMP runtime it was built with: clang, libomp)
SANCC=""; XCC=cc; OMPFLAG=-fopenmp
[ "${SAN:-0}" = 1 ] && SANCC="-fsanitize=address,undefined"
[ "${TSAN:-0}" = 1 ] && { SANCC="-fsanitize=thread"; XCC=clang; OMPFLAG=-fopenmp=libomp; }
[ "$(pkg-config --modversion clipadapt 2>&1)" = "$ver" ] && ok "pkg-config version $ver" || bad "pkg-config: $(pkg-config --modversion clipadapt 2>&1)"
pkg-config --cflags clipadapt | grep -q -- "-I$P/include" && ok "pkg-config cflags" || bad "cflags: $(pkg-config --cflags clipadapt)"

# shared: the example finds libclipadapt.so.0 of the prefix
if $XCC -std=c11 $SANCC examples/classify.c $(pkg-config --cflags --libs clipadapt) -o "$T/classify" 2>"$T/err"; then
  ok "example builds against the installed shared library"
  LD_LIBRARY_PATH=$P/lib ldd "$T/classify" | grep -q "libclipadapt.so.0 => $P/lib/" && ok "linked to the prefix's libclipadapt.so.0" \
    || bad "ldd: $(LD_LIBRARY_PATH=$P/lib ldd "$T/classify" | grep clipadapt)"
  expect_fail "example runs (usage)" "usage" env LD_LIBRARY_PATH="$P/lib" "$T/classify"
  expect_fail "example runs (missing model named)" "no-such-model.safetensors" env LD_LIBRARY_PATH="$P/lib" "$T/classify" \
    "$T/no-such-model.safetensors" "$T/c.safetensors" "$T/x.png"
else
  bad "example does not build: $(head -c 400 "$T/err")"
fi
# static: the archive plus Libs.private
if $XCC -std=c11 $SANCC examples/classify.c $(pkg-config --cflags clipadapt) "$P/lib/libclipadapt.a" \
     $(pkg-config --static --libs-only-l clipadapt | sed 's/-lclipadapt//') $OMPFLAG -o "$T/classify-static" 2>"$T/err"; then
  ok "example builds against the installed static library"
  ldd "$T/classify-static" | grep -q libclipadapt && bad "static example still needs libclipadapt.so" || ok "static example is self-contained"
  expect_fail "static example runs" "usage" "$T/classify-static"
else
  bad "static example does not build: $(head -c 400 "$T/err")"
fi

# DESTDIR stages the same tree under another root, pkg-config still naming PREFIX
expect_ok "make install DESTDIR" "${MK[@]}" install PREFIX=/opt/ca DESTDIR="$T/stage"
[ -f "$T/stage/opt/ca/include/clipadapt.h" ] && [ -f "$T/stage/opt/ca/lib/libclipadapt.a" ] && ok "DESTDIR honoured" || bad "DESTDIR tree: $(find "$T/stage" | head)"
grep -q '^prefix=/opt/ca$' "$T/stage/opt/ca/lib/pkgconfig/clipadapt.pc" && ok "pc names PREFIX, not DESTDIR" || bad "pc: $(head -3 "$T/stage/opt/ca/lib/pkgconfig/clipadapt.pc")"
finish
