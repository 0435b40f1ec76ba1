/* torchfile.c — PyTorch checkpoints without Python: zip archives (`torch.save` >= 1.6 and
 * TorchScript `torch.jit.save`, entries stored or deflated, ZIP64 too) and the legacy pre-1.6
 * `torch.save` stream, read through a restricted pickle machine. The machine only builds data
 * (dicts, lists, tuples, strings, numbers, tensors, TorchScript modules as attribute dicts);
 * every global outside a short list is refused before anything happens, and nothing is ever
 * executed or imported. Every size, offset, index and memo reference from the file is checked.
 * Not here: choosing a reader by content (tensorfile.c) or the model's tensor names (model/).
 */
#include "io/torchfile.h"

#include <string.h>
#include <zlib.h>

/* Limits that no real checkpoint comes near but that keep hostile input cheap. */
#define MAX_STACK (1 << 20)          /* pickle stack entries */
#define MAX_MEMO (1 << 22)           /* memo index */
#define MAX_DEPTH 64                 /* nesting of state dicts / modules when naming tensors */
#define MAX_NAME 1024                /* bytes of a dotted tensor name */
#define MAX_ENTRIES (1 << 22)        /* zip entries */

/* ======================================================================================== */
/* pickle values                                                                            */
/* ======================================================================================== */

typedef enum {
    V_NONE, V_BOOL, V_INT, V_BIGINT, V_FLOAT, V_STR, V_BYTES, V_TUPLE, V_LIST, V_DICT,
    V_GLOBAL, V_STORAGE, V_TENSOR, V_OBJECT
} vkind;

/* The only callables a checkpoint may name. Anything else is refused at GLOBAL. */
typedef enum {
    G_ODICT, G_REBUILD_V2, G_REBUILD, G_PARAM, G_PARAM_STATE, G_STORAGE, G_TSCLASS, G_CODECS
} gkind;

typedef struct val val;
struct val {
    vkind kind;
    int seen;                                    /* naming pass: container already visited */
    union {
        int64_t i;                               /* V_BOOL, V_INT */
        double f;                                /* V_FLOAT */
        struct { char *s; size_t n; } str;       /* V_STR (UTF-8), V_BYTES, V_BIGINT (LE bytes) */
        struct { val **a; size_t n, cap; } seq;  /* V_TUPLE, V_LIST */
        struct { val **k, **v; size_t n, cap; } map; /* V_DICT */
        struct { gkind g; ca_dtype dt; } glob;   /* V_GLOBAL */
        struct {                                 /* V_STORAGE: a persistent id, resolved later */
            ca_dtype dt;
            char *key;
            int64_t numel;                       /* elements the id announces */
            int has_view; int64_t view_off, view_numel; /* legacy view of a root storage */
            const uint8_t *data; size_t nbytes;  /* once resolved */
        } stg;
        struct {                                 /* V_TENSOR */
            val *stg;
            int64_t off;
            int ndim;
            int64_t size[CA_MAX_DIMS], stride[CA_MAX_DIMS];
        } ten;
        struct { val *attrs; } obj;              /* V_OBJECT: a TorchScript module; attrs a V_DICT or NULL */
    } u;
};

typedef struct {
    const char *path;
    val **all; size_t nall, capall;              /* every value, freed together */
    size_t budget;                               /* bytes the machine may still allocate */
    val **stack; size_t sp, capst;
    size_t *marks; size_t nmarks, capmarks;
    val **memo; size_t capmemo, memo_count;
    val **stgs; size_t nstgs, capstgs;           /* every storage persistent id, for resolution */
    int saw_quickgelu, saw_gelu;                 /* TorchScript module classes named QuickGELU / GELU */
} pm;

static ca_status fmt_err(pm *M, const char *what, size_t pos) {
    return ca_fail(CA_E_FORMAT, "%s: pickle: %s at byte %zu", M->path, what, pos);
}

static void *pm_alloc(pm *M, size_t n) {
    if (n > M->budget) return NULL;
    void *p = calloc(1, n ? n : 1);
    if (p) M->budget -= n;
    return p;
}

/* Grow *arr (elements of size sz) to hold at least need; false on the budget or malloc. */
static bool pm_grow(pm *M, void **arr, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / sz) return false;
        nc *= 2;
    }
    size_t add = (nc - *cap) * sz;
    if (add > M->budget) return false;
    void *a = realloc(*arr, nc * sz);
    if (!a) return false;
    memset((char *)a + *cap * sz, 0, (nc - *cap) * sz);
    M->budget -= add;
    *arr = a;
    *cap = nc;
    return true;
}

static val *new_val(pm *M, vkind k) {
    if (!pm_grow(M, (void **)&M->all, &M->capall, M->nall + 1, sizeof(val *))) return NULL;
    val *v = pm_alloc(M, sizeof *v);
    if (!v) return NULL;
    v->kind = k;
    M->all[M->nall++] = v;
    return v;
}

static void pm_free(pm *M) {
    for (size_t i = 0; i < M->nall; i++) {
        val *v = M->all[i];
        switch (v->kind) {
        case V_STR: case V_BYTES: case V_BIGINT: free(v->u.str.s); break;
        case V_TUPLE: case V_LIST: free(v->u.seq.a); break;
        case V_DICT: free(v->u.map.k); free(v->u.map.v); break;
        case V_STORAGE: free(v->u.stg.key); break;
        default: break;
        }
        free(v);
    }
    free(M->all); free(M->stack); free(M->marks); free(M->memo); free(M->stgs);
    memset(M, 0, sizeof *M);
}

static val *new_str(pm *M, vkind k, const uint8_t *s, size_t n) {
    val *v = new_val(M, k);
    if (!v || !(v->u.str.s = pm_alloc(M, n + 1))) return NULL;
    memcpy(v->u.str.s, s, n);
    v->u.str.n = n;
    return v;
}

static bool seq_push(pm *M, val *l, val *x) {
    if (!pm_grow(M, (void **)&l->u.seq.a, &l->u.seq.cap, l->u.seq.n + 1, sizeof(val *))) return false;
    l->u.seq.a[l->u.seq.n++] = x;
    return true;
}

static bool dict_set(pm *M, val *d, val *k, val *x) {
    size_t cap = d->u.map.cap;
    if (!pm_grow(M, (void **)&d->u.map.k, &cap, d->u.map.n + 1, sizeof(val *))) return false;
    cap = d->u.map.cap;
    if (!pm_grow(M, (void **)&d->u.map.v, &cap, d->u.map.n + 1, sizeof(val *))) return false;
    d->u.map.cap = cap;
    d->u.map.k[d->u.map.n] = k;
    d->u.map.v[d->u.map.n++] = x;
    return true;
}

static bool is_str(const val *v, const char *s) {
    return v && v->kind == V_STR && v->u.str.n == strlen(s) && memcmp(v->u.str.s, s, v->u.str.n) == 0;
}

/* Value of a string key in a dict (the last one, as Python's dict keeps), or NULL. */
static val *dict_get(const val *d, const char *key) {
    if (!d || d->kind != V_DICT) return NULL;
    for (size_t i = d->u.map.n; i-- > 0;)
        if (is_str(d->u.map.k[i], key)) return d->u.map.v[i];
    return NULL;
}

/* ======================================================================================== */
/* globals: the allow-list                                                                  */
/* ======================================================================================== */

static const struct { const char *name; ca_dtype dt; } STORAGES[] = {
    {"FloatStorage", CA_DT_F32}, {"HalfStorage", CA_DT_F16}, {"BFloat16Storage", CA_DT_BF16},
    {"DoubleStorage", CA_DT_F64}, {"LongStorage", CA_DT_I64}, {"IntStorage", CA_DT_I32},
    {"ShortStorage", CA_DT_I16}, {"CharStorage", CA_DT_I8}, {"ByteStorage", CA_DT_U8},
    {"BoolStorage", CA_DT_BOOL},
};

static bool span_is(const uint8_t *s, size_t n, const char *lit) { return n == strlen(lit) && memcmp(s, lit, n) == 0; }

static ca_status make_global(pm *M, const uint8_t *mod, size_t ml, const uint8_t *name, size_t nl, val **out) {
    gkind g;
    ca_dtype dt = CA_DT_F32;
    bool ok = true;
    if (span_is(mod, ml, "collections") && span_is(name, nl, "OrderedDict")) g = G_ODICT;
    else if (span_is(mod, ml, "torch._utils") && span_is(name, nl, "_rebuild_tensor_v2")) g = G_REBUILD_V2;
    else if (span_is(mod, ml, "torch._utils") && span_is(name, nl, "_rebuild_tensor")) g = G_REBUILD;
    else if (span_is(mod, ml, "torch._utils") && span_is(name, nl, "_rebuild_parameter")) g = G_PARAM;
    else if (span_is(mod, ml, "torch._utils") && span_is(name, nl, "_rebuild_parameter_with_state")) g = G_PARAM_STATE;
    else if (span_is(mod, ml, "_codecs") && span_is(name, nl, "encode")) g = G_CODECS;
    else if ((span_is(mod, ml, "__torch__") || (ml > 10 && memcmp(mod, "__torch__.", 10) == 0)) && nl > 0) g = G_TSCLASS;
    else if (span_is(mod, ml, "torch")) {
        ok = false;
        for (size_t i = 0; i < sizeof STORAGES / sizeof STORAGES[0]; i++)
            if (span_is(name, nl, STORAGES[i].name)) { g = G_STORAGE; dt = STORAGES[i].dt; ok = true; }
    } else ok = false;
    /* a TorchScript class name is a Python identifier path: nothing else passes as one */
    if (ok && g == G_TSCLASS)
        for (size_t i = 0; i < ml + nl && ok; i++) {
            uint8_t c = i < ml ? mod[i] : name[i - ml];
            ok = c == '_' || c == '.' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
        }
    if (!ok) {
        char shown[160];
        size_t k = 0;
        for (size_t i = 0; i < ml + 1 + nl && k + 4 < sizeof shown; i++) {
            uint8_t c = i < ml ? mod[i] : i == ml ? '.' : name[i - ml - 1];
            shown[k++] = (c >= 32 && c < 127 && c != '\'') ? (char)c : '?';
        }
        if (ml + 1 + nl >= sizeof shown - 4) { shown[k++] = '.'; shown[k++] = '.'; shown[k++] = '.'; }
        shown[k] = 0;
        return ca_fail(CA_E_UNSAFE, "%s: pickle calls '%s': refused", M->path, shown);
    }
    if (g == G_TSCLASS) {
        /* the module classes say which activation the archived model runs */
        if (span_is(name, nl, "QuickGELU")) M->saw_quickgelu = 1;
        if (span_is(name, nl, "GELU")) M->saw_gelu = 1;
    }
    val *v = new_val(M, V_GLOBAL);
    if (!v) return ca_fail(CA_E_NOMEM, "%s: out of memory reading the pickle", M->path);
    v->u.glob.g = g;
    v->u.glob.dt = dt;
    *out = v;
    return CA_OK;
}

/* ======================================================================================== */
/* the machine                                                                              */
/* ======================================================================================== */

static bool as_int(const val *v, int64_t *out) {
    if (!v || (v->kind != V_INT && v->kind != V_BOOL)) return false;
    *out = v->u.i;
    return true;
}

/* A tuple of at most CA_MAX_DIMS non-negative ints (a tensor's size or stride). */
static bool int_tuple(const val *v, int64_t *out, int *n) {
    if (!v || (v->kind != V_TUPLE && v->kind != V_LIST) || v->u.seq.n > CA_MAX_DIMS) return false;
    for (size_t i = 0; i < v->u.seq.n; i++)
        if (!as_int(v->u.seq.a[i], &out[i]) || out[i] < 0) return false;
    *n = (int)v->u.seq.n;
    return true;
}

/* f(args) for an allowed global f. */
static ca_status call(pm *M, val *f, val *args, size_t pos, val **out) {
    if (!f || f->kind != V_GLOBAL) return fmt_err(M, "REDUCE on something that is not an allowed global", pos);
    if (!args || args->kind != V_TUPLE) return fmt_err(M, "REDUCE arguments are not a tuple", pos);
    size_t n = args->u.seq.n;
    val **a = args->u.seq.a;
    switch (f->u.glob.g) {
    case G_ODICT:
        if (n != 0 && !(n == 1 && a[0]->kind == V_LIST && a[0]->u.seq.n == 0)) return fmt_err(M, "OrderedDict with arguments", pos);
        *out = new_val(M, V_DICT);
        break;
    case G_REBUILD_V2:
    case G_REBUILD: {
        size_t lo = f->u.glob.g == G_REBUILD ? 4 : 6, hi = f->u.glob.g == G_REBUILD ? 4 : 7;
        if (n < lo || n > hi) return fmt_err(M, "tensor rebuilt with the wrong number of arguments", pos);
        if (a[0]->kind != V_STORAGE) return fmt_err(M, "tensor rebuilt from something that is not a storage", pos);
        val *t = new_val(M, V_TENSOR);
        if (!t) break;
        int ns = 0, nt = 0;
        if (!as_int(a[1], &t->u.ten.off) || t->u.ten.off < 0) return fmt_err(M, "tensor storage offset is not a non-negative integer", pos);
        if (!int_tuple(a[2], t->u.ten.size, &ns) || !int_tuple(a[3], t->u.ten.stride, &nt) || ns != nt)
            return fmt_err(M, "tensor size/stride are not matching tuples of at most 8 non-negative integers", pos);
        t->u.ten.stg = a[0];
        t->u.ten.ndim = ns;
        *out = t;
        break;
    }
    case G_PARAM:
    case G_PARAM_STATE:
        if (n != (f->u.glob.g == G_PARAM ? 3u : 4u) || a[0]->kind != V_TENSOR) return fmt_err(M, "parameter rebuilt from something that is not a tensor", pos);
        *out = a[0];
        break;
    case G_CODECS: {
        /* _codecs.encode(text, 'latin1'): how protocol 2 pickles bytes; code points < 256 only */
        if (n != 2 || a[0]->kind != V_STR || !(is_str(a[1], "latin1") || is_str(a[1], "latin-1")))
            return fmt_err(M, "_codecs.encode with arguments other than (text, 'latin1')", pos);
        const uint8_t *s = (const uint8_t *)a[0]->u.str.s;
        size_t len = a[0]->u.str.n, k = 0;
        uint8_t *b = malloc(len + 1);
        if (!b) break;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < 0x80) b[k++] = s[i];
            else if ((s[i] == 0xc2 || s[i] == 0xc3) && i + 1 < len && (s[i + 1] & 0xc0) == 0x80) {
                b[k++] = (uint8_t)(((s[i] & 3) << 6) | (s[i + 1] & 0x3f));
                i++;
            } else { free(b); return fmt_err(M, "_codecs.encode of a character outside latin-1", pos); }
        }
        *out = new_str(M, V_BYTES, b, k);
        free(b);
        break;
    }
    case G_STORAGE:
    case G_TSCLASS:
        return fmt_err(M, "REDUCE calls a class that may only be named", pos);
    }
    if (!*out) return ca_fail(CA_E_NOMEM, "%s: out of memory reading the pickle", M->path);
    return CA_OK;
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel[, view]) -> a storage to resolve. */
static ca_status persistent(pm *M, val *pid, size_t pos, val **out) {
    if (!pid || pid->kind != V_TUPLE || pid->u.seq.n < 5 || pid->u.seq.n > 6 || !is_str(pid->u.seq.a[0], "storage"))
        return fmt_err(M, "persistent id is not a ('storage', type, key, location, size) tuple", pos);
    val **a = pid->u.seq.a;
    if (a[1]->kind != V_GLOBAL || a[1]->u.glob.g != G_STORAGE) return fmt_err(M, "persistent id names no storage type", pos);
    if (a[2]->kind != V_STR || a[2]->u.str.n == 0 || a[2]->u.str.n > 256 || memchr(a[2]->u.str.s, 0, a[2]->u.str.n))
        return fmt_err(M, "storage key is not a short string", pos);
    val *s = new_val(M, V_STORAGE);
    if (!s || !(s->u.stg.key = pm_alloc(M, a[2]->u.str.n + 1))) return ca_fail(CA_E_NOMEM, "%s: out of memory", M->path);
    memcpy(s->u.stg.key, a[2]->u.str.s, a[2]->u.str.n);
    s->u.stg.dt = a[1]->u.glob.dt;
    if (!as_int(a[4], &s->u.stg.numel) || s->u.stg.numel < 0) return fmt_err(M, "storage size is not a non-negative integer", pos);
    if (pid->u.seq.n == 6 && a[5]->kind != V_NONE) {
        /* legacy view: (view_key, offset, size) into the root storage */
        val *vw = a[5];
        if (vw->kind != V_TUPLE || vw->u.seq.n != 3 || !as_int(vw->u.seq.a[1], &s->u.stg.view_off) ||
            !as_int(vw->u.seq.a[2], &s->u.stg.view_numel) || s->u.stg.view_off < 0 || s->u.stg.view_numel < 0)
            return fmt_err(M, "storage view is not (key, offset, size)", pos);
        s->u.stg.has_view = 1;
    }
    if (!pm_grow(M, (void **)&M->stgs, &M->capstgs, M->nstgs + 1, sizeof(val *))) return ca_fail(CA_E_NOMEM, "%s: out of memory", M->path);
    M->stgs[M->nstgs++] = s;
    *out = s;
    return CA_OK;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Run one pickle from p (n bytes) to its STOP: *out is the result, *used the bytes read. */
static ca_status run_pickle(pm *M, const uint8_t *p, size_t n, size_t base, size_t *used, val **out) {
    size_t i = 0;
    M->sp = 0;
    M->nmarks = 0;
    if (M->memo) memset(M->memo, 0, M->capmemo * sizeof *M->memo);
    M->memo_count = 0;
#define NEED(k) do { if ((k) > n - i) return fmt_err(M, "truncated pickle", base + i); } while (0)
#define OOM() ca_fail(CA_E_NOMEM, "%s: out of memory reading the pickle", M->path)
#define PUSH(v) do { val *v_ = (v); if (!v_) return OOM(); \
        if (M->sp >= MAX_STACK || !pm_grow(M, (void **)&M->stack, &M->capst, M->sp + 1, sizeof(val *))) return OOM(); \
        M->stack[M->sp++] = v_; } while (0)
#define POP(dst) do { if (M->sp == 0 || (M->nmarks && M->marks[M->nmarks - 1] == M->sp)) return fmt_err(M, "stack underflow", base + at); \
        (dst) = M->stack[--M->sp]; } while (0)
#define TOP() (M->sp && !(M->nmarks && M->marks[M->nmarks - 1] == M->sp) ? M->stack[M->sp - 1] : NULL)
    for (;;) {
        NEED(1);
        size_t at = i;
        uint8_t op = p[i++];
        ca_status st;
        switch (op) {
        case 0x80: NEED(1); if (p[i] > 5) return fmt_err(M, "unknown pickle protocol", base + at); i++; break; /* PROTO */
        case 0x95: NEED(8); i += 8; break;                                   /* FRAME: a hint only */
        case '.': {                                                          /* STOP */
            val *r;
            POP(r);
            *out = r;
            *used = i;
            return CA_OK;
        }
        case '(':                                                            /* MARK */
            if (!pm_grow(M, (void **)&M->marks, &M->capmarks, M->nmarks + 1, sizeof(size_t)) || M->nmarks >= MAX_STACK) return OOM();
            M->marks[M->nmarks++] = M->sp;
            break;
        case '0': { val *x; POP(x); (void)x; break; }                        /* POP */
        case '1':                                                            /* POP_MARK */
            if (!M->nmarks) return fmt_err(M, "POP_MARK without MARK", base + at);
            M->sp = M->marks[--M->nmarks];
            break;
        case '2': { val *x = TOP(); if (!x) return fmt_err(M, "stack underflow", base + at); PUSH(x); break; } /* DUP */
        case 'N': PUSH(new_val(M, V_NONE)); break;
        case 0x88: case 0x89: { val *v = new_val(M, V_BOOL); if (v) v->u.i = op == 0x88; PUSH(v); break; }
        case 'J': { NEED(4); val *v = new_val(M, V_INT); if (v) v->u.i = (int32_t)(uint32_t)rd_le(p + i, 4); i += 4; PUSH(v); break; }
        case 'K': { NEED(1); val *v = new_val(M, V_INT); if (v) v->u.i = p[i]; i += 1; PUSH(v); break; }
        case 'M': { NEED(2); val *v = new_val(M, V_INT); if (v) v->u.i = (int64_t)rd_le(p + i, 2); i += 2; PUSH(v); break; }
        case 0x8a: case 0x8b: {                                              /* LONG1, LONG4 */
            int w = op == 0x8a ? 1 : 4;
            NEED((size_t)w);
            uint64_t k = rd_le(p + i, w);
            i += (size_t)w;
            NEED(k);
            val *v;
            if (k <= 8) {
                v = new_val(M, V_INT);
                uint64_t u = k ? rd_le(p + i, (int)k) : 0;
                if (k && k < 8 && (p[i + k - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * k); /* sign-extend */
                if (v) v->u.i = (int64_t)u;
            } else v = new_str(M, V_BIGINT, p + i, (size_t)k);
            i += (size_t)k;
            PUSH(v);
            break;
        }
        case 'I': case 'p': case 'g': {                                      /* INT, PUT, GET (text) */
            const uint8_t *nl = memchr(p + i, '\n', n - i < 32 ? n - i : 32);
            if (!nl) return fmt_err(M, "unterminated text argument", base + at);
            char buf[32];
            size_t len = (size_t)(nl - (p + i));
            memcpy(buf, p + i, len);
            buf[len] = 0;
            i += len + 1;
            char *end;
            long long x = strtoll(buf, &end, 10);
            if (end == buf || *end) return fmt_err(M, "bad text integer", base + at);
            if (op == 'I') {
                val *v = new_val(M, (len == 2 && (buf[1] == '0' || buf[1] == '1') && buf[0] == '0') ? V_BOOL : V_INT);
                if (v) v->u.i = x;
                PUSH(v);
                break;
            }
            if (x < 0 || x >= MAX_MEMO) return fmt_err(M, "memo index out of range", base + at);
            if (op == 'p') goto put_x;
            if ((size_t)x >= M->capmemo || !M->memo[x]) return fmt_err(M, "memo reference to an unset entry", base + at);
            PUSH(M->memo[x]);
            break;
        put_x: {
                val *t = TOP();
                if (!t) return fmt_err(M, "stack underflow", base + at);
                if (!pm_grow(M, (void **)&M->memo, &M->capmemo, (size_t)x + 1, sizeof(val *))) return OOM();
                if (!M->memo[x]) M->memo_count++;
                M->memo[x] = t;
                break;
            }
        }
        case 'q': case 'r': case 0x94: {                                     /* BINPUT, LONG_BINPUT, MEMOIZE */
            uint64_t x;
            if (op == 'q') { NEED(1); x = p[i]; i += 1; }
            else if (op == 'r') { NEED(4); x = rd_le(p + i, 4); i += 4; }
            else x = M->memo_count;
            if (x >= MAX_MEMO) return fmt_err(M, "memo index out of range", base + at);
            val *t = TOP();
            if (!t) return fmt_err(M, "stack underflow", base + at);
            if (!pm_grow(M, (void **)&M->memo, &M->capmemo, (size_t)x + 1, sizeof(val *))) return OOM();
            if (!M->memo[x]) M->memo_count++;
            M->memo[x] = t;
            break;
        }
        case 'h': case 'j': {                                                /* BINGET, LONG_BINGET */
            uint64_t x;
            if (op == 'h') { NEED(1); x = p[i]; i += 1; }
            else { NEED(4); x = rd_le(p + i, 4); i += 4; }
            if (x >= M->capmemo || !M->memo[x]) return fmt_err(M, "memo reference to an unset entry", base + at);
            PUSH(M->memo[x]);
            break;
        }
        case 'G': {                                                          /* BINFLOAT, big-endian */
            NEED(8);
            uint64_t u = 0;
            for (int k = 0; k < 8; k++) u = (u << 8) | p[i + k];
            i += 8;
            val *v = new_val(M, V_FLOAT);
            if (v) memcpy(&v->u.f, &u, 8);
            PUSH(v);
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: case 0x96: {
            int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
            NEED((size_t)w);
            uint64_t k = rd_le(p + i, w);
            i += (size_t)w;
            NEED(k);
            /* BINSTRING etc. are read as text, as torch.load does (encoding 'utf-8'/'ascii') */
            vkind vk = (op == 'B' || op == 'C' || op == 0x8e || op == 0x96) ? V_BYTES : V_STR;
            PUSH(new_str(M, vk, p + i, (size_t)k));
            i += (size_t)k;
            break;
        }
        case ')': PUSH(new_val(M, V_TUPLE)); break;
        case ']': PUSH(new_val(M, V_LIST)); break;
        case '}': PUSH(new_val(M, V_DICT)); break;
        case 0x85: case 0x86: case 0x87: case 't': case 'l': case 'd': {     /* TUPLE1-3, TUPLE, LIST, DICT */
            size_t k, from;
            if (op >= 0x85 && op <= 0x87) {
                k = (size_t)(op - 0x84);
                size_t floor = M->nmarks ? M->marks[M->nmarks - 1] : 0;
                if (M->sp - floor < k) return fmt_err(M, "stack underflow", base + at);
                from = M->sp - k;
            } else {
                if (!M->nmarks) return fmt_err(M, "TUPLE/LIST/DICT without MARK", base + at);
                from = M->marks[--M->nmarks];
                k = M->sp - from;
            }
            val *v = new_val(M, op == 'l' ? V_LIST : op == 'd' ? V_DICT : V_TUPLE);
            if (!v) return OOM();
            if (op == 'd') {
                if (k % 2) return fmt_err(M, "DICT with an odd number of items", base + at);
                for (size_t j = from; j < M->sp; j += 2)
                    if (!dict_set(M, v, M->stack[j], M->stack[j + 1])) return OOM();
            } else
                for (size_t j = from; j < M->sp; j++)
                    if (!seq_push(M, v, M->stack[j])) return OOM();
            M->sp = from;
            PUSH(v);
            break;
        }
        case 'a': {                                                          /* APPEND */
            val *x, *l;
            POP(x);
            l = TOP();
            if (!l || l->kind != V_LIST) return fmt_err(M, "APPEND to something that is not a list", base + at);
            if (!seq_push(M, l, x)) return OOM();
            break;
        }
        case 's': {                                                          /* SETITEM */
            val *x, *k, *d;
            POP(x);
            POP(k);
            d = TOP();
            if (!d || d->kind != V_DICT) return fmt_err(M, "SETITEM on something that is not a dict", base + at);
            if (!dict_set(M, d, k, x)) return OOM();
            break;
        }
        case 'e': case 'u': {                                                /* APPENDS, SETITEMS */
            if (!M->nmarks) return fmt_err(M, "APPENDS/SETITEMS without MARK", base + at);
            size_t from = M->marks[--M->nmarks];
            if (from == 0) return fmt_err(M, "APPENDS/SETITEMS with nothing below the MARK", base + at);
            val *c = M->stack[from - 1];
            if (op == 'e') {
                if (c->kind != V_LIST) return fmt_err(M, "APPENDS to something that is not a list", base + at);
                for (size_t j = from; j < M->sp; j++)
                    if (!seq_push(M, c, M->stack[j])) return OOM();
            } else {
                if (c->kind != V_DICT) return fmt_err(M, "SETITEMS on something that is not a dict", base + at);
                if ((M->sp - from) % 2) return fmt_err(M, "SETITEMS with an odd number of items", base + at);
                for (size_t j = from; j < M->sp; j += 2)
                    if (!dict_set(M, c, M->stack[j], M->stack[j + 1])) return OOM();
            }
            M->sp = from;
            break;
        }
        case 'c': {                                                          /* GLOBAL "module\nname\n" */
            size_t lim = n - i < 512 ? n - i : 512;
            const uint8_t *e1 = memchr(p + i, '\n', lim);
            if (!e1) return fmt_err(M, "unterminated GLOBAL", base + at);
            size_t ml = (size_t)(e1 - (p + i));
            lim = n - i - ml - 1 < 512 ? n - i - ml - 1 : 512;
            const uint8_t *e2 = memchr(e1 + 1, '\n', lim);
            if (!e2) return fmt_err(M, "unterminated GLOBAL", base + at);
            size_t nl = (size_t)(e2 - (e1 + 1));
            val *g = NULL;
            if ((st = make_global(M, p + i, ml, e1 + 1, nl, &g))) return st;
            i += ml + nl + 2;
            PUSH(g);
            break;
        }
        case 0x93: {                                                         /* STACK_GLOBAL */
            val *nm, *md, *g = NULL;
            POP(nm);
            POP(md);
            if (md->kind != V_STR || nm->kind != V_STR) return fmt_err(M, "STACK_GLOBAL names are not strings", base + at);
            if ((st = make_global(M, (const uint8_t *)md->u.str.s, md->u.str.n, (const uint8_t *)nm->u.str.s, nm->u.str.n, &g))) return st;
            PUSH(g);
            break;
        }
        case 'R': {                                                          /* REDUCE */
            val *args, *f, *r = NULL;
            POP(args);
            POP(f);
            if ((st = call(M, f, args, base + at, &r))) return st;
            PUSH(r);
            break;
        }
        case 0x81: case 0x92: {                                              /* NEWOBJ, NEWOBJ_EX */
            val *args, *cls, *kw = NULL;
            if (op == 0x92) POP(kw);
            POP(args);
            POP(cls);
            (void)kw;
            if (!cls || cls->kind != V_GLOBAL || (cls->u.glob.g != G_TSCLASS && cls->u.glob.g != G_ODICT) || args->kind != V_TUPLE)
                return fmt_err(M, "NEWOBJ of something that is not a TorchScript class", base + at);
            PUSH(new_val(M, cls->u.glob.g == G_ODICT ? V_DICT : V_OBJECT));
            break;
        }
        case 'b': {                                                          /* BUILD */
            val *state, *obj;
            POP(state);
            obj = TOP();
            if (!obj) return fmt_err(M, "stack underflow", base + at);
            if (obj->kind == V_OBJECT) {
                /* a TorchScript module's attributes; (dict, slots) states keep the dict */
                if (state->kind == V_TUPLE && state->u.seq.n == 2) state = state->u.seq.a[0];
                if (state->kind != V_DICT) return fmt_err(M, "BUILD of a TorchScript object without an attribute dict", base + at);
                obj->u.obj.attrs = state;
            } else if (obj->kind != V_DICT && obj->kind != V_TENSOR) {
                /* dicts (a state dict's _metadata) and tensors (Python attributes) keep no state we use */
                return fmt_err(M, "BUILD on a value that takes no state", base + at);
            }
            break;
        }
        case 'Q': {                                                          /* BINPERSID */
            val *pid, *s = NULL;
            POP(pid);
            if ((st = persistent(M, pid, base + at, &s))) return st;
            PUSH(s);
            break;
        }
        case 'i': {                                                          /* INST: names a class inline */
            size_t lim = n - i < 512 ? n - i : 512;
            const uint8_t *e1 = memchr(p + i, '\n', lim);
            const uint8_t *e2 = e1 ? memchr(e1 + 1, '\n', (size_t)(p + n - e1 - 1) < 512 ? (size_t)(p + n - e1 - 1) : 512) : NULL;
            val *g = NULL;
            if (e1 && e2 && (st = make_global(M, p + i, (size_t)(e1 - p - i), e1 + 1, (size_t)(e2 - e1 - 1), &g))) return st;
            return fmt_err(M, "INST opcode", base + at);
        }
        default: {
            char what[64];
            snprintf(what, sizeof what, "unsupported opcode 0x%02x", op);
            return fmt_err(M, what, base + at);
        }
        }
    }
#undef NEED
#undef OOM
#undef PUSH
#undef POP
#undef TOP
}

/* ======================================================================================== */
/* naming tensors and materialising them                                                    */
/* ======================================================================================== */

typedef struct { char *name; val *t; } named;
typedef struct { named *a; size_t n, cap; } namelist;

static ca_status add_name(pm *M, namelist *L, const char *prefix, size_t plen, const val *key, val *t) {
    size_t kl = key->u.str.n;
    if (plen + kl + 1 > MAX_NAME) return ca_fail(CA_E_FORMAT, "%s: a tensor name is longer than %d bytes", M->path, MAX_NAME);
    if (memchr(key->u.str.s, 0, kl)) return ca_fail(CA_E_FORMAT, "%s: a tensor name contains a NUL byte", M->path);
    if (L->n == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 64;
        named *a = realloc(L->a, nc * sizeof *a);
        if (!a) return ca_fail(CA_E_NOMEM, "%s: out of memory", M->path);
        L->a = a;
        L->cap = nc;
    }
    char *s = malloc(plen + kl + 1);
    if (!s) return ca_fail(CA_E_NOMEM, "%s: out of memory", M->path);
    memcpy(s, prefix, plen);
    memcpy(s + plen, key->u.str.s, kl);
    s[plen + kl] = 0;
    L->a[L->n].name = s;
    L->a[L->n].t = t;
    L->n++;
    return CA_OK;
}

/* Every tensor under a state dict or TorchScript module, named by its dotted key path.
 * Non-tensor values (epochs, hyper-parameters, flags) are skipped; a container met twice is
 * walked once (a pickle may share or even nest one inside itself). */
static ca_status collect(pm *M, namelist *L, val *v, char *prefix, size_t plen, int depth) {
    if (v->kind == V_OBJECT) v = v->u.obj.attrs;
    if (!v || v->kind != V_DICT || v->seen) return CA_OK;
    if (depth > MAX_DEPTH) return ca_fail(CA_E_FORMAT, "%s: state dict nested more than %d deep", M->path, MAX_DEPTH);
    v->seen = 1;
    for (size_t i = 0; i < v->u.map.n; i++) {
        val *k = v->u.map.k[i], *x = v->u.map.v[i];
        if (k->kind != V_STR) continue;
        ca_status st = CA_OK;
        if (x->kind == V_TENSOR) st = add_name(M, L, prefix, plen, k, x);
        else if (x->kind == V_DICT || x->kind == V_OBJECT) {
            size_t kl = k->u.str.n;
            if (plen + kl + 2 > MAX_NAME) return ca_fail(CA_E_FORMAT, "%s: a tensor name is longer than %d bytes", M->path, MAX_NAME);
            memcpy(prefix + plen, k->u.str.s, kl);
            prefix[plen + kl] = '.';
            st = collect(M, L, x, prefix, plen + kl + 1, depth + 1);
        }
        if (st) return st;
    }
    return CA_OK;
}

/* The state dict inside a wrapped training checkpoint ({'epoch': 3, 'state_dict': {...}}). */
static val *unwrap(val *root) {
    static const char *keys[] = {"state_dict", "model", "model_state_dict", "module"};
    for (int round = 0; round < 3; round++) {
        val *in = NULL;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0] && !in; k++) {
            val *x = dict_get(root, keys[k]);
            if (x && (x->kind == V_DICT || x->kind == V_OBJECT)) in = x;
        }
        if (!in) break;
        root = in;
    }
    return root;
}

/* Add tensor t as name to f: a pointer into the storage when the view is contiguous, otherwise a
 * contiguous copy (bounded by *copy_left bytes, so that stride tricks cannot balloon memory). */
static ca_status materialize(pm *M, ca_st_file *f, const char *name, val *t, size_t *copy_left) {
    val *s = t->u.ten.stg;
    ca_dtype dt = s->u.stg.dt;
    size_t es = ca_dtype_size(dt);
    size_t avail = s->u.stg.nbytes / es;   /* elements the storage really has */
    int nd = t->u.ten.ndim;
    const int64_t *sz = t->u.ten.size, *sd = t->u.ten.stride;
    size_t numel = 1, hi = 0;
    for (int d = 0; d < nd; d++)
        if (!ca_mul_size(numel, (size_t)sz[d], &numel)) return ca_fail(CA_E_FORMAT, "%s: tensor '%s': size overflows", M->path, name);
    if (numel > 0) {
        /* last element's index: offset + sum (size-1)*stride, each step overflow-checked */
        hi = (size_t)t->u.ten.off;
        for (int d = 0; d < nd; d++) {
            size_t step;
            if (!ca_mul_size((size_t)(sz[d] - 1), (size_t)sd[d], &step) || hi > SIZE_MAX - step)
                return ca_fail(CA_E_FORMAT, "%s: tensor '%s': stride overflows", M->path, name);
            hi += step;
        }
        if (hi >= avail)
            return ca_fail(CA_E_FORMAT, "%s: tensor '%s': view reaches element %zu of a %zu-element storage '%s'", M->path, name,
                           hi, avail, s->u.stg.key);
    }
    bool contiguous = true;
    size_t want = 1;
    for (int d = nd - 1; d >= 0; d--) {
        if (sz[d] != 1 && (size_t)sd[d] != want) contiguous = false;
        want *= (size_t)sz[d];
    }
    size_t nbytes = numel * es;  /* <= avail * es: no overflow */
    if (numel == 0 || contiguous)
        return ca_st_add(f, name, dt, nd, sz, numel ? s->u.stg.data + (size_t)t->u.ten.off * es : s->u.stg.data, nbytes);
    if (nbytes > *copy_left)
        return ca_fail(CA_E_UNSUPPORTED, "%s: tensor '%s': a non-contiguous view larger than the file; refused", M->path, name);
    *copy_left -= nbytes;
    uint8_t *buf = malloc(nbytes);
    if (!buf) return ca_fail(CA_E_NOMEM, "%s: out of memory", M->path);
    int64_t idx[CA_MAX_DIMS] = {0};
    for (size_t e = 0; e < numel; e++) {
        size_t src = (size_t)t->u.ten.off;
        for (int d = 0; d < nd; d++) src += (size_t)idx[d] * (size_t)sd[d];
        memcpy(buf + e * es, s->u.stg.data + src * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < sz[d]) break;
            idx[d] = 0;
        }
    }
    ca_status st = ca_st_keep_buf(f, buf);
    return st ? st : ca_st_add(f, name, dt, nd, sz, buf, nbytes);
}

/* Name every tensor under root and add it to f (storages already resolved). */
static ca_status emit(pm *M, ca_st_file *f, val *root, size_t file_len) {
    if (!root || (root->kind != V_DICT && root->kind != V_OBJECT))
        return ca_fail(CA_E_FORMAT, "%s: the pickle holds no state dict or module", M->path);
    root = unwrap(root);
    namelist L = {0};
    char *prefix = malloc(MAX_NAME + 2);
    ca_status st = prefix ? collect(M, &L, root, prefix, 0, 0) : ca_fail(CA_E_NOMEM, "%s: out of memory", M->path);
    free(prefix);
    if (!st && L.n == 0) st = ca_fail(CA_E_FORMAT, "%s: no tensors in the checkpoint", M->path);
    /* DataParallel / DistributedDataParallel ('module.') and torch.compile ('_orig_mod.') wrappers */
    static const char *wrappers[] = {"module.", "_orig_mod."};
    size_t strip = 0;
    for (size_t w = 0; !st && w < 2 && !strip; w++) {
        size_t wl = strlen(wrappers[w]), k = 0;
        while (k < L.n && !strncmp(L.a[k].name, wrappers[w], wl)) k++;
        if (k == L.n) strip = wl;
    }
    size_t copy_left = file_len + ((size_t)1 << 20);
    for (size_t k = 0; !st && k < L.n; k++) st = materialize(M, f, L.a[k].name + strip, L.a[k].t, &copy_left);
    for (size_t k = 0; k < L.n; k++) free(L.a[k].name);
    free(L.a);
    return st ? st : ca_st_check_unique(f);
}

/* ======================================================================================== */
/* zip archives                                                                             */
/* ======================================================================================== */

typedef struct {
    const uint8_t *name; size_t nlen;
    int method;
    uint64_t csize, usize, local;
    uint32_t crc;
} zentry;

/* Central directory of a zip in p (n bytes), with ZIP64 records. *out is malloc'd. */
static ca_status zip_dir(const char *path, const uint8_t *p, size_t n, zentry **out, size_t *count) {
    *out = NULL;
    *count = 0;
    if (n < 22) return ca_fail(CA_E_FORMAT, "%s: zip archive too short", path);
    size_t eocd = SIZE_MAX;
    size_t lo = n - 22 > 65535 ? n - 22 - 65535 : 0;
    for (size_t i = n - 22 + 1; i-- > lo;)
        if (rd_le(p + i, 4) == 0x06054b50 && i + 22 + rd_le(p + i + 20, 2) == n) { eocd = i; break; }
    if (eocd == SIZE_MAX) return ca_fail(CA_E_FORMAT, "%s: zip end-of-central-directory record not found (truncated file?)", path);
    uint64_t entries = rd_le(p + eocd + 10, 2), cd_size = rd_le(p + eocd + 12, 4), cd_off = rd_le(p + eocd + 16, 4);
    size_t cd_end_limit = eocd;
    if (entries == 0xffff || cd_size == 0xffffffff || cd_off == 0xffffffff) {
        /* ZIP64: the locator sits just before the classic record and points at the ZIP64 record */
        if (eocd < 20 || rd_le(p + eocd - 20, 4) != 0x07064b50) return ca_fail(CA_E_FORMAT, "%s: ZIP64 locator missing", path);
        uint64_t z = rd_le(p + eocd - 20 + 8, 8);
        if (z > eocd - 20 || eocd - 20 - z < 56 || rd_le(p + z, 4) != 0x06064b50)
            return ca_fail(CA_E_FORMAT, "%s: ZIP64 end-of-central-directory record out of place", path);
        entries = rd_le(p + z + 32, 8);
        cd_size = rd_le(p + z + 40, 8);
        cd_off = rd_le(p + z + 48, 8);
        cd_end_limit = (size_t)z;
    }
    if (cd_off > cd_end_limit || cd_size > cd_end_limit - cd_off)
        return ca_fail(CA_E_FORMAT, "%s: zip central directory outside the file", path);
    if (entries > MAX_ENTRIES || entries > cd_size / 46) return ca_fail(CA_E_FORMAT, "%s: zip entry count %llu does not fit its directory", path, (unsigned long long)entries);
    zentry *e = calloc(entries ? (size_t)entries : 1, sizeof *e);
    if (!e) return ca_fail(CA_E_NOMEM, "%s: out of memory", path);
    size_t q = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    for (size_t k = 0; k < entries; k++) {
        if (end - q < 46 || rd_le(p + q, 4) != 0x02014b50) { free(e); return ca_fail(CA_E_FORMAT, "%s: zip central directory entry %zu is damaged", path, k); }
        unsigned flags = (unsigned)rd_le(p + q + 8, 2);
        size_t nl = rd_le(p + q + 28, 2), xl = rd_le(p + q + 30, 2), cl = rd_le(p + q + 32, 2);
        if (end - q - 46 < nl + xl + cl) { free(e); return ca_fail(CA_E_FORMAT, "%s: zip central directory entry %zu is damaged", path, k); }
        zentry *z = &e[k];
        z->method = (int)rd_le(p + q + 10, 2);
        z->crc = (uint32_t)rd_le(p + q + 16, 4);
        z->csize = rd_le(p + q + 20, 4);
        z->usize = rd_le(p + q + 24, 4);
        z->local = rd_le(p + q + 42, 4);
        z->name = p + q + 46;
        z->nlen = nl;
        /* ZIP64 extra field: 8-byte values for exactly the fields saturated above, in order */
        const uint8_t *x = p + q + 46 + nl, *xe = x + xl;
        while (xe - x >= 4) {
            unsigned id = (unsigned)rd_le(x, 2), sz = (unsigned)rd_le(x + 2, 2);
            if ((size_t)(xe - x - 4) < sz) break;
            if (id == 1) {
                const uint8_t *v = x + 4, *ve = v + sz;
                uint64_t *fields[3] = {&z->usize, &z->csize, &z->local};
                for (int j = 0; j < 3; j++)
                    if (*fields[j] == 0xffffffff) {
                        if (ve - v < 8) { free(e); return ca_fail(CA_E_FORMAT, "%s: zip entry %zu: short ZIP64 field", path, k); }
                        *fields[j] = rd_le(v, 8);
                        v += 8;
                    }
            }
            x += 4 + sz;
        }
        if (flags & 1) {
            ca_status st = ca_fail(CA_E_UNSUPPORTED, "%s: zip entry '%.*s' is encrypted", path, (int)(nl > 200 ? 200 : nl), (const char *)z->name);
            free(e);
            return st;
        }
        q += 46 + nl + xl + cl;
    }
    *out = e;
    *count = (size_t)entries;
    return CA_OK;
}

/* The bytes of entry z: a pointer into p for stored entries, an inflated copy owned by f (or by
 * *tmp when f is NULL) for deflated ones. */
static ca_status zip_data(const char *path, const uint8_t *p, size_t n, const zentry *z, ca_st_file *f,
                          const uint8_t **data, void **tmp) {
    int nl = (int)(z->nlen > 200 ? 200 : z->nlen);
    const char *nm = (const char *)z->name;
    if (z->local > n || n - z->local < 30 || rd_le(p + z->local, 4) != 0x04034b50)
        return ca_fail(CA_E_FORMAT, "%s: zip entry '%.*s': local header outside the file or damaged", path, nl, nm);
    uint64_t start = z->local + 30 + rd_le(p + z->local + 26, 2) + rd_le(p + z->local + 28, 2);
    if (start > n || z->csize > n - start)
        return ca_fail(CA_E_FORMAT, "%s: zip entry '%.*s': data outside the file (truncated?)", path, nl, nm);
    const uint8_t *src = p + start;
    if (z->method == 0) {
        if (z->csize != z->usize) return ca_fail(CA_E_FORMAT, "%s: zip entry '%.*s': stored sizes differ", path, nl, nm);
        *data = src;
        return CA_OK;
    }
    if (z->method != 8) return ca_fail(CA_E_UNSUPPORTED, "%s: zip entry '%.*s': compression method %d (only stored and deflated)", path, nl, nm, z->method);
    /* deflate expands at most ~1032x: a larger claim is a lie, refused before allocating */
    if (z->usize > z->csize * 1032 + 64 || z->usize > (uint64_t)SIZE_MAX / 2)
        return ca_fail(CA_E_FORMAT, "%s: zip entry '%.*s': implausible uncompressed size", path, nl, nm);
    uint8_t *out = malloc(z->usize ? (size_t)z->usize : 1);
    if (!out) return ca_fail(CA_E_NOMEM, "%s: out of memory inflating '%.*s'", path, nl, nm);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) { free(out); return ca_fail(CA_E_NOMEM, "%s: zlib init failed", path); }
    int r = Z_OK;
    uint64_t in_left = z->csize, out_left = z->usize;
    zs.next_in = (Bytef *)src;
    zs.next_out = out;
    for (;;) {
        uInt ci = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left, co = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
        zs.avail_in = ci;
        zs.avail_out = co;
        r = inflate(&zs, Z_NO_FLUSH);
        in_left -= ci - zs.avail_in;
        out_left -= co - zs.avail_out;
        if (r != Z_OK || (zs.avail_in == ci && zs.avail_out == co)) break;
    }
    inflateEnd(&zs);
    if (r != Z_STREAM_END || out_left || (z->usize < (1u << 31) && crc32(0L, out, (uInt)z->usize) != z->crc)) {
        free(out);
        return ca_fail(CA_E_FORMAT, "%s: zip entry '%.*s': corrupt compressed data", path, nl, nm);
    }
    *data = out;
    if (f) return ca_st_keep_buf(f, out);
    *tmp = out;
    return CA_OK;
}

static const zentry *zip_find(const zentry *e, size_t n, const char *prefix, size_t pl, const char *rest) {
    size_t rl = strlen(rest);
    for (size_t k = 0; k < n; k++)
        if (e[k].nlen == pl + rl && !memcmp(e[k].name, prefix, pl) && !memcmp(e[k].name + pl, rest, rl)) return &e[k];
    return NULL;
}

static ca_status open_zip(pm *M, ca_st_file *f, const uint8_t *p, size_t n) {
    zentry *e = NULL;
    size_t ne = 0;
    void *pkl_tmp = NULL;
    ca_status st = zip_dir(M->path, p, n, &e, &ne);
    if (st) return st;
    /* "<archive>/data.pkl" (any one-folder prefix, as torch names it after the file) or "data.pkl" */
    const zentry *pk = NULL;
    size_t pl = 0;
    for (size_t k = 0; k < ne && !pk; k++) {
        const uint8_t *nm = e[k].name;
        size_t l = e[k].nlen;
        if (l < 8 || memcmp(nm + l - 8, "data.pkl", 8)) continue;
        if (l == 8) { pk = &e[k]; pl = 0; }
        else if (nm[l - 9] == '/' && !memchr(nm, '/', l - 9)) { pk = &e[k]; pl = l - 8; }
    }
    if (!pk) { st = ca_fail(CA_E_FORMAT, "%s: zip archive without data.pkl: not a PyTorch checkpoint", M->path); goto out; }
    char prefix[256];
    if (pl >= sizeof prefix) { st = ca_fail(CA_E_FORMAT, "%s: archive folder name too long", M->path); goto out; }
    memcpy(prefix, pk->name, pl);
    prefix[pl] = 0;
    const zentry *bo = zip_find(e, ne, prefix, pl, "byteorder");
    if (bo) {
        const uint8_t *d;
        void *tmp = NULL;
        if ((st = zip_data(M->path, p, n, bo, NULL, &d, &tmp))) goto out;
        bool big = bo->usize == 3 && !memcmp(d, "big", 3);
        free(tmp);
        if (big) { st = ca_fail(CA_E_UNSUPPORTED, "%s: big-endian checkpoint", M->path); goto out; }
    }
    /* TorchScript archives carry their code and constants beside the data */
    bool ts = zip_find(e, ne, prefix, pl, "constants.pkl") != NULL;
    for (size_t k = 0; k < ne && !ts; k++) ts = e[k].nlen > pl + 5 && !memcmp(e[k].name, prefix, pl) && !memcmp(e[k].name + pl, "code/", 5);
    ca_st_set_format(f, ts ? "torchscript" : "pytorch-zip");

    const uint8_t *pkl;
    if ((st = zip_data(M->path, p, n, pk, NULL, &pkl, &pkl_tmp))) goto out;
    val *root = NULL;
    size_t used;
    if ((st = run_pickle(M, pkl, (size_t)pk->usize, 0, &used, &root))) goto out;
    /* storages: "<archive>/data/<key>" */
    for (size_t k = 0; k < M->nstgs && !st; k++) {
        val *s = M->stgs[k];
        if (s->u.stg.has_view) { st = ca_fail(CA_E_FORMAT, "%s: storage view in a zip archive", M->path); break; }
        char rest[300];
        snprintf(rest, sizeof rest, "data/%s", s->u.stg.key);
        const zentry *z = zip_find(e, ne, prefix, pl, rest);
        if (!z) { st = ca_fail(CA_E_FORMAT, "%s: storage '%s' missing from the archive (%s%s)", M->path, s->u.stg.key, prefix, rest); break; }
        /* the same storage may be referenced twice: resolve once */
        for (size_t j = 0; j < k && !s->u.stg.data; j++)
            if (M->stgs[j]->u.stg.data && !strcmp(M->stgs[j]->u.stg.key, s->u.stg.key)) {
                s->u.stg.data = M->stgs[j]->u.stg.data;
                s->u.stg.nbytes = M->stgs[j]->u.stg.nbytes;
            }
        if (!s->u.stg.data) {
            void *unused = NULL;
            if ((st = zip_data(M->path, p, n, z, f, &s->u.stg.data, &unused))) break;
            s->u.stg.nbytes = (size_t)z->usize;
        }
        size_t es = ca_dtype_size(s->u.stg.dt), need;
        if (!ca_mul_size((size_t)s->u.stg.numel, es, &need) || need > s->u.stg.nbytes)
            st = ca_fail(CA_E_FORMAT, "%s: storage '%s': %lld elements announced, %zu bytes stored", M->path, s->u.stg.key,
                         (long long)s->u.stg.numel, s->u.stg.nbytes);
    }
    if (!st) st = emit(M, f, root, n);
    if (!st && ts && M->saw_quickgelu != M->saw_gelu)
        st = ca_st_add_metadata(f, "torchscript.activation", M->saw_quickgelu ? "quickgelu" : "gelu");
out:
    free(pkl_tmp);
    free(e);
    return st;
}

/* ======================================================================================== */
/* the legacy stream (torch < 1.6, or _use_new_zipfile_serialization=False)                */
/* ======================================================================================== */

static const uint8_t LEGACY_MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static ca_status open_legacy(pm *M, ca_st_file *f, const uint8_t *p, size_t n) {
    size_t pos = 0, used;
    val *v = NULL, *root = NULL;
    ca_status st;
    if ((st = run_pickle(M, p, n, 0, &used, &v))) return st;
    pos += used;
    if (v->kind != V_BIGINT || v->u.str.n != 10 || memcmp(v->u.str.s, LEGACY_MAGIC, 10))
        return ca_fail(CA_E_FORMAT, "%s: not a PyTorch file (no magic number)", M->path);
    if ((st = run_pickle(M, p + pos, n - pos, pos, &used, &v))) return st;
    pos += used;
    if (v->kind != V_INT || v->u.i != 1001) return ca_fail(CA_E_UNSUPPORTED, "%s: legacy protocol version is not 1001", M->path);
    if ((st = run_pickle(M, p + pos, n - pos, pos, &used, &v))) return st;
    pos += used;
    val *le = dict_get(v, "little_endian");
    if (v->kind != V_DICT) return ca_fail(CA_E_FORMAT, "%s: legacy system info is not a dict", M->path);
    if (le && !(le->kind == V_BOOL && le->u.i)) return ca_fail(CA_E_UNSUPPORTED, "%s: big-endian checkpoint", M->path);
    if ((st = run_pickle(M, p + pos, n - pos, pos, &used, &root))) return st;
    pos += used;
    size_t nst_root = M->nstgs;
    if ((st = run_pickle(M, p + pos, n - pos, pos, &used, &v))) return st;
    pos += used;
    if (v->kind != V_LIST || M->nstgs != nst_root) return ca_fail(CA_E_FORMAT, "%s: legacy storage key list is not a list", M->path);
    /* then each storage in that order: int64 element count, raw little-endian elements */
    for (size_t k = 0; k < v->u.seq.n; k++) {
        val *key = v->u.seq.a[k];
        if (key->kind != V_STR) return ca_fail(CA_E_FORMAT, "%s: legacy storage key %zu is not a string", M->path, k);
        val *first = NULL;
        for (size_t j = 0; j < M->nstgs && !first; j++)
            if (strlen(M->stgs[j]->u.stg.key) == key->u.str.n && !memcmp(M->stgs[j]->u.stg.key, key->u.str.s, key->u.str.n)) first = M->stgs[j];
        if (!first) return ca_fail(CA_E_FORMAT, "%s: legacy storage '%.*s' is used by no tensor", M->path, (int)(key->u.str.n > 64 ? 64 : key->u.str.n), key->u.str.s);
        if (n - pos < 8) return ca_fail(CA_E_FORMAT, "%s: truncated before storage '%s'", M->path, first->u.stg.key);
        uint64_t cnt = rd_le(p + pos, 8);
        pos += 8;
        size_t es = ca_dtype_size(first->u.stg.dt), nb;
        if (cnt > SIZE_MAX || !ca_mul_size((size_t)cnt, es, &nb) || nb > n - pos)
            return ca_fail(CA_E_FORMAT, "%s: storage '%s': %llu elements run past the end of the file (truncated?)", M->path,
                           first->u.stg.key, (unsigned long long)cnt);
        for (size_t j = 0; j < M->nstgs; j++) {
            val *s = M->stgs[j];
            if (strcmp(s->u.stg.key, first->u.stg.key)) continue;
            if (s->u.stg.data) return ca_fail(CA_E_FORMAT, "%s: storage '%s' listed twice", M->path, s->u.stg.key);
            if (s->u.stg.dt != first->u.stg.dt) return ca_fail(CA_E_FORMAT, "%s: storage '%s' used with two types", M->path, s->u.stg.key);
            if ((uint64_t)s->u.stg.numel != cnt) return ca_fail(CA_E_FORMAT, "%s: storage '%s': %lld elements announced, %llu stored", M->path, s->u.stg.key, (long long)s->u.stg.numel, (unsigned long long)cnt);
            s->u.stg.data = p + pos;
            s->u.stg.nbytes = nb;
            if (s->u.stg.has_view) {
                if ((uint64_t)s->u.stg.view_off > cnt || (uint64_t)s->u.stg.view_numel > cnt - (uint64_t)s->u.stg.view_off)
                    return ca_fail(CA_E_FORMAT, "%s: storage view outside storage '%s'", M->path, s->u.stg.key);
                s->u.stg.data += (size_t)s->u.stg.view_off * es;
                s->u.stg.nbytes = (size_t)s->u.stg.view_numel * es;
            }
        }
        pos += nb;
    }
    for (size_t j = 0; j < M->nstgs; j++)
        if (!M->stgs[j]->u.stg.data) return ca_fail(CA_E_FORMAT, "%s: storage '%s' is not in the file", M->path, M->stgs[j]->u.stg.key);
    ca_st_set_format(f, "pytorch-legacy");
    return emit(M, f, root, n);
}

/* ======================================================================================== */
/* entry points                                                                             */
/* ======================================================================================== */

int ca_torch_sniff(const uint8_t *p, size_t n) {
    if (n >= 4 && p[0] == 'P' && p[1] == 'K' && ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6))) return 1;
    /* PROTO 2, LONG1 of 10 bytes: the magic number */
    return n >= 14 && p[0] == 0x80 && p[1] >= 2 && p[2] == 0x8a && p[3] == 10 && !memcmp(p + 4, LEGACY_MAGIC, 10);
}

ca_st_file *ca_torch_open_mem(const char *path, const uint8_t *data, size_t len, void *map, size_t map_len, ca_status *st) {
    ca_status s_;
    if (!st) st = &s_;
    ca_st_file *f = ca_st_new(path, "pytorch");
    if (!f) { *st = CA_E_NOMEM; return NULL; }
    pm M;
    memset(&M, 0, sizeof M);
    M.path = path;
    /* values cost ~100 bytes per pickle byte at worst; more than that is not a checkpoint */
    M.budget = (size_t)256 << 20;
    if (len >= 4 && data[0] == 'P' && data[1] == 'K') *st = open_zip(&M, f, data, len);
    else if (len >= 2 && data[0] == 0x80) *st = open_legacy(&M, f, data, len);
    else *st = ca_fail(CA_E_FORMAT, "%s: not a PyTorch checkpoint (neither a zip archive nor a pickle)", path);
    pm_free(&M);
    if (!*st && map) *st = ca_st_keep_map(f, map, map_len);
    if (*st) {
        ca_st_close(f);
        return NULL;
    }
    return f;
}
