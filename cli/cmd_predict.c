/* cmd_predict.c — `clipadapt predict`: classify image files (arguments, a folder, or a list file)
 * with a CLIP model and a fitted classifier, in batches, streaming one record per image in input
 * order (table, JSON lines or CSV). A file output is resumable: records go to OUT.partial with a
 * small state file beside it, and a re-run of the same command continues where it stopped.
 * --shard I/N does a deterministic slice for `clipadapt merge`. */
#include "cli.h"
#include "core/core.h" /* ca_fail, ca_basename */

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FMT_TABLE, FMT_JSONL, FMT_CSV };

typedef struct { char **v; int n, cap; } strvec;

static int sv_push(strvec *s, const char *p) {
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 256;
        char **nv = realloc(s->v, sizeof(char *) * (size_t)nc);
        if (!nv) return -1;
        s->v = nv; s->cap = nc;
    }
    if (!(s->v[s->n] = strdup(p))) return -1;
    s->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file under dir (recursively, hidden entries skipped), sorted by path so the order
 * (and so every shard's slice) does not depend on the file system. */
static int walk(const char *dir, strvec *out) {
    DIR *d = opendir(dir);
    if (!d) return cli_error("%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    strvec sub = {0};
    int rc = CLI_OK;
    while (rc == CLI_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) { rc = cli_error("out of memory"); break; }
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && (S_ISDIR(sb.st_mode) || S_ISREG(sb.st_mode)) && sv_push(&sub, p)) rc = cli_error("out of memory");
        free(p);
    }
    closedir(d);
    if (sub.n) qsort(sub.v, (size_t)sub.n, sizeof(char *), cmp_str);
    for (int i = 0; i < sub.n; i++) {
        struct stat sb;
        if (rc == CLI_OK) {
            if (stat(sub.v[i], &sb) == 0 && S_ISDIR(sb.st_mode)) rc = walk(sub.v[i], out);
            else if (sv_push(out, sub.v[i])) rc = cli_error("out of memory");
        }
        free(sub.v[i]);
    }
    free(sub.v);
    return rc;
}

/* One path per line; blank lines and lines starting with '#' are skipped; CR LF accepted. */
static int read_list(const char *path, strvec *out) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long ln = 0;
    int rc = CLI_OK;
    while (rc == CLI_OK && (n = getline(&line, &cap, f)) >= 0) {
        ln++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0 || line[0] == '#') continue;
        if (memchr(line, 0, (size_t)n)) rc = cli_error("%s: line %ld holds a NUL byte (not a list of paths)", path, ln);
        else if (sv_push(out, line)) rc = cli_error("out of memory");
    }
    if (rc == CLI_OK && ferror(f)) rc = cli_error("%s: read failed: %s", path, strerror(errno));
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

static int parse_shard(const char *cmd, const char *v, void *dst) {
    int *s = dst;
    long i, n;
    const char *slash = strchr(v, '/');
    char a[32];
    if (!slash || (size_t)(slash - v) >= sizeof a) goto bad;
    snprintf(a, sizeof a, "%.*s", (int)(slash - v), v);
    if (cli_int(a, &i) || cli_int(slash + 1, &n) || n < 1 || n > 1000000 || i < 0 || i >= n) goto bad;
    s[0] = (int)i; s[1] = (int)n;
    return 0;
bad:
    cli_usage(cmd, "--shard needs I/N with 0 <= I < N (e.g. 0/4)");
    return -1;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}
/* A file's name, size and mtime: a rewritten model, classifier or image changes the job key. */
static uint64_t fnv_file(uint64_t h, const char *path) {
    struct stat sb;
    int64_t meta[3] = {-1, -1, -1};
    if (path && stat(path, &sb) == 0) { meta[0] = sb.st_size; meta[1] = sb.st_mtim.tv_sec; meta[2] = sb.st_mtim.tv_nsec; }
    if (path) h = fnv(h, path, strlen(path) + 1);
    return fnv(h, meta, sizeof meta);
}

/* CSV field, quoted when it holds a comma, quote or line break (RFC 4180). */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
    fputc('"', f);
}

/* The records of one image into f, in the chosen format. */
static void write_record(FILE *f, int fmt, const char *image, const ca_classifier *c, const float *probs, const int *idx, int k) {
    cJSON *top = fmt == FMT_JSONL ? cJSON_CreateArray() : NULL;
    for (int j = 0; j < k; j++) {
        const char *nm = ca_classifier_class_name(c, idx[j]);
        char fallback[32];
        if (!nm) { snprintf(fallback, sizeof fallback, "class %d", idx[j]); nm = fallback; }
        if (fmt == FMT_JSONL) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "class", nm);
            cJSON_AddNumberToObject(e, "index", idx[j]);
            cJSON_AddNumberToObject(e, "prob", probs[idx[j]]);
            cJSON_AddItemToArray(top, e);
        } else if (fmt == FMT_CSV) {
            csv_field(f, image);
            fprintf(f, ",%d,%.6f,%d,", j + 1, probs[idx[j]], idx[j]);
            csv_field(f, nm);
            fputc('\n', f);
        } else {
            fprintf(f, "%s\t%d\t%.6f\t%d\t%s\n", image, j + 1, probs[idx[j]], idx[j], nm);
        }
    }
    if (fmt == FMT_JSONL) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "image", image);
        cJSON_AddItemToObject(e, "top", top);
        char *s = cJSON_PrintUnformatted(e);
        if (s) { fputs(s, f); fputc('\n', f); }
        free(s);
        cJSON_Delete(e);
    }
}

/* The resume state beside OUT.partial: job key, inputs done, bytes of complete records. Written
 * to a temporary and renamed, after the records it counts were fsync'd. */
static int save_state(const char *state, uint64_t key, long long done, long long bytes) {
    size_t n = strlen(state) + 5;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    snprintf(tmp, n, "%s.tmp", state);
    FILE *f = fopen(tmp, "w");
    int bad = !f || fprintf(f, "clipadapt-predict-state 1 %016llx %lld %lld\n", (unsigned long long)key, done, bytes) < 0;
    if (f) { bad |= fflush(f) != 0 || fsync(fileno(f)) != 0; bad |= fclose(f) != 0; }
    if (!bad) bad = rename(tmp, state) != 0;
    if (bad) remove(tmp);
    free(tmp);
    return bad ? -1 : 0;
}

static int load_state(const char *state, uint64_t key, long long *done, long long *bytes) {
    FILE *f = fopen(state, "r");
    if (!f) return -1;
    unsigned long long k;
    int ok = fscanf(f, "clipadapt-predict-state 1 %16llx %lld %lld", &k, done, bytes) == 3 && k == key && *done >= 0 && *bytes >= 0;
    fclose(f);
    return ok ? 0 : -1;
}

/* Where finished batches go: ca_session_encode_image_files calls emit() after each batch of a
 * window (in input order: no cache_dir), and emit() writes those images' records and, for a file
 * output, makes them durable and counts them in the state file. */
typedef struct {
    FILE *of;
    int fmt, k, C, D, batch, to_file, skip_bad;
    const ca_classifier *c;
    const char *const *paths;   /* the window's */
    const float *feats;         /* (window, D) */
    const uint8_t *bad;         /* (window) */
    float *logits, *probs;      /* (batch, C), (C) */
    int *idx;
    long long w0, written;      /* the window's first image, relative to the shard; images of it written */
    long long total;            /* images of the shard */
    const char *partial, *state;
    uint64_t key;
    int skipped, rc;            /* rc: CLI_OK, or the error emit() met (the call then stops) */
} sink;

static int emit_records(sink *o, long long a, long long b) {
    for (long long r0 = a; r0 < b; r0 += o->batch) {
        int n = (int)(b - r0 < o->batch ? b - r0 : o->batch);
        ca_status st = ca_classifier_logits(o->c, o->feats + (size_t)r0 * o->D, n, o->logits);
        if (st != CA_OK) return cli_status(st);
        for (int g = 0; g < n; g++) {
            const char *path = o->paths[r0 + g];
            if (o->bad[r0 + g]) {   /* the library only flags it: load it once more for the reason */
                ca_status s2;
                ca_image *img = ca_image_load(path, NULL, &s2);
                const char *d = ca_last_error();
                if (img) ca_image_free(img);   /* readable now: changed under us; still skipped */
                if (d && strstr(d, path)) fprintf(stderr, "clipadapt: skipped: %s\n", d);
                else fprintf(stderr, "clipadapt: skipped: %s: %s\n", path, img ? "could not be decoded" : d && *d ? d : ca_strerror(s2));
                o->skipped++;
                continue;
            }
            const float *lg = o->logits + (size_t)g * o->C;
            double mx = lg[0], sum = 0;
            for (int j = 1; j < o->C; j++) if (lg[j] > mx) mx = lg[j];
            for (int j = 0; j < o->C; j++) sum += exp((double)lg[j] - mx);
            int finite = isfinite(sum) && sum > 0;
            for (int j = 0; j < o->C; j++) { o->probs[j] = (float)(exp((double)lg[j] - mx) / sum); finite &= isfinite(o->probs[j]) != 0; }
            if (!finite) return cli_error("%s: non-finite class probabilities (NaN or infinity in the model or classifier)", path);
            ca_top_k(o->probs, o->C, o->k, o->idx);
            write_record(o->of, o->fmt, path, o->c, o->probs, o->idx, o->k);
        }
    }
    return CLI_OK;
}

/* ca_progress_fn: `done` images of the shard are encoded (progress_base = the window's start). */
static int emit(const char *stage, int64_t done, int64_t total, void *user) {
    sink *o = user;
    long long upto = done - o->w0;
    if (upto > o->written) {
        if ((o->rc = emit_records(o, o->written, upto)) != CLI_OK) return 1;
        o->written = upto;
        if (o->to_file) {   /* complete records reach the disk before the state that counts them */
            if (fflush(o->of) != 0 || fsync(fileno(o->of)) != 0) { o->rc = cli_error("%s: write failed: %s", o->partial, strerror(errno)); return 1; }
            if (save_state(o->state, o->key, done, ftell(o->of))) { o->rc = cli_error("%s: cannot write: %s", o->state, strerror(errno)); return 1; }
        } else {
            fflush(o->of);
        }
    }
    cli_progress("predict", done, o->total, NULL);
    return 0;
}

int cmd_predict(int argc, char **argv) {
    const char *model_path = NULL, *config = NULL, *clf_path = NULL, *dir = NULL, *list = NULL, *output = NULL;
    int topk = 5, json = 0, npos = 0, bf16 = 0, threads = 0, batch = 32, skip_bad = 0, act = CA_ACTIVATION_AUTO, shard[2] = {0, 1};
    const char **pos = calloc((size_t)argc + 1, sizeof(char *));
    if (!pos) return cli_error("out of memory");
    cli_opt t[] = {
        cli_opt_str("--model", &model_path, "W", "CLIP checkpoint (any format `info` reads) the features were extracted with (required)"),
        cli_opt_str("--config", &config, "C", "Hugging Face config.json or OpenCLIP open_clip_config.json (optional)"),
        cli_opt_act(&act),
        cli_opt_str("--classifier", &clf_path, "FILE", "classifier from `clipadapt fit` (required)"),
        cli_opt_str("--images", &dir, "DIR", "classify every file under DIR (recursively, in sorted path order)"),
        cli_opt_str("--list", &list, "FILE", "classify the files named in FILE, one path per line ('-': standard input)"),
        cli_opt_int("--top-k", &topk, 1, 1000000, "K", "classes shown per image (default 5)"),
        cli_opt_flag("--json", &json, "JSON lines: one object {\"image\", \"top\": [{\"class\", \"index\", \"prob\"}, ...]} "
                                      "per line and image, written as each batch finishes (not one array)"),
        cli_opt_str("--output", &output, "FILE|-", "write here instead of standard output; .jsonl/.json = JSON lines, .csv = CSV "
                                                  "(image,rank,prob,index,class), else the table; resumable (see below)"),
        cli_opt_flag("--skip-bad", &skip_bad, "name each image that cannot be decoded on stderr, classify the others, and "
                                              "print a count at the end (exit 1 only when no image could be read)"),
        cli_opt_int("--batch", &batch, 1, 4096, "N", "images per encoder call (default 32)"),
        {.name = "--shard", .kind = CLI_FN, .fn = parse_shard, .dst = shard, .metavar = "I/N",
         .help = "classify only slice I of N (whole batches, in input order) into a part for `clipadapt merge`"},
        cli_opt_flag("--bf16", &bf16, "BF16 image encoder (AVX512-BF16; faster, features within ~1% of float32)"),
        cli_opt_int("--threads", &threads, 0, 4096, "N", "threads (default: all cores)"),
    };
    cli_cmd cmd = {"predict", "--model W --classifier CLF [--top-k 5] [--json] [--output F] (IMAGE... | --images DIR | --list FILE)",
                   "Classify images: CLIP preprocessing (bicubic resize, centre crop), image encoder, L2\n"
                   "normalisation, the classifier's logits, softmax. The model must be the one the features\n"
                   "were extracted with (a classifier of another model is refused before any image).",
                   "Table output: one line per image and rank: image, rank, probability, class index, class name\n"
                   "(tab-separated). Records are written in input order as batches finish; the next batch is\n"
                   "decoded and preprocessed while this one is encoded. An image that cannot be\n"
                   "decoded stops the command (exit 1; a file output is not written), unless --skip-bad; on standard\n"
                   "output the batches before it have been printed. With --output FILE records go to\n"
                   "FILE.partial (fsync'd per batch) and FILE.partial.state; re-running the same command after an\n"
                   "interruption continues there, and the finished FILE is byte-identical to an uninterrupted run.\n",
                   t, (int)(sizeof t / sizeof t[0]), NULL};
    strvec in = {0};
    int r = cli_parse(&cmd, argc, argv, pos, &npos);
    if (r) { free(pos); return r == CLI_HELP ? CLI_OK : r; }
    if (!model_path || !clf_path) { free(pos); return cli_usage("predict", "--model and --classifier are required"); }
    if ((npos > 0) + !!dir + !!list > 1) { free(pos); return cli_usage("predict", "give images as arguments, --images DIR or --list FILE, one of them"); }
    int fmt = json ? FMT_JSONL : FMT_TABLE;
    if (output) {
        const char *dot = strrchr(output, '.');
        if (dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".json"))) fmt = FMT_JSONL;
        else if (dot && !strcmp(dot, ".csv")) { if (json) { free(pos); return cli_usage("predict", "--json cannot write a .csv file"); } fmt = FMT_CSV; }
    }
    int to_file = output && strcmp(output, "-");
    {
        cli_file fin[] = {{"--model", model_path, 0}, {"--config", config, 0}, {"--classifier", clf_path, 0},
                          {"--images", dir, 1}, {"--list", list, 0}};
        cli_file fout[] = {{"--output", output, 0}};
        if ((r = cli_check_outputs(fin, 5, fout, 1))) { free(pos); return r; }
    }
    for (int i = 0; i < npos; i++) if (sv_push(&in, pos[i])) { free(pos); return cli_error("out of memory"); }
    free(pos);

    ca_status st;
    int rc = CLI_FAIL, skipped = 0;
    ca_model *m = NULL;
    ca_classifier *c = NULL;
    float *probs = NULL, *feats = NULL, *logits = NULL;
    int *idx = NULL;
    uint8_t *bad = NULL;
    ca_session *sess = NULL;
    char *partial = NULL, *state = NULL;
    FILE *of = NULL;
    if (dir && (rc = walk(dir, &in)) != CLI_OK) goto done;
    if (list && (rc = read_list(list, &in)) != CLI_OK) goto done;
    rc = CLI_FAIL;
    if (in.n == 0) {
        rc = dir || list ? cli_error("%s: no images in it", dir ? dir : list) : cli_usage("predict", "no images given");
        goto done;
    }
    if (!(c = ca_classifier_load(clf_path, &st))) { rc = cli_status(st); goto done; }
    ca_model_params mp = ca_model_default_params();
    mp.load_text = 0;
    mp.config_path = config;
    mp.activation = act;
    mp.threads = threads;
    if (!(m = cli_load_model(model_path, &mp, bf16, &rc))) goto done;
    rc = CLI_FAIL;
    int C = ca_classifier_num_classes(c), k = topk < C ? (int)topk : C;
    /* a classifier of another model is refused once, not once per image */
    ca_model_info info;
    char sig[512];
    if ((st = ca_model_get_info(m, &info)) != CA_OK) { rc = cli_status(st); goto done; }
    int D = info.embed_dim;
    if (D != ca_classifier_dim(c)) {
        rc = cli_error("%s: expects %d-d features but %s gives %d-d (fit on features of another model)", clf_path,
                       ca_classifier_dim(c), model_path, D);
        goto done;
    }
    if (ca_classifier_model_signature(c) && ca_model_signature(m, sig, sizeof sig) == CA_OK &&
        !ca_model_signature_match(ca_classifier_model_signature(c), sig)) {
        rc = cli_error("%s: fit on features of another model than %s (image projections differ); predict with the "
                       "model used for extract", clf_path, model_path);
        goto done;
    }

    /* this shard's slice: whole batches, so that every image is encoded in the same batch as in
     * a single-process run (the split does not depend on which files turn out bad) */
    long long nb = ((long long)in.n + batch - 1) / batch;
    long long i0 = nb * shard[0] / shard[1] * batch, i1 = nb * (shard[0] + 1) / shard[1] * batch;
    if (i1 > in.n) i1 = in.n;
    if (i0 > in.n) i0 = in.n;
    /* the job key: everything that changes the bytes written */
    uint64_t key = 0xcbf29ce484222325ull;
    int64_t hdr[8] = {1, fmt, k, batch, bf16, shard[0], shard[1], skip_bad};
    key = fnv(key, hdr, sizeof hdr);
    key = fnv_file(fnv_file(fnv_file(key, model_path), config), clf_path);
    for (long long i = i0; i < i1; i++) key = fnv_file(key, in.v[i]);
    /* the parts' common key for merge: the same command apart from the shard index */
    uint64_t job = 0x84222325cbf29ce4ull;
    int64_t jh[6] = {1, fmt, k, batch, bf16, shard[1]};
    job = fnv_file(fnv_file(fnv_file(fnv(job, jh, sizeof jh), model_path), config), clf_path);
    for (int i = 0; i < in.n; i++) job = fnv(job, in.v[i], strlen(in.v[i]) + 1);

    /* the images go to the library in windows of whole batches (bounded memory whatever the
     * input size; a window decodes its next batch while it encodes this one) */
    long long win = (long long)batch * 64;
    probs = malloc(sizeof(float) * (size_t)C);
    logits = malloc(sizeof(float) * (size_t)C * (size_t)batch);
    feats = malloc(sizeof(float) * (size_t)D * (size_t)win);
    idx = malloc(sizeof(int) * (size_t)k);
    bad = malloc((size_t)win);
    if (!probs || !logits || !feats || !idx || !bad) { rc = cli_error("out of memory"); goto done; }
    if (!(sess = ca_session_new(m, NULL, &st))) { rc = cli_status(st); goto done; }

    long long start = i0, bytes = 0;
    if (to_file) {
        size_t pl = strlen(output) + 16;
        partial = malloc(pl); state = malloc(pl);
        if (!partial || !state) { rc = cli_error("out of memory"); goto done; }
        snprintf(partial, pl, "%s.partial", output);
        snprintf(state, pl, "%s.partial.state", output);
        long long done_n = 0;
        struct stat sb;
        if (load_state(state, key, &done_n, &bytes) == 0 && stat(partial, &sb) == 0 && sb.st_size >= bytes &&
            done_n <= i1 - i0 && truncate(partial, bytes) == 0 && (of = fopen(partial, "ab"))) {
            start = i0 + done_n;
            if (start > i0) fprintf(stderr, "predict: resuming %s after %lld of %lld images\n", partial, done_n, i1 - i0);
        } else {
            if (!(of = fopen(partial, "wb"))) { rc = cli_error("%s: cannot create: %s", partial, strerror(errno)); goto done; }
            bytes = 0;
            if (shard[1] > 1) fprintf(of, "#clipadapt-part %d/%d %016llx\n", shard[0], shard[1], (unsigned long long)job);
            if (fmt == FMT_CSV && shard[0] == 0) fputs("image,rank,prob,index,class\n", of);
        }
    } else {
        of = stdout;
        if (shard[1] > 1) fprintf(of, "#clipadapt-part %d/%d %016llx\n", shard[0], shard[1], (unsigned long long)job);
        if (fmt == FMT_CSV && shard[0] == 0) fputs("image,rank,prob,index,class\n", of);
    }

    sink o = {.of = of, .fmt = fmt, .k = k, .C = C, .D = D, .batch = batch, .to_file = to_file, .skip_bad = skip_bad,
              .c = c, .feats = feats, .bad = bad, .logits = logits, .probs = probs, .idx = idx, .total = i1 - i0,
              .partial = partial, .state = state, .key = key};
    ca_encode_params ep = ca_encode_default_params();
    ep.batch = batch;
    ep.chunk = 1 << 28;   /* no cache_dir: chunks would only cut batches short */
    ep.stage = "predict";
    ep.skip_bad = skip_bad; ep.bad_out = bad;
    ep.progress = emit; ep.progress_user = &o; ep.progress_total = i1 - i0;
    memset(bad, 0, (size_t)win);
    for (long long w0 = start; w0 < i1; w0 += win) {
        int wn = (int)(i1 - w0 < win ? i1 - w0 : win);
        o.paths = (const char *const *)in.v + w0;
        o.w0 = w0 - i0; o.written = 0;
        ep.progress_base = w0 - i0;
        st = ca_session_encode_image_files(sess, o.paths, NULL, wn, &ep, feats, NULL, NULL);
        if (o.rc != CLI_OK) { rc = o.rc; goto done; }
        if (st != CA_OK) {   /* without --skip-bad, the first bad image ends the run; a file output is not written */
            rc = cli_status(st);
            if (to_file) { fclose(of); of = NULL; remove(partial); remove(state); }
            goto done;
        }
    }
    skipped = o.skipped;
    cli_progress("predict", i1 - i0, i1 - i0, NULL);
    /* a whole job of undecodable files fails with no output; one shard of them is just a part
     * with no records (the other shards decide, so that every split gives the same result) */
    if (skipped && skipped == i1 - i0 && shard[1] == 1) {
        rc = cli_error("predict: none of the %d images could be decoded", skipped);
        if (to_file) { fclose(of); of = NULL; remove(partial); remove(state); }
        goto done;
    }
    if (to_file) {
        int bad = fflush(of) != 0 || fsync(fileno(of)) != 0;
        bad |= fclose(of) != 0;
        of = NULL;
        if (bad || rename(partial, output) != 0) { rc = cli_error("%s: cannot write: %s", output, strerror(errno)); goto done; }
        remove(state);
    }
    if (skipped) fprintf(stderr, "clipadapt: predict: skipped %d of %lld images that could not be decoded\n", skipped, i1 - i0);
    rc = CLI_OK;
done:
    if (of && of != stdout) fclose(of);
    for (int i = 0; i < in.n; i++) free(in.v[i]);
    free(in.v);
    free(probs); free(idx); free(feats); free(logits); free(bad); free(partial); free(state);
    ca_session_free(sess);
    ca_model_free(m);
    ca_classifier_free(c);
    return rc;
}
