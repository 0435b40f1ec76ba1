/* torchwrite.h — a minimal writer of PyTorch zip archives for tests and benchmarks: a
 * `torch.save` state dict or a TorchScript archive laid out as `torch.jit.save` writes OpenAI's
 * `clip.load` files (stored entries aligned to 64 bytes, `data.pkl` with `__torch__` module
 * objects whose attributes name the tensors, `data/N` storages, `constants.pkl`, `code/`), from
 * the tensors of an open ca_st_file. Only what a reader of the weights looks at: no TorchScript
 * code, no ZIP64 (archives under 4 GiB). Used by tests/test_torchfile.c (sharded
 * pytorch_model.bin) and bench/gen_formats.c. Not a product writer: clipadapt writes safetensors. */
#ifndef CA_TESTS_TORCHWRITE_H
#define CA_TESTS_TORCHWRITE_H

#include "clipadapt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- a growing byte buffer ---- */
typedef struct { unsigned char *p; size_t n, cap; } tw_buf;

static void tw_put(tw_buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) { fprintf(stderr, "tw_write: out of memory\n"); exit(1); }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void tw_put1(tw_buf *b, int c) { unsigned char x = (unsigned char)c; tw_put(b, &x, 1); }
static void tw_put_le(tw_buf *b, uint64_t v, int n) { for (int i = 0; i < n; i++) tw_put1(b, (int)(v >> (8 * i) & 0xff)); }

/* ---- pickle (protocol 2), just the opcodes torch writes for a module tree ---- */
static void tw_str(tw_buf *b, const char *s) { tw_put1(b, 'X'); tw_put_le(b, strlen(s), 4); tw_put(b, s, strlen(s)); }
static void tw_int(tw_buf *b, int64_t v) { tw_put1(b, 'J'); tw_put_le(b, (uint64_t)v, 4); }
static void tw_global(tw_buf *b, const char *mod, const char *name) {
    tw_put1(b, 'c'); tw_put(b, mod, strlen(mod)); tw_put1(b, '\n'); tw_put(b, name, strlen(name)); tw_put1(b, '\n');
}

static void tw_tensor(tw_buf *b, const ca_tensor_info *t, int key) {
    tw_global(b, "torch._utils", "_rebuild_tensor_v2");
    tw_put1(b, '(');                                     /* args */
    tw_put1(b, '(');                                     /* persistent id */
    tw_str(b, "storage");
    tw_global(b, "torch", t->dtype == CA_DT_F16 ? "HalfStorage" : t->dtype == CA_DT_BF16 ? "BFloat16Storage" : "FloatStorage");
    char k[32];
    snprintf(k, sizeof k, "%d", key);
    tw_str(b, k);
    tw_str(b, "cpu");
    tw_int(b, t->numel);
    tw_put1(b, 't');
    tw_put1(b, 'Q');
    tw_int(b, 0);                                      /* storage offset */
    tw_put1(b, '(');
    for (int d = 0; d < t->ndim; d++) tw_int(b, t->shape[d]);
    tw_put1(b, 't');
    tw_put1(b, '(');                                     /* contiguous strides */
    for (int d = 0; d < t->ndim; d++) {
        int64_t s = 1;
        for (int e = d + 1; e < t->ndim; e++) s *= t->shape[e];
        tw_int(b, s);
    }
    tw_put1(b, 't');
    tw_put1(b, 0x89);                                    /* requires_grad False */
    tw_global(b, "collections", "OrderedDict");
    tw_put1(b, ')');
    tw_put1(b, 'R');
    tw_put1(b, 't');
    tw_put1(b, 'R');
}

/* The module at prefix (pl bytes of a dotted name) as a `__torch__` object: its attributes are the
 * next name components, in first-appearance order; a component that ends a name is a tensor. */
static void tw_module(tw_buf *b, const ca_st_file *f, const unsigned char *keep, const char *prefix, size_t pl, const char *cls) {
    tw_global(b, "__torch__.clip.model", cls);
    tw_put1(b, ')');
    tw_put1(b, 0x81);                                    /* NEWOBJ */
    tw_put1(b, '}');
    tw_put1(b, '(');
    int n = ca_st_count(f);
    for (int i = 0; i < n; i++) {
        const char *name = ca_st_at(f, i)->name;
        if ((keep && !keep[i]) || strncmp(name, prefix, pl) != 0) continue;
        const char *c = name + pl, *dot = strchr(c, '.');
        size_t cl = dot ? (size_t)(dot - c) : strlen(c);
        int seen = 0; /* this component already written by an earlier name */
        for (int j = 0; j < i && !seen; j++) {
            const char *o = ca_st_at(f, j)->name;
            seen = (!keep || keep[j]) && !strncmp(o, prefix, pl) && !strncmp(o + pl, c, cl) && (o[pl + cl] == '.' || o[pl + cl] == 0);
        }
        if (seen) continue;
        char comp[256];
        snprintf(comp, sizeof comp, "%.*s", (int)cl, c);
        tw_str(b, comp);
        if (!dot) {
            tw_tensor(b, ca_st_at(f, i), i);
        } else {
            char sub[1024];
            snprintf(sub, sizeof sub, "%.*s", (int)(pl + cl + 1), name);
            tw_module(b, f, keep, sub, pl + cl + 1, "Module");
        }
    }
    tw_put1(b, 'u');                                     /* SETITEMS */
    tw_put1(b, 'b');                                     /* BUILD */
}

/* ---- zip: stored entries, data 64-byte aligned as torch's writer pads them ---- */
typedef struct { char name[300]; uint32_t crc; uint64_t size, local; } tw_zent;

static void tw_zadd(FILE *o, uint64_t *pos, tw_zent *e, const char *name, const void *data, uint64_t n) {
    snprintf(e->name, sizeof e->name, "%s", name);
    e->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    for (uint64_t d = 0; d < n;) { /* crc32 takes uInt lengths */
        uInt c = n - d > (1u << 30) ? (1u << 30) : (uInt)(n - d);
        e->crc = (uint32_t)crc32(e->crc, (const Bytef *)data + d, c);
        d += c;
    }
    e->size = n;
    e->local = *pos;
    size_t nl = strlen(name);
    uint64_t data_at = *pos + 30 + nl + 4;
    size_t pad = (size_t)((64 - data_at % 64) % 64);
    tw_buf h = {0};
    tw_put_le(&h, 0x04034b50, 4); tw_put_le(&h, 20, 2); tw_put_le(&h, 0, 2); tw_put_le(&h, 0, 2);
    tw_put_le(&h, 0, 2); tw_put_le(&h, 0, 2);               /* time, date */
    tw_put_le(&h, e->crc, 4); tw_put_le(&h, n, 4); tw_put_le(&h, n, 4);
    tw_put_le(&h, nl, 2); tw_put_le(&h, 4 + pad, 2);
    tw_put(&h, name, nl);
    tw_put_le(&h, 0x4246, 2); tw_put_le(&h, pad, 2);        /* "FB" padding field, as torch writes */
    for (size_t i = 0; i < pad; i++) tw_put1(&h, 'Z');
    fwrite(h.p, 1, h.n, o);
    fwrite(data, 1, (size_t)n, o);
    *pos += h.n + n;
    free(h.p);
}

/* The tensors of f (those with keep[i] when keep is not NULL) as a zip archive at path, folder
 * `arch` inside: a TorchScript archive (torchscript != 0: module objects, constants.pkl, code/)
 * or a `torch.save` state dict (a dict of name -> tensor). Written to path.tmp, then renamed.
 * Returns 0, or 1 with the reason on stderr. */
static int tw_write(const ca_st_file *f, const unsigned char *keep, const char *path, const char *arch, int torchscript) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "wb");
    if (!o) { perror(tmp); return 1; }
    int n = ca_st_count(f);
    tw_zent *e = calloc((size_t)n + 8, sizeof *e);
    if (!e) return 1;
    int ne = 0;
    uint64_t pos = 0;
    char name[400];
    tw_buf pk = {0};
    tw_put1(&pk, 0x80); tw_put1(&pk, 2);
    if (torchscript) {
        tw_module(&pk, f, keep, "", 0, "CLIP");
    } else {
        tw_put1(&pk, '}');
        tw_put1(&pk, '(');
        for (int i = 0; i < n; i++)
            if (!keep || keep[i]) { tw_str(&pk, ca_st_at(f, i)->name); tw_tensor(&pk, ca_st_at(f, i), i); }
        tw_put1(&pk, 'u');
    }
    tw_put1(&pk, '.');
    snprintf(name, sizeof name, "%s/data.pkl", arch);
    tw_zadd(o, &pos, &e[ne++], name, pk.p, pk.n);
    if (torchscript) {
        const char *code = "# (no TorchScript code: the weights only)\n";
        snprintf(name, sizeof name, "%s/code/__torch__/clip/model.py", arch);
        tw_zadd(o, &pos, &e[ne++], name, code, strlen(code));
        static const unsigned char empty_tuple[] = {0x80, 2, ')', '.'};
        snprintf(name, sizeof name, "%s/constants.pkl", arch);
        tw_zadd(o, &pos, &e[ne++], name, empty_tuple, sizeof empty_tuple);
    }
    for (int i = 0; i < n; i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        if (keep && !keep[i]) continue;
        snprintf(name, sizeof name, "%s/data/%d", arch, i);
        tw_zadd(o, &pos, &e[ne++], name, t->data, t->nbytes);
    }
    snprintf(name, sizeof name, "%s/version", arch);
    tw_zadd(o, &pos, &e[ne++], name, "3\n", 2);
    tw_buf cd = {0};
    for (int i = 0; i < ne; i++) {
        size_t nl = strlen(e[i].name);
        tw_put_le(&cd, 0x02014b50, 4); tw_put_le(&cd, 20, 2); tw_put_le(&cd, 20, 2); tw_put_le(&cd, 0, 2); tw_put_le(&cd, 0, 2);
        tw_put_le(&cd, 0, 2); tw_put_le(&cd, 0, 2);
        tw_put_le(&cd, e[i].crc, 4); tw_put_le(&cd, e[i].size, 4); tw_put_le(&cd, e[i].size, 4);
        tw_put_le(&cd, nl, 2); tw_put_le(&cd, 0, 2); tw_put_le(&cd, 0, 2); tw_put_le(&cd, 0, 2); tw_put_le(&cd, 0, 2);
        tw_put_le(&cd, 0, 4); tw_put_le(&cd, e[i].local, 4);
        tw_put(&cd, e[i].name, nl);
    }
    tw_put_le(&cd, 0x06054b50, 4); tw_put_le(&cd, 0, 2); tw_put_le(&cd, 0, 2); tw_put_le(&cd, ne, 2); tw_put_le(&cd, ne, 2);
    tw_put_le(&cd, cd.n - 0, 4); /* patched below: the directory's own size excludes this record */
    tw_put_le(&cd, pos, 4); tw_put_le(&cd, 0, 2);
    size_t dir = cd.n - 22;
    for (int i = 0; i < 4; i++) cd.p[dir + 12 + i] = (unsigned char)(dir >> (8 * i) & 0xff);
    fwrite(cd.p, 1, cd.n, o);
    int bad = pos > 0xffffffffu || ferror(o);
    bad |= fclose(o) != 0;
    free(cd.p);
    free(pk.p);
    free(e);
    if (bad || rename(tmp, path)) { fprintf(stderr, "tw_write: cannot write %s (over 4 GiB?)\n", path); remove(tmp); return 1; }
    return 0;
}

#endif
