/* safetensors.c — validated, memory-mapped reader and atomic writer for the safetensors format
 * (8-byte little-endian header length, JSON header, raw little-endian data). Every size from the
 * file is checked for overflow and against the file length before use. Not a general JSON API.
 */
#include "core/core.h"
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER_BYTES ((uint64_t)100 << 20) /* 100 MB, as the reference implementation */

struct ca_st_file {
    char *path;
    void *map;                 /* whole file mapping (NULL for an empty data section copy) */
    size_t map_len;
    int count;
    ca_tensor_info *t;         /* count entries; names owned in names[] */
    char **names;
    int meta_count;
    char **meta_keys, **meta_vals;
    /* files built by other readers (io/safetensors.h): what the handle owns besides the above */
    const char *format;        /* static: "safetensors", "pytorch-zip", ... */
    int cap;                   /* allocated entries of t[] / names[] */
    void **bufs; int nbufs;    /* malloc'd buffers (inflated entries, contiguous copies) */
    ca_st_file **kids; int nkids; /* shards of a sharded checkpoint */
};

static const struct { const char *name; ca_dtype dt; size_t size; } DTYPES[] = {
    {"F32", CA_DT_F32, 4}, {"F16", CA_DT_F16, 2}, {"BF16", CA_DT_BF16, 2}, {"F64", CA_DT_F64, 8},
    {"I64", CA_DT_I64, 8}, {"I32", CA_DT_I32, 4}, {"I16", CA_DT_I16, 2},  {"I8", CA_DT_I8, 1},
    {"U8", CA_DT_U8, 1},   {"BOOL", CA_DT_BOOL, 1},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

const char *ca_dtype_name(ca_dtype dt) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].name;
    return "?";
}

size_t ca_dtype_size(ca_dtype dt) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].size;
    return 0;
}

static bool dtype_from_name(const char *s, ca_dtype *dt) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(DTYPES[i].name, s) == 0) { *dt = DTYPES[i].dt; return true; }
    return false;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

void ca_st_close(ca_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    for (int i = 0; i < f->nbufs; i++) free(f->bufs[i]);
    for (int i = 0; i < f->nkids; i++) ca_st_close(f->kids[i]);
    free(f->bufs); free(f->kids);
    for (int i = 0; i < f->count; i++) free(f->names[i]);
    for (int i = 0; i < f->meta_count; i++) { free(f->meta_keys[i]); free(f->meta_vals[i]); }
    free(f->names); free(f->t); free(f->meta_keys); free(f->meta_vals); free(f->path);
    free(f);
}

void ca_st_drop_pages(const ca_st_file *f, const ca_tensor_info *t) {
    if (!f || !t || !t->data || t->nbytes == 0) return;
    for (int i = 0; i < f->nkids; i++) ca_st_drop_pages(f->kids[i], t);
    if (!f->map) return;
    /* only bytes inside this handle's own file mapping (never a malloc'd copy) */
    const char *d = t->data, *base = (const char *)f->map;
    if (d < base || (size_t)(d - base) > f->map_len || (size_t)t->nbytes > f->map_len - (size_t)(d - base)) return;
    /* whole pages around the tensor: the mapping is read-only and private, so dropping a page it
     * shares with a neighbour only means that neighbour's bytes are read from the file again */
    ca_drop_pages(d, (size_t)t->nbytes, 0);
}

typedef struct { uint64_t begin, end; int idx; } range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static ca_status parse_header(ca_st_file *f, const char *json, size_t json_len, const uint8_t *data,
                              uint64_t data_len) {
    const char *P = f->path;
    cJSON *root = cJSON_ParseWithLength(json, json_len);
    if (!root) return ca_fail(CA_E_FORMAT, "%s: header is not valid JSON", P);
    ca_status st = CA_OK;
    range *ranges = NULL;
    if (!cJSON_IsObject(root)) { st = ca_fail(CA_E_FORMAT, "%s: header is not a JSON object", P); goto out; }
    int n = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        if (!it->string) { st = ca_fail(CA_E_FORMAT, "%s: header entry without a name", P); goto out; }
        if (strcmp(it->string, "__metadata__") != 0) n++;
    }
    f->t = calloc((size_t)n + 1, sizeof *f->t);
    f->names = calloc((size_t)n + 1, sizeof *f->names);
    ranges = calloc((size_t)n + 1, sizeof *ranges);
    if (!f->t || !f->names || !ranges) { st = ca_fail(CA_E_NOMEM, "%s: out of memory", P); goto out; }
    for (cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string;
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) { st = ca_fail(CA_E_FORMAT, "%s: __metadata__ is not an object", P); goto out; }
            /* cJSON keeps duplicate keys: a second __metadata__ would leak the first tables */
            if (f->meta_keys) { st = ca_fail(CA_E_FORMAT, "%s: __metadata__ appears twice", P); goto out; }
            int m = cJSON_GetArraySize(it);
            f->meta_keys = calloc((size_t)m + 1, sizeof(char *));
            f->meta_vals = calloc((size_t)m + 1, sizeof(char *));
            if (!f->meta_keys || !f->meta_vals) { st = ca_fail(CA_E_NOMEM, "%s: out of memory", P); goto out; }
            for (cJSON *kv = it->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv) || !kv->string) {
                    st = ca_fail(CA_E_FORMAT, "%s: __metadata__ value '%s' is not a string", P, kv->string ? kv->string : "?");
                    goto out;
                }
                f->meta_keys[f->meta_count] = strdup(kv->string);
                f->meta_vals[f->meta_count] = strdup(kv->valuestring);
                f->meta_count++;
                if (!f->meta_keys[f->meta_count - 1] || !f->meta_vals[f->meta_count - 1]) {
                    st = ca_fail(CA_E_NOMEM, "%s: out of memory", P); goto out;
                }
            }
            continue;
        }
        for (int j = 0; j < f->count; j++)
            if (strcmp(f->names[j], name) == 0) { st = ca_fail(CA_E_FORMAT, "%s: tensor '%s' appears twice", P, name); goto out; }
        if (!cJSON_IsObject(it)) { st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': entry is not an object", P, name); goto out; }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        ca_tensor_info *t = &f->t[f->count];
        if (!cJSON_IsString(jd) || !dtype_from_name(jd->valuestring, &t->dtype)) {
            st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': missing or unknown dtype", P, name); goto out;
        }
        if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > CA_MAX_DIMS) {
            st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': shape missing or has more than %d dims", P, name, CA_MAX_DIMS); goto out;
        }
        size_t numel = 1;
        t->ndim = 0;
        for (cJSON *d = js->child; d; d = d->next) {
            uint64_t v;
            if (!json_uint(d, &v) || v > (uint64_t)INT64_MAX) { st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': bad dimension in shape", P, name); goto out; }
            t->shape[t->ndim++] = (int64_t)v;
            if (!ca_mul_size(numel, (size_t)v, &numel)) { st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': shape overflows", P, name); goto out; }
        }
        uint64_t b, e;
        if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &b) || !json_uint(jo->child->next, &e)) {
            st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers", P, name); goto out;
        }
        size_t nbytes;
        if (!ca_mul_size(numel, ca_dtype_size(t->dtype), &nbytes)) { st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': byte size overflows", P, name); goto out; }
        if (b > e || e > data_len) {
            st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] outside the %llu-byte data section (truncated file?)",
                         P, name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_len);
            goto out;
        }
        if (e - b != nbytes) {
            st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': %llu bytes but shape x %s needs %zu", P, name,
                         (unsigned long long)(e - b), ca_dtype_name(t->dtype), nbytes);
            goto out;
        }
        f->names[f->count] = strdup(name);
        if (!f->names[f->count]) { st = ca_fail(CA_E_NOMEM, "%s: out of memory", P); goto out; }
        t->name = f->names[f->count];
        t->numel = (int64_t)numel;
        t->nbytes = nbytes;
        t->data = data + b;
        ranges[f->count] = (range){b, e, f->count};
        f->count++;
    }
    /* Ranges must tile the data section: sorted, no overlap, no hole. Empty tensors may sit anywhere. */
    qsort(ranges, (size_t)f->count, sizeof *ranges, cmp_range);
    uint64_t pos = 0;
    for (int i = 0; i < f->count; i++) {
        if (ranges[i].begin == ranges[i].end) continue;
        if (ranges[i].begin < pos) {
            st = ca_fail(CA_E_FORMAT, "%s: tensor '%s' overlaps another tensor's data", P, f->names[ranges[i].idx]); goto out;
        }
        if (ranges[i].begin > pos) {
            st = ca_fail(CA_E_FORMAT, "%s: hole in the data section before tensor '%s'", P, f->names[ranges[i].idx]); goto out;
        }
        pos = ranges[i].end;
    }
    if (pos != data_len) st = ca_fail(CA_E_FORMAT, "%s: %llu trailing bytes not covered by any tensor", P, (unsigned long long)(data_len - pos));
out:
    free(ranges);
    cJSON_Delete(root);
    return st;
}

ca_st_file *ca_st_open(const char *path, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!path) { *st = ca_fail(CA_E_ARG, "ca_st_open: path is NULL"); return NULL; }
    ca_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) { free(f); *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
    f->format = "safetensors";
    int fd = open(path, O_RDONLY);
    if (fd < 0) { *st = ca_fail(CA_E_IO, "%s: cannot open: %s", path, strerror(errno)); ca_st_close(f); return NULL; }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        *st = ca_fail(CA_E_IO, "%s: not a regular file", path);
        ca_st_close(f);
        return NULL;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        close(fd);
        *st = ca_fail(CA_E_FORMAT, "%s: too short for a safetensors file (%llu bytes)", path, (unsigned long long)size);
        ca_st_close(f);
        return NULL;
    }
    f->map_len = (size_t)size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        *st = ca_fail(CA_E_IO, "%s: cannot map: %s", path, strerror(errno));
        ca_st_close(f);
        return NULL;
    }
    const uint8_t *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > MAX_HEADER_BYTES || hlen > size - 8) {
        *st = ca_fail(CA_E_FORMAT, "%s: header length %llu exceeds the file (%llu bytes) or the 100 MB limit",
                      path, (unsigned long long)hlen, (unsigned long long)size);
        ca_st_close(f);
        return NULL;
    }
    *st = parse_header(f, (const char *)p + 8, (size_t)hlen, p + 8 + hlen, size - 8 - hlen);
    if (*st != CA_OK) { ca_st_close(f); return NULL; }
    return f;
}

const char *ca_st_path(const ca_st_file *f) { return f ? f->path : NULL; }
const char *ca_st_format(const ca_st_file *f) { return f ? f->format : NULL; }

/* ---- building a handle from another format (io/safetensors.h) ---- */

ca_st_file *ca_st_new(const char *path, const char *format) {
    ca_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path ? path : "?"))) { free(f); ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
    f->format = format;
    return f;
}

void ca_st_set_format(ca_st_file *f, const char *format) { if (f) f->format = format; }

ca_status ca_st_keep_map(ca_st_file *f, void *map, size_t len) {
    if (f->map) return ca_fail(CA_E_INTERNAL, "%s: mapping set twice", f->path);
    f->map = map;
    f->map_len = len;
    return CA_OK;
}

/* Append p to a pointer array of n entries (grown by doubling at powers of two). */
static bool push_ptr(void ***arr, int *n, void *p) {
    if ((*n & (*n - 1)) == 0) {
        size_t cap = *n ? (size_t)*n * 2 : 4;
        void **a = realloc(*arr, cap * sizeof *a);
        if (!a) return false;
        *arr = a;
    }
    (*arr)[(*n)++] = p;
    return true;
}

ca_status ca_st_keep_buf(ca_st_file *f, void *buf) {
    if (!push_ptr(&f->bufs, &f->nbufs, buf)) { free(buf); return ca_fail(CA_E_NOMEM, "%s: out of memory", f->path); }
    return CA_OK;
}

ca_status ca_st_keep_file(ca_st_file *f, ca_st_file *kid) {
    if (!push_ptr((void ***)&f->kids, &f->nkids, kid)) { ca_st_close(kid); return ca_fail(CA_E_NOMEM, "%s: out of memory", f->path); }
    return CA_OK;
}

ca_status ca_st_add(ca_st_file *f, const char *name, ca_dtype dt, int ndim, const int64_t *shape,
                    const void *data, size_t nbytes) {
    size_t numel = 1, need;
    if (ndim < 0 || ndim > CA_MAX_DIMS || !ca_dtype_size(dt)) return ca_fail(CA_E_INTERNAL, "%s: bad tensor '%s'", f->path, name);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || !ca_mul_size(numel, (size_t)shape[d], &numel))
            return ca_fail(CA_E_FORMAT, "%s: tensor '%s': shape overflows", f->path, name);
    if (!ca_mul_size(numel, ca_dtype_size(dt), &need) || need != nbytes)
        return ca_fail(CA_E_FORMAT, "%s: tensor '%s': %zu bytes for its shape", f->path, name, nbytes);
    if (f->count == f->cap) {
        int nc = f->cap ? f->cap * 2 : 64;
        ca_tensor_info *t = realloc(f->t, (size_t)nc * sizeof *t);
        if (t) f->t = t;
        char **nm = t ? realloc(f->names, (size_t)nc * sizeof *nm) : NULL;
        if (!nm) return ca_fail(CA_E_NOMEM, "%s: out of memory", f->path);
        f->names = nm;
        f->cap = nc;
        /* names moved: re-point every entry's name */
        for (int i = 0; i < f->count; i++) f->t[i].name = f->names[i];
    }
    char *s = strdup(name);
    if (!s) return ca_fail(CA_E_NOMEM, "%s: out of memory", f->path);
    ca_tensor_info *t = &f->t[f->count];
    memset(t, 0, sizeof *t);
    f->names[f->count] = s;
    t->name = s;
    t->dtype = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->numel = (int64_t)numel;
    t->data = data;
    t->nbytes = nbytes;
    f->count++;
    return CA_OK;
}

ca_status ca_st_add_metadata(ca_st_file *f, const char *key, const char *val) {
    /* few entries: grown one at a time (parse_header sizes its arrays exactly, too) */
    char **k = realloc(f->meta_keys, (size_t)(f->meta_count + 1) * sizeof *k);
    if (k) f->meta_keys = k;
    char **v = k ? realloc(f->meta_vals, (size_t)(f->meta_count + 1) * sizeof *v) : NULL;
    if (v) f->meta_vals = v;
    char *ks = v ? strdup(key) : NULL, *vs = ks ? strdup(val) : NULL;
    if (!vs) { free(ks); return ca_fail(CA_E_NOMEM, "%s: out of memory", f->path); }
    f->meta_keys[f->meta_count] = ks;
    f->meta_vals[f->meta_count] = vs;
    f->meta_count++;
    return CA_OK;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

ca_status ca_st_check_unique(const ca_st_file *f) {
    if (f->count < 2) return CA_OK;
    char **s = malloc((size_t)f->count * sizeof *s);
    if (!s) return ca_fail(CA_E_NOMEM, "%s: out of memory", f->path);
    memcpy(s, f->names, (size_t)f->count * sizeof *s);
    qsort(s, (size_t)f->count, sizeof *s, cmp_name);
    ca_status st = CA_OK;
    for (int i = 1; i < f->count && !st; i++)
        if (!strcmp(s[i - 1], s[i])) st = ca_fail(CA_E_FORMAT, "%s: tensor '%s' appears twice", f->path, s[i]);
    free(s);
    return st;
}
int ca_st_count(const ca_st_file *f) { return f ? f->count : 0; }

const ca_tensor_info *ca_st_at(const ca_st_file *f, int i) {
    return (f && i >= 0 && i < f->count) ? &f->t[i] : NULL;
}

const ca_tensor_info *ca_st_find(const ca_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->names[i], name) == 0) return &f->t[i];
    return NULL;
}

const char *ca_st_metadata(const ca_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

int ca_st_metadata_count(const ca_st_file *f) { return f ? f->meta_count : 0; }
const char *ca_st_metadata_key(const ca_st_file *f, int i) {
    return (f && i >= 0 && i < f->meta_count) ? f->meta_keys[i] : NULL;
}

/* Element i of a tensor as double / int64 (data may be unaligned: memcpy). */
static double elem_f64(const ca_tensor_info *t, int64_t i) {
    const uint8_t *p = (const uint8_t *)t->data + (size_t)i * ca_dtype_size(t->dtype);
    switch (t->dtype) {
    case CA_DT_F32: { float v; memcpy(&v, p, 4); return v; }
    case CA_DT_F16: { uint16_t v; memcpy(&v, p, 2); return ca_f16_to_f32(v); }
    case CA_DT_BF16: { uint16_t v; memcpy(&v, p, 2); return ca_bf16_to_f32(v); }
    case CA_DT_F64: { double v; memcpy(&v, p, 8); return v; }
    case CA_DT_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case CA_DT_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case CA_DT_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case CA_DT_I8: return (int8_t)*p;
    case CA_DT_U8: case CA_DT_BOOL: return *p;
    }
    return 0;
}

ca_status ca_tensor_to_f32(const ca_tensor_info *t, float *dst, int64_t n) {
    CA_ENTER();
    if (!t || !dst) return ca_fail(CA_E_ARG, "ca_tensor_to_f32: NULL argument");
    if (n != t->numel) return ca_fail(CA_E_SHAPE, "tensor '%s': %lld elements, caller expects %lld", t->name, (long long)t->numel, (long long)n);
    if (t->dtype == CA_DT_F32) { memcpy(dst, t->data, (size_t)n * 4); return CA_OK; }
    if (t->dtype == CA_DT_F16) { ca_f16_to_f32_n(dst, t->data, (size_t)n); return CA_OK; }
    for (int64_t i = 0; i < n; i++) dst[i] = (float)elem_f64(t, i);
    return CA_OK;
}

ca_status ca_tensor_to_i64(const ca_tensor_info *t, int64_t *dst, int64_t n) {
    CA_ENTER();
    if (!t || !dst) return ca_fail(CA_E_ARG, "ca_tensor_to_i64: NULL argument");
    if (n != t->numel) return ca_fail(CA_E_SHAPE, "tensor '%s': %lld elements, caller expects %lld", t->name, (long long)t->numel, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == CA_DT_I64) { memcpy(&dst[i], (const uint8_t *)t->data + 8 * i, 8); continue; }
        double v = elem_f64(t, i);
        if (v != v || v < -9.2e18 || v > 9.2e18) return ca_fail(CA_E_FORMAT, "tensor '%s': element %lld is not an integer", t->name, (long long)i);
        dst[i] = (int64_t)v;
    }
    return CA_OK;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) {
        if (shape[i] < 0) k += (size_t)snprintf(buf + k, n - k, "%s*", i ? "," : "");
        else k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
}

float *ca_st_load_f32(const ca_st_file *f, const char *name, int ndim, const int64_t *expect,
                      int64_t *shape_out, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    const ca_tensor_info *t = ca_st_find(f, name);
    if (!t) { *st = ca_fail(CA_E_NOTFOUND, "%s: tensor '%s' is missing", f ? f->path : "?", name); return NULL; }
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && expect && i < ndim; i++)
        if (expect[i] >= 0 && expect[i] != t->shape[i]) ok = false;
    if (!ok) {
        char a[128], b[128];
        shape_str(a, sizeof a, ndim, expect ? expect : (const int64_t[CA_MAX_DIMS]){-1, -1, -1, -1, -1, -1, -1, -1});
        shape_str(b, sizeof b, t->ndim, t->shape);
        *st = ca_fail(CA_E_SHAPE, "%s: tensor '%s': expected shape %s, found %s", f->path, name, a, b);
        return NULL;
    }
    switch (t->dtype) {
    case CA_DT_F32: case CA_DT_F16: case CA_DT_BF16: case CA_DT_F64: break;
    default:
        *st = ca_fail(CA_E_SHAPE, "%s: tensor '%s': expected a floating-point dtype, found %s", f->path, name, ca_dtype_name(t->dtype));
        return NULL;
    }
    float *out = ca_malloc_big((size_t)t->numel, sizeof(float));
    if (!out) { *st = CA_E_NOMEM; return NULL; }
    ca_tensor_to_f32(t, out, t->numel);
    if (shape_out) memcpy(shape_out, t->shape, (size_t)t->ndim * sizeof(int64_t));
    *st = CA_OK;
    return out;
}

/* ---------------------------------- writer ---------------------------------- */

typedef struct { char *name; ca_dtype dt; int ndim; int64_t shape[CA_MAX_DIMS]; void *data; size_t nbytes; } wtensor;

struct ca_st_writer {
    wtensor *t; int n, cap;
    char **mk, **mv; int nm, capm;
};

ca_st_writer *ca_st_writer_new(void) {
    CA_ENTER();
    ca_st_writer *w = calloc(1, sizeof *w);
    if (!w) ca_fail(CA_E_NOMEM, "out of memory");
    return w;
}

void ca_st_writer_free(ca_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) { free(w->t[i].name); free(w->t[i].data); }
    for (int i = 0; i < w->nm; i++) { free(w->mk[i]); free(w->mv[i]); }
    free(w->t); free(w->mk); free(w->mv); free(w);
}

ca_status ca_st_writer_add(ca_st_writer *w, const char *name, ca_dtype dt, int ndim,
                           const int64_t *shape, const void *data) {
    CA_ENTER();
    if (!w || !name || ndim < 0 || ndim > CA_MAX_DIMS || (ndim && !shape) || !ca_dtype_size(dt))
        return ca_fail(CA_E_ARG, "ca_st_writer_add: bad argument for tensor '%s'", name ? name : "?");
    if (strcmp(name, "__metadata__") == 0) return ca_fail(CA_E_ARG, "tensor name '__metadata__' is reserved");
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return ca_fail(CA_E_ARG, "tensor '%s' added twice", name);
    size_t numel = 1, nbytes;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !ca_mul_size(numel, (size_t)shape[i], &numel))
            return ca_fail(CA_E_ARG, "tensor '%s': bad shape", name);
    }
    if (!ca_mul_size(numel, ca_dtype_size(dt), &nbytes)) return ca_fail(CA_E_NOMEM, "tensor '%s': too large", name);
    if (nbytes && !data) return ca_fail(CA_E_ARG, "tensor '%s': NULL data", name);
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 16;
        wtensor *nt = realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt) return ca_fail(CA_E_NOMEM, "out of memory");
        w->t = nt; w->cap = nc;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) { free(t->name); free(t->data); return ca_fail(CA_E_NOMEM, "out of memory"); }
    if (nbytes) memcpy(t->data, data, nbytes);
    t->dt = dt; t->ndim = ndim; t->nbytes = nbytes;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
    w->n++;
    return CA_OK;
}

ca_status ca_st_writer_metadata(ca_st_writer *w, const char *key, const char *value) {
    CA_ENTER();
    if (!w || !key || !value) return ca_fail(CA_E_ARG, "ca_st_writer_metadata: NULL argument");
    for (int i = 0; i < w->nm; i++)
        if (strcmp(w->mk[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return ca_fail(CA_E_NOMEM, "out of memory");
            free(w->mv[i]); w->mv[i] = v;
            return CA_OK;
        }
    if (w->nm == w->capm) {
        int nc = w->capm ? w->capm * 2 : 8;
        char **a = realloc(w->mk, (size_t)nc * sizeof *a);
        if (!a) return ca_fail(CA_E_NOMEM, "out of memory");
        w->mk = a;
        char **b = realloc(w->mv, (size_t)nc * sizeof *b);
        if (!b) return ca_fail(CA_E_NOMEM, "out of memory");
        w->mv = b; w->capm = nc;
    }
    w->mk[w->nm] = strdup(key);
    w->mv[w->nm] = strdup(value);
    if (!w->mk[w->nm] || !w->mv[w->nm]) { free(w->mk[w->nm]); free(w->mv[w->nm]); return ca_fail(CA_E_NOMEM, "out of memory"); }
    w->nm++;
    return CA_OK;
}

ca_status ca_st_writer_save(const ca_st_writer *w, const char *path) {
    CA_ENTER();
    if (!w || !path) return ca_fail(CA_E_ARG, "ca_st_writer_save: NULL argument");
    cJSON *root = cJSON_CreateObject();
    if (!root) return ca_fail(CA_E_NOMEM, "out of memory");
    if (w->nm) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; m && i < w->nm; i++) cJSON_AddStringToObject(m, w->mk[i], w->mv[i]);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[i];
        cJSON *o = cJSON_AddObjectToObject(root, t->name);
        if (!o) break;
        cJSON_AddStringToObject(o, "dtype", ca_dtype_name(t->dt));
        cJSON *s = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; s && d < t->ndim; d++) cJSON_AddItemToArray(s, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        if (of) {
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + t->nbytes)));
        }
        off += t->nbytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return ca_fail(CA_E_NOMEM, "out of memory");
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    ca_outfile o;
    ca_status st = ca_outfile_open(&o, path);
    if (st != CA_OK) { free(json); return st; }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    st = ca_outfile_write(&o, len8, 8);
    if (st == CA_OK) st = ca_outfile_write(&o, json, jl);
    if (st == CA_OK) st = ca_outfile_write(&o, spaces, padded - jl);
    free(json);
    for (int i = 0; st == CA_OK && i < w->n; i++) st = ca_outfile_write(&o, w->t[i].data, w->t[i].nbytes);
    if (st != CA_OK) { ca_outfile_abort(&o); return st; }
    return ca_outfile_commit(&o);
}
