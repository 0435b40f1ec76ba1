/* gen_formats.c — the same weights in the other formats `make bench` times loading from: an F32
 * safetensors copy and a TorchScript archive laid out as `torch.jit.save` writes OpenAI's
 * `clip.load` files (zip, stored entries aligned to 64 bytes, `data.pkl` holding `__torch__`
 * module objects whose attributes name the tensors, `data/N` storages, `constants.pkl`, `code/`).
 * For benchmarks only: the archive carries no TorchScript code, just what a reader of the weights
 * looks at. Not a general PyTorch writer.
 * Usage: gen_formats IN.safetensors OUT.f32.safetensors OUT.jit.pt   (existing outputs are kept) */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- a growing byte buffer ---- */
typedef struct { unsigned char *p; size_t n, cap; } buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) { fprintf(stderr, "gen_formats: out of memory\n"); exit(1); }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put1(buf *b, int c) { unsigned char x = (unsigned char)c; put(b, &x, 1); }
static void put_le(buf *b, uint64_t v, int n) { for (int i = 0; i < n; i++) put1(b, (int)(v >> (8 * i) & 0xff)); }

/* ---- pickle (protocol 2), just the opcodes torch writes for a module tree ---- */
static void p_str(buf *b, const char *s) { put1(b, 'X'); put_le(b, strlen(s), 4); put(b, s, strlen(s)); }
static void p_int(buf *b, int64_t v) { put1(b, 'J'); put_le(b, (uint64_t)v, 4); }
static void p_global(buf *b, const char *mod, const char *name) {
    put1(b, 'c'); put(b, mod, strlen(mod)); put1(b, '\n'); put(b, name, strlen(name)); put1(b, '\n');
}

static void p_tensor(buf *b, const ca_tensor_info *t, int key) {
    p_global(b, "torch._utils", "_rebuild_tensor_v2");
    put1(b, '(');                                     /* args */
    put1(b, '(');                                     /* persistent id */
    p_str(b, "storage");
    p_global(b, "torch", t->dtype == CA_DT_F16 ? "HalfStorage" : t->dtype == CA_DT_BF16 ? "BFloat16Storage" : "FloatStorage");
    char k[32];
    snprintf(k, sizeof k, "%d", key);
    p_str(b, k);
    p_str(b, "cpu");
    p_int(b, t->numel);
    put1(b, 't');
    put1(b, 'Q');
    p_int(b, 0);                                      /* storage offset */
    put1(b, '(');
    for (int d = 0; d < t->ndim; d++) p_int(b, t->shape[d]);
    put1(b, 't');
    put1(b, '(');                                     /* contiguous strides */
    for (int d = 0; d < t->ndim; d++) {
        int64_t s = 1;
        for (int e = d + 1; e < t->ndim; e++) s *= t->shape[e];
        p_int(b, s);
    }
    put1(b, 't');
    put1(b, 0x89);                                    /* requires_grad False */
    p_global(b, "collections", "OrderedDict");
    put1(b, ')');
    put1(b, 'R');
    put1(b, 't');
    put1(b, 'R');
}

/* The module at prefix (pl bytes of a dotted name) as a `__torch__` object: its attributes are the
 * next name components, in first-appearance order; a component that ends a name is a tensor. */
static void p_module(buf *b, const ca_st_file *f, const char *prefix, size_t pl, const char *cls) {
    p_global(b, "__torch__.clip.model", cls);
    put1(b, ')');
    put1(b, 0x81);                                    /* NEWOBJ */
    put1(b, '}');
    put1(b, '(');
    int n = ca_st_count(f);
    for (int i = 0; i < n; i++) {
        const char *name = ca_st_at(f, i)->name;
        if (strncmp(name, prefix, pl) != 0) continue;
        const char *c = name + pl, *dot = strchr(c, '.');
        size_t cl = dot ? (size_t)(dot - c) : strlen(c);
        int seen = 0; /* this component already written by an earlier name */
        for (int j = 0; j < i && !seen; j++) {
            const char *o = ca_st_at(f, j)->name;
            seen = !strncmp(o, prefix, pl) && !strncmp(o + pl, c, cl) && (o[pl + cl] == '.' || o[pl + cl] == 0);
        }
        if (seen) continue;
        char comp[256];
        snprintf(comp, sizeof comp, "%.*s", (int)cl, c);
        p_str(b, comp);
        if (!dot) {
            p_tensor(b, ca_st_at(f, i), i);
        } else {
            char sub[1024];
            snprintf(sub, sizeof sub, "%.*s", (int)(pl + cl + 1), name);
            p_module(b, f, sub, pl + cl + 1, "Module");
        }
    }
    put1(b, 'u');                                     /* SETITEMS */
    put1(b, 'b');                                     /* BUILD */
}

/* ---- zip: stored entries, data 64-byte aligned as torch's writer pads them ---- */
typedef struct { char name[300]; uint32_t crc; uint64_t size, local; } zent;

static void z_add(FILE *o, uint64_t *pos, zent *e, const char *name, const void *data, uint64_t n) {
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
    buf h = {0};
    put_le(&h, 0x04034b50, 4); put_le(&h, 20, 2); put_le(&h, 0, 2); put_le(&h, 0, 2);
    put_le(&h, 0, 2); put_le(&h, 0, 2);               /* time, date */
    put_le(&h, e->crc, 4); put_le(&h, n, 4); put_le(&h, n, 4);
    put_le(&h, nl, 2); put_le(&h, 4 + pad, 2);
    put(&h, name, nl);
    put_le(&h, 0x4246, 2); put_le(&h, pad, 2);        /* "FB" padding field, as torch writes */
    for (size_t i = 0; i < pad; i++) put1(&h, 'Z');
    fwrite(h.p, 1, h.n, o);
    fwrite(data, 1, (size_t)n, o);
    *pos += h.n + n;
    free(h.p);
}

static int write_jit(const ca_st_file *f, const char *path) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "wb");
    if (!o) { perror(tmp); return 1; }
    const char *arch = "ViT-B-32";
    int n = ca_st_count(f);
    zent *e = calloc((size_t)n + 8, sizeof *e);
    if (!e) return 1;
    int ne = 0;
    uint64_t pos = 0;
    char name[400];
    buf pk = {0};
    put1(&pk, 0x80); put1(&pk, 2);
    p_module(&pk, f, "", 0, "CLIP");
    put1(&pk, '.');
    snprintf(name, sizeof name, "%s/data.pkl", arch);
    z_add(o, &pos, &e[ne++], name, pk.p, pk.n);
    const char *code = "# (no TorchScript code: bench/gen_formats.c writes the weights only)\n";
    snprintf(name, sizeof name, "%s/code/__torch__/clip/model.py", arch);
    z_add(o, &pos, &e[ne++], name, code, strlen(code));
    static const unsigned char empty_tuple[] = {0x80, 2, ')', '.'};
    snprintf(name, sizeof name, "%s/constants.pkl", arch);
    z_add(o, &pos, &e[ne++], name, empty_tuple, sizeof empty_tuple);
    for (int i = 0; i < n; i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        snprintf(name, sizeof name, "%s/data/%d", arch, i);
        z_add(o, &pos, &e[ne++], name, t->data, t->nbytes);
    }
    snprintf(name, sizeof name, "%s/version", arch);
    z_add(o, &pos, &e[ne++], name, "3\n", 2);
    buf cd = {0};
    for (int i = 0; i < ne; i++) {
        size_t nl = strlen(e[i].name);
        put_le(&cd, 0x02014b50, 4); put_le(&cd, 20, 2); put_le(&cd, 20, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2);
        put_le(&cd, 0, 2); put_le(&cd, 0, 2);
        put_le(&cd, e[i].crc, 4); put_le(&cd, e[i].size, 4); put_le(&cd, e[i].size, 4);
        put_le(&cd, nl, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2);
        put_le(&cd, 0, 4); put_le(&cd, e[i].local, 4);
        put(&cd, e[i].name, nl);
    }
    put_le(&cd, 0x06054b50, 4); put_le(&cd, 0, 2); put_le(&cd, 0, 2); put_le(&cd, ne, 2); put_le(&cd, ne, 2);
    put_le(&cd, cd.n - 0, 4); /* patched below: the directory's own size excludes this record */
    put_le(&cd, pos, 4); put_le(&cd, 0, 2);
    size_t dir = cd.n - 22;
    for (int i = 0; i < 4; i++) cd.p[dir + 12 + i] = (unsigned char)(dir >> (8 * i) & 0xff);
    fwrite(cd.p, 1, cd.n, o);
    int bad = pos > 0xffffffffu || ferror(o);
    bad |= fclose(o) != 0;
    free(cd.p);
    free(pk.p);
    free(e);
    if (bad || rename(tmp, path)) { fprintf(stderr, "gen_formats: cannot write %s (over 4 GiB?)\n", path); remove(tmp); return 1; }
    fprintf(stderr, "gen_formats: wrote %s\n", path);
    return 0;
}

static int write_f32(const ca_st_file *f, const char *path) {
    ca_st_writer *w = ca_st_writer_new();
    ca_status st = w ? CA_OK : CA_E_NOMEM;
    for (int i = 0; i < ca_st_count(f) && !st; i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        float *d = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        st = d ? ca_tensor_to_f32(t, d, t->numel) : CA_E_NOMEM;
        if (!st) st = ca_st_writer_add(w, t->name, CA_DT_F32, t->ndim, t->shape, d);
        free(d);
    }
    if (!st) st = ca_st_writer_save(w, path);
    ca_st_writer_free(w);
    if (st) { fprintf(stderr, "gen_formats: %s: %s\n", path, ca_last_error()); return 1; }
    fprintf(stderr, "gen_formats: wrote %s\n", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: gen_formats IN.safetensors OUT.f32.safetensors OUT.jit.pt\n"); return 2; }
    ca_status st;
    ca_st_file *f = ca_st_open(argv[1], &st);
    if (!f) { fprintf(stderr, "gen_formats: %s\n", ca_last_error()); return 1; }
    struct stat sb;
    int rc = 0;
    if (stat(argv[2], &sb) != 0) rc |= write_f32(f, argv[2]);
    if (stat(argv[3], &sb) != 0) rc |= write_jit(f, argv[3]);
    ca_st_close(f);
    return rc;
}
