/* harness.h — the tiny test harness: TEST functions made of CHECKs, run by RUN(), and a
 * closing line "N passed, N failed" (counted per TEST). A failing CHECK prints file:line and
 * both values; the binary exits non-zero when any test failed. */
#ifndef CA_HARNESS_H
#define CA_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int th_passed, th_failed, th_cur_fail, th_shown;

#define TH_REPORT(...)                                                             \
    do {                                                                           \
        th_cur_fail++;                                                             \
        if (th_shown++ < 20) {                                                     \
            fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                      \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)

#define CHECK(c) do { if (!(c)) TH_REPORT("CHECK failed: %s", #c); } while (0)
#define CHECK_MSG(c, ...) do { if (!(c)) TH_REPORT(__VA_ARGS__); } while (0)
#define CHECK_EQ_INT(a, b)                                                                   \
    do { long long a_ = (long long)(a), b_ = (long long)(b);                                \
         if (a_ != b_) TH_REPORT("CHECK_EQ_INT failed: %s = %lld, %s = %lld", #a, a_, #b, b_); } while (0)
#define CHECK_NEAR(a, b, tol)                                                                \
    do { double a_ = (double)(a), b_ = (double)(b);                                         \
         if (!(fabs(a_ - b_) <= (tol)))                                                      \
             TH_REPORT("CHECK_NEAR failed: %s = %.9g, %s = %.9g, |diff| %.3g > %.3g", #a, a_, #b, b_, fabs(a_ - b_), (double)(tol)); \
    } while (0)
#define CHECK_STR(a, b)                                                                      \
    do { const char *a_ = (a), *b_ = (b);                                                    \
         if (!a_ || !b_ || strcmp(a_, b_) != 0) TH_REPORT("CHECK_STR failed: \"%s\" != \"%s\"", a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)

#define RUN(fn)                                                                  \
    do {                                                                         \
        th_cur_fail = 0; th_shown = 0;                                           \
        fn();                                                                    \
        if (th_cur_fail) { th_failed++; fprintf(stderr, "FAIL %s\n", #fn); }     \
        else { th_passed++; fprintf(stderr, "ok   %s\n", #fn); }                 \
    } while (0)

#define TEST_END()                                                    \
    do {                                                              \
        printf("%d passed, %d failed\n", th_passed, th_failed);       \
        return th_failed ? 1 : 0;                                     \
    } while (0)

/* Path under the read-only reference data (../shared or $SHARED). Static buffer. */
static inline const char *th_shared(const char *rel) {
    static char buf[4][1024];
    static int k;
    const char *root = getenv("SHARED");
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root && *root ? root : "../shared", rel);
    return buf[k];
}

/* A scratch directory for the test's files ($TMPDIR-based, created once). */
static inline const char *th_tmpdir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/ca-test-XXXXXX", t && *t ? t : "/tmp");
        extern char *mkdtemp(char *);
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(2); }
    }
    return dir;
}

#endif
