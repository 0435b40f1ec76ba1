/* tensorfile.c — ca_weights_open: any checkpoint clipadapt reads, recognised by its first bytes
 * (zip or legacy pickle: torchfile.c; JSON: a sharded checkpoint's index; else safetensors), or a
 * folder holding one, opened as one ca_st_file. Not here: the parsers themselves.
 */
#include "io/torchfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a folder may hold, best first: OpenCLIP hub folders, then HF snapshots. */
static const char *const DIR_FILES[] = {
    "open_clip_model.safetensors", "model.safetensors", "model.safetensors.index.json",
    "open_clip_pytorch_model.bin", "pytorch_model.bin", "pytorch_model.bin.index.json",
};

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

/* where a file is met: given directly, picked from a folder, or named by an index */
enum { IN_FOLDER = 1, IN_INDEX = 2 };

static ca_st_file *open_file(const char *path, int within, ca_status *st);

/* {"weight_map": {tensor: shard file}}: every shard opened (each by content) and merged. */
static ca_st_file *open_index(const char *path, const char *json, size_t len, int within, ca_status *st) {
    const char *P = path;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    ca_st_file *f = NULL;
    char **files = NULL;
    int nfiles = 0;
    if (!cJSON_IsObject(wm)) { *st = ca_fail(CA_E_FORMAT, "%s: not a sharded checkpoint index (no \"weight_map\" object)", P); goto out; }
    if (within & IN_INDEX) { *st = ca_fail(CA_E_FORMAT, "%s: an index inside an index", P); goto out; }
    int n = cJSON_GetArraySize(wm);
    files = calloc((size_t)n + 1, sizeof *files);
    f = ca_st_new(path, "safetensors-sharded");
    if (!files || !f) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", P); goto out; }
    const char *base = ca_basename(path);
    char *dir = strndup(path, (size_t)(base - path));
    if (!dir) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", P); goto out; }
    *st = CA_OK;
    for (const cJSON *it = wm->child; it && !*st; it = it->next) {
        if (!cJSON_IsString(it) || !it->string) { *st = ca_fail(CA_E_FORMAT, "%s: weight_map value is not a file name", P); break; }
        const char *shard = it->valuestring;
        if (!*shard || strchr(shard, '/') || !strcmp(shard, "..")) { *st = ca_fail(CA_E_FORMAT, "%s: shard '%s' is not a file beside the index", P, shard); break; }
        int seen = 0;
        for (int k = 0; k < nfiles && !seen; k++) seen = !strcmp(files[k], shard);
        if (seen) continue;
        files[nfiles++] = (char *)shard;
        char *sp = dir[0] ? join(dir, shard) : strdup(shard);
        if (!sp) { *st = ca_fail(CA_E_NOMEM, "%s: out of memory", P); break; }
        ca_st_file *kid = open_file(sp, within | IN_INDEX, st);
        free(sp);
        if (!kid) break;
        if (strcmp(ca_st_format(kid), "safetensors")) ca_st_set_format(f, "pytorch-sharded");
        if ((*st = ca_st_keep_file(f, kid))) break;
        for (int i = 0; i < ca_st_count(kid) && !*st; i++) {
            const ca_tensor_info *t = ca_st_at(kid, i);
            *st = ca_st_add(f, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
        }
    }
    free(dir);
    if (!*st) *st = ca_st_check_unique(f);
    /* every tensor the index promises must be in a shard */
    for (const cJSON *it = wm->child; it && !*st; it = it->next)
        if (!ca_st_find(f, it->string)) *st = ca_fail(CA_E_FORMAT, "%s: tensor '%s' is in the index but not in shard '%s'", P, it->string, it->valuestring);
out:
    free(files);
    cJSON_Delete(root);
    if (*st || !f) { if (!*st) *st = CA_E_NOMEM; ca_st_close(f); return NULL; }
    return f;
}

static ca_st_file *open_file(const char *path, int within, ca_status *st) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { *st = ca_fail(CA_E_IO, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat sb;
    if (fstat(fd, &sb) != 0) { close(fd); *st = ca_fail(CA_E_IO, "%s: cannot stat: %s", path, strerror(errno)); return NULL; }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        if (within) { *st = ca_fail(CA_E_FORMAT, "%s: is a folder", path); return NULL; }
        for (size_t i = 0; i < sizeof DIR_FILES / sizeof DIR_FILES[0]; i++) {
            char *p = join(path, DIR_FILES[i]);
            if (!p) { *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
            if (access(p, R_OK) == 0) {
                ca_st_file *f = open_file(p, within | IN_FOLDER, st);
                free(p);
                return f;
            }
            free(p);
        }
        *st = ca_fail(CA_E_NOTFOUND, "%s: folder holds no checkpoint (looked for open_clip_model.safetensors, model.safetensors, "
                                     "open_clip_pytorch_model.bin, pytorch_model.bin and their .index.json)", path);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) { close(fd); *st = ca_fail(CA_E_IO, "%s: not a regular file", path); return NULL; }
    size_t len = (size_t)sb.st_size;
    if (len < 8) { close(fd); *st = ca_fail(CA_E_FORMAT, "%s: too short for a checkpoint (%zu bytes)", path, len); return NULL; }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { *st = ca_fail(CA_E_IO, "%s: cannot map: %s", path, strerror(errno)); return NULL; }
    const uint8_t *p = map;
    /* safetensors: an 8-byte header length that fits the file, then a JSON object. Checked
     * before the pickle test: a header of 640 bytes starts with the bytes 0x80 0x02 too. */
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--) hlen = (hlen << 8) | p[b];
    bool st_like = len > 8 && p[8] == '{' && hlen <= len - 8;
    if (!st_like && (ca_torch_sniff(p, len) || (p[0] == 0x80 && p[1] >= 2 && p[1] <= 5))) {
        ca_st_file *f = ca_torch_open_mem(path, p, len, map, len, st);
        if (!f) munmap(map, len);
        return f;
    }
    size_t k = 0;
    while (k < len && k < 64 && (p[k] == ' ' || p[k] == '\n' || p[k] == '\r' || p[k] == '\t')) k++;
    if (!st_like && k < len && p[k] == '{') {
        ca_st_file *f = len > ((size_t)64 << 20) ? (*st = ca_fail(CA_E_FORMAT, "%s: index file larger than 64 MB", path), NULL)
                                                  : open_index(path, (const char *)p, len, within, st);
        munmap(map, len);
        return f;
    }
    munmap(map, len);
    if (!st_like) {
        *st = ca_fail(CA_E_FORMAT, "%s: not a checkpoint clipadapt reads (safetensors, PyTorch zip or legacy file, "
                                   "TorchScript archive, or a sharded index)", path);
        return NULL;
    }
    return ca_st_open(path, st);
}

ca_st_file *ca_weights_open(const char *path, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!path) { *st = ca_fail(CA_E_ARG, "ca_weights_open: path is NULL"); return NULL; }
    return open_file(path, 0, st);
}

/* ---- the files a checkpoint path reads (output policies) ------------------------------------ */

typedef struct { char **a; int n, cap; } flist;

static ca_status fl_add(flist *l, const char *p, size_t n) {
    if (l->n + 2 > l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **a = realloc(l->a, sizeof *a * (size_t)cap);
        if (!a) return ca_fail(CA_E_NOMEM, "out of memory");
        l->a = a;
        l->cap = cap;
    }
    if (!(l->a[l->n] = strndup(p, n))) return ca_fail(CA_E_NOMEM, "out of memory");
    l->a[++l->n] = NULL;
    return CA_OK;
}

/* As open_file picks, without reading tensors: the folder's checkpoint, the file, and for an
 * index every shard it names (each once, beside the index). */
static ca_status files_of(const char *path, int within, flist *l) {
    struct stat sb;
    if (stat(path, &sb) != 0) return ca_fail(CA_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        if (within) return ca_fail(CA_E_FORMAT, "%s: is a folder", path);
        for (size_t i = 0; i < sizeof DIR_FILES / sizeof DIR_FILES[0]; i++) {
            char *p = join(path, DIR_FILES[i]);
            if (!p) return ca_fail(CA_E_NOMEM, "out of memory");
            ca_status st = access(p, R_OK) == 0 ? files_of(p, IN_FOLDER, l) : CA_E_NOTFOUND;
            free(p);
            if (st != CA_E_NOTFOUND) return st;
        }
        return ca_fail(CA_E_NOTFOUND, "%s: folder holds no checkpoint", path);
    }
    ca_status st = fl_add(l, path, strlen(path));
    if (st || !S_ISREG(sb.st_mode) || sb.st_size < 9 || sb.st_size > ((off_t)64 << 20)) return st;
    /* an index is JSON from its first byte on (a safetensors file starts with its header length) */
    unsigned char head[64];
    int fd = open(path, O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, head, sizeof head) : -1;
    if (fd >= 0) close(fd);
    size_t k = 0;
    while (got > 0 && k < (size_t)got && (head[k] == ' ' || head[k] == '\n' || head[k] == '\r' || head[k] == '\t')) k++;
    if (got <= 0 || k >= (size_t)got || head[k] != '{') return CA_OK;
    size_t len;
    char *txt = ca_read_file(path, &len, &st);
    if (!txt) return st;
    cJSON *root = cJSON_ParseWithLength(txt, len);
    free(txt);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    const char *base = ca_basename(path);
    for (const cJSON *it = cJSON_IsObject(wm) ? wm->child : NULL; it && !st; it = it->next) {
        if (!cJSON_IsString(it) || !*it->valuestring || strchr(it->valuestring, '/')) continue; /* refused when opened */
        char *sp = malloc((size_t)(base - path) + strlen(it->valuestring) + 1);
        if (!sp) { st = ca_fail(CA_E_NOMEM, "out of memory"); break; }
        memcpy(sp, path, (size_t)(base - path));
        strcpy(sp + (base - path), it->valuestring);
        int seen = 0;
        for (int i = 0; i < l->n && !seen; i++) seen = !strcmp(l->a[i], sp);
        if (!seen) st = fl_add(l, sp, strlen(sp));
        free(sp);
    }
    cJSON_Delete(root);
    return st;
}

char **ca_weights_files(const char *path, int *count, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (count) *count = 0;
    if (!path) { *st = ca_fail(CA_E_ARG, "ca_weights_files: path is NULL"); return NULL; }
    flist l = {0};
    *st = files_of(path, 0, &l);
    if (*st) { ca_weights_files_free(l.a); return NULL; }
    if (count) *count = l.n;
    return l.a;
}

void ca_weights_files_free(char **files) {
    for (char **p = files; p && *p; p++) free(*p);
    free(files);
}
