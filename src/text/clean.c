/* clean.c — the reference CLIP tokenizer's text cleaning, on arrays of code points: strict
 * UTF-8 decoding, NFC (utf8proc), Python's html.unescape (applied twice by the caller), Python's
 * whitespace strip/collapse and str.lower(), and the pre-tokenisation pattern. Not the BPE. */
#include "text/text.h"

#include <string.h>
#include <utf8proc.h>

bool ca_cpbuf_reserve(ca_cpbuf *b, size_t cap) {
    if (cap <= b->cap) return true;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < cap) {
        if (nc > SIZE_MAX / 2 / sizeof(uint32_t)) { ca_fail(CA_E_NOMEM, "tokenizer: text too large"); return false; }
        nc *= 2;
    }
    uint32_t *v = realloc(b->v, nc * sizeof *v);
    if (!v) { ca_fail(CA_E_NOMEM, "tokenizer: out of memory for %zu code points", nc); return false; }
    b->v = v;
    b->cap = nc;
    return true;
}

void ca_cpbuf_free(ca_cpbuf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

ca_status ca_utf8_decode(const uint8_t *s, size_t len, ca_cpbuf *out, size_t *bad_offset) {
    if (!ca_cpbuf_reserve(out, out->n + len + 1)) return CA_E_NOMEM;
    uint32_t *o = out->v + out->n;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) { *o++ = c; i++; continue; }
        uint32_t cp;
        int need;
        uint8_t lo = 0x80, hi = 0xBF;  /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2; cp = c & 0x0F;
            if (c == 0xE0) lo = 0xA0;          /* overlong */
            if (c == 0xED) hi = 0x9F;          /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3; cp = c & 0x07;
            if (c == 0xF0) lo = 0x90;          /* overlong */
            if (c == 0xF4) hi = 0x8F;          /* above U+10FFFF */
        } else { *bad_offset = i; return CA_E_FORMAT; }
        if (len - i <= (size_t)need) { *bad_offset = i; return CA_E_FORMAT; }
        for (int k = 1; k <= need; k++) {
            uint8_t d = s[i + k];
            uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (d < l || d > h) { *bad_offset = i; return CA_E_FORMAT; }
            cp = (cp << 6) | (d & 0x3F);
        }
        *o++ = cp;
        i += (size_t)need + 1;
    }
    out->n = (size_t)(o - out->v);
    return CA_OK;
}

int ca_utf8_put(uint32_t cp, uint8_t *d) {
    if (cp < 0x80) { d[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { d[0] = (uint8_t)(0xC0 | (cp >> 6)); d[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xE0 | (cp >> 12)); d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (uint8_t)(0xF0 | (cp >> 18)); d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); d[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- NFC --------------------------------------------------------------------------------- */

ca_status ca_text_nfc(const uint32_t *src, size_t n, ca_cpbuf *dst) {
    dst->n = 0;
    bool simple = true;  /* below U+0300 every character is NFC-stable and never composes */
    for (size_t i = 0; i < n && simple; i++) simple = src[i] < 0x300;
    if (simple) {
        if (!ca_cpbuf_reserve(dst, n + 1)) return CA_E_NOMEM;
        memcpy(dst->v, src, n * sizeof *src);
        dst->n = n;
        return CA_OK;
    }
    /* utf8proc decomposes from UTF-8 into code points, then composes in place. */
    size_t blen;
    if (!ca_mul_size(n, 4, &blen)) return ca_fail(CA_E_NOMEM, "tokenizer: text too large");
    uint8_t *u8 = malloc(blen + 1);
    if (!u8) return ca_fail(CA_E_NOMEM, "tokenizer: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)ca_utf8_put(src[i], u8 + k);
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    utf8proc_ssize_t need = utf8proc_decompose(u8, (utf8proc_ssize_t)k, NULL, 0, opt);
    if (need < 0) { free(u8); return ca_fail(CA_E_INTERNAL, "tokenizer: NFC: %s", utf8proc_errmsg(need)); }
    if (!ca_cpbuf_reserve(dst, (size_t)need + 1)) { free(u8); return CA_E_NOMEM; }
    utf8proc_ssize_t got = utf8proc_decompose(u8, (utf8proc_ssize_t)k, (utf8proc_int32_t *)dst->v, need, opt);
    free(u8);
    if (got < 0 || got > need) return ca_fail(CA_E_INTERNAL, "tokenizer: NFC decomposition failed");
    got = utf8proc_normalize_utf32((utf8proc_int32_t *)dst->v, got, opt);
    if (got < 0) return ca_fail(CA_E_INTERNAL, "tokenizer: NFC composition failed");
    dst->n = (size_t)got;
    return CA_OK;
}

/* ---- html.unescape ----------------------------------------------------------------------- */

/* Named reference lookup: name is n code points; NULL unless it is an ASCII HTML5 name. */
static const ca_html_entity *entity_find(const uint32_t *name, size_t n) {
    char key[40];
    if (n == 0 || n >= sizeof key) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (name[i] >= 0x80) return NULL;
        key[i] = (char)name[i];
    }
    key[n] = 0;
    int lo = 0, hi = ca_html5_entity_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(ca_html5_entities[mid].name, key);
        if (c == 0) return &ca_html5_entities[mid];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

static bool push_cp(ca_cpbuf *d, uint32_t c) {
    if (d->n + 1 > d->cap && !ca_cpbuf_reserve(d, d->n + 1)) return false;
    d->v[d->n++] = c;
    return true;
}

/* Append a UTF-8 string known to be valid (from the generated table). */
static bool push_utf8(ca_cpbuf *d, const char *s, int len) {
    size_t bad;
    return ca_utf8_decode((const uint8_t *)s, (size_t)len, d, &bad) == CA_OK;
}

/* The code point(s) html.unescape gives for a numeric reference with value num (saturated
 * above U+10FFFF). Returns the count written to out (0 or 1). */
static int numeric_ref(uint32_t num, uint32_t *out) {
    for (int i = 0; i < ca_html_invalid_charref_count; i++)
        if (ca_html_invalid_charrefs[i][0] == num) { *out = ca_html_invalid_charrefs[i][1]; return 1; }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) { *out = 0xFFFD; return 1; }
    int lo = 0, hi = ca_html_invalid_codepoint_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (ca_html_invalid_codepoints[mid] == num) return 0;
        if (ca_html_invalid_codepoints[mid] < num) lo = mid + 1; else hi = mid - 1;
    }
    *out = num;
    return 1;
}

static int hexval(uint32_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Python's html.unescape: the pattern &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
 * scanned left to right; named references fall back to the longest HTML5 name that is a prefix
 * (of at least 2 characters), the rest of the match kept as text. */
ca_status ca_html_unescape(const uint32_t *s, size_t n, ca_cpbuf *d) {
    d->n = 0;
    if (!ca_cpbuf_reserve(d, n + 1)) return CA_E_NOMEM;
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&') { if (!push_cp(d, s[i])) return CA_E_NOMEM; i++; continue; }
        size_t j = i + 1;
        if (j < n && s[j] == '#') {
            size_t k = j + 1;
            int base = 0;
            if (k < n && s[k] >= '0' && s[k] <= '9') base = 10;
            else if (k + 1 < n && (s[k] == 'x' || s[k] == 'X') && hexval(s[k + 1]) >= 0) { base = 16; k++; }
            if (!base) { if (!push_cp(d, '&')) return CA_E_NOMEM; i++; continue; }
            uint32_t num = 0;
            for (; k < n; k++) {
                int v = base == 10 ? (s[k] >= '0' && s[k] <= '9' ? (int)(s[k] - '0') : -1) : hexval(s[k]);
                if (v < 0) break;
                num = num > 0x10FFFF ? num : num * (uint32_t)base + (uint32_t)v;  /* saturate */
            }
            if (k < n && s[k] == ';') k++;
            uint32_t c;
            if (numeric_ref(num, &c) && !push_cp(d, c)) return CA_E_NOMEM;
            i = k;
            continue;
        }
        size_t k = j;
        while (k < n && k - j < 32) {
            uint32_t c = s[k];
            if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
            k++;
        }
        if (k == j) { if (!push_cp(d, '&')) return CA_E_NOMEM; i++; continue; }
        if (k < n && s[k] == ';') k++;
        size_t len = k - j;
        const ca_html_entity *e = entity_find(s + j, len);
        size_t used = len;
        for (size_t x = len - 1; !e && x >= 2; x--) {
            e = entity_find(s + j, x);
            used = x;
        }
        if (e) {
            if (!push_utf8(d, e->value, e->value_len)) return CA_E_NOMEM;
            for (size_t q = j + used; q < k; q++)
                if (!push_cp(d, s[q])) return CA_E_NOMEM;
        } else {
            for (size_t q = i; q < k; q++)
                if (!push_cp(d, s[q])) return CA_E_NOMEM;
        }
        i = k;
    }
    return CA_OK;
}

/* ---- whitespace and case ----------------------------------------------------------------- */

bool ca_regex_isspace(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
    if (c < 0x85) return false;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool ca_py_isspace(uint32_t c) {
    /* Python: bidirectional class WS, B or S, or category Zs. That is White_Space plus the
     * information separators U+001C..U+001F. */
    return ca_regex_isspace(c) || (c >= 0x1C && c <= 0x1F);
}

/* Case_Ignorable (DerivedCoreProperties): Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter,
 * MidNumLet, Single_Quote. */
static bool case_ignorable(uint32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018:
    case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07:
    case 0xFF0E: case 0xFF1A:
        return true;
    default: break;
    }
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/* Cased: Lu, Ll, Lt, Other_Lowercase, Other_Uppercase. The Other_* characters outside Lm (which
 * is case-ignorable anyway) are ª º, those with a case mapping (Roman numerals, circled
 * letters), and the squared/negative-squared Latin capitals. */
static bool cased(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return true;
    if (c == 0xAA || c == 0xBA) return true;
    if ((c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
        return true;
    return utf8proc_tolower((utf8proc_int32_t)c) != (utf8proc_int32_t)c ||
           utf8proc_toupper((utf8proc_int32_t)c) != (utf8proc_int32_t)c;
}

/* Python's Final_Sigma rule for U+03A3 at position i of s. */
static bool final_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && case_ignorable(s[j - 1])) j--;
    if (j == 0 || !cased(s[j - 1])) return false;
    j = i + 1;
    while (j < n && case_ignorable(s[j])) j++;
    return j == n || !cased(s[j]);
}

ca_status ca_text_lower(const uint32_t *s, size_t n, ca_cpbuf *d) {
    d->n = 0;
    if (!ca_cpbuf_reserve(d, n + 1)) return CA_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z') c += 32;
        } else if (c == 0x130) {  /* the one unconditional multi-character lowercase mapping */
            if (!push_cp(d, 'i')) return CA_E_NOMEM;
            c = 0x307;
        } else if (c == 0x3A3) {
            c = final_sigma(s, n, i) ? 0x3C2 : 0x3C3;
        } else {
            c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        }
        if (!push_cp(d, c)) return CA_E_NOMEM;
    }
    return CA_OK;
}

/* strip(), re.sub(r'\s+', ' '), strip(): runs of whitespace become one space, none at the ends. */
static ca_status collapse_space(const uint32_t *s, size_t n, ca_cpbuf *d) {
    d->n = 0;
    if (!ca_cpbuf_reserve(d, n + 1)) return CA_E_NOMEM;
    bool pending = false;
    for (size_t i = 0; i < n; i++) {
        if (ca_py_isspace(s[i])) { pending = d->n > 0; continue; }
        if (pending) d->v[d->n++] = ' ';
        pending = false;
        d->v[d->n++] = s[i];
    }
    return CA_OK;
}

static bool has_amp(const ca_cpbuf *b) {
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i] == '&') return true;
    return false;
}

static void swap_buf(ca_cpbuf *a, ca_cpbuf *b) {
    ca_cpbuf t = *a;
    *a = *b;
    *b = t;
}

ca_status ca_text_clean(const ca_cpbuf *in, ca_cpbuf *out, ca_cpbuf *tmp) {
    ca_status st = ca_text_nfc(in->v, in->n, out);
    for (int pass = 0; pass < 2 && st == CA_OK; pass++) {
        if (!has_amp(out)) break;
        st = ca_html_unescape(out->v, out->n, tmp);
        swap_buf(out, tmp);
    }
    if (st == CA_OK) st = collapse_space(out->v, out->n, tmp);
    if (st == CA_OK) st = ca_text_lower(tmp->v, tmp->n, out);
    return st;
}

/* ---- pre-tokeniser ----------------------------------------------------------------------- */

/* Character classes of the pattern under the `regex` module with IGNORECASE. U+0345 (combining
 * ypogegrammeni) is the one code point whose case variants are letters while it is not: with
 * IGNORECASE it counts as "in \p{L}" for the negated class and as not in it for [\p{L}]+, so
 * the reference skips it like whitespace. */
enum { CL_SPACE, CL_LETTER, CL_NUMBER, CL_OTHER };

static int char_class(uint32_t c) {
    if (c < 0x80) {
        if ((c | 32) >= 'a' && (c | 32) <= 'z') return CL_LETTER;
        if (c >= '0' && c <= '9') return CL_NUMBER;
        return ca_regex_isspace(c) ? CL_SPACE : CL_OTHER;
    }
    if (c == 0x345 || ca_regex_isspace(c)) return CL_SPACE;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    if (k == UTF8PROC_CATEGORY_CN) {  /* unassigned for utf8proc: maybe newer than its tables */
        int lo = 0, hi = ca_unicode_extra_count - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (c < ca_unicode_extra[mid].lo) hi = mid - 1;
            else if (c > ca_unicode_extra[mid].hi) lo = mid + 1;
            else return ca_unicode_extra[mid].cls == 'L' ? CL_LETTER : CL_NUMBER;
        }
        return CL_OTHER;
    }
    switch (k) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CL_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CL_NUMBER;
    default:
        return CL_OTHER;
    }
}

/* Case-insensitive match of the ASCII literal lit at s[p..): simple case folding, under which
 * U+017F (long s) equals 's' and U+212A (Kelvin) equals 'k'. */
static size_t match_lit(const uint32_t *s, size_t n, size_t p, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++) {
        if (p + k >= n) return 0;
        uint32_t c = s[p + k], l = (uint32_t)(unsigned char)lit[k];
        if (c == l) continue;
        if (c < 0x80 && l >= 'a' && l <= 'z' && (c | 32) == l) continue;
        if ((c == 0x17F && l == 's') || (c == 0x212A && l == 'k')) continue;
        return 0;
    }
    return k;
}

int ca_pretok_next(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end) {
    static const char *const SPECIAL[] = {"<|startoftext|>", "<|endoftext|>"};
    static const char *const CONTRACTION[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    size_t p = *pos;
    while (p < n) {
        uint32_t c = s[p];
        size_t m = 0;
        if (c == '<') {
            for (int k = 0; k < 2 && !m; k++) m = match_lit(s, n, p, SPECIAL[k]);
        } else if (c == '\'') {
            for (int k = 0; k < 7 && !m; k++) m = match_lit(s, n, p, CONTRACTION[k]);
        }
        if (m) { *start = p; *end = *pos = p + m; return 1; }
        int cl = char_class(c);
        if (cl == CL_SPACE) { p++; continue; }
        size_t q = p + 1;
        if (cl != CL_NUMBER)  /* letters and "other" runs are greedy; numbers are single */
            while (q < n && char_class(s[q]) == cl) q++;
        *start = p; *end = *pos = q;
        return 1;
    }
    *pos = n;
    return 0;
}
