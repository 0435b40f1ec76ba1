/* tokenizer.c — CLIP's byte-level BPE tokenizer: vocabulary from the OpenAI merges file (gzip or
 * plain) or Hugging Face vocab.json + merges.txt, BPE by merge rank with a per-handle cache, and
 * the model-input rows. Text cleaning and pre-tokenisation are in clean.c. */
#include "text/text.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CLIP_MERGES 48894          /* merge lines 1 .. 49152-256-2 of the file */
#define MAX_VOCAB_FILE (64u << 20) /* refuse larger (decompressed) vocabulary files */
#define CACHE_MAX_ENTRIES (1u << 20)

/* ---- a string -> int32 hash map (vocabulary, used while loading) ------------------------- */

typedef struct {
    char **keys;  /* owned copies */
    size_t *lens;
    int32_t *vals;
    size_t cap, n;
} strmap;

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static void strmap_free(strmap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys ? m->keys[i] : NULL);
    free(m->keys); free(m->lens); free(m->vals);
    memset(m, 0, sizeof *m);
}

static bool strmap_init(strmap *m, size_t expect) {
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < expect * 2) cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->lens = calloc(cap, sizeof *m->lens);
    m->vals = calloc(cap, sizeof *m->vals);
    m->cap = cap;
    if (!m->keys || !m->lens || !m->vals) { strmap_free(m); return false; }
    return true;
}

static size_t strmap_slot(const strmap *m, const char *k, size_t len) {
    size_t i = (size_t)hash_bytes(k, len) & (m->cap - 1);
    while (m->keys[i] && !(m->lens[i] == len && memcmp(m->keys[i], k, len) == 0)) i = (i + 1) & (m->cap - 1);
    return i;
}

/* Insert or overwrite (later entries win, as a Python dict built from a list). */
static bool strmap_put(strmap *m, const char *k, size_t len, int32_t v) {
    size_t i = strmap_slot(m, k, len);
    if (!m->keys[i]) {
        if ((m->n + 1) * 2 > m->cap) return false;  /* sized up front; callers never exceed it */
        m->keys[i] = malloc(len + 1);
        if (!m->keys[i]) return false;
        memcpy(m->keys[i], k, len);
        m->keys[i][len] = 0;
        m->lens[i] = len;
        m->n++;
    }
    m->vals[i] = v;
    return true;
}

static int32_t strmap_get(const strmap *m, const char *k, size_t len) {
    size_t i = strmap_slot(m, k, len);
    return m->keys[i] ? m->vals[i] : -1;
}

/* ---- the handle -------------------------------------------------------------------------- */

typedef struct {       /* merge table entry: (left, right) symbol ids -> rank and result */
    uint64_t key;      /* left << 32 | right, UINT64_MAX when empty */
    int32_t rank, result;
} merge_slot;

typedef struct {       /* BPE cache entry: piece bytes -> ids, both in arenas */
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_len;
    bool used;
} cache_slot;

struct ca_tokenizer {
    int32_t byte_id[256];     /* symbol id of byte b at the start/middle of a word */
    int32_t byte_w_id[256];   /* ... of byte b ending a word (with "</w>") */
    int32_t sot_id, eot_id;
    merge_slot *merges;
    size_t merge_cap;
    /* BPE cache */
    cache_slot *cache;
    size_t cache_cap, cache_n;
    uint8_t *ckeys; size_t ckeys_n, ckeys_cap;
    int32_t *cids; size_t cids_n, cids_cap;
    /* scratch */
    ca_cpbuf raw, clean, tmp;
    uint8_t *piece; size_t piece_cap;
    int32_t *word; size_t word_cap;
    int32_t *row; size_t row_cap;
};

/* GPT-2/CLIP byte-level mapping: printable Latin-1 bytes map to themselves, the other 68 bytes
 * to U+0100 + n in byte order. Vocabulary order is the printable ones first. */
static void byte_symbols(uint32_t cp_of_byte[256], int order[256]) {
    int k = 0, extra = 0;
    bool printable[256] = {false};
    for (int b = 0; b < 256; b++)
        printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    for (int b = 0; b < 256; b++)
        if (printable[b]) { cp_of_byte[b] = (uint32_t)b; order[k++] = b; }
    for (int b = 0; b < 256; b++)
        if (!printable[b]) { cp_of_byte[b] = 256u + (uint32_t)extra++; order[k++] = b; }
}

static int32_t merge_lookup(const ca_tokenizer *t, int32_t a, int32_t b, int32_t *result) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = (size_t)(ca_hash64(key) & (t->merge_cap - 1));
    while (t->merges[i].key != UINT64_MAX) {
        if (t->merges[i].key == key) { *result = t->merges[i].result; return t->merges[i].rank; }
        i = (i + 1) & (t->merge_cap - 1);
    }
    return -1;
}

static void merge_put(ca_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t result) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = (size_t)(ca_hash64(key) & (t->merge_cap - 1));
    while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key) i = (i + 1) & (t->merge_cap - 1);
    t->merges[i] = (merge_slot){key, rank, result};  /* a repeated pair takes the later rank */
}

void ca_tokenizer_free(ca_tokenizer *t) {
    if (!t) return;
    free(t->merges); free(t->cache); free(t->ckeys); free(t->cids);
    ca_cpbuf_free(&t->raw); ca_cpbuf_free(&t->clean); ca_cpbuf_free(&t->tmp);
    free(t->piece); free(t->word); free(t->row);
    free(t);
}

/* One merge line split on whitespace: the two symbols as [a, a+alen) and [b, b+blen). */
typedef struct { const char *a, *b; size_t alen, blen; } merge_line;

/* Python's str.split() separators that can occur in a UTF-8 merges file line (ASCII ones). */
static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1C && c <= 0x1F); }

/* Split text (NUL-free, already UTF-8 checked) into lines 1..CLIP_MERGES, each with exactly two
 * whitespace-separated symbols. */
static ca_status split_merges(const char *text, size_t len, const char *name, merge_line *out) {
    size_t p = 0, line = 0;
    int got = 0;
    while (p <= len && got < CLIP_MERGES) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - text) : len;
        if (line >= 1) {
            const char *f[3];
            size_t fl[3];
            int nf = 0;
            size_t q = p;
            while (q < e && nf < 3) {
                while (q < e && is_ws(text[q])) q++;
                if (q >= e) break;
                size_t s0 = q;
                while (q < e && !is_ws(text[q])) q++;
                f[nf] = text + s0; fl[nf] = q - s0; nf++;
            }
            if (nf != 2)
                return ca_fail(CA_E_FORMAT, "%s: line %zu: expected two symbols separated by a space", name, line + 1);
            out[got++] = (merge_line){f[0], f[1], fl[0], fl[1]};
        }
        line++;
        if (!nl) break;
        p = e + 1;
    }
    if (got < CLIP_MERGES)
        return ca_fail(CA_E_FORMAT, "%s: only %d merge lines, CLIP's vocabulary needs %d", name, got, CLIP_MERGES);
    return CA_OK;
}

static ca_tokenizer *tok_alloc(void) {
    ca_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { ca_fail(CA_E_NOMEM, "tokenizer: out of memory"); return NULL; }
    t->merge_cap = 1u << 17;  /* > 2 x 48894 */
    t->merges = malloc(t->merge_cap * sizeof *t->merges);
    if (!t->merges) { free(t); ca_fail(CA_E_NOMEM, "tokenizer: out of memory"); return NULL; }
    for (size_t i = 0; i < t->merge_cap; i++) t->merges[i].key = UINT64_MAX;
    return t;
}

/* Fill the byte symbols, merge table and special ids from a vocabulary map. */
static ca_status build_tables(ca_tokenizer *t, const strmap *vocab, const merge_line *ml, const char *name) {
    uint32_t cp[256];
    int order[256];
    byte_symbols(cp, order);
    for (int b = 0; b < 256; b++) {
        char s[16];
        int n = ca_utf8_put(cp[b], (uint8_t *)s);
        memcpy(s + n, "</w>", 4);
        t->byte_id[b] = strmap_get(vocab, s, (size_t)n);
        t->byte_w_id[b] = strmap_get(vocab, s, (size_t)n + 4);
        if (t->byte_id[b] < 0 || t->byte_w_id[b] < 0)
            return ca_fail(CA_E_FORMAT, "%s: the vocabulary lacks the byte symbol for byte 0x%02X", name, b);
    }
    t->sot_id = strmap_get(vocab, "<|startoftext|>", 15);
    t->eot_id = strmap_get(vocab, "<|endoftext|>", 13);
    if (t->sot_id < 0 || t->eot_id < 0) return ca_fail(CA_E_FORMAT, "%s: the vocabulary lacks <|startoftext|> or <|endoftext|>", name);
    char buf[1024];
    for (int r = 0; r < CLIP_MERGES; r++) {
        const merge_line *m = &ml[r];
        /* A merge whose parts are not vocabulary symbols can never apply: words only ever hold
         * vocabulary symbols. Its result, however, must be one. */
        int32_t a = strmap_get(vocab, m->a, m->alen), b = strmap_get(vocab, m->b, m->blen);
        if (m->alen + m->blen > sizeof buf) return ca_fail(CA_E_FORMAT, "%s: merge %d is too long", name, r + 1);
        memcpy(buf, m->a, m->alen);
        memcpy(buf + m->alen, m->b, m->blen);
        int32_t res = strmap_get(vocab, buf, m->alen + m->blen);
        if (res < 0) return ca_fail(CA_E_FORMAT, "%s: merge %d ('%.*s %.*s') gives a symbol missing from the vocabulary",
                                    name, r + 1, (int)m->alen, m->a, (int)m->blen, m->b);
        if (a >= 0 && b >= 0) merge_put(t, a, b, r, res);
    }
    return CA_OK;
}

/* Read a whole file through zlib (gzip or plain), at most MAX_VOCAB_FILE bytes. */
static char *read_gz(const char *path, size_t *len, ca_status *st) {
    struct stat sb;
    if (stat(path, &sb) != 0) { *st = ca_fail(CA_E_IO, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    if (S_ISDIR(sb.st_mode)) { *st = ca_fail(CA_E_IO, "%s: is a directory, not a vocabulary file", path); return NULL; }
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) { *st = ca_fail(CA_E_IO, "%s: cannot open: %s", path, strerror(errno ? errno : EIO)); return NULL; }
    size_t cap = 1u << 20, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { gzclose(gz); *st = ca_fail(CA_E_NOMEM, "%s: out of memory", path); return NULL; }
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_VOCAB_FILE) { free(buf); gzclose(gz); *st = ca_fail(CA_E_FORMAT, "%s: larger than %u MiB once decompressed", path, MAX_VOCAB_FILE >> 20); return NULL; }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) { free(buf); gzclose(gz); *st = ca_fail(CA_E_NOMEM, "%s: out of memory", path); return NULL; }
            buf = nb;
        }
        int got = gzread(gz, buf + n, (unsigned)(cap - n));
        if (got < 0) {
            int ez;
            const char *msg = gzerror(gz, &ez);
            *st = ca_fail(CA_E_FORMAT, "%s: %s", path, msg && *msg ? msg : "decompression failed");
            free(buf); gzclose(gz);
            return NULL;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    int ez = Z_OK;
    const char *msg = gzerror(gz, &ez);
    if (ez != Z_OK && ez != Z_BUF_ERROR) {
        *st = ca_fail(CA_E_FORMAT, "%s: %s", path, msg ? msg : "decompression failed");
        free(buf); gzclose(gz);
        return NULL;
    }
    gzclose(gz);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The vocabulary file must be UTF-8 without NUL bytes, as the reference decodes it. */
static ca_status check_text(const char *buf, size_t len, const char *name) {
    if (memchr(buf, 0, len)) return ca_fail(CA_E_FORMAT, "%s: contains a NUL byte", name);
    ca_cpbuf tmp = {0};
    size_t bad = 0;
    ca_status st = ca_utf8_decode((const uint8_t *)buf, len, &tmp, &bad);
    ca_cpbuf_free(&tmp);
    if (st == CA_E_FORMAT) return ca_fail(CA_E_FORMAT, "%s: invalid UTF-8 at byte offset %zu", name, bad);
    return st;
}

ca_tokenizer *ca_tokenizer_load(const char *bpe_path, ca_status *st_out) {
    CA_ENTER();
    ca_status st_dummy, *st = st_out ? st_out : &st_dummy;
    if (!bpe_path) { *st = ca_fail(CA_E_ARG, "ca_tokenizer_load: no path"); return NULL; }
    size_t len = 0;
    char *text = read_gz(bpe_path, &len, st);
    if (!text) return NULL;
    ca_tokenizer *t = NULL;
    strmap vocab = {0};
    merge_line *ml = malloc(CLIP_MERGES * sizeof *ml);
    if (!ml) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", bpe_path); goto done; }
    if ((*st = check_text(text, len, bpe_path)) != CA_OK) goto done;
    if ((*st = split_merges(text, len, bpe_path, ml)) != CA_OK) goto done;
    /* The reference vocabulary: 256 byte symbols in byte-map order, the same with "</w>", one
     * entry per merge (the concatenation), then the two special tokens; ids are positions. */
    if (!strmap_init(&vocab, 512 + CLIP_MERGES + 2)) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", bpe_path); goto done; }
    uint32_t cp[256];
    int order[256];
    byte_symbols(cp, order);
    int32_t id = 0;
    char buf[1024];
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 256; k++) {
            int n = ca_utf8_put(cp[order[k]], (uint8_t *)buf);
            if (w) { memcpy(buf + n, "</w>", 4); n += 4; }
            if (!strmap_put(&vocab, buf, (size_t)n, id++)) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", bpe_path); goto done; }
        }
    for (int r = 0; r < CLIP_MERGES; r++) {
        size_t n = ml[r].alen + ml[r].blen;
        if (n > sizeof buf) { *st = ca_fail(CA_E_FORMAT, "%s: merge %d is too long", bpe_path, r + 1); goto done; }
        memcpy(buf, ml[r].a, ml[r].alen);
        memcpy(buf + ml[r].alen, ml[r].b, ml[r].blen);
        if (!strmap_put(&vocab, buf, n, id++)) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", bpe_path); goto done; }
    }
    if (!strmap_put(&vocab, "<|startoftext|>", 15, id++) || !strmap_put(&vocab, "<|endoftext|>", 13, id++)) {
        *st = ca_fail(CA_E_NOMEM, "%s: out of memory", bpe_path);
        goto done;
    }
    if (!(t = tok_alloc())) { *st = CA_E_NOMEM; goto done; }
    if ((*st = build_tables(t, &vocab, ml, bpe_path)) != CA_OK) { ca_tokenizer_free(t); t = NULL; goto done; }
    *st = CA_OK;
done:
    strmap_free(&vocab);
    free(ml);
    free(text);
    return t;
}

ca_tokenizer *ca_tokenizer_load_hf(const char *vocab_json, const char *merges_txt, ca_status *st_out) {
    CA_ENTER();
    ca_status st_dummy, *st = st_out ? st_out : &st_dummy;
    if (!vocab_json || !merges_txt) { *st = ca_fail(CA_E_ARG, "ca_tokenizer_load_hf: missing path"); return NULL; }
    ca_tokenizer *t = NULL;
    strmap vocab = {0};
    cJSON *root = NULL;
    merge_line *ml = NULL;
    size_t jlen = 0, mlen = 0;
    char *jtext = ca_read_file(vocab_json, &jlen, st);
    char *mtext = jtext ? read_gz(merges_txt, &mlen, st) : NULL;
    if (!jtext || !mtext) goto done;
    if ((*st = check_text(jtext, jlen, vocab_json)) != CA_OK) goto done;
    if ((*st = check_text(mtext, mlen, merges_txt)) != CA_OK) goto done;
    root = cJSON_ParseWithLength(jtext, jlen);
    if (!cJSON_IsObject(root)) { *st = ca_fail(CA_E_FORMAT, "%s: not a JSON object of token -> id", vocab_json); goto done; }
    int count = cJSON_GetArraySize(root);
    if (!strmap_init(&vocab, (size_t)count + 1)) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", vocab_json); goto done; }
    for (cJSON *e = root->child; e; e = e->next) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!e->string || v < 0 || v > INT32_MAX - 1 || v != (double)(int32_t)v) {
            *st = ca_fail(CA_E_FORMAT, "%s: entry '%.40s' is not a non-negative integer id", vocab_json, e->string ? e->string : "?");
            goto done;
        }
        if (!strmap_put(&vocab, e->string, strlen(e->string), (int32_t)v)) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", vocab_json); goto done; }
    }
    /* Hugging Face strips the file before splitting it into lines (line 0 is "#version"). */
    ml = malloc(CLIP_MERGES * sizeof *ml);
    if (!ml) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", merges_txt); goto done; }
    size_t lead = 0;
    while (lead < mlen && (is_ws(mtext[lead]) || mtext[lead] == '\n')) lead++;
    if ((*st = split_merges(mtext + lead, mlen - lead, merges_txt, ml)) != CA_OK) goto done;
    if (!(t = tok_alloc())) { *st = CA_E_NOMEM; goto done; }
    if ((*st = build_tables(t, &vocab, ml, merges_txt)) != CA_OK) { ca_tokenizer_free(t); t = NULL; goto done; }
    *st = CA_OK;
done:
    cJSON_Delete(root);
    strmap_free(&vocab);
    free(ml);
    free(jtext);
    free(mtext);
    return t;
}

/* ---- BPE --------------------------------------------------------------------------------- */

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 4 / elem) return false;
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

/* BPE of one piece (bytes p[0..n), n >= 1) into w; returns the symbol count. The reference,
 * kept as the oracle: repeatedly take the adjacent pair of lowest rank and merge all its
 * occurrences left to right, until no pair has a rank or one symbol is left. O(n^2). */
static size_t bpe_naive(const ca_tokenizer *t, const uint8_t *p, size_t n, int32_t *w) {
    for (size_t i = 0; i + 1 < n; i++) w[i] = t->byte_id[p[i]];
    w[n - 1] = t->byte_w_id[p[n - 1]];
    while (n > 1) {
        int32_t best = INT32_MAX, first = 0, second = 0, res = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t r2, rk = merge_lookup(t, w[i], w[i + 1], &r2);
            if (rk >= 0 && rk < best) { best = rk; first = w[i]; second = w[i + 1]; res = r2; }
        }
        if (best == INT32_MAX) break;
        size_t o = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && w[i] == first && w[i + 1] == second) { w[o++] = res; i += 2; }
            else w[o++] = w[i++];
        }
        n = o;
    }
    return n;
}

/* The same result in O(n log n) for long pieces: a heap of (rank, position) over a linked
 * list. One "round" pops every live pair of the current lowest rank in left-to-right order;
 * pairs created during the round wait until it ends, exactly as the reference only looks at
 * them in its next pass. Ranks identify pairs (one rank per merge), so an entry is live when
 * its position still holds a pair of that rank. */
typedef struct { int32_t rank; int32_t pos; } heap_ent;

static bool heap_less(heap_ent a, heap_ent b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
    size_t i = (*n)++;
    while (i > 0 && heap_less(e, h[(i - 1) / 2])) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c])) c++;
        if (!heap_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Returns the symbol count, or (size_t)-1 when out of memory. */
static size_t bpe_heap(const ca_tokenizer *t, const uint8_t *p, size_t n, int32_t *w) {
    if (n > INT32_MAX / 4) return (size_t)-1;
    int32_t *nx = malloc(n * sizeof *nx), *pv = malloc(n * sizeof *pv);
    /* The heap keeps stale entries: n - 1 initial pairs plus at most 2 per merge (< n merges). */
    heap_ent *h = malloc(3 * n * sizeof *h), *pend = malloc(2 * n * sizeof *pend);
    size_t hn = 0, pn = 0, out = (size_t)-1;
    if (!nx || !pv || !h || !pend) goto done;
    for (size_t i = 0; i < n; i++) {
        w[i] = i + 1 < n ? t->byte_id[p[i]] : t->byte_w_id[p[i]];
        nx[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        pv[i] = (int32_t)i - 1;
    }
    int32_t res = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t rk = merge_lookup(t, w[i], w[i + 1], &res);
        if (rk >= 0) heap_push(h, &hn, (heap_ent){rk, (int32_t)i});
    }
    while (hn) {
        int32_t round = h[0].rank;
        while (hn && h[0].rank == round) {
            heap_ent e = heap_pop(h, &hn);
            int32_t a = e.pos, b = w[a] >= 0 ? nx[a] : -1;
            if (b < 0 || merge_lookup(t, w[a], w[b], &res) != round) continue;  /* stale */
            w[a] = res;
            w[b] = -1;  /* dead */
            nx[a] = nx[b];
            if (nx[a] >= 0) pv[nx[a]] = a;
            if (pv[a] >= 0) pend[pn++] = (heap_ent){0, pv[a]};
            if (nx[a] >= 0) pend[pn++] = (heap_ent){0, a};
        }
        for (size_t k = 0; k < pn; k++) {  /* the pairs this round created join the heap */
            int32_t a = pend[k].pos;
            if (w[a] < 0 || nx[a] < 0) continue;
            int32_t rk = merge_lookup(t, w[a], w[nx[a]], &res);
            if (rk >= 0) heap_push(h, &hn, (heap_ent){rk, a});
        }
        pn = 0;
    }
    out = 0;
    for (int32_t i = 0; i >= 0; i = nx[i]) w[out++] = w[i];
done:
    free(nx); free(pv); free(h); free(pend);
    return out;
}

#define BPE_HEAP_MIN 48  /* shorter pieces: the simple loop is faster */

size_t ca_bpe_piece(const ca_tokenizer *t, const uint8_t *p, size_t n, int32_t *w, int method) {
    if (method == 1 || (method == 0 && n < BPE_HEAP_MIN)) return bpe_naive(t, p, n, w);
    return bpe_heap(t, p, n, w);
}

static void cache_reset(ca_tokenizer *t) {
    if (t->cache) memset(t->cache, 0, t->cache_cap * sizeof *t->cache);
    t->cache_n = t->ckeys_n = t->cids_n = 0;
}

/* Ids of one piece: from the cache, or by BPE (then cached). *ids points into the cache arena
 * and stays valid until the next call. Returns the count, or -1 when out of memory. */
static long piece_ids(ca_tokenizer *t, const uint8_t *p, size_t n, const int32_t **ids) {
    if (n == 15 && memcmp(p, "<|startoftext|>", 15) == 0) { *ids = &t->sot_id; return 1; }
    if (n == 13 && memcmp(p, "<|endoftext|>", 13) == 0) { *ids = &t->eot_id; return 1; }
    if (!t->cache) {
        t->cache_cap = 1u << 12;
        t->cache = calloc(t->cache_cap, sizeof *t->cache);
        if (!t->cache) return -1;
    }
    uint64_t h = hash_bytes(p, n);
    size_t i = (size_t)h & (t->cache_cap - 1);
    while (t->cache[i].used) {
        cache_slot *c = &t->cache[i];
        if (c->hash == h && c->key_len == n && memcmp(t->ckeys + c->key_off, p, n) == 0) {
            *ids = t->cids + c->ids_off;
            return c->ids_len;
        }
        i = (i + 1) & (t->cache_cap - 1);
    }
    if (!grow((void **)&t->word, &t->word_cap, n, sizeof *t->word)) return -1;
    size_t m = ca_bpe_piece(t, p, n, t->word, 0);
    if (m == (size_t)-1) return -1;
    /* Very long pieces are not worth caching; a full cache starts over (results never depend
     * on the cache, only the speed does). */
    if (n > (1u << 20)) { *ids = t->word; return (long)m; }
    if (t->cache_n >= CACHE_MAX_ENTRIES || t->ckeys_n + n > (256u << 20) || t->cids_n + m > (64u << 20)) {
        cache_reset(t);
        i = (size_t)h & (t->cache_cap - 1);
    }
    if ((t->cache_n + 1) * 2 > t->cache_cap) {  /* grow the table and rehash */
        size_t nc = t->cache_cap * 2;
        cache_slot *nt = calloc(nc, sizeof *nt);
        if (!nt) return -1;
        for (size_t k = 0; k < t->cache_cap; k++) {
            if (!t->cache[k].used) continue;
            size_t j = (size_t)t->cache[k].hash & (nc - 1);
            while (nt[j].used) j = (j + 1) & (nc - 1);
            nt[j] = t->cache[k];
        }
        free(t->cache);
        t->cache = nt;
        t->cache_cap = nc;
        i = (size_t)h & (nc - 1);
        while (t->cache[i].used) i = (i + 1) & (nc - 1);
    }
    if (!grow((void **)&t->ckeys, &t->ckeys_cap, t->ckeys_n + n, 1) ||
        !grow((void **)&t->cids, &t->cids_cap, t->cids_n + m, sizeof *t->cids)) return -1;
    memcpy(t->ckeys + t->ckeys_n, p, n);
    memcpy(t->cids + t->cids_n, t->word, m * sizeof *t->word);
    t->cache[i] = (cache_slot){h, (uint32_t)t->ckeys_n, (uint32_t)n, (uint32_t)t->cids_n, (uint32_t)m, true};
    t->ckeys_n += n;
    t->cids_n += m;
    t->cache_n++;
    *ids = t->cids + t->cache[i].ids_off;
    return (long)m;
}

int ca_tokenize_n(ca_tokenizer *t, const char *text, size_t len, int32_t *ids, int max_ids, ca_status *st_out) {
    CA_ENTER();
    ca_status st_dummy, *st = st_out ? st_out : &st_dummy;
    if (!t || (!text && len) || max_ids < 0 || (max_ids > 0 && !ids)) {
        *st = ca_fail(CA_E_ARG, "ca_tokenize: invalid argument");
        return -1;
    }
    t->raw.n = 0;
    size_t bad = 0;
    ca_status s = ca_utf8_decode((const uint8_t *)(text ? text : ""), len, &t->raw, &bad);
    if (s == CA_E_FORMAT) { *st = ca_fail(CA_E_FORMAT, "invalid UTF-8 at byte offset %zu", bad); return -1; }
    if (s != CA_OK) { *st = s; return -1; }
    if ((s = ca_text_clean(&t->raw, &t->clean, &t->tmp)) != CA_OK) { *st = s; return -1; }
    const uint32_t *c = t->clean.v;
    size_t n = t->clean.n, pos = 0, a, b;
    long count = 0;
    while (ca_pretok_next(c, n, &pos, &a, &b)) {
        size_t need;
        if (!ca_mul_size(b - a, 4, &need) || !grow((void **)&t->piece, &t->piece_cap, need, 1)) {
            *st = ca_fail(CA_E_NOMEM, "ca_tokenize: out of memory");
            return -1;
        }
        size_t m = 0;
        for (size_t k = a; k < b; k++) m += (size_t)ca_utf8_put(c[k], t->piece + m);
        const int32_t *pid;
        long k = piece_ids(t, t->piece, m, &pid);
        if (k < 0) { *st = ca_fail(CA_E_NOMEM, "ca_tokenize: out of memory"); return -1; }
        for (long q = 0; q < k; q++, count++) {
            if (count >= INT_MAX) { *st = ca_fail(CA_E_RANGE, "ca_tokenize: more than %d tokens", INT_MAX); return -1; }
            if (count < max_ids) ids[count] = pid[q];
        }
    }
    *st = CA_OK;
    return (int)count;
}

int ca_tokenize(ca_tokenizer *t, const char *text, int32_t *ids, int max_ids, ca_status *st) {
    CA_ENTER();
    return ca_tokenize_n(t, text, text ? strlen(text) : 0, ids, max_ids, st);
}

int ca_tokenizer_sot(const ca_tokenizer *t) { return t ? t->sot_id : -1; }
int ca_tokenizer_eot(const ca_tokenizer *t) { return t ? t->eot_id : -1; }

ca_status ca_tokenize_row(ca_tokenizer *t, const char *text, size_t len, int context, int truncate,
                          int64_t *out, int *n_ids) {
    CA_ENTER();
    if (!t || !out || context < 2) return ca_fail(CA_E_ARG, "ca_tokenize_row: context must be >= 2 (got %d)", context);
    size_t need = (size_t)context;
    if (!grow((void **)&t->row, &t->row_cap, need, sizeof *t->row)) return ca_fail(CA_E_NOMEM, "ca_tokenize_row: out of memory");
    ca_status st;
    int k = ca_tokenize_n(t, text, len, t->row, context - 1, &st);
    if (k < 0) return st;
    if (n_ids) *n_ids = k;
    if (k + 2 > context && !truncate)
        return ca_fail(CA_E_RANGE, "text has %d tokens, %d with start/end, more than the context length %d", k, k + 2, context);
    out[0] = t->sot_id;
    int kept = k + 2 > context ? context - 2 : k;
    for (int i = 0; i < kept; i++) out[1 + i] = t->row[i];
    out[1 + kept] = t->eot_id;
    for (int i = kept + 2; i < context; i++) out[i] = 0;
    return CA_OK;
}

ca_status ca_tokenize_batch(ca_tokenizer *t, const char *const *texts, int n, int context, int truncate, int64_t *out) {
    CA_ENTER();
    if (!t || n < 0 || (n > 0 && (!texts || !out)) || context < 2)
        return ca_fail(CA_E_ARG, "ca_tokenize_batch: invalid argument (n %d, context %d)", n, context);
    for (int i = 0; i < n; i++) {
        if (!texts[i]) return ca_fail(CA_E_ARG, "ca_tokenize_batch: text %d is NULL", i);
        ca_status st = ca_tokenize_row(t, texts[i], strlen(texts[i]), context, truncate, out + (size_t)i * (size_t)context, NULL);
        if (st != CA_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ca_last_error());
            return ca_fail(st, "text %d: %s", i, msg);
        }
    }
    return CA_OK;
}
