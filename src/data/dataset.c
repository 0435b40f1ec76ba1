/* dataset.c — labelled image datasets: an image folder (root/<class>/<image>, optional seeded
 * val/test fractions or separate folders) or a CoOp split file (split_zhou_*.json). Class folders
 * are walked recursively, like torchvision's ImageFolder. It lists files and labels only; decoding happens in io/, sampling of few-shot subsets in fewshot.c.
 */
#include "data/dataset.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_CLASSES 100000

void ca_dataset_free(ca_dataset *ds) {
    if (!ds) return;
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < ds->sp[s].n; i++) free(ds->sp[s].paths[i]);
        free(ds->sp[s].paths); free(ds->sp[s].labels);
    }
    for (int c = 0; c < ds->C; c++) free(ds->classes[c]);
    free(ds->classes); free(ds);
}

ca_dataset_params ca_dataset_default_params(void) {
    ca_dataset_params p;
    memset(&p, 0, sizeof p);
    p.seed = 1;
    return p;
}

int ca_dataset_num_classes(const ca_dataset *ds) { return ds ? ds->C : 0; }
const char *ca_dataset_class_name(const ca_dataset *ds, int c) {
    return (ds && c >= 0 && c < ds->C) ? ds->classes[c] : NULL;
}
int ca_dataset_size(const ca_dataset *ds, int split) {
    return (ds && split >= 0 && split < 3) ? ds->sp[split].n : 0;
}
const char *ca_dataset_path(const ca_dataset *ds, int split, int i) {
    return (ds && split >= 0 && split < 3 && i >= 0 && i < ds->sp[split].n) ? ds->sp[split].paths[i] : NULL;
}
int ca_dataset_label(const ca_dataset *ds, int split, int i) {
    return (ds && split >= 0 && split < 3 && i >= 0 && i < ds->sp[split].n) ? ds->sp[split].labels[i] : -1;
}

/* Append (path, label) to a split; takes ownership of path (freed on failure). */
static ca_status push(ca_dsplit *s, char *path, int label) {
    if (!path) return ca_fail(CA_E_NOMEM, "out of memory");
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        char **np = realloc(s->paths, sizeof(char *) * (size_t)cap);
        if (np) s->paths = np;
        int *nl = realloc(s->labels, sizeof(int) * (size_t)cap);
        if (nl) s->labels = nl;
        if (!np || !nl) { free(path); return ca_fail(CA_E_NOMEM, "out of memory"); }
        s->cap = cap;
    }
    s->paths[s->n] = path;
    s->labels[s->n++] = label;
    return CA_OK;
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/') la--;
    char *r = malloc(la + lb + 2);
    if (!r) return NULL;
    memcpy(r, a, la);
    r[la] = '/';
    memcpy(r + la + 1, b, lb + 1);
    return r;
}

static int is_image_name(const char *name) {
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".tif", ".tiff"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof EXT / sizeof EXT[0]; i++)
        if (strcasecmp(dot, EXT[i]) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_str_skip1(const void *a, const void *b) { return strcmp(*(char *const *)a + 1, *(char *const *)b + 1); }

typedef struct { char **v; int n, cap; } name_list;

static ca_status names_push(name_list *l, char *s) {
    if (!s) return ca_fail(CA_E_NOMEM, "out of memory");
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        char **nv = realloc(l->v, sizeof(char *) * (size_t)cap);
        if (!nv) { free(s); return ca_fail(CA_E_NOMEM, "out of memory"); }
        l->v = nv; l->cap = cap;
    }
    l->v[l->n++] = s;
    return CA_OK;
}

/* Sorted names of the class folders in root (directories or links to them); hidden names skipped. */
static ca_status list_dirs(const char *dir, char ***out, int *n_out) {
    *out = NULL; *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return ca_fail(CA_E_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    name_list l = {0};
    ca_status st = CA_OK;
    struct dirent *e;
    while (st == CA_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *full = join(dir, e->d_name);
        struct stat sb;
        int ok = full && stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
        free(full);
        if (ok) st = names_push(&l, strdup(e->d_name));
    }
    closedir(d);
    if (st != CA_OK) { for (int i = 0; i < l.n; i++) free(l.v[i]); free(l.v); return st; }
    if (l.n) qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_str);
    *out = l.v; *n_out = l.n;
    return CA_OK;
}

/* Folders already walked for one class, by device and inode: a symlink loop (or two links to one
 * folder) is walked once. */
typedef struct { dev_t dev; ino_t ino; } dir_id;
typedef struct { dir_id *v; int n, cap; } dir_set;

static int dir_seen(dir_set *s, const struct stat *sb, ca_status *st) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i].dev == sb->st_dev && s->v[i].ino == sb->st_ino) return 1;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        dir_id *nv = realloc(s->v, sizeof *nv * (size_t)cap);
        if (!nv) { *st = ca_fail(CA_E_NOMEM, "out of memory"); return 1; }
        s->v = nv; s->cap = cap;
    }
    s->v[s->n++] = (dir_id){sb->st_dev, sb->st_ino};
    return 0;
}

#define MAX_DEPTH 64

/* Every image file under dir (any depth, links followed, hidden entries skipped) as a path
 * relative to the class folder ("sub/x.jpg"), appended to l, as torchvision's ImageFolder walks.
 * Entries are visited in name order, so which of two links to one folder is walked is fixed. */
static ca_status walk(const char *dir, const char *rel, int depth, dir_set *seen, name_list *l) {
    DIR *d = opendir(dir);
    if (!d) return ca_fail(CA_E_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    name_list ents = {0};
    ca_status st = CA_OK;
    struct dirent *e;
    while (st == CA_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        /* the type byte rides in front of the name, to sort both together */
        size_t n = strlen(e->d_name);
        char *s = malloc(n + 2);
        if (s) { s[0] = (char)e->d_type; memcpy(s + 1, e->d_name, n + 1); }
        st = names_push(&ents, s);
    }
    closedir(d);
    if (st == CA_OK && ents.n) qsort(ents.v, (size_t)ents.n, sizeof *ents.v, cmp_str_skip1);
    for (int i = 0; st == CA_OK && i < ents.n; i++) {
        unsigned char type = (unsigned char)ents.v[i][0];
        const char *name = ents.v[i] + 1;
        int is_dir = type == DT_DIR, is_reg = type == DT_REG;
        char *full = NULL;
        struct stat sb;
        if (is_dir || type == DT_LNK || type == DT_UNKNOWN) {
            /* only folders and links need a stat: it is what makes thousands of files cheap */
            if (!(full = join(dir, name))) { st = ca_fail(CA_E_NOMEM, "out of memory"); break; }
            if (stat(full, &sb) != 0) { free(full); continue; } /* dangling link or vanished entry */
            is_dir = S_ISDIR(sb.st_mode); is_reg = S_ISREG(sb.st_mode);
        }
        if (is_reg && is_image_name(name)) {
            st = names_push(l, *rel ? join(rel, name) : strdup(name));
        } else if (is_dir && depth < MAX_DEPTH && !dir_seen(seen, &sb, &st) && st == CA_OK) {
            char *sub = *rel ? join(rel, name) : strdup(name);
            if (!sub) st = ca_fail(CA_E_NOMEM, "out of memory");
            else st = walk(full, sub, depth + 1, seen, l);
            free(sub);
        }
        free(full);
    }
    for (int i = 0; i < ents.n; i++) free(ents.v[i]);
    free(ents.v);
    return st;
}

/* Sorted relative paths of the images under a class folder. */
static ca_status list_images(const char *cdir, char ***out, int *n_out) {
    *out = NULL; *n_out = 0;
    name_list l = {0};
    dir_set seen = {0};
    struct stat sb;
    ca_status st = CA_OK;
    if (stat(cdir, &sb) != 0) return ca_fail(CA_E_IO, "%s: cannot open folder: %s", cdir, strerror(errno));
    dir_seen(&seen, &sb, &st);
    if (st == CA_OK) st = walk(cdir, "", 0, &seen, &l);
    free(seen.v);
    if (st != CA_OK) { for (int i = 0; i < l.n; i++) free(l.v[i]); free(l.v); return st; }
    if (l.n) qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_str);
    *out = l.v; *n_out = l.n;
    return CA_OK;
}

static void free_names(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Class folder name -> class name: '_' becomes ' ' (as CoOp's folder datasets name them). */
static char *class_name_of(const char *folder) {
    char *s = strdup(folder);
    for (char *p = s; p && *p; p++)
        if (*p == '_') *p = ' ';
    return s;
}

/* All images of folder root/<class> for each class folder into s. With folders == NULL, the
 * class folders define ds->classes; otherwise each folder must be one of those classes. */
typedef struct { const char *const *v; int n; } exclusion;
static int excluded(const exclusion *ex, const char *path) {
    for (int i = 0; ex && i < ex->n; i++)
        if (ex->v[i] && !strcmp(ex->v[i], path)) return 1;
    return 0;
}

static ca_status scan_root(ca_dataset *ds, const char *root, ca_dsplit *s, int define, char ***folders_io,
                           const exclusion *ex) {
    char **dirs; int nd;
    ca_status st = list_dirs(root, &dirs, &nd);
    if (st != CA_OK) return st;
    if (define) {
        if (nd == 0) { free(dirs); return ca_fail(CA_E_FORMAT, "%s: no class folders (expected ROOT/<class>/<image>)", root); }
        if (nd > MAX_CLASSES) { free_names(dirs, nd); return ca_fail(CA_E_RANGE, "%s: more than %d class folders", root, MAX_CLASSES); }
        ds->classes = calloc((size_t)nd, sizeof(char *));
        if (!ds->classes) { free_names(dirs, nd); return ca_fail(CA_E_NOMEM, "out of memory"); }
        ds->C = nd;
        for (int c = 0; c < nd; c++)
            if (!(ds->classes[c] = class_name_of(dirs[c]))) { free_names(dirs, nd); return ca_fail(CA_E_NOMEM, "out of memory"); }
        *folders_io = dirs;
    }
    char **folders = *folders_io;
    for (int i = 0; st == CA_OK && i < nd; i++) {
        int c = i;
        if (!define) {
            for (c = 0; c < ds->C && strcmp(folders[c], dirs[i]) != 0; c++) {}
            if (c == ds->C) { st = ca_fail(CA_E_FORMAT, "%s: class folder '%s' is not a class of the training folder", root, dirs[i]); break; }
        }
        char *cdir = join(root, dirs[i]);
        if (!cdir) { st = ca_fail(CA_E_NOMEM, "out of memory"); break; }
        int n0 = s->n;
        char **files; int nf;
        st = list_images(cdir, &files, &nf);
        if (st == CA_OK && nf == 0 && define) st = ca_fail(CA_E_FORMAT, "%s: class folder has no images", cdir);
        for (int f = 0; st == CA_OK && f < nf; f++) {
            char *path = join(cdir, files[f]);
            if (path && excluded(ex, path)) { free(path); continue; }
            st = push(s, path, c);
        }
        if (st == CA_OK && define && s->n == n0)
            st = ca_fail(CA_E_FORMAT, "%s: class folder has no readable images left", cdir);
        free_names(files, nf);
        free(cdir);
    }
    if (!define) free_names(dirs, nd);
    return st;
}

/* FNV-1a of a path's text, for per-file keys that do not depend on the other files. */
static uint64_t path_hash(const char *p) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *p; p++) { h ^= (unsigned char)*p; h *= 0x100000001b3ull; }
    return h;
}

typedef struct { uint64_t key; int k; } ranked;
static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : x->k - y->k;
}

/* Move round(frac·n) images of each class from train to test and val: the files of a class are
 * ranked by a seeded hash of their path relative to the root, the first go to test, the next
 * to val. A file's rank depends only on its own path, so adding or removing a file moves at
 * most one file per boundary (see docs/e2e.md); every split keeps class-then-name order. */
static ca_status split_fractions(ca_dataset *ds, const ca_dataset_params *p, size_t root_len) {
    ca_dsplit all = ds->sp[CA_SPLIT_TRAIN];
    memset(&ds->sp[CA_SPLIT_TRAIN], 0, sizeof all);
    int *dest = ca_malloc2((size_t)all.n, sizeof(int));
    ranked *tmp = ca_malloc2((size_t)all.n, sizeof(ranked));
    ca_status st = (dest && tmp) ? CA_OK : ca_fail(CA_E_NOMEM, "out of memory");
    for (int i0 = 0; st == CA_OK && i0 < all.n;) {
        int c = all.labels[i0], i1 = i0;
        while (i1 < all.n && all.labels[i1] == c) i1++;
        int n = i1 - i0;
        int nt = (int)floor(n * p->test_split + 0.5), nv = (int)floor(n * p->val_split + 0.5);
        if (n - nt - nv < 1) {
            st = ca_fail(CA_E_RANGE, "class '%s' has %d images: too few for val %.3g + test %.3g and one training image",
                         ds->classes[c], n, p->val_split, p->test_split);
            break;
        }
        for (int k = 0; k < n; k++) {
            const char *rel = all.paths[i0 + k] + (strlen(all.paths[i0 + k]) > root_len ? root_len : 0);
            tmp[k] = (ranked){ca_hash64(path_hash(rel) ^ ca_hash64(p->seed)), k};
        }
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_ranked);
        for (int k = 0; k < n; k++) dest[i0 + tmp[k].k] = k < nt ? CA_SPLIT_TEST : k < nt + nv ? CA_SPLIT_VAL : CA_SPLIT_TRAIN;
        i0 = i1;
    }
    for (int i = 0; i < all.n; i++) {
        if (st == CA_OK) { st = push(&ds->sp[dest[i]], all.paths[i], all.labels[i]); all.paths[i] = NULL; }
        free(all.paths[i]);
    }
    free(all.paths); free(all.labels); free(dest); free(tmp);
    return st;
}

ca_dataset *ca_dataset_from_folder(const char *root, const ca_dataset_params *p, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    ca_dataset_params def = ca_dataset_default_params();
    if (!p) p = &def;
    if (!root) { *st = ca_fail(CA_E_ARG, "ca_dataset_from_folder: root is NULL"); return NULL; }
    if (!(p->val_split >= 0 && p->val_split < 1 && p->test_split >= 0 && p->test_split < 1 && p->val_split + p->test_split < 1)) {
        *st = ca_fail(CA_E_ARG, "val/test fractions must be in [0,1) and sum to less than 1 (got %g, %g)", p->val_split, p->test_split);
        return NULL;
    }
    if ((p->val_dir && p->val_split > 0) || (p->test_dir && p->test_split > 0)) {
        *st = ca_fail(CA_E_ARG, "give either a val/test fraction or a separate val/test folder, not both");
        return NULL;
    }
    ca_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) { *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
    char **folders = NULL;
    exclusion ex = {p->exclude, p->n_exclude > 0 && p->exclude ? p->n_exclude : 0};
    *st = scan_root(ds, root, &ds->sp[CA_SPLIT_TRAIN], 1, &folders, &ex);
    if (*st == CA_OK && (p->val_split > 0 || p->test_split > 0)) {
        size_t rl = strlen(root); /* paths are root + '/' + rel, root without trailing slashes */
        while (rl > 1 && root[rl - 1] == '/') rl--;
        *st = split_fractions(ds, p, rl);
    }
    if (*st == CA_OK && p->val_dir) *st = scan_root(ds, p->val_dir, &ds->sp[CA_SPLIT_VAL], 0, &folders, &ex);
    if (*st == CA_OK && p->test_dir) *st = scan_root(ds, p->test_dir, &ds->sp[CA_SPLIT_TEST], 0, &folders, &ex);
    free_names(folders, folders ? ds->C : 0);
    if (*st != CA_OK) { ca_dataset_free(ds); return NULL; }
    return ds;
}

ca_dataset *ca_dataset_drop(const ca_dataset *src, const char *const *paths, int n, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!src || (n > 0 && !paths)) { *st = ca_fail(CA_E_ARG, "ca_dataset_drop: NULL argument"); return NULL; }
    exclusion ex = {paths, n};
    ca_dataset *ds = calloc(1, sizeof *ds);
    *st = ds ? CA_OK : ca_fail(CA_E_NOMEM, "out of memory");
    if (ds && !(ds->classes = calloc((size_t)src->C + 1, sizeof(char *)))) *st = ca_fail(CA_E_NOMEM, "out of memory");
    for (int c = 0; *st == CA_OK && c < src->C; c++, ds->C++)
        if (!(ds->classes[c] = strdup(src->classes[c]))) *st = ca_fail(CA_E_NOMEM, "out of memory");
    for (int s = 0; *st == CA_OK && s < 3; s++)
        for (int i = 0; *st == CA_OK && i < src->sp[s].n; i++)
            if (!excluded(&ex, src->sp[s].paths[i])) *st = push(&ds->sp[s], strdup(src->sp[s].paths[i]), src->sp[s].labels[i]);
    if (*st != CA_OK) { ca_dataset_free(ds); return NULL; }
    return ds;
}

/* ---- CoOp split files ---- */

static ca_status parse_split(ca_dataset *ds, const char *path, const char *root, const cJSON *arr,
                             const char *name, ca_dsplit *s, char ***names, int *cap) {
    if (!cJSON_IsArray(arr)) return ca_fail(CA_E_FORMAT, "%s: \"%s\" must be an array of [path, label, classname]", path, name);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        const cJSON *p = cJSON_GetArrayItem(e, 0), *l = cJSON_GetArrayItem(e, 1), *c = cJSON_GetArrayItem(e, 2);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 3 || !cJSON_IsString(p) || !cJSON_IsNumber(l) || !cJSON_IsString(c))
            return ca_fail(CA_E_FORMAT, "%s: \"%s\"[%d]: expected [path, label, classname]", path, name, i);
        double lv = l->valuedouble;
        if (!(lv >= 0 && lv < MAX_CLASSES) || lv != floor(lv))
            return ca_fail(CA_E_FORMAT, "%s: \"%s\"[%d]: label %g is not an integer in [0, %d)", path, name, i, lv, MAX_CLASSES);
        if (!p->valuestring[0]) return ca_fail(CA_E_FORMAT, "%s: \"%s\"[%d]: empty image path", path, name, i);
        int label = (int)lv;
        if (label >= *cap) {
            int nc = *cap ? *cap : 16;
            while (nc <= label) nc *= 2;
            char **nn = realloc(*names, sizeof(char *) * (size_t)nc);
            if (!nn) return ca_fail(CA_E_NOMEM, "out of memory");
            memset(nn + *cap, 0, sizeof(char *) * (size_t)(nc - *cap));
            *names = nn; *cap = nc;
        }
        if (!(*names)[label]) {
            if (!((*names)[label] = strdup(c->valuestring))) return ca_fail(CA_E_NOMEM, "out of memory");
        } else if (strcmp((*names)[label], c->valuestring) != 0) {
            return ca_fail(CA_E_FORMAT, "%s: \"%s\"[%d]: label %d is named '%s' here but '%s' before", path, name, i, label,
                           c->valuestring, (*names)[label]);
        }
        if (label >= ds->C) ds->C = label + 1;
        ca_status st = push(s, join(root, p->valuestring), label);
        if (st != CA_OK) return st;
    }
    return CA_OK;
}

ca_dataset *ca_dataset_from_split_file(const char *json_path, const char *image_root, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!json_path || !image_root) { *st = ca_fail(CA_E_ARG, "ca_dataset_from_split_file: NULL argument"); return NULL; }
    size_t len;
    char *text = ca_read_file(json_path, &len, st);
    if (!text) return NULL;
    ca_dataset *ds = ca_dataset_from_split_json(text, len, json_path, image_root, st);
    free(text);
    return ds;
}

ca_dataset *ca_dataset_from_split_json(const char *text, size_t len, const char *json_path, const char *image_root,
                                       ca_status *st) {
    cJSON *js = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(js)) {
        cJSON_Delete(js);
        *st = ca_fail(CA_E_FORMAT, "%s: not a JSON object (expected {\"train\": [...], \"val\": [...], \"test\": [...]})", json_path);
        return NULL;
    }
    ca_dataset *ds = calloc(1, sizeof *ds);
    char **names = NULL;
    int cap = 0;
    *st = ds ? CA_OK : ca_fail(CA_E_NOMEM, "out of memory");
    static const char *const KEYS[3] = {"train", "val", "test"};
    for (int s = 0; *st == CA_OK && s < 3; s++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(js, KEYS[s]);
        if (!a && s == CA_SPLIT_TRAIN) *st = ca_fail(CA_E_FORMAT, "%s: no \"train\" list", json_path);
        else if (a) *st = parse_split(ds, json_path, image_root, a, KEYS[s], &ds->sp[s], &names, &cap);
    }
    cJSON_Delete(js);
    if (*st == CA_OK && ds->sp[CA_SPLIT_TRAIN].n == 0) *st = ca_fail(CA_E_FORMAT, "%s: \"train\" is empty", json_path);
    for (int c = 0; *st == CA_OK && c < ds->C; c++)
        if (!names[c]) *st = ca_fail(CA_E_FORMAT, "%s: labels reach %d but label %d never occurs", json_path, ds->C - 1, c);
    if (ds) { ds->classes = names; names = NULL; }
    if (names) { for (int c = 0; c < cap; c++) free(names[c]); free(names); }
    if (*st != CA_OK) {
        /* classes may be partly NULL: free all cap slots ourselves */
        if (ds && ds->classes) { for (int c = 0; c < cap; c++) free(ds->classes[c]); free(ds->classes); ds->classes = NULL; ds->C = 0; }
        ca_dataset_free(ds);
        return NULL;
    }
    /* shrink-free: entries beyond C are NULL already */
    return ds;
}
