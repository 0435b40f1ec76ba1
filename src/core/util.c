/* util.c — overflow-checked allocation, half floats, RNG, atomic output files, clocks. */
#include "core.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

bool ca_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

bool ca_mul3_size(size_t a, size_t b, size_t c, size_t *out) {
    size_t ab;
    return ca_mul_size(a, b, &ab) && ca_mul_size(ab, c, out);
}

void *ca_malloc2(size_t a, size_t b) {
    size_t n;
    if (!ca_mul_size(a, b, &n)) {
        ca_fail(CA_E_NOMEM, "allocation size overflows (%zu x %zu)", a, b);
        return NULL;
    }
    void *p = malloc(n ? n : 1);
    if (!p) ca_fail(CA_E_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *ca_calloc2(size_t a, size_t b) {
    size_t n;
    if (!ca_mul_size(a, b, &n)) {
        ca_fail(CA_E_NOMEM, "allocation size overflows (%zu x %zu)", a, b);
        return NULL;
    }
    void *p = calloc(n ? n : 1, 1);
    if (!p) ca_fail(CA_E_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

/* ---- half floats ---- */

float ca_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ca_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow to inf */
    if (absx < 0x38800000u) { /* subnormal or zero in half */
        if (absx < 0x33000000u) return (uint16_t)sign;
        /* value = m * 2^(e-150) and the half subnormal unit is 2^-24, so hm = m >> (126 - e);
         * here e is in [102, 112], so the shift is in [14, 24]. */
        uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;
        uint32_t hm = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1))) hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t e = (absx >> 23) - 127 + 15, m = absx & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float ca_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ca_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- RNG: xoroshiro128+ seeded through splitmix64 of (seed, stream) ---- */

uint64_t ca_hash64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

ca_rng ca_rng_make(uint64_t seed, uint64_t stream) {
    ca_rng r;
    uint64_t k = ca_hash64(seed) ^ ca_hash64(stream * 0xd1342543de82ef95ull + 1);
    r.s[0] = ca_hash64(k);
    r.s[1] = ca_hash64(k + 0x632be59bd9b4e019ull);
    if (!r.s[0] && !r.s[1]) r.s[0] = 1;
    return r;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ca_rng_u64(ca_rng *r) {
    uint64_t s0 = r->s[0], s1 = r->s[1], out = rotl(s0 + s1, 17) + s0;
    s1 ^= s0;
    r->s[0] = rotl(s0, 49) ^ s1 ^ (s1 << 21);
    r->s[1] = rotl(s1, 28);
    return out;
}

double ca_rng_uniform(ca_rng *r) { return (double)(ca_rng_u64(r) >> 11) * 0x1.0p-53; }

double ca_rng_normal(ca_rng *r) {
    double u1 = ca_rng_uniform(r), u2 = ca_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t ca_rng_below(ca_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = ca_rng_u64(r); while (v >= lim);
    return (uint32_t)(v % n);
}

void ca_rng_shuffle_int(ca_rng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ca_rng_below(r, (uint32_t)i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

/* ---- files ---- */

ca_status ca_outfile_open(ca_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    size_t n = strlen(path) + 32;
    o->path = strdup(path);
    o->tmp = malloc(n);
    if (!o->path || !o->tmp) {
        free(o->path); free(o->tmp);
        return ca_fail(CA_E_NOMEM, "out of memory");
    }
    snprintf(o->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    o->fp = fopen(o->tmp, "wb");
    if (!o->fp) {
        ca_status st = ca_fail(CA_E_IO, "%s: cannot create: %s", o->tmp, strerror(errno));
        free(o->path); free(o->tmp);
        memset(o, 0, sizeof *o);
        return st;
    }
    return CA_OK;
}

ca_status ca_outfile_commit(ca_outfile *o) {
    ca_status st = CA_OK;
    if (fflush(o->fp) != 0 || ferror(o->fp)) st = ca_fail(CA_E_IO, "%s: write failed: %s", o->path, strerror(errno));
    if (st == CA_OK) fsync(fileno(o->fp));
    if (fclose(o->fp) != 0 && st == CA_OK) st = ca_fail(CA_E_IO, "%s: close failed: %s", o->path, strerror(errno));
    o->fp = NULL;
    if (st == CA_OK && rename(o->tmp, o->path) != 0)
        st = ca_fail(CA_E_IO, "%s: cannot rename into place: %s", o->path, strerror(errno));
    if (st != CA_OK) remove(o->tmp);
    free(o->path); free(o->tmp);
    o->path = o->tmp = NULL;
    return st;
}

void ca_outfile_abort(ca_outfile *o) {
    if (o->fp) fclose(o->fp);
    if (o->tmp) remove(o->tmp);
    free(o->path); free(o->tmp);
    memset(o, 0, sizeof *o);
}

char *ca_read_file(const char *path, size_t *len, ca_status *st) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        *st = ca_fail(CA_E_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb; cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, fp);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(fp);
    fclose(fp);
    if (!buf) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory reading file", path); return NULL; }
    if (err) { free(buf); *st = ca_fail(CA_E_IO, "%s: read error", path); return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    *st = CA_OK;
    return buf;
}

const char *ca_basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int ca_default_threads(void) {
#ifdef _OPENMP
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

float ca_inv_norm(const float *x, int D) {
    double ss = 0;
    for (int d = 0; d < D; d++) ss += (double)x[d] * x[d];
    return ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.f;
}

void ca_l2_normalize(float *x, int D) {
    float inv = ca_inv_norm(x, D);
    for (int d = 0; d < D; d++) x[d] *= inv;
}

static _Thread_local int tl_budget; /* 0: none set on this thread */

int ca_budget_enter(int n) {
    int old = tl_budget;
    if (n > 0) tl_budget = n;
    return old;
}

void ca_budget_exit(int saved) { tl_budget = saved; }

int ca_kernel_threads(int requested) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    if (requested > 0) return requested;
    return tl_budget > 0 ? tl_budget : ca_default_threads();
}

double ca_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ca_populate(const void *p, size_t n, int write) {
#if defined(__linux__)
    /* MADV_POPULATE_READ/WRITE (Linux 5.14): one call maps every page instead of one fault each
     * (a hint: older kernels refuse it and the pages fault in as usual) */
    if (!p || n < ((size_t)1 << 20)) return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = (uintptr_t)(pg > 0 ? pg : 4096), lo = (uintptr_t)p & ~(page - 1), hi = ((uintptr_t)p + n + page - 1) & ~(page - 1);
    (void)madvise((void *)lo, hi - lo, write ? 23 /* MADV_POPULATE_WRITE */ : 22 /* MADV_POPULATE_READ */);
#else
    (void)p;
    (void)n;
    (void)write;
#endif
}

void ca_drop_pages(const void *p, size_t n, int inner) {
#ifdef MADV_DONTNEED
    if (!p || n == 0) return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = (uintptr_t)(pg > 0 ? pg : 4096), lo = (uintptr_t)p, hi = lo + n;
    if (inner) lo = (lo + page - 1) & ~(page - 1), hi &= ~(page - 1);
    else lo &= ~(page - 1), hi = (hi + page - 1) & ~(page - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)p;
    (void)n;
    (void)inner;
#endif
}
