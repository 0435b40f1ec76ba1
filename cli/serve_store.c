/* serve_store.c — the classifiers of `clipadapt serve` and their examples, in memory and on disk.
 *
 * Each classifier is read through immutable snapshots (a request keeps the one it started with);
 * a change builds a new snapshot (ca_classifier_clone + grow, or a refit) and swaps it in under a
 * lock. On disk, with --data-dir DIR, a classifier NAME lives in DIR/classifiers/NAME/:
 *   base.safetensors     as uploaded (PUT) or imported from --classifier NAME=FILE
 *   examples.log         append-only records (a new class with its text weight; an example with
 *                        its feature), each with a CRC32; fsync'd before an add is acknowledged
 *   current.safetensors  the last refit, with param serve_log_records = the records it includes
 * A restart loads current (else base) and replays the log past that count, so it serves exactly
 * the acknowledged examples; a torn last record (SIGKILL mid-append) fails its CRC and is cut.
 * Not the HTTP layer, not the model (features arrive already encoded).
 */
#include "serve_store.h"
#include "serve_log.h"
#include "serve_metrics.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Paths here are DIR (checked below 3000 bytes at start) + a name (<= 64) + a short suffix, so
 * they fit PATH_MAX; GCC cannot see that bound. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MAX_CLASSIFIERS 256

typedef struct { ca_classifier *c; int refs; } snap;
typedef struct entry entry;

struct entry {
    char name[SRV_NAME_MAX + 1];
    char dir[PATH_MAX];          /* "" without --data-dir */
    pthread_mutex_t mu;          /* serialises changes: adds, refit swaps, the log */
    snap *cur;                   /* read under store.mu */
    int log_fd;
    int refs, deleted;
    /* everything needed to refit: classes, their text weights, every example */
    int C, D;
    char **names;
    float *textw;                /* (C, D) or NULL when the classifier has no text */
    float *ex_x; int32_t *ex_y; int n_ex, cap_ex;
    int base_ex;                 /* examples from the base classifier's cache */
    int64_t *base_cnt; int base_C;   /* examples a cache-less base (prototype) was fit on, per class */
    /* the log, in memory: record i is a class (ref = class index) or an example (ref = index) */
    int8_t *rec_type; int32_t *rec_ref; int64_t n_rec, cap_rec;
    int64_t added;               /* examples added through the API (also replayed ones) */
    int refitting, refits_done;
    volatile int cancel;
    char refit_method[48], refit_error[300];
    char refit_select[16], refit_fit_on[16];   /* "kshot-val" | "none"; "all" | "train part" */
    int refit_held_out;
};

struct store {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *e[MAX_CLASSIFIERS];
    int n, refits_running;
    char cdir[PATH_MAX];          /* DIR/classifiers or "" */
    srv *s;
};

int valid_name(const char *n) {
    size_t len = strlen(n);
    if (len < 1 || len > SRV_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.'))) return 0;
    }
    return 1;
}

/* ---- small file helpers ---- */

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[PATH_MAX];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* path <- bytes, fsync'd (the caller renames the folder into place). */
static int write_file_sync(const char *path, const void *buf, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int r = write_all(fd, buf, n);
    if (!r) r = fsync(fd);
    close(fd);
    return r;
}

/* ---- snapshots and entries ---- */

static void snap_unref(snap *p) {
    if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0) { ca_classifier_free(p->c); free(p); }
}

static void entry_free(entry *e) {
    snap_unref(e->cur);
    if (e->log_fd >= 0) close(e->log_fd);
    for (int i = 0; i < e->C; i++) free(e->names[i]);
    free(e->names); free(e->textw); free(e->ex_x); free(e->ex_y); free(e->rec_type); free(e->rec_ref); free(e->base_cnt);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static void entry_unref(struct store *st, entry *e) {
    pthread_mutex_lock(&st->mu);
    int last = --e->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (last) entry_free(e);
}

static entry *entry_get(struct store *st, const char *name) {
    entry *e = NULL;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->e[i]->name, name)) { e = st->e[i]; e->refs++; break; }
    pthread_mutex_unlock(&st->mu);
    return e;
}

static void swap_snap(struct store *st, entry *e, ca_classifier *c) {
    snap *p = malloc(sizeof *p);
    if (!p) { ca_classifier_free(c); return; }
    p->c = c; p->refs = 1;
    pthread_mutex_lock(&st->mu);
    snap *old = e->cur;
    e->cur = p;
    pthread_mutex_unlock(&st->mu);
    snap_unref(old);
}

const ca_classifier *store_acquire(srv *s, const char *name, void **ref) {
    struct store *st = s->st;
    const ca_classifier *c = NULL;
    *ref = NULL;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->e[i]->name, name)) {
            snap *p = st->e[i]->cur;
            __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
            *ref = p; c = p->c;
            break;
        }
    pthread_mutex_unlock(&st->mu);
    return c;
}

void store_release(srv *s, void *ref) { (void)s; snap_unref(ref); }

int store_count(srv *s) {
    pthread_mutex_lock(&s->st->mu);
    int n = s->st->n;
    pthread_mutex_unlock(&s->st->mu);
    return n;
}

int store_default_name(srv *s, char *buf, size_t n) {
    struct store *st = s->st;
    pthread_mutex_lock(&st->mu);
    int ok = st->n == 1;
    if (ok) snprintf(buf, n, "%s", st->e[0]->name);
    pthread_mutex_unlock(&st->mu);
    return ok ? 0 : -1;
}

static int class_index(const entry *e, const char *label) {
    for (int i = 0; i < e->C; i++) if (!strcmp(e->names[i], label)) return i;
    return -1;
}

int store_needs_class_text(srv *s, const char *name, const char *label) {
    entry *e = entry_get(s->st, name);
    if (!e) return 0;
    pthread_mutex_lock(&e->mu);
    int r = e->textw && class_index(e, label) < 0;
    pthread_mutex_unlock(&e->mu);
    entry_unref(s->st, e);
    return r;
}

/* The in-memory record of a class or example (what a refit and a replay use). */
static int note_record(entry *e, int type, int ref) {
    if (e->n_rec == e->cap_rec) {
        int64_t cap = e->cap_rec ? 2 * e->cap_rec : 64;
        int8_t *t = realloc(e->rec_type, (size_t)cap);
        if (!t) return -1;
        e->rec_type = t;
        int32_t *r = realloc(e->rec_ref, sizeof(int32_t) * (size_t)cap);
        if (!r) return -1;
        e->rec_ref = r;
        e->cap_rec = cap;
    }
    e->rec_type[e->n_rec] = (int8_t)type;
    e->rec_ref[e->n_rec++] = ref;
    return 0;
}

static int note_class(entry *e, const char *name, const float *vec) {
    char **nm = realloc(e->names, sizeof(char *) * (size_t)(e->C + 1));
    if (!nm) return -1;
    e->names = nm;
    if (e->textw) {
        float *t = realloc(e->textw, sizeof(float) * (size_t)(e->C + 1) * e->D);
        if (!t) return -1;
        e->textw = t;
        memcpy(t + (size_t)e->C * e->D, vec, sizeof(float) * (size_t)e->D);
        float *r = t + (size_t)e->C * e->D;
        double ss = 0;
        for (int j = 0; j < e->D; j++) ss += (double)r[j] * r[j];
        if (ss > 0) for (int j = 0; j < e->D; j++) r[j] = (float)(r[j] / sqrt(ss));
    }
    if (!(nm[e->C] = strdup(name))) return -1;
    e->C++;
    return 0;
}

static int note_example(entry *e, const float *x, int label) {
    if (e->n_ex == e->cap_ex) {
        int cap = e->cap_ex ? 2 * e->cap_ex : 64;
        float *nx = realloc(e->ex_x, sizeof(float) * (size_t)cap * e->D);
        if (!nx) return -1;
        e->ex_x = nx;
        int32_t *ny = realloc(e->ex_y, sizeof(int32_t) * (size_t)cap);
        if (!ny) return -1;
        e->ex_y = ny;
        e->cap_ex = cap;
    }
    memcpy(e->ex_x + (size_t)e->n_ex * e->D, x, sizeof(float) * (size_t)e->D);
    e->ex_y[e->n_ex++] = label;
    return 0;
}

/* Apply record i of the entry to classifier c (a snapshot being built). Returns 1 when it took
 * effect, 0 when the method cannot take it without training (it waits for a refit). */
static int apply_record(entry *e, ca_classifier *c, int64_t i) {
    if (e->rec_type[i] == REC_CLASS) {
        int k = e->rec_ref[i];
        if (ca_classifier_class_index(c, e->names[k]) >= 0) return 1;
        return ca_classifier_add_class(c, e->names[k], e->textw ? e->textw + (size_t)k * e->D : NULL) == CA_OK;
    }
    int k = e->rec_ref[i];
    int label = ca_classifier_class_index(c, e->names[e->ex_y[k]]);
    if (label < 0 || !ca_classifier_can_grow(c)) return 0;
    return ca_classifier_add_example(c, e->ex_x + (size_t)k * e->D, label) == CA_OK;
}

/* Read examples.log into the entry's records; a torn or corrupt tail is cut off (it was never
 * acknowledged: an add answers only after its fsync). Returns the count of good records. */
static int64_t read_log(entry *e, const char *path, char *err, size_t errn) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0) { close(fd); return -1; }
    size_t len = (size_t)sb.st_size, off = 0;
    uint8_t *buf = len ? malloc(len) : NULL;
    if (len && !buf) { close(fd); snprintf(err, errn, "%s: out of memory", path); return -1; }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    len = got;
    int64_t n = 0;
    while (off < len) {
        log_rec rec;
        size_t need = log_decode(buf + off, len - off, e->D, &rec);
        if (!need) break;
        const char *name = rec.name;
        float *vec = rec.vec;
        int ok;
        if (rec.type == REC_CLASS) {
            ok = class_index(e, name) < 0 && (!e->textw || vec) && !note_class(e, name, vec) && !note_record(e, REC_CLASS, e->C - 1);
        } else {
            int lab = class_index(e, name);
            ok = lab >= 0 && !note_example(e, vec, lab) && !note_record(e, REC_EXAMPLE, e->n_ex - 1);
            if (ok) e->added++;
        }
        free(vec);
        if (!ok) break;
        off += need;
        n++;
    }
    if (off < len) {   /* cut the torn tail so the next append starts on a record boundary */
        fprintf(stderr, "clipadapt serve: %s: dropping %zu bytes after record %lld (an interrupted append)\n", path, len - off, (long long)n);
        if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) { snprintf(err, errn, "%s: cannot truncate: %s", path, strerror(errno)); n = -1; }
    }
    free(buf);
    close(fd);
    return n;
}

/* Check a classifier against the served model: dimension and, when it records one, the model. */
static int check_model(srv *s, const ca_classifier *c, const char *what, char *err, size_t errn) {
    if (ca_classifier_dim(c) != s->embed_dim) {
        snprintf(err, errn, "%s: classifier expects %d-d features but the model gives %d-d", what, ca_classifier_dim(c), s->embed_dim);
        return -1;
    }
    const char *want = ca_classifier_model_signature(c), *have = s->model_sig;
    if (want && *have && !ca_model_signature_match(want, have)) {
        snprintf(err, errn, "%s: classifier was fit on features of another model than the one served", what);
        return -1;
    }
    return 0;
}

/* Build an entry from a base classifier file (+ current and log in dir when dir is set). */
static entry *entry_load(srv *s, const char *name, const char *base_path, const char *dir, char *err, size_t errn) {
    ca_status stt;
    ca_classifier *base = ca_classifier_load(base_path, &stt);
    if (!base) { snprintf(err, errn, "%s", ca_last_error()); return NULL; }
    if (check_model(s, base, base_path, err, errn)) { ca_classifier_free(base); return NULL; }
    entry *e = calloc(1, sizeof *e);
    if (!e) { ca_classifier_free(base); snprintf(err, errn, "out of memory"); return NULL; }
    pthread_mutex_init(&e->mu, NULL);
    e->log_fd = -1;
    e->refs = 1;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->dir, sizeof e->dir, "%s", dir ? dir : "");
    e->D = ca_classifier_dim(base);
    int C = ca_classifier_num_classes(base);
    const float *tw = ca_classifier_text_weights(base);
    if (tw && !(e->textw = malloc(sizeof(float) * (size_t)C * e->D))) goto nomem;
    if (tw) memcpy(e->textw, tw, sizeof(float) * (size_t)C * e->D);
    if (!(e->names = calloc((size_t)C, sizeof(char *)))) goto nomem;
    for (int i = 0; i < C; i++) {
        const char *nm = ca_classifier_class_name(base, i);
        char fb[32];
        if (!nm || !*nm) { snprintf(fb, sizeof fb, "class %d", i); nm = fb; }
        if (!(e->names[i] = strdup(nm))) goto nomem;
        e->C = i + 1;
    }
    int nb = ca_classifier_cache_size(base);
    if (nb > 0) {
        e->cap_ex = nb;
        e->ex_x = malloc(sizeof(float) * (size_t)nb * e->D);
        e->ex_y = malloc(sizeof(int32_t) * (size_t)nb);
        if (!e->ex_x || !e->ex_y) goto nomem;
        if (ca_classifier_cache_get(base, e->ex_x, e->ex_y) != CA_OK) { snprintf(err, errn, "%s", ca_last_error()); goto fail; }
        e->n_ex = e->base_ex = nb;
    } else if ((e->base_cnt = calloc((size_t)C, sizeof(int64_t)))) {   /* shown by /v1/info only */
        ca_classifier_class_counts(base, e->base_cnt);
        e->base_C = C;
    }
    ca_classifier *cur = NULL;
    int64_t from = 0;
    char p[PATH_MAX];
    if (dir) {
        snprintf(p, sizeof p, "%s/current.safetensors", dir);
        if (access(p, F_OK) == 0) {
            if (!(cur = ca_classifier_load(p, &stt))) { snprintf(err, errn, "%s", ca_last_error()); goto fail; }
            from = (int64_t)ca_classifier_param(cur, "serve_log_records", 0);
        }
        snprintf(p, sizeof p, "%s/examples.log", dir);
        int64_t n = read_log(e, p, err, errn);
        if (n < 0) { if (!*err) snprintf(err, errn, "%s: %s", p, strerror(errno)); ca_classifier_free(cur); goto fail; }
        if (from > n) from = n;
        if ((e->log_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
            snprintf(err, errn, "%s: %s", p, strerror(errno)); ca_classifier_free(cur); goto fail;
        }
    }
    if (!cur) { cur = base; base = NULL; from = 0; }
    for (int64_t i = from; i < e->n_rec; i++) apply_record(e, cur, i);
    ca_classifier_free(base);
    base = NULL;
    snap *sp = malloc(sizeof *sp);
    if (!sp) { ca_classifier_free(cur); goto nomem; }
    sp->c = cur; sp->refs = 1;
    e->cur = sp;
    return e;
nomem:
    snprintf(err, errn, "out of memory");
fail:
    ca_classifier_free(base);
    entry_free(e);
    return NULL;
}

static int insert_entry(struct store *st, entry *e, entry **replaced) {
    *replaced = NULL;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->e[i]->name, e->name)) { *replaced = st->e[i]; st->e[i] = e; pthread_mutex_unlock(&st->mu); return 0; }
    if (st->n == MAX_CLASSIFIERS) { pthread_mutex_unlock(&st->mu); return -1; }
    st->e[st->n++] = e;
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static void retire_entry(struct store *st, entry *old) {
    pthread_mutex_lock(&old->mu);
    old->deleted = 1;
    old->cancel = 1;
    pthread_mutex_unlock(&old->mu);
    entry_unref(st, old);
}

/* Put a classifier folder in place of NAME's: the new one is complete and fsync'd in a temporary
 * folder; the old one is renamed away, the new one renamed in, the parent fsync'd. */
static int install_dir(struct store *st, const char *tmpdir, const char *name, char *err, size_t errn) {
    char dst[PATH_MAX], trash[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/%s", st->cdir, name);
    snprintf(trash, sizeof trash, "%s/.trash-%s-%ld", st->cdir, name, (long)random());
    int had = access(dst, F_OK) == 0;
    if (had && rename(dst, trash) != 0) { snprintf(err, errn, "%s: %s", dst, strerror(errno)); return -1; }
    if (rename(tmpdir, dst) != 0) { snprintf(err, errn, "%s: %s", dst, strerror(errno)); return -1; }
    fsync_dir(st->cdir);
    if (had) remove_tree(trash);
    return 0;
}

/* ---- startup ---- */

int store_open(srv *s, char **clf_args, int nclf, char *err, size_t errn) {
    const srv_opts *o = &s->o;
    struct store *st = calloc(1, sizeof *st);
    if (!st) { snprintf(err, errn, "out of memory"); return -1; }
    s->st = st;
    st->s = s;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    if (o->data_dir) {
        if (strlen(o->data_dir) > 3000) { snprintf(err, errn, "--data-dir: path too long"); return -1; }
        if (mkdir(o->data_dir, 0755) != 0 && errno != EEXIST) { snprintf(err, errn, "--data-dir %s: %s", o->data_dir, strerror(errno)); return -1; }
        snprintf(st->cdir, sizeof st->cdir, "%s/classifiers", o->data_dir);
        if (mkdir(st->cdir, 0755) != 0 && errno != EEXIST) { snprintf(err, errn, "%s: %s", st->cdir, strerror(errno)); return -1; }
        DIR *d = opendir(st->cdir);
        if (!d) { snprintf(err, errn, "%s: %s", st->cdir, strerror(errno)); return -1; }
        struct dirent *de;
        char path[PATH_MAX], dir[PATH_MAX];
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') {   /* a PUT or DELETE cut short: never installed */
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) { snprintf(dir, sizeof dir, "%s/%s", st->cdir, de->d_name); remove_tree(dir); }
                continue;
            }
            if (!valid_name(de->d_name)) continue;
            snprintf(dir, sizeof dir, "%s/%s", st->cdir, de->d_name);
            snprintf(path, sizeof path, "%s/base.safetensors", dir);
            if (access(path, F_OK) != 0) continue;
            entry *e = entry_load(s, de->d_name, path, dir, err, errn), *old;
            if (!e) { closedir(d); return -1; }
            if (insert_entry(st, e, &old)) { closedir(d); entry_free(e); snprintf(err, errn, "more than %d classifiers", MAX_CLASSIFIERS); return -1; }
        }
        closedir(d);
    }
    for (int i = 0; i < nclf; i++) {
        char *eq = strchr(clf_args[i], '=');
        char name[SRV_NAME_MAX + 2];
        const char *file = eq ? eq + 1 : clf_args[i];
        if (eq) snprintf(name, sizeof name, "%.*s", (int)(eq - clf_args[i]) < SRV_NAME_MAX + 1 ? (int)(eq - clf_args[i]) : SRV_NAME_MAX + 1, clf_args[i]);
        else {   /* NAME defaults to the file's base name without .safetensors */
            const char *b = strrchr(file, '/');
            b = b ? b + 1 : file;
            snprintf(name, sizeof name, "%.*s", SRV_NAME_MAX + 1, b);
            char *dot = strstr(name, ".safetensors");
            if (dot) *dot = 0;
        }
        if (!valid_name(name)) { snprintf(err, errn, "--classifier %s: bad name '%s' (letters, digits, '_', '-', '.'; at most %d)", clf_args[i], name, SRV_NAME_MAX); return -1; }
        entry *e = entry_get(st, name), *old;
        if (e) {   /* the data dir holds this classifier's state: it wins, so a restart loses nothing */
            fprintf(stderr, "clipadapt serve: classifier '%s': serving the state in %s (PUT or DELETE to replace it; %s not read)\n", name, st->cdir, file);
            entry_unref(st, e);
            continue;
        }
        if (o->data_dir) {   /* import: copy the file into the data dir so its examples have a base */
            ca_status cs0;
            ca_classifier *chk = ca_classifier_load(file, &cs0);
            if (!chk) { snprintf(err, errn, "%s", ca_last_error()); return -1; }
            ca_classifier_free(chk);
            size_t len;
            FILE *fp = fopen(file, "rb");
            if (!fp) { snprintf(err, errn, "%s: %s", file, strerror(errno)); return -1; }
            fseek(fp, 0, SEEK_END);
            long L = ftell(fp);
            fseek(fp, 0, SEEK_SET);
            uint8_t *buf = L > 0 ? malloc((size_t)L) : NULL;
            len = buf ? fread(buf, 1, (size_t)L, fp) : 0;
            fclose(fp);
            if (!buf || len != (size_t)L) { free(buf); snprintf(err, errn, "%s: cannot read", file); return -1; }
            char tmp[PATH_MAX], p[PATH_MAX];
            snprintf(tmp, sizeof tmp, "%s/.new-%s-%ld", st->cdir, name, (long)random());
            snprintf(p, sizeof p, "%s/base.safetensors", tmp);
            int r = mkdir(tmp, 0755) || write_file_sync(p, buf, len);
            free(buf);
            if (r) { snprintf(err, errn, "%s: %s", tmp, strerror(errno)); remove_tree(tmp); return -1; }
            ca_status cs;
            ca_classifier *probe = ca_classifier_load(p, &cs);
            if (!probe) { snprintf(err, errn, "%s: %s", file, ca_last_error()); remove_tree(tmp); return -1; }
            int bad = check_model(s, probe, file, err, errn);
            ca_classifier_free(probe);
            if (bad) { remove_tree(tmp); return -1; }
            if (install_dir(st, tmp, name, err, errn)) { remove_tree(tmp); return -1; }
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s/%s", st->cdir, name);
            snprintf(p, sizeof p, "%s/base.safetensors", dir);
            e = entry_load(s, name, p, dir, err, errn);
        } else {
            e = entry_load(s, name, file, NULL, err, errn);
        }
        if (!e) return -1;
        if (insert_entry(st, e, &old)) { entry_free(e); snprintf(err, errn, "more than %d classifiers", MAX_CLASSIFIERS); return -1; }
        if (old) retire_entry(st, old);
    }
    return 0;
}

void store_drain(srv *s) {
    struct store *st = s->st;
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->n; i++) st->e[i]->cancel = 1;
    while (st->refits_running > 0) pthread_cond_wait(&st->cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
}

void store_close(srv *s) {
    struct store *st = s->st;
    if (!st) return;
    store_drain(s);
    for (int i = 0; i < st->n; i++) entry_unref(st, st->e[i]);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
    s->st = NULL;
}

/* ---- adding an example ---- */

static char *json_done(cJSON *o) {
    char *r = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return r;
}

void store_add(srv *s, job *j) {
    struct store *st = s->st;
    entry *e = entry_get(st, j->clf);
    if (!e) { job_error(j, 404, "unknown classifier '%s'", j->clf); return; }
    pthread_mutex_lock(&e->mu);
    if (e->deleted) { job_error(j, 404, "classifier '%s' was deleted or replaced", j->clf); goto out; }
    int label = class_index(e, j->label), new_class = label < 0;
    if (new_class && e->textw && !j->class_text) {
        if (!s->has_text) job_error(j, 409, "'%s' is a new class and classifier '%s' keeps text weights: start the server with --bpe (and the model's text tower) to create classes", j->label, j->clf);
        else job_error(j, 409, "class '%s' changed while the request ran; send it again", j->label);
        goto out;
    }
    if (new_class && e->C >= 100000) { job_error(j, 400, "classifier '%s' has too many classes", j->clf); goto out; }
    /* 1. on disk, fsync'd: the class (with its text weight) and the example, one write */
    int persisted = 0;
    if (e->log_fd >= 0) {
        size_t cap = 2 * (24 + SRV_LABEL_MAX + 4 * (size_t)e->D);
        uint8_t *buf = malloc(cap);
        if (!buf) { job_error(j, 503, "out of memory"); goto out; }
        size_t n = 0;
        if (new_class) n += log_encode(buf, REC_CLASS, j->label, j->class_text, e->textw ? e->D : 0);
        n += log_encode(buf + n, REC_EXAMPLE, j->label, j->feats, e->D);
        off_t before = lseek(e->log_fd, 0, SEEK_END);
        int r = write_all(e->log_fd, buf, n);
        if (!r) r = fdatasync(e->log_fd);
        free(buf);
        if (r) {
            int er = errno;
            if (before >= 0 && ftruncate(e->log_fd, before) == 0) fdatasync(e->log_fd);
            job_error(j, 507, "classifier '%s': cannot store the example: %s", j->clf, strerror(er));
            goto out;
        }
        persisted = 1;
    }
    /* 2. in memory: the refit material, then a grown snapshot */
    if (new_class) {
        if (note_class(e, j->label, j->class_text) || note_record(e, REC_CLASS, e->C - 1)) { job_error(j, 503, "out of memory"); goto out; }
        label = e->C - 1;
    }
    if (note_example(e, j->feats, label) || note_record(e, REC_EXAMPLE, e->n_ex - 1)) { job_error(j, 503, "out of memory"); goto out; }
    e->added++;
    metrics_example_added();
    pthread_mutex_lock(&st->mu);   /* e->cur changes only under e->mu, which we hold */
    snap *cur = e->cur;
    pthread_mutex_unlock(&st->mu);
    ca_status cs;
    ca_classifier *next = ca_classifier_clone(cur->c, &cs);
    int live = 0, class_live = !new_class;
    if (next) {
        if (new_class) class_live = apply_record(e, next, e->n_rec - 2);
        live = apply_record(e, next, e->n_rec - 1);
        swap_snap(st, e, next);
    }
    int64_t count = label < e->base_C ? e->base_cnt[label] : 0;
    for (int i = 0; i < e->n_ex; i++) count += e->ex_y[i] == label;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "classifier", j->clf);
    cJSON_AddStringToObject(o, "label", j->label);
    cJSON_AddNumberToObject(o, "class_index", label);
    cJSON_AddBoolToObject(o, "new_class", new_class);
    cJSON_AddBoolToObject(o, "live", live && class_live);
    cJSON_AddBoolToObject(o, "persisted", persisted);
    cJSON_AddNumberToObject(o, "class_examples", (double)count);
    cJSON_AddNumberToObject(o, "examples", e->n_ex);
    if (!live) cJSON_AddStringToObject(o, "note", "this method needs training to use the example: POST .../refit");
    j->resp = json_done(o);
    j->http = new_class ? 201 : 200;
out:
    pthread_mutex_unlock(&e->mu);
    entry_unref(st, e);
}

/* ---- upload and delete ---- */

/* PUT and DELETE run one at a time: each swaps a folder and an entry, and two interleaved swaps
 * of one name could pair one upload's entry with the other's folder. */
static pthread_mutex_t g_put_mu = PTHREAD_MUTEX_INITIALIZER;

static void store_put_locked(srv *s, job *j);
void store_put(srv *s, job *j) {
    pthread_mutex_lock(&g_put_mu);
    store_put_locked(s, j);
    pthread_mutex_unlock(&g_put_mu);
}

static void store_put_locked(srv *s, job *j) {
    struct store *st = s->st;
    char err[1024] = "", tmp[PATH_MAX], p[PATH_MAX];
    int memfd = -1;
    if (st->cdir[0]) {
        snprintf(tmp, sizeof tmp, "%s/.new-%s-%ld", st->cdir, j->clf, (long)random());
        if (mkdir(tmp, 0755) != 0) { job_error(j, 500, "cannot create %s: %s", tmp, strerror(errno)); return; }
        snprintf(p, sizeof p, "%s/base.safetensors", tmp);
    } else {   /* no data dir: the upload never touches the disk */
        memfd = memfd_create("clipadapt-put", MFD_CLOEXEC);
        if (memfd < 0) { job_error(j, 500, "cannot create a memory file: %s", strerror(errno)); return; }
        if (write_all(memfd, j->body, j->len) != 0) { close(memfd); job_error(j, 503, "out of memory"); return; }
        snprintf(p, sizeof p, "/proc/self/fd/%d", memfd);
        tmp[0] = 0;
    }
    if (memfd < 0 && write_file_sync(p, j->body, j->len) != 0) { job_error(j, 507, "cannot store the upload: %s", strerror(errno)); goto fail; }
    ca_status cs;
    ca_classifier *probe = ca_classifier_load(p, &cs);
    if (!probe) {   /* name the upload, not our temporary path */
        const char *d = ca_last_error(), *q = strstr(d, p);
        job_error(j, 400, "upload: %s", q ? q + strlen(p) + (q[strlen(p)] == ':' ? 2 : 0) : d);
        goto fail;
    }
    int bad = check_model(s, probe, "upload", err, sizeof err);
    ca_classifier_free(probe);
    if (bad) { job_error(j, 400, "%s", err); goto fail; }
    entry *e, *old;
    pthread_mutex_lock(&st->mu);   /* one PUT/DELETE of a name at a time: the folder swap */
    if (tmp[0]) {
        if (install_dir(st, tmp, j->clf, err, sizeof err)) { pthread_mutex_unlock(&st->mu); job_error(j, 500, "%s", err); goto fail; }
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", st->cdir, j->clf);
        snprintf(p, sizeof p, "%s/base.safetensors", dir);
        tmp[0] = 0;
        pthread_mutex_unlock(&st->mu);
        e = entry_load(s, j->clf, p, dir, err, sizeof err);
    } else {
        pthread_mutex_unlock(&st->mu);
        e = entry_load(s, j->clf, p, NULL, err, sizeof err);
        close(memfd);
        memfd = -1;
        p[0] = 0;
    }
    if (!e) { job_error(j, 500, "%s", err); return; }
    if (insert_entry(st, e, &old)) { entry_free(e); job_error(j, 507, "too many classifiers (at most %d)", MAX_CLASSIFIERS); return; }
    if (old) retire_entry(st, old);
    void *ref;
    const ca_classifier *c = store_acquire(s, j->clf, &ref);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "classifier", j->clf);
    cJSON_AddStringToObject(o, "method", c ? ca_classifier_method(c) : "");
    cJSON_AddNumberToObject(o, "num_classes", c ? ca_classifier_num_classes(c) : 0);
    cJSON_AddBoolToObject(o, "replaced", old != NULL);
    cJSON_AddBoolToObject(o, "persisted", st->cdir[0] != 0);
    store_release(s, ref);
    j->resp = json_done(o);
    j->http = old ? 200 : 201;
    return;
fail:
    if (tmp[0]) remove_tree(tmp);
    if (memfd >= 0) close(memfd);
}

void store_delete(srv *s, job *j) {
    struct store *st = s->st;
    entry *e = NULL;
    pthread_mutex_lock(&g_put_mu);
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->e[i]->name, j->clf)) { e = st->e[i]; st->e[i] = st->e[--st->n]; break; }
    if (e && st->cdir[0]) {
        char dst[PATH_MAX], trash[PATH_MAX];
        snprintf(dst, sizeof dst, "%s/%s", st->cdir, j->clf);
        snprintf(trash, sizeof trash, "%s/.trash-%s-%ld", st->cdir, j->clf, (long)random());
        if (rename(dst, trash) == 0) { fsync_dir(st->cdir); remove_tree(trash); }
    }
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_unlock(&g_put_mu);
    if (!e) { job_error(j, 404, "unknown classifier '%s'", j->clf); return; }
    retire_entry(st, e);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", j->clf);
    j->resp = json_done(o);
    j->http = 200;
}

/* ---- refit in the background ----
 *
 * Hyper-parameters are chosen honestly, as `clipadapt fewshot --select kshot-val` does: when every
 * class has at least 2 examples, min(⌊n_c/2⌋, 4) of class c's examples (a seeded permutation of
 * them) are held out for the method's search (α, β, ...), so the search never scores an example
 * against itself; then the classifier is refit on all the examples with the values chosen. With
 * fewer, there is nothing to hold out: the method's published fixed hyper-parameters
 * (`--select none`). Refitting on all with the chosen values needs a method whose chosen values
 * are read at prediction time (tip-adapter α, β; tip-cache β: set on the classifier fit on all);
 * a method that chooses nothing on val is simply fit on all; any other keeps the classifier fit
 * on the train part, whose values were chosen for exactly that fit ("fit_on": "train part").
 */

#define REFIT_VAL_MAX 4   /* held-out examples per class, at most: fewshot's kshot_val_max */

typedef struct {
    srv *s; entry *e;
    char method[48];
    int C, D, n;
    float *x, *textw; int32_t *y;
    char **names;
    int64_t upto;        /* log records included */
    uint64_t seed;
    int kshot;           /* 1: hold out per class (kshot-val); 0: published values (none) */
    int n_val;           /* held-out examples (kshot) */
} refit_args;

/* Methods whose values chosen on val are read at prediction time: set on the fit on all. */
static const char *const REUSE_CHOSEN[] = {"tip-adapter", "tip-cache", NULL};
/* Methods that choose nothing on val (it is at most reported): fit on all, as with none. */
static const char *const CHOOSE_NOTHING[] = {"zero-shot", "prototype", "zs-lp", "clap", "taskres", NULL};

static int in_list(const char *const *l, const char *m) {
    for (; *l; l++) if (!strcmp(*l, m)) return 1;
    return 0;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Examples per class; returns the smallest count. */
static int class_counts(const int32_t *y, int n, int C, int *cnt) {
    for (int c = 0; c < C; c++) cnt[c] = 0;
    for (int i = 0; i < n; i++) cnt[y[i]]++;
    int mn = n;
    for (int c = 0; c < C; c++) if (cnt[c] < mn) mn = cnt[c];
    return mn;
}

/* is_val[i] = 1 for the held-out examples: per class c, min(⌊n_c/2⌋, REFIT_VAL_MAX) of them, the
 * first of a permutation seeded by (seed, c). Returns the count, -1 when out of memory. */
static int draw_held_out(const int32_t *y, int n, int C, uint64_t seed, uint8_t *is_val) {
    int *idx = malloc(sizeof(int) * (size_t)(n + 1)), total = 0;
    if (!idx) return -1;
    memset(is_val, 0, (size_t)n);
    for (int c = 0; c < C; c++) {
        int m = 0;
        for (int i = 0; i < n; i++) if (y[i] == c) idx[m++] = i;
        uint64_t st = seed * 0x100000001b3ull ^ (uint64_t)c;
        for (int i = m - 1; i > 0; i--) {   /* Fisher-Yates */
            int k = (int)(splitmix(&st) % (uint64_t)(i + 1)), t = idx[i];
            idx[i] = idx[k]; idx[k] = t;
        }
        int v = m / 2 < REFIT_VAL_MAX ? m / 2 : REFIT_VAL_MAX;
        for (int i = 0; i < v; i++) is_val[idx[i]] = 1;
        total += v;
    }
    free(idx);
    return total;
}

/* The fit itself (see the block comment): NULL with err set on failure. *fit_on: "all" or
 * "train part". */
static ca_classifier *refit_fit(refit_args *a, const ca_fit_params *fp, const char **fit_on, char *err, size_t errn) {
    ca_status cs;
    ca_fit_data all = {.num_classes = a->C, .dim = a->D, .text_w = a->textw};
    all.train = (ca_split){.n = a->n, .dim = a->D, .x = a->x, .y = a->y};
    *fit_on = "all";
    if (!a->kshot || in_list(CHOOSE_NOTHING, a->method)) {   /* val stays empty */
        ca_classifier *c = ca_fit(a->method, &all, fp, &cs);
        if (!c) snprintf(err, errn, "%s", ca_last_error());
        return c;
    }
    /* the train part and the held-out part, in the examples' order */
    uint8_t *is_val = malloc((size_t)a->n + 1);
    float *xs = malloc(sizeof(float) * (size_t)a->n * a->D + 1);
    int32_t *ys = malloc(sizeof(int32_t) * (size_t)a->n + 1);
    ca_classifier *sel = NULL, *c = NULL;
    if (!is_val || !xs || !ys || draw_held_out(a->y, a->n, a->C, a->seed, is_val) < 0) { snprintf(err, errn, "out of memory"); goto out; }
    int nt = 0, nv = a->n - 1;   /* train rows fill from the front, held-out rows from the back */
    for (int i = a->n - 1; i >= 0; i--) {
        int at = is_val[i] ? nv-- : -1;
        if (at >= 0) { memcpy(xs + (size_t)at * a->D, a->x + (size_t)i * a->D, sizeof(float) * (size_t)a->D); ys[at] = a->y[i]; }
    }
    for (int i = 0; i < a->n; i++)
        if (!is_val[i]) { memcpy(xs + (size_t)nt * a->D, a->x + (size_t)i * a->D, sizeof(float) * (size_t)a->D); ys[nt++] = a->y[i]; }
    ca_fit_data d = {.num_classes = a->C, .dim = a->D, .text_w = a->textw};
    d.train = (ca_split){.n = nt, .dim = a->D, .x = xs, .y = ys};
    d.val = (ca_split){.n = a->n - nt, .dim = a->D, .x = xs + (size_t)nt * a->D, .y = ys + nt};
    if (!(sel = ca_fit(a->method, &d, fp, &cs))) { snprintf(err, errn, "%s", ca_last_error()); goto out; }
    if (!in_list(REUSE_CHOSEN, a->method)) { c = sel; sel = NULL; *fit_on = "train part"; goto out; }
    if (!(c = ca_fit(a->method, &all, fp, &cs))) { snprintf(err, errn, "%s", ca_last_error()); goto out; }
    /* the values chosen on the held-out part (α, β, the grid, its val accuracy), not the cache */
    ca_status ps = CA_OK;
    for (int i = 0; ps == CA_OK && i < ca_classifier_param_count(sel); i++) {
        const char *pn = ca_classifier_param_name(sel, i);
        if (strcmp(pn, "cache_size") != 0) ps = ca_classifier_set_param(c, pn, ca_classifier_param(sel, pn, 0));
    }
    if (ps == CA_OK) ps = ca_classifier_set_param(c, "searched", 1);
    if (ps != CA_OK) { snprintf(err, errn, "%s", ca_last_error()); ca_classifier_free(c); c = NULL; }
out:
    ca_classifier_free(sel);
    free(is_val); free(xs); free(ys);
    return c;
}

static int refit_progress(const char *stage, int64_t done, int64_t total, void *user) {
    (void)stage; (void)done; (void)total;
    return ((entry *)user)->cancel;
}

static void *refit_main(void *arg) {
    refit_args *a = arg;
    entry *e = a->e;
    struct store *st = a->s->st;
    ca_fit_params fp = ca_fit_default_params();
    fp.progress = refit_progress; fp.progress_user = e;
    fp.threads = 1;   /* leave the cores to the encoder */
    fp.seed = a->seed;
    char err[300] = "";
    const char *fit_on = "all";
    ca_classifier *c = refit_fit(a, &fp, &fit_on, err, sizeof err);
    if (c) {
        ca_classifier_set_param(c, "select_kshot_val", a->kshot);
        ca_classifier_set_param(c, "select_held_out", a->kshot ? a->n_val : 0);
        ca_classifier_set_param(c, "select_seed", (double)a->seed);
    }
    pthread_mutex_lock(&e->mu);
    snprintf(e->refit_fit_on, sizeof e->refit_fit_on, "%s", fit_on);
    if (c && !e->deleted && !e->cancel) {
        /* with a data dir, saved with the count of log records it includes (a restart loads it
         * and replays the rest); then the records added meanwhile are applied on top */
        ca_classifier_set_param(c, "serve_log_records", (double)a->upto);
        ca_status ns = CA_OK;
        for (int i = 0; ns == CA_OK && i < a->C; i++) ns = ca_classifier_set_class_name(c, i, a->names[i]);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/current.safetensors", e->dir);
        if (ns == CA_OK && e->dir[0]) ns = ca_classifier_save(c, path, NULL);
        if (ns == CA_OK) {
            for (int64_t i = a->upto; i < e->n_rec; i++) apply_record(e, c, i);
            swap_snap(st, e, c);
            c = NULL;   /* the snapshot owns it */
        } else {
            snprintf(err, sizeof err, "%s", ca_last_error());
        }
    } else if (c) {
        snprintf(err, sizeof err, "cancelled");
    }
    e->refitting = 0;
    e->refits_done++;
    snprintf(e->refit_error, sizeof e->refit_error, "%s", err);
    pthread_mutex_unlock(&e->mu);
    if (err[0]) fprintf(stderr, "clipadapt serve: refit of '%s' as %s failed: %s\n", e->name, a->method, err);
    else fprintf(stderr, "clipadapt serve: refit of '%s' as %s swapped in (fit on %s)\n", e->name, a->method, fit_on);
    metrics_refit(err[0] == 0);
    ca_classifier_free(c);
    for (int i = 0; i < a->C; i++) free(a->names[i]);
    free(a->names); free(a->x); free(a->y); free(a->textw);
    entry_unref(st, e);
    free(a);
    pthread_mutex_lock(&st->mu);
    st->refits_running--;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

void store_refit(srv *s, job *j) {
    struct store *st = s->st;
    int nt = ca_method_needs_text(j->method);
    if (nt < 0) { job_error(j, 400, "unknown method '%s' (GET /v1/info lists them)", j->method); return; }
    entry *e = entry_get(st, j->clf);
    if (!e) { job_error(j, 404, "unknown classifier '%s'", j->clf); return; }
    refit_args *a = NULL;
    int *cnt = NULL;
    uint8_t *is_val = NULL;
    pthread_mutex_lock(&e->mu);
    if (e->refitting) { job_error(j, 409, "classifier '%s' is already being refit", j->clf); goto fail; }
    if (nt && !e->textw) { job_error(j, 400, "method '%s' needs text weights and classifier '%s' has none", j->method, j->clf); goto fail; }
    if (e->C < 2 || e->n_ex < 1) { job_error(j, 400, "classifier '%s' has %d examples of %d classes: a refit needs examples and at least 2 classes", j->clf, e->n_ex, e->C); goto fail; }
    if (!(a = calloc(1, sizeof *a))) goto nomem;
    a->s = s; a->e = e; a->C = e->C; a->D = e->D; a->n = e->n_ex; a->upto = e->n_rec; a->seed = j->seed;
    snprintf(a->method, sizeof a->method, "%s", j->method);
    a->x = malloc(sizeof(float) * (size_t)a->n * a->D);
    a->y = malloc(sizeof(int32_t) * (size_t)a->n);
    a->names = calloc((size_t)a->C, sizeof(char *));
    if (e->textw && !(a->textw = malloc(sizeof(float) * (size_t)a->C * a->D))) goto nomem;
    if (!a->x || !a->y || !a->names) goto nomem;
    memcpy(a->x, e->ex_x, sizeof(float) * (size_t)a->n * a->D);
    memcpy(a->y, e->ex_y, sizeof(int32_t) * (size_t)a->n);
    if (a->textw) memcpy(a->textw, e->textw, sizeof(float) * (size_t)a->C * a->D);
    for (int i = 0; i < a->C; i++) if (!(a->names[i] = strdup(e->names[i]))) goto nomem;
    /* the selection regime: decided here, so the answer can say which */
    cnt = malloc(sizeof(int) * (size_t)a->C);
    is_val = malloc((size_t)a->n);
    if (!cnt || !is_val) goto nomem;
    int fewest = class_counts(a->y, a->n, a->C, cnt);
    a->kshot = fewest >= 2;
    if (a->kshot && (a->n_val = draw_held_out(a->y, a->n, a->C, a->seed, is_val)) < 0) goto nomem;
    pthread_mutex_lock(&st->mu);
    st->refits_running++;
    pthread_mutex_unlock(&st->mu);
    e->refitting = 1;
    snprintf(e->refit_method, sizeof e->refit_method, "%s", j->method);
    snprintf(e->refit_select, sizeof e->refit_select, "%s", a->kshot ? "kshot-val" : "none");
    e->refit_held_out = a->kshot ? a->n_val : 0;
    e->refit_fit_on[0] = 0;
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int n = a->n, C = a->C, kshot = a->kshot, n_val = a->n_val;
    if (pthread_create(&th, &at, refit_main, a) != 0) {
        pthread_attr_destroy(&at);
        e->refitting = 0;
        pthread_mutex_lock(&st->mu);
        st->refits_running--;
        pthread_mutex_unlock(&st->mu);
        job_error(j, 503, "cannot start a refit thread");
        goto fail;
    }
    a = NULL;   /* the thread owns it and the entry reference */
    pthread_attr_destroy(&at);
    char why[300];
    if (kshot)
        snprintf(why, sizeof why, "hyper-parameters chosen on %d held-out examples (min(n/2, %d) per class, seed %llu), then refit on all %d",
                 n_val, REFIT_VAL_MAX, (unsigned long long)j->seed, n);
    else
        snprintf(why, sizeof why, "a class has %d example%s, too few to hold any out: the method's published fixed hyper-parameters",
                 fewest, fewest == 1 ? "" : "s");
    fprintf(stderr, "clipadapt serve: refit of '%s' as %s started: %s: %s\n", j->clf, j->method, kshot ? "kshot-val" : "none", why);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "classifier", j->clf);
    cJSON_AddStringToObject(o, "method", j->method);
    cJSON_AddNumberToObject(o, "examples", n);
    cJSON_AddNumberToObject(o, "num_classes", C);
    cJSON_AddStringToObject(o, "selection", kshot ? "kshot-val" : "none");
    cJSON_AddNumberToObject(o, "held_out", kshot ? n_val : 0);
    cJSON_AddNumberToObject(o, "min_class_examples", fewest);
    cJSON_AddNumberToObject(o, "seed", (double)j->seed);
    cJSON_AddStringToObject(o, "note", why);
    cJSON_AddStringToObject(o, "status", "started");
    j->resp = json_done(o);
    j->http = 202;
    free(cnt); free(is_val);
    pthread_mutex_unlock(&e->mu);
    return;
nomem:
    job_error(j, 503, "out of memory");
fail:
    if (a) {
        for (int i = 0; a->names && i < a->C; i++) free(a->names[i]);
        free(a->names); free(a->x); free(a->y); free(a->textw); free(a);
    }
    free(cnt); free(is_val);
    pthread_mutex_unlock(&e->mu);
    entry_unref(st, e);
}

/* ---- /v1/info ---- */

char *store_info_json(srv *s) {
    struct store *st = s->st;
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&st->mu);
    int n = st->n;
    entry *es[MAX_CLASSIFIERS];
    for (int i = 0; i < n; i++) { es[i] = st->e[i]; es[i]->refs++; }
    pthread_mutex_unlock(&st->mu);
    for (int i = 0; i < n; i++) {
        entry *e = es[i];
        void *ref;
        const ca_classifier *c = store_acquire(s, e->name, &ref);
        pthread_mutex_lock(&e->mu);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e->name);
        if (c) {
            cJSON_AddStringToObject(o, "method", ca_classifier_method(c));
            cJSON_AddNumberToObject(o, "num_classes", ca_classifier_num_classes(c));
            cJSON_AddNumberToObject(o, "dim", ca_classifier_dim(c));
            cJSON_AddBoolToObject(o, "live_examples", ca_classifier_can_grow(c));
            cJSON_AddNumberToObject(o, "cache_size", ca_classifier_cache_size(c));
        }
        cJSON_AddBoolToObject(o, "has_text", e->textw != NULL);
        cJSON_AddNumberToObject(o, "examples_added", (double)e->added);
        cJSON_AddBoolToObject(o, "persisted", e->dir[0] != 0);
        cJSON *cls = cJSON_AddArrayToObject(o, "classes");
        for (int k = 0; k < e->C; k++) {
            int64_t cnt = k < e->base_C ? e->base_cnt[k] : 0;
            for (int x = 0; x < e->n_ex; x++) cnt += e->ex_y[x] == k;
            cJSON *ce = cJSON_CreateObject();
            cJSON_AddStringToObject(ce, "name", e->names[k]);
            cJSON_AddNumberToObject(ce, "examples", (double)cnt);
            cJSON_AddBoolToObject(ce, "served", c && ca_classifier_class_index(c, e->names[k]) >= 0);
            cJSON_AddItemToArray(cls, ce);
        }
        cJSON *rf = cJSON_AddObjectToObject(o, "refit");
        cJSON_AddBoolToObject(rf, "running", e->refitting);
        cJSON_AddNumberToObject(rf, "done", e->refits_done);
        if (e->refit_method[0]) cJSON_AddStringToObject(rf, "method", e->refit_method);
        if (e->refit_error[0]) cJSON_AddStringToObject(rf, "last_error", e->refit_error);
        if (e->refit_select[0]) {
            cJSON_AddStringToObject(rf, "selection", e->refit_select);
            cJSON_AddNumberToObject(rf, "held_out", e->refit_held_out);
        }
        if (e->refit_fit_on[0]) cJSON_AddStringToObject(rf, "fit_on", e->refit_fit_on);
        if (c) {   /* the served classifier's hyper-parameters and fit statistics */
            cJSON *pa = cJSON_AddObjectToObject(o, "params");
            for (int k = 0; k < ca_classifier_param_count(c); k++) {
                const char *pn = ca_classifier_param_name(c, k);
                cJSON_AddNumberToObject(pa, pn, ca_classifier_param(c, pn, 0));
            }
        }
        pthread_mutex_unlock(&e->mu);
        store_release(s, ref);
        cJSON_AddItemToArray(arr, o);
        entry_unref(st, e);
    }
    char *r = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return r;
}
