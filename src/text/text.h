/* text.h — internal pieces of the CLIP tokenizer: the text cleaning pipeline on code points
 * (UTF-8 decoding, NFC, html.unescape, whitespace collapse, Python lower()) and the
 * pre-tokeniser. Not part of the public API; the BPE itself lives in tokenizer.c. */
#ifndef CA_TEXT_H
#define CA_TEXT_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

/* Generated tables (html_entities.c, from Python's html module). */
typedef struct {
    const char *name;   /* "amp;", "amp", "NotEqualTilde;", ... (ASCII) */
    const char *value;  /* UTF-8 replacement */
    int value_len;      /* bytes */
} ca_html_entity;
extern const ca_html_entity ca_html5_entities[];
extern const int ca_html5_entity_count;
extern const uint32_t ca_html_invalid_charrefs[][2];
extern const int ca_html_invalid_charref_count;
extern const uint32_t ca_html_invalid_codepoints[];
extern const int ca_html_invalid_codepoint_count;

/* Letters ('L') and numbers ('N') assigned after utf8proc's Unicode version, as the reference's
 * `regex` module classifies them (unicode_extra.c, generated). Sorted, disjoint. */
typedef struct { uint32_t lo, hi; char cls; } ca_cp_range;
extern const ca_cp_range ca_unicode_extra[];
extern const int ca_unicode_extra_count;

/* A growable code-point buffer. */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} ca_cpbuf;
bool ca_cpbuf_reserve(ca_cpbuf *b, size_t cap);
void ca_cpbuf_free(ca_cpbuf *b);

/* Strict UTF-8 decoding as Python's bytes.decode('utf-8'): no overlongs, no surrogates, nothing
 * above U+10FFFF. Appends to out. On bad input returns CA_E_FORMAT and sets *bad_offset to the
 * byte offset of the first invalid sequence (no error is recorded: the caller names it). */
ca_status ca_utf8_decode(const uint8_t *s, size_t len, ca_cpbuf *out, size_t *bad_offset);
/* Append the UTF-8 encoding of cp (valid scalar value) to dst; returns bytes written (1..4). */
int ca_utf8_put(uint32_t cp, uint8_t *dst);

/* The reference cleaning: NFC, html.unescape twice, strip, collapse whitespace runs to one
 * space, strip, str.lower(). in and out must differ; tmp is scratch. Both are resized. */
ca_status ca_text_clean(const ca_cpbuf *in, ca_cpbuf *out, ca_cpbuf *tmp);

/* Single steps, exposed for the tests. Each reads src[0..n) and replaces dst's contents. */
ca_status ca_text_nfc(const uint32_t *src, size_t n, ca_cpbuf *dst);
ca_status ca_html_unescape(const uint32_t *src, size_t n, ca_cpbuf *dst);
ca_status ca_text_lower(const uint32_t *src, size_t n, ca_cpbuf *dst);
/* Python str.isspace() (which is also re's \s) and the `regex` module's \s (White_Space). */
bool ca_py_isspace(uint32_t c);
bool ca_regex_isspace(uint32_t c);

/* Pre-tokeniser: the next match of CLIP's pattern in s[*pos..n) (case-insensitive, as the
 * reference compiles it). Returns 1 and the piece [*start, *end) and advances *pos, or 0 at the
 * end. */
int ca_pretok_next(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end);

/* BPE of one piece of n >= 1 bytes into w (n slots): method 0 = automatic, 1 = the naive
 * reference loop, 2 = the heap version. Returns the symbol count, (size_t)-1 when out of memory.
 * Exposed so the tests can hold the two against each other. */
size_t ca_bpe_piece(const ca_tokenizer *t, const uint8_t *p, size_t n, int32_t *w, int method);

#endif
