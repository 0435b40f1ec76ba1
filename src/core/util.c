/* util.c — overflow-checked allocation, half floats, RNG, atomic output files, clocks. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/stat.h>
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

void *ca_malloc_big(size_t a, size_t b) {
    size_t n;
    const size_t huge = (size_t)2 << 20;
    if (!ca_mul_size(a, b, &n) || n > SIZE_MAX - huge) {
        ca_fail(CA_E_NOMEM, "allocation size overflows (%zu x %zu)", a, b);
        return NULL;
    }
    if (n < 4 * huge) return ca_malloc2(n, 1);
    size_t r = (n + huge - 1) & ~(huge - 1);
    void *p = aligned_alloc(huge, r);
    if (!p) { ca_fail(CA_E_NOMEM, "out of memory allocating %zu bytes", n); return NULL; }
#ifdef MADV_HUGEPAGE
    madvise(p, r, MADV_HUGEPAGE); /* advice only: without THP the pages stay small */
#endif
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

/* Follow symbolic links from path to the file they finally name (which may not exist yet), so
 * that replacing the output replaces the link's target and keeps the link. malloc'd. */
static char *resolve_links(const char *path) {
    char *cur = strdup(path);
    for (int hops = 0; cur && hops < 40; hops++) {
        struct stat sb;
        if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode)) return cur;
        char link[4096];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) return cur;
        link[n] = 0;
        char *next;
        const char *slash = strrchr(cur, '/');
        if (link[0] == '/' || !slash) {
            next = strdup(link);
        } else {   /* relative to the link's own folder */
            size_t dl = (size_t)(slash - cur) + 1;
            next = malloc(dl + (size_t)n + 1);
            if (next) { memcpy(next, cur, dl); memcpy(next + dl, link, (size_t)n + 1); }
        }
        free(cur);
        cur = next;
    }
    return cur;   /* a loop: opening it reports ELOOP */
}

ca_status ca_outfile_open(ca_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    if (!path || !*path) return ca_fail(CA_E_ARG, "output path is empty");
    o->path = strdup(strcmp(path, "-") ? path : "standard output");   /* the name errors use */
    if (!o->path) return ca_fail(CA_E_NOMEM, "out of memory");
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout") || !strcmp(path, "/dev/fd/1") || !strcmp(path, "/proc/self/fd/1")) {
        /* standard output: the process's own stream (keeps order with other output), not closed */
        o->fp = stdout;
        o->direct = 2;
        return CA_OK;
    }
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode)) {
        ca_outfile_abort(o);
        return ca_fail(CA_E_IO, "%s: is a directory", path);
    }
    /* an open descriptor named by path (/dev/stdout, /dev/fd/N) may be a shell redirection to a
     * regular file: append to it as the shell's descriptor would, never rename over it */
    int fd_alias = !strcmp(path, "/dev/stdout") || !strcmp(path, "/dev/stderr") || !strncmp(path, "/dev/fd/", 8) ||
                   !strncmp(path, "/proc/self/fd/", 14);
    if (exists && (fd_alias || !S_ISREG(sb.st_mode))) {
        /* FIFO, character device, socket...: write into it; renaming over it would replace the
         * special file with a regular one (and a reader of a FIFO would wait forever) */
        o->fp = fopen(path, fd_alias ? "a" : "w");
        if (!o->fp) {
            int e = errno;
            ca_outfile_abort(o);
            return ca_fail(CA_E_IO, "%s: cannot open for writing: %s", path, strerror(e));
        }
        o->direct = 1;
        return CA_OK;
    }
    o->target = resolve_links(path);
    if (!o->target) { ca_outfile_abort(o); return ca_fail(CA_E_NOMEM, "out of memory"); }
    /* regular or new file: a hidden temporary in the same folder, renamed over it on commit */
    size_t n = strlen(o->target) + 64;
    o->tmp = malloc(n);
    if (!o->tmp) { ca_outfile_abort(o); return ca_fail(CA_E_NOMEM, "out of memory"); }
    const char *slash = strrchr(o->target, '/');
    int dl = slash ? (int)(slash - o->target) + 1 : 0;
    static _Atomic unsigned counter;
    snprintf(o->tmp, n, "%.*s.%s.tmp.%ld.%u", dl, o->target, o->target + dl, (long)getpid(), counter++);
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        free(o->tmp); o->tmp = NULL;
        ca_outfile_abort(o);
        if (e == ENOENT) return ca_fail(CA_E_IO, "%s: cannot create: its folder does not exist", path);
        return ca_fail(CA_E_IO, "%s: cannot create a file in its folder: %s", path, strerror(e));
    }
    if (exists) (void)fchmod(fd, sb.st_mode & 07777);   /* a replaced file keeps its permissions */
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        int e = errno;
        close(fd);
        ca_outfile_abort(o);
        return ca_fail(CA_E_IO, "%s: cannot open for writing: %s", path, strerror(e));
    }
    return CA_OK;
}

ca_status ca_outfile_write(ca_outfile *o, const void *data, size_t n) {
    if (o->err) return CA_E_IO;
    if (n && fwrite(data, 1, n, o->fp) != n) {
        o->err = errno ? errno : EIO;
        return ca_fail(CA_E_IO, "%s: write failed: %s", o->path, strerror(o->err));
    }
    return CA_OK;
}

ca_status ca_outfile_printf(ca_outfile *o, const char *fmt, ...) {
    if (o->err) return CA_E_IO;
    va_list ap;
    va_start(ap, fmt);
    errno = 0;
    int r = vfprintf(o->fp, fmt, ap);
    va_end(ap);
    if (r < 0) {
        o->err = errno ? errno : EIO;
        return ca_fail(CA_E_IO, "%s: write failed: %s", o->path, strerror(o->err));
    }
    return CA_OK;
}

ca_status ca_outfile_commit(ca_outfile *o) {
    int e = o->err;
    errno = 0;
    if (!e && fflush(o->fp) != 0) e = errno ? errno : EIO;
    if (!e && ferror(o->fp)) e = errno ? errno : EIO;
    if (o->direct == 2) {   /* stdout stays open for the caller */
        o->fp = NULL;
    } else {
        if (!e && o->tmp && fsync(fileno(o->fp)) != 0 && errno != EINVAL) e = errno;
        if (fclose(o->fp) != 0 && !e) e = errno ? errno : EIO;
        o->fp = NULL;
        if (!e && o->tmp && rename(o->tmp, o->target) != 0) e = errno;
    }
    ca_status st = CA_OK;
    if (e) st = ca_fail(CA_E_IO, "%s: write failed: %s", o->path, strerror(e));
    else if (o->tmp) { free(o->tmp); o->tmp = NULL; }   /* renamed: nothing to remove */
    ca_outfile_abort(o);
    return st;
}

void ca_outfile_abort(ca_outfile *o) {
    if (o->fp && o->direct != 2) fclose(o->fp);
    if (o->tmp) remove(o->tmp);
    free(o->path); free(o->target); free(o->tmp);
    memset(o, 0, sizeof *o);
}

char *ca_read_file(const char *path, size_t *len, ca_status *st) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        *st = ca_fail(CA_E_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(fp);
        *st = ca_fail(CA_E_IO, "%s: is a directory, not a file", path);
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
    int err = ferror(fp) ? (errno ? errno : EIO) : 0;
    fclose(fp);
    if (!buf) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory reading file", path); return NULL; }
    if (err) { free(buf); *st = ca_fail(CA_E_IO, "%s: cannot read: %s", path, strerror(err)); return NULL; }
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

static _Thread_local int tl_team_max;

void ca_team_note(void) {
#ifdef _OPENMP
    if (omp_get_thread_num() == 0) {
        int n = omp_get_num_threads();
        if (n > tl_team_max) tl_team_max = n;
    }
#endif
}

int ca_team_probe(int reset) {
    int n = tl_team_max;
    if (reset) tl_team_max = 0;
    return n;
}

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

size_t ca_first_nonfinite(const void *p, ca_dtype dt, size_t n) {
    if (dt != CA_DT_F32 && dt != CA_DT_F16 && dt != CA_DT_BF16) return n;
    const unsigned char *b = p;
    size_t es = dt == CA_DT_F32 ? 4 : 2, per = 8 / es;
    /* lanes of 8 bytes: t = (x & E) ^ E is zero in a lane exactly when that lane's exponent bits
     * E are all set; t has no lane's top bit set, so (t - 1s) & ~t & tops finds a zero lane */
    uint64_t E = dt == CA_DT_F32 ? 0x7f8000007f800000ull : dt == CA_DT_F16 ? 0x7c007c007c007c00ull : 0x7f807f807f807f80ull;
    uint64_t ones = dt == CA_DT_F32 ? 0x0000000100000001ull : 0x0001000100010001ull;
    uint64_t tops = dt == CA_DT_F32 ? 0x8000000080000000ull : 0x8000800080008000ull;
    size_t i = 0;
    for (; i + 4 * per <= n; i += 4 * per) {
        uint64_t x[4], hit = 0;
        memcpy(x, b + i * es, sizeof x);
        for (int k = 0; k < 4; k++) {
            uint64_t t = (x[k] & E) ^ E;
            hit |= (t - ones) & ~t & tops;
        }
        if (hit) break;
    }
    for (; i < n; i++) {
        uint32_t u = 0;
        memcpy(&u, b + i * es, es);
        if (dt == CA_DT_F32 ? (u & 0x7f800000u) == 0x7f800000u : dt == CA_DT_F16 ? (u & 0x7c00u) == 0x7c00u : (u & 0x7f80u) == 0x7f80u)
            return i;
    }
    return n;
}
