#!/usr/bin/env bash
# test_exports.sh — libclipadapt.so exports exactly the public API: every dynamic symbol it
# defines is declared CA_API in include/clipadapt.h, and every CA_API function is exported. Also
# its SONAME and links, and the version it reports.
source "$(dirname "$0")/lib.sh"
B=$(dirname "$CA")
SO=$(ls "$B"/libclipadapt.so.*.*.* 2>/dev/null | head -n 1)
[ -n "$SO" ] && ok "shared library built ($(basename "$SO"))" || { bad "no $B/libclipadapt.so.X.Y.Z"; finish; exit 1; }

# CA_API names: the identifier before the first '(' of each CA_API declaration.
grep -v '^#' include/clipadapt.h | tr '\n' ' ' | grep -oE 'CA_API[^;{(]*\(' | grep -oE '[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\($' |
  tr -d ' (' | sort -u >"$T/api"
nm -D --defined-only "$SO" | awk '{print $NF}' | sort -u >"$T/exported"
[ "$(wc -l <"$T/api")" -gt 100 ] && ok "header lists $(wc -l <"$T/api") CA_API functions" || bad "only $(wc -l <"$T/api") CA_API names parsed"
extra=$(comm -13 "$T/api" "$T/exported" | tr '\n' ' ')
missing=$(comm -23 "$T/api" "$T/exported" | tr '\n' ' ')
[ -z "$extra" ] && ok "nothing exported beyond the header" || bad "exported but not public API: $extra"
[ -z "$missing" ] && ok "every CA_API function exported" || bad "declared CA_API but not exported: $missing"
grep -v '^ca_' "$T/exported" | grep -q . && bad "non-ca_ exports: $(grep -v '^ca_' "$T/exported" | tr '\n' ' ')" || ok "only ca_ names"

ver=$(sed -n 's/^#define CA_VERSION "\([^"]*\)".*/\1/p' include/clipadapt.h)
major=${ver%%.*}
soname=$(objdump -p "$SO" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libclipadapt.so.$major" ] && ok "SONAME $soname" || bad "SONAME '$soname', expected libclipadapt.so.$major"
[ "$(basename "$SO")" = "libclipadapt.so.$ver" ] && ok "file name carries the version" || bad "$(basename "$SO") vs $ver"
[ "$(readlink "$B/libclipadapt.so.$major")" = "libclipadapt.so.$ver" ] && [ "$(readlink "$B/libclipadapt.so")" = "libclipadapt.so.$major" ] \
  && ok "links libclipadapt.so -> .so.$major -> .so.$ver" || bad "links: $(ls -l "$B"/libclipadapt.so* | tr '\n' ' ')"
expect_ok "--version" "$CA" --version
grep -q "^clipadapt $ver " "$T/out" && ok "ca_version() is $ver" || bad "version: $(cat "$T/out")"
finish
