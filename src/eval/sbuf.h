/* sbuf.h — a growable text buffer for the report writers (table, JSON, SVG). Internal. */
#ifndef CA_SBUF_H
#define CA_SBUF_H

#include "core/core.h"
#include <stdarg.h>
#include <string.h>

typedef struct { char *s; size_t len, cap; int oom; } ca_sbuf;

/* printf-append; on allocation failure sets oom and keeps what it had. */
static inline void ca_sbuf_printf(ca_sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static inline void ca_sbuf_printf(ca_sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return; }
        if (b->s && (size_t)k < room) { b->len += (size_t)k; return; }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)k + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = 1; return; }
        b->s = s; b->cap = cap;
    }
}

/* The text (caller frees), or NULL with CA_E_NOMEM recorded. */
static inline char *ca_sbuf_take(ca_sbuf *b) {
    if (b->oom || !b->s) { free(b->s); ca_fail(CA_E_NOMEM, "report: out of memory"); return NULL; }
    return b->s;
}

#endif
