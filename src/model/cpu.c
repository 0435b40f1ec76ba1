/* cpu.c — which SIMD path the model kernels run on, chosen once at start-up.
 *
 * In a portable x86-64 build (the default) the kernel files (fast.c, fastgemm.c, fastops.c,
 * gemm.c, kernels.c, vmath.c; also src/adapt/search.c and src/core/convert.c) are compiled once per path — generic (x86-64 baseline), avx2
 * (x86-64-v3: AVX2, FMA, F16C) and avx512 (x86-64-v4 plus AVX512-BF16) — with their global
 * symbols renamed name_<path> (objcopy); scripts/gen_isa_stubs.sh then writes one stub per name
 * that jumps through the table ca_isa_active points at (OpenBLAS DYNAMIC_ARCH's scheme). This
 * file sets that pointer before main from CPUID, or from CLIPADAPT_CPU=generic|avx2|avx512.
 * A build with ARCH set (e.g. ARCH=-march=native) or on another CPU compiles the kernels once
 * and has no choice to make. Not here: the kernels themselves.
 */
#include "core/core.h"
#include "model/fastgemm.h"

#include <stdlib.h>
#include <string.h>

#ifdef CA_DISPATCH
/* Tables of the stubs' targets, one per path, in scripts/gen_isa_stubs.sh's output. */
extern const void *const ca_isa_table_generic[], *const ca_isa_table_avx2[], *const ca_isa_table_avx512[];
/* Read by every stub; written once, here, before main (and before any thread exists). */
__attribute__((visibility("hidden"))) const void *const *ca_isa_active = ca_isa_table_generic;
#endif

enum { PATH_GENERIC, PATH_AVX2, PATH_AVX512 };
static const char *const PATH_NAMES[] = {"generic", "avx2", "avx512"};

static int g_path;             /* the path in use */
static int g_bf16;             /* AVX512-BF16 kernels usable (avx512 path on a CPU that has them) */
static char g_error[160];      /* CLIPADAPT_CPU asked for something this CPU or build cannot do */

/* Highest path this CPU (and its OS, which must save the wider registers) supports. */
static int cpu_best(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* the features -march=x86-64-v3 / -v4 let the compiler use (named one by one: clang 14
     * knows no level names); the runtime also checks that the OS saves the YMM/ZMM state */
    __builtin_cpu_init();
    int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
             __builtin_cpu_supports("bmi2");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd");
    if (v4) return PATH_AVX512;
    if (v3) return PATH_AVX2;
#endif
    return PATH_GENERIC;
}

#if defined(CA_DISPATCH) || defined(__AVX512BF16__) /* its only callers (not on aarch64) */
static int cpu_bf16(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
#else
    return 0;
#endif
}
#endif

#ifndef CA_DISPATCH
/* The path compiled in when there is no dispatch: what the build's own flags enable. */
static int built_path(void) {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
    return PATH_AVX512;
#elif defined(__AVX2__) && defined(__FMA__)
    return PATH_AVX2;
#else
    return PATH_GENERIC;
#endif
}
#endif

__attribute__((constructor)) static void ca_cpu_pick(void) {
    const char *want = getenv("CLIPADAPT_CPU");
    int best = cpu_best(), forced = -1;
    if (want && *want) {
        for (int i = 0; i < 3; i++)
            if (strcmp(want, PATH_NAMES[i]) == 0) forced = i;
        if (forced < 0) {
            snprintf(g_error, sizeof g_error, "CLIPADAPT_CPU=%.32s: unknown path (generic, avx2 or avx512)", want);
            forced = PATH_GENERIC;
        } else if (forced > best) {
            snprintf(g_error, sizeof g_error, "CLIPADAPT_CPU=%s: this CPU lacks %s (best path: %s)", want,
                     forced == PATH_AVX512 ? "AVX-512 (F, BW, VL, DQ, CD)" : "AVX2, FMA, BMI1/2", PATH_NAMES[best]);
            forced = PATH_GENERIC;
        }
    }
#ifdef CA_DISPATCH
    g_path = forced >= 0 ? forced : best;
    static const void *const *const tables[] = {ca_isa_table_generic, ca_isa_table_avx2, ca_isa_table_avx512};
    ca_isa_active = tables[g_path];
    g_bf16 = g_path == PATH_AVX512 && cpu_bf16();
#else
    g_path = built_path();
    if (forced >= 0 && !g_error[0] && forced != g_path)
        snprintf(g_error, sizeof g_error, "CLIPADAPT_CPU=%s: this build has only the %s path (built with ARCH flags, "
                 "no run-time dispatch)", want, PATH_NAMES[g_path]);
#if defined(__AVX512BF16__)
    g_bf16 = cpu_bf16();
#endif
#endif
}

const char *ca_cpu_path(ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (g_error[0]) {
        *st = ca_fail(CA_E_UNSUPPORTED, "%s", g_error);
        return NULL;
    }
    *st = CA_OK;
    return PATH_NAMES[g_path];
}

int ca_fastgemm_bf16(void) { return g_bf16; }
