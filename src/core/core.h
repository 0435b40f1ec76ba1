/* core.h — internal helpers shared by every layer: error recording, overflow-checked sizes,
 * half-precision conversion, a counter-based RNG, atomic file output. Not part of the public API.
 */
#ifndef CA_CORE_H
#define CA_CORE_H

#include "clipadapt.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Programmer errors only (never for bad input): prints and aborts in debug builds. */
#ifdef NDEBUG
#define CA_ASSERT(c) ((void)0)
#else
#define CA_ASSERT(c) ((c) ? (void)0 : ca_assert_fail(#c, __FILE__, __LINE__))
#endif
void ca_assert_fail(const char *expr, const char *file, int line);

/* Record a detailed one-line error for ca_last_error() and return st. printf-style. */
ca_status ca_fail(ca_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void ca_clear_error(void);
/* First statement of every public (CA_API) function that can fail: the last-error detail then
 * always belongs to the last failing call (cleanup functions such as *_free do not clear it). */
#define CA_ENTER() ca_clear_error()

/* Errors raised inside OpenMP workers: each failure is recorded in the worker's own thread-local
 * detail, so a parallel region catches the first one (status and message) in a slot shared by
 * its threads, and the calling thread raises it after the region. Usage:
 *     ca_err_slot es = CA_ERR_SLOT_INIT;
 *     #pragma omp parallel ...  { ... if (st) ca_err_catch(&es, st); ... if (ca_err_failed(&es)) skip; }
 *     return ca_err_raise(&es);      // CA_OK, or the first status with its detail re-recorded */
typedef struct {
    int claimed;         /* taken (compare-and-swap) by the first worker that fails */
    int failed;          /* then set once st and msg are written */
    ca_status st;
    char msg[1024];
} ca_err_slot;
#define CA_ERR_SLOT_INIT {0, 0, CA_OK, {0}}
void ca_err_catch(ca_err_slot *es, ca_status st);
int ca_err_failed(const ca_err_slot *es);
ca_status ca_err_raise(const ca_err_slot *es);
/* Log through the user's sink (no-op when none). */
void ca_log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Overflow-checked size arithmetic: return false on overflow. */
bool ca_mul_size(size_t a, size_t b, size_t *out);
bool ca_mul3_size(size_t a, size_t b, size_t c, size_t *out);
/* malloc of a*b bytes with overflow check; records CA_E_NOMEM on failure. */
void *ca_malloc2(size_t a, size_t b);
/* ca_malloc2 for large arrays that are filled at once (loaded tensors): from 8 MiB up, aligned
 * to 2 MiB and advised as transparent huge pages, so filling it takes ~512x fewer page faults.
 * Freed with free(). */
void *ca_malloc_big(size_t a, size_t b);
void *ca_calloc2(size_t a, size_t b);

/* IEEE half and bfloat16 to/from float32 (round to nearest even). */
float ca_f16_to_f32(uint16_t h);
/* dst (n floats) = n IEEE half floats read from src (any alignment); exact, SIMD where the CPU
 * path has F16C (src/core/convert.c). */
void ca_f16_to_f32_n(float *dst, const void *src, size_t n);
uint16_t ca_f32_to_f16(float f);
float ca_bf16_to_f32(uint16_t h);
uint16_t ca_f32_to_bf16(float f);

/* Counter-based generator: the same (seed, stream) always gives the same sequence, so a
 * (seed, image, view) triple maps to one stream independent of thread count. */
typedef struct { uint64_t s[2]; } ca_rng;
ca_rng ca_rng_make(uint64_t seed, uint64_t stream);
uint64_t ca_rng_u64(ca_rng *r);
double ca_rng_uniform(ca_rng *r);               /* [0, 1) with 53 bits */
double ca_rng_normal(ca_rng *r);                /* standard normal (Box-Muller) */
uint32_t ca_rng_below(ca_rng *r, uint32_t n);   /* uniform in [0, n), unbiased */
void ca_rng_shuffle_int(ca_rng *r, int *a, int n);
uint64_t ca_hash64(uint64_t x);                 /* splitmix64 finaliser */

/* The one output routine of the library. A regular or new file is written to a hidden temporary
 * in its folder and renamed over it on commit (no partial output; the replaced file's mode is
 * kept); a symbolic link is followed, so its target is replaced and the link stays; a FIFO,
 * character device or other special file is written directly, never renamed over; "-" is
 * standard output (flushed, not closed); a directory is refused. Every error names `path` (the
 * caller's, never the temporary) and carries strerror text. */
typedef struct { FILE *fp; char *path, *target, *tmp; int direct, err; } ca_outfile;
ca_status ca_outfile_open(ca_outfile *o, const char *path);
/* Write through o, recording the first failure (with errno) for commit. */
ca_status ca_outfile_write(ca_outfile *o, const void *data, size_t n);
ca_status ca_outfile_printf(ca_outfile *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
ca_status ca_outfile_commit(ca_outfile *o);    /* flush, fsync, close, rename; frees o */
void ca_outfile_abort(ca_outfile *o);          /* close and delete the temporary; frees o */

/* Whole file into a malloc'd buffer (NUL-terminated, *len excludes the NUL). */
char *ca_read_file(const char *path, size_t *len, ca_status *st);
/* Hand the memory pages of [p, p+n) back to the system (madvise MADV_DONTNEED; a hint: on
 * failure they stay). inner != 0: only pages wholly inside the range (anonymous memory whose
 * neighbours must keep their values; dropped pages read as zeros); inner == 0: every page the
 * range touches (a private read-only file mapping, whose pages are read again on access). */
void ca_drop_pages(const void *p, size_t n, int inner);

/* Map the pages of [p, p+n) in one call before they are read (write = 0) or written (write = 1)
 * rather than one page fault each: a hint for large blocks (>= 1 MiB); no values change. For a
 * writable block, only memory that is about to be written in full. */
void ca_populate(const void *p, size_t n, int write);

/* Index of the first NaN or infinity among n raw values of dtype dt (F32, F16 or BF16, as
 * stored: all exponent bits set), or n when every value is finite (also for other dtypes).
 * Eight bytes at a time: it runs over every weight of a model at each load. */
size_t ca_first_nonfinite(const void *p, ca_dtype dt, size_t n);

/* Basename of a path (pointer into the argument). */
const char *ca_basename(const char *path);

/* Number of threads the library uses by default (OpenMP max threads, >= 1). */
int ca_default_threads(void);
/* Threads a kernel may start: 1 inside an OpenMP parallel region (no nesting), else the
 * request, or when the request is <= 0 the calling thread's budget (ca_budget_enter), or
 * ca_default_threads(). Every `omp parallel` of the library takes num_threads(...) from here. */
int ca_kernel_threads(int requested);
/* The thread budget of the current call on this thread (a session's, a fit's): set on entry,
 * restored on exit with the value returned. Per thread, so concurrent calls on other threads
 * each keep theirs; kernels that take no `threads` argument read it via ca_kernel_threads(0).
 * n <= 0 leaves the budget as it was. */
int ca_budget_enter(int n);
void ca_budget_exit(int saved);
/* Test probe of the teams kernels really ran with: ca_team_note(), called inside a parallel
 * region, records the team's size on the thread that started it (thread 0 is the encountering
 * thread), and ca_team_probe(reset) returns the largest recorded on the calling thread since its
 * last reset (0: none). Thread-local, so concurrent sessions each see their own teams only. */
void ca_team_note(void);
int ca_team_probe(int reset);

/* 1/||x|| of a D-vector (squares summed in double), 0 for a zero vector. */
float ca_inv_norm(const float *x, int D);
/* x (D) scaled to unit L2 norm in place (left at zero when it is zero). */
void ca_l2_normalize(float *x, int D);

/* Monotonic clock in seconds. */
double ca_now(void);

#endif
