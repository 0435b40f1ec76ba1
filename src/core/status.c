/* status.c — status strings, the per-thread error detail, the log sink and assertions. */
#include "core.h"

#include <string.h>

static _Thread_local char tl_err[1024];
static ca_log_fn g_log_fn;
static void *g_log_user;

const char *ca_strerror(ca_status st) {
    switch (st) {
    case CA_OK: return "success";
    case CA_E_IO: return "I/O error";
    case CA_E_FORMAT: return "malformed input";
    case CA_E_SHAPE: return "wrong shape";
    case CA_E_NOMEM: return "out of memory";
    case CA_E_ARG: return "invalid argument";
    case CA_E_NOTFOUND: return "not found";
    case CA_E_UNSUPPORTED: return "unsupported";
    case CA_E_RANGE: return "out of range";
    case CA_E_INTERNAL: return "internal error";
    case CA_E_CANCELLED: return "cancelled";
    case CA_E_NONFINITE: return "non-finite value (NaN or infinity)";
    case CA_E_UNSAFE: return "refused as unsafe";
    }
    return "unknown status";
}

const char *ca_last_error(void) { return tl_err; }

const char *ca_version(void) { return CA_VERSION; }

void ca_clear_error(void) { tl_err[0] = 0; }

ca_status ca_fail(ca_status st, const char *fmt, ...) {
    /* Format into a local buffer first: callers pass ca_last_error() itself as an argument to
     * prefix the previous detail, and vsnprintf into its own source is undefined. */
    char buf[sizeof tl_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(tl_err, buf, sizeof buf);
    /* keep it one line */
    for (char *p = tl_err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return st;
}

void ca_err_catch(ca_err_slot *es, ca_status st) {
    if (st == CA_OK) return;
    /* lock-free: the first failing worker claims the slot and copies its thread-local detail */
    int expected = 0;
    if (!__atomic_compare_exchange_n(&es->claimed, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return;
    snprintf(es->msg, sizeof es->msg, "%s", tl_err[0] ? tl_err : ca_strerror(st));
    es->st = st;
    __atomic_store_n(&es->failed, 1, __ATOMIC_RELEASE);
}

/* Workers may stop early once any has failed (its message may still be being written). */
int ca_err_failed(const ca_err_slot *es) { return __atomic_load_n(&es->claimed, __ATOMIC_ACQUIRE); }

ca_status ca_err_raise(const ca_err_slot *es) {
    /* after the parallel region: its closing barrier orders the writer before this read */
    if (!__atomic_load_n(&es->failed, __ATOMIC_ACQUIRE)) return CA_OK;
    return ca_fail(es->st, "%s", es->msg);
}

void ca_set_log(ca_log_fn fn, void *user) {
    g_log_fn = fn;
    g_log_user = user;
}

void ca_log(int level, const char *fmt, ...) {
    if (!g_log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}

void ca_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "clipadapt: internal assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
