/* cmd_extract.c — `clipadapt extract`: a labelled image dataset and a CLIP checkpoint in, a feature
 * set out (the ../shared/features schema plus augmented views), resumable chunk by chunk. */
#include "cli.h"
#include "core/core.h" /* the library's monotonic clock */

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#else
#define omp_get_max_threads() 1
#endif

typedef struct {
    const char *model, *config, *bpe, *images, *val_images, *test_images, *split_file, *image_root, *templates, *output, *prompts;
    double val_split, test_split;
    int shots[16], nshots, val_shots, views, batch, chunk, f16, no_text, verbose, bf16, threads, skip_bad, act, shard[2];
    uint64_t seed;
} opts;

static int parse_shots_list(const char *s, opts *o) {
    o->nshots = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        long k;
        if (cli_int(tok, &k) || k < 1 || k > 100000 || o->nshots == 16) return -1;
        for (int i = 0; i < o->nshots; i++) if (o->shots[i] == k) return -1;
        o->shots[o->nshots++] = (int)k;
    }
    return o->nshots ? 0 : -1;
}

static int parse_shots(const char *cmd, const char *v, void *dst) {
    if (parse_shots_list(v, dst)) { cli_usage(cmd, "--shots needs K or K1,K2,... (distinct, >= 1, at most 16)"); return -1; }
    return 0;
}

static int parse_shard(const char *cmd, const char *v, void *dst) {
    int *s = dst;
    long i, n;
    const char *slash = strchr(v, '/');
    char a[32];
    if (slash && (size_t)(slash - v) < sizeof a) {
        snprintf(a, sizeof a, "%.*s", (int)(slash - v), v);
        if (!cli_int(a, &i) && !cli_int(slash + 1, &n) && n >= 1 && n <= 1000000 && i >= 0 && i < n) {
            s[0] = (int)i; s[1] = (int)n;
            return 0;
        }
    }
    cli_usage(cmd, "--shard needs I/N with 0 <= I < N (e.g. 0/4)");
    return -1;
}

/* With --skip-bad every shard must leave out the same images as a single process, which sees
 * them all: the images of other shards' chunks are decoded (not encoded) to find the bad ones,
 * flagged 2 (1: found in an owned chunk, named on stderr by this shard). */
static void check_decodable(const char *const *paths, int n, uint8_t *bad, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (int j = 0; j < n; j++) {
        ca_status st;
        ca_image *img = ca_image_load(paths[j], NULL, &st);
        bad[j] = img ? 0 : 2;
        ca_image_free(img);
    }
}

/* Encode only this shard's chunks: chunk g (counted over all calls through *g) belongs to shard
 * g mod N. Each owned chunk is one call starting at the chunk boundary, so its batches (and chunk
 * cache keys) are those of a single-process run; rows of other shards stay zero for merge. */
static ca_status encode_owned(ca_model *m, const char *const *paths, const uint64_t *ids, int n, ca_encode_params *ep,
                              float *feats, float *views, int D, const int *shard, int threads, int64_t *g, int *reused) {
    *reused = 0;
    if (ep->bad_out) memset(ep->bad_out, 0, (size_t)n);   /* the array serves every split */
    if (shard[1] == 1) return ca_encode_images(m, paths, ids, n, ep, feats, views, reused);
    int V = ep->views;
    float *vt = V ? malloc(sizeof(float) * (size_t)V * ep->chunk * D + 1) : NULL;
    if (V && !vt) return ca_fail(CA_E_NOMEM, "out of memory");
    ca_status st = CA_OK;
    int64_t base = ep->progress_base;
    uint8_t *bad = ep->bad_out;
    for (int c0 = 0; st == CA_OK && c0 < n; c0 += ep->chunk) {
        int cm = n - c0 < ep->chunk ? n - c0 : ep->chunk, r = 0;
        if ((*g)++ % shard[1] != shard[0]) {
            if (ep->skip_bad && bad) check_decodable(paths + c0, cm, bad + c0, threads);
            continue;
        }
        ep->progress_base = base + c0;
        ep->bad_out = bad ? bad + c0 : NULL;
        st = ca_encode_images(m, paths + c0, ids + c0, cm, ep, feats + (size_t)c0 * D, vt, &r);
        for (int v = 0; st == CA_OK && v < V; v++)
            memcpy(views + ((size_t)v * n + c0) * D, vt + (size_t)v * cm * D, sizeof(float) * (size_t)cm * D);
        *reused += r;
    }
    ep->progress_base = base;
    ep->bad_out = bad;
    free(vt);
    return st;
}

/* FNV-1a of the model file's identity: chunks of another model (or a rewritten file) never match. */
static uint64_t model_salt(const char *path, const char *config) {
    uint64_t h = 0xcbf29ce484222325ull;
    const char *parts[2] = {path, config ? config : ""};
    for (int k = 0; k < 2; k++) {
        struct stat sb;
        int64_t meta[3] = {-1, -1, -1};
        if (*parts[k] && stat(parts[k], &sb) == 0) { meta[0] = sb.st_size; meta[1] = sb.st_mtim.tv_sec; meta[2] = sb.st_mtim.tv_nsec; }
        for (const char *p = parts[k]; *p; p++) { h ^= (unsigned char)*p; h *= 0x100000001b3ull; }
        for (size_t i = 0; i < sizeof meta; i++) { h ^= ((unsigned char *)meta)[i]; h *= 0x100000001b3ull; }
    }
    return h;
}

/* An image's id: a hash of its path below the dataset root, so that it does not depend on which
 * other files exist (augmentation stream, chunk keys). */
static uint64_t image_id(const char *path, const char *root) {
    size_t rl = root ? strlen(root) : 0;
    while (rl > 1 && root[rl - 1] == '/') rl--;
    const char *rel = rl && !strncmp(path, root, rl) ? path + rl : path;
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *rel; rel++) { h ^= (unsigned char)*rel; h *= 0x100000001b3ull; }
    return h;
}

/* One line for an image left out by --skip-bad, with the decoder's reason. */
static void report_bad(const char *path) {
    ca_status st;
    ca_image *img = ca_image_load(path, NULL, &st);
    ca_image_free(img);
    const char *d = img ? "" : ca_last_error();
    if (d && *d && strstr(d, path)) fprintf(stderr, "clipadapt: skipped: %s\n", d);
    else fprintf(stderr, "clipadapt: skipped: %s: %s\n", path, d && *d ? d : "cannot be decoded");
}

static void remove_parts(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "chunk-", 6) != 0) continue;   /* only what we wrote */
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
    rmdir(dir);
}

/* At least two classes, and no two that read the same once '_' became ' '. */
static int check_classes(const ca_dataset *ds, const char *src) {
    int C = ca_dataset_num_classes(ds);
    if (C < 2)
        return cli_error("%s: %d class found; a classifier needs at least 2 (one folder per class)", src, C);
    for (int c = 1; c < C; c++)
        for (int d = 0; d < c; d++)
            if (!strcmp(ca_dataset_class_name(ds, c), ca_dataset_class_name(ds, d)))
                return cli_error("%s: two classes are both named '%s' (folder names read '_' as a space); rename one",
                                 src, ca_dataset_class_name(ds, c));
    return CLI_OK;
}

/* Every prompt (template x class) must fit the text tower's context, as clip.tokenize with
 * truncate=False demands; found here, before any image is encoded. */
static int check_prompts(ca_tokenizer *tok, const ca_dataset *ds, const ca_prompts *pr, const char *const *tmpl, int T,
                         int context, const char *tsrc) {
    int64_t *row = malloc(sizeof(int64_t) * (size_t)(context > 0 ? context : 1));
    if (!row) return cli_error("out of memory");
    int rc = CLI_OK;
    for (int c = 0; rc == CLI_OK && c < ca_dataset_num_classes(ds); c++) {
        const char *const *list = tmpl;
        int nt = T;
        if (pr) list = ca_prompts_for(pr, ca_dataset_class_name(ds, c), &nt);   /* the class's own prompts */
        for (int t = 0; rc == CLI_OK && list && t < nt; t++) {
            char *text = pr ? strdup(list[t]) : ca_template_format(list[t], ca_dataset_class_name(ds, c));
            int n = 0;
            ca_status st = text ? ca_tokenize_row(tok, text, strlen(text), context, 1, row, &n) : CA_E_ARG;
            if (!text) rc = cli_error("%s: template '%s' must contain \"{}\" exactly once", tsrc, list[t]);
            else if (st != CA_OK) rc = cli_error("%s: prompt '%s': %s", tsrc, text, ca_last_error());
            else if (n > context - 2)
                rc = cli_error("%s: prompt '%s' is %d tokens, more than the model's context of %d allows (%d); shorten the "
                               "class name or template", tsrc, text, n, context, context - 2);
            free(text);
        }
    }
    free(row);
    return rc;
}

/* Say so when a class cannot give the requested shots (CoOp then takes all it has). */
static void warn_short_classes(const ca_dataset *ds, const char *src, const int *shots, int nshots) {
    int C = ca_dataset_num_classes(ds), n = ca_dataset_size(ds, CA_SPLIT_TRAIN);
    int *cnt = calloc((size_t)C, sizeof *cnt), *cv = calloc((size_t)C, sizeof *cv), *ct = calloc((size_t)C, sizeof *ct);
    if (!cnt || !cv || !ct) { free(cnt); free(cv); free(ct); return; }
    for (int i = 0; i < n; i++) cnt[ca_dataset_label(ds, CA_SPLIT_TRAIN, i)]++;
    for (int i = 0; i < ca_dataset_size(ds, CA_SPLIT_VAL); i++) cv[ca_dataset_label(ds, CA_SPLIT_VAL, i)]++;
    int nt = ca_dataset_size(ds, CA_SPLIT_TEST);
    for (int i = 0; i < nt; i++) ct[ca_dataset_label(ds, CA_SPLIT_TEST, i)]++;
    for (int s = 0; s < nshots; s++) {
        int short_ = 0, fewest = 0;
        for (int c = 0; c < C; c++) {
            if (cnt[c] < shots[s]) short_++;
            if (cnt[c] < cnt[fewest]) fewest = c;
        }
        if (short_)
            fprintf(stderr, "clipadapt: warning: %s: %d of %d classes have fewer than %d training images (after the val/test "
                            "split; fewest: '%s' with %d): train.%dshot takes all they have\n",
                    src, short_, C, shots[s], ca_dataset_class_name(ds, fewest), cnt[fewest], shots[s]);
    }
    int noval = 0;
    for (int c = 0; c < C; c++) noval += cv[c] == 0;
    if (noval) fprintf(stderr, "clipadapt: warning: %s: %d of %d classes have no val image (too few images to split)\n", src, noval, C);
    int notest = 0;   /* only when a test split was asked for: --test-split 0 means none on purpose */
    for (int c = 0; nt > 0 && c < C; c++) notest += ct[c] == 0;
    if (notest) fprintf(stderr, "clipadapt: warning: %s: %d of %d classes have no test image (too few images to split)\n", src, notest, C);
    free(cnt); free(cv); free(ct);
}

/* The dataset as the options describe it, less the images in exclude (--skip-bad's finds). */
static ca_dataset *load_dataset(const opts *o, char *const *exclude, int n_exclude, ca_status *st) {
    if (o->images) {
        ca_dataset_params dp = ca_dataset_default_params();
        dp.seed = o->seed;
        dp.val_dir = o->val_images; dp.test_dir = o->test_images;
        dp.val_split = o->val_split >= 0 ? o->val_split : o->val_images ? 0 : 0.2;
        dp.test_split = o->test_split >= 0 ? o->test_split : o->test_images ? 0 : 0.2;
        dp.exclude = (const char *const *)exclude; dp.n_exclude = n_exclude;
        return ca_dataset_from_folder(o->images, &dp, st);
    }
    ca_dataset *ds = ca_dataset_from_split_file(o->split_file, o->image_root, st);
    if (ds && n_exclude) {
        ca_dataset *d2 = ca_dataset_drop(ds, (const char *const *)exclude, n_exclude, st);
        ca_dataset_free(ds);
        ds = d2;
    }
    return ds;
}

/* Classes as check_classes wants them, and a val split and (unless --test-split 0) a test split. */
static int check_dataset(const ca_dataset *ds, const opts *o, const char *src) {
    int rc = check_classes(ds, src);
    if (rc != CLI_OK) return rc;
    int n_val = ca_dataset_size(ds, CA_SPLIT_VAL), n_test = ca_dataset_size(ds, CA_SPLIT_TEST);
    if (n_val == 0 || (n_test == 0 && o->test_split != 0))
        return cli_error("%s: the dataset has no %s images (a feature set needs train, val and test%s)", src,
                         n_val == 0 ? "val" : "test", n_val == 0 ? "" : "; --test-split 0 keeps none on purpose");
    return CLI_OK;
}

int cmd_extract(int argc, char **argv) {
    opts o;
    memset(&o, 0, sizeof o);
    o.val_split = o.test_split = -1;
    o.shots[0] = 16; o.nshots = 1;
    o.views = 10; o.batch = 64; o.chunk = 64; o.seed = 1;
    o.shard[0] = 0; o.shard[1] = 1;
    o.templates = NULL;   /* default "simple" unless --prompts */
    cli_opt t[] = {
        {.name = "--images", .kind = CLI_STR, .dst = &o.images, .metavar = "ROOT", .section = "dataset",
         .help = "image folder ROOT/<class>/<image>; class name = folder name, '_' -> ' '"},
        cli_opt_dbl("--val-split", &o.val_split, 0, 0.999999, "F", "fraction of each class held out as val (default 0.2 unless --val-images)"),
        cli_opt_dbl("--test-split", &o.test_split, 0, 0.999999, "F", "fraction of each class held out as test (default 0.2 unless "
                                                                     "--test-images; 0: keep every image for train and val)"),
        cli_opt_str("--val-images", &o.val_images, "DIR", "separate val folder (same class folder names)"),
        cli_opt_str("--test-images", &o.test_images, "DIR", "separate test folder"),
        cli_opt_str("--split-file", &o.split_file, "F", "CoOp split file split_zhou_*.json ({\"train\": [[path, label, class], ...], ...})"),
        cli_opt_str("--image-root", &o.image_root, "R", "folder the split file's paths are relative to"),
        {.name = "--shots", .kind = CLI_FN, .fn = parse_shots, .dst = &o, .metavar = "K[,K...]", .section = "sampling and features",
         .help = "images per class in each train split (default 16), as CoOp samples them"},
        cli_opt_int("--val-shots", &o.val_shots, 0, 100000, "K", "sample K per class from val too (default 0: all of val)"),
        cli_opt_int("--views", &o.views, 0, 1024, "V", "augmented views per training image (default 10; 0 = centre crop only)"),
        {.name = "--seed", .kind = CLI_U64, .dst = &o.seed, .lo = 0, .hi = 9007199254740992.0, .metavar = "N",
         .help = "seed for splits, sampling and augmentation (default 1)"},
        cli_opt_str("--templates", &o.templates, "NAME|FILE", "prompt templates for text.weights (default simple; built-in: see below)"),
        cli_opt_str("--prompts", &o.prompts, "FILE.json", "per-class prompt lists instead of templates (CuPL / APE format: "
                                                          "{\"class name\": [\"prompt\", ...]}); every class needs an entry"),
        cli_opt_flag("--no-text", &o.no_text, "skip text.weights (then --bpe is not needed)"),
        cli_opt_flag("--f16", &o.f16, "store features as F16 (half the size; default F32)"),
        {.name = "--model", .kind = CLI_STR, .dst = &o.model, .metavar = "W", .section = "model",
         .help = "CLIP checkpoint: safetensors, PyTorch .pt/.bin, TorchScript, a sharded index or a folder; OpenAI/OpenCLIP "
                 "or Hugging Face names"},
        cli_opt_str("--config", &o.config, "C", "Hugging Face config.json or OpenCLIP open_clip_config.json (optional)"),
        cli_opt_act(&o.act),
        cli_opt_str("--bpe", &o.bpe, "VOCAB", "CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)"),
        cli_opt_int("--batch", &o.batch, 1, 4096, "N", "encoder inputs per model call (default 64; larger is faster, uses more memory)"),
        cli_opt_flag("--bf16", &o.bf16, "BF16 compute (AVX512-BF16): about 1.8x faster encoders, features within about 1% of "
                                        "float32; recorded in the output's metadata (compute)"),
        cli_opt_int("--threads", &o.threads, 0, 4096, "N", "threads (default: all cores)"),
        cli_opt_int("--chunk", &o.chunk, 1, 1 << 20, "N", "images per resumable chunk, on average (default 64)"),
        cli_opt_flag("--skip-bad", &o.skip_bad, "leave out images that cannot be decoded (each named on stderr, a count at "
                                                "the end) as if they were not in the folder; default: the first one stops the run"),
        {.name = "--output", .kind = CLI_STR, .dst = &o.output, .metavar = "F", .section = "output",
         .help = "feature set, written atomically; finished chunks are kept in F.parts/ until the end, so re-running the "
                 "same command after an interruption redoes only the unfinished chunk"},
        {.name = "--shard", .kind = CLI_FN, .fn = parse_shard, .dst = o.shard, .metavar = "I/N",
         .help = "encode only chunk g where g mod N = I, and text.weights on shard 0: a part for `clipadapt merge`, whose "
                 "result is byte-identical to a single-process run"},
        cli_opt_flag("--verbose", &o.verbose, "print a summary (images, seconds, images/s, chunks reused) to stderr (also -v)"),
    };
    char footer[1024] = "Every input (classes, templates, vocabulary, model, each prompt's length, the output path) is\n"
                        "checked before the first image is decoded. Progress goes to stderr: a bar on a terminal, a line\n"
                        "per 5% otherwise (CLIPADAPT_QUIET=1 hides it).\n\nbuilt-in template sets:";
    for (const char *const *ts = ca_template_set_names(); *ts; ts++) snprintf(footer + strlen(footer), sizeof footer - strlen(footer), " %s", *ts);
    snprintf(footer + strlen(footer), sizeof footer - strlen(footer), "\n");
    cli_cmd cmd = {"extract", "--model W.safetensors --bpe VOCAB (--images ROOT | --split-file F --image-root R)\n"
                              "                         --output FEATS.safetensors [options]",
                   "Encode a labelled image dataset with CLIP into a feature set for `clipadapt fit`/`fewshot`:\n"
                   "train.{K}shot.features/labels/views, val.*, test.*, text.weights, class names in metadata.",
                   footer, t, (int)(sizeof t / sizeof t[0]), &o.verbose};
    {
        int r = cli_parse(&cmd, argc, argv, NULL, NULL);
        if (r) return r == CLI_HELP ? CLI_OK : r;
    }
    if (!o.model) return cli_usage("extract", "--model is required");
    if (o.prompts && o.templates) return cli_usage("extract", "give --templates or --prompts, not both");
    if (o.prompts && o.no_text) return cli_usage("extract", "--prompts builds text.weights; it cannot go with --no-text");
    if (!o.templates) o.templates = "simple";
    if (!o.output) return cli_usage("extract", "--output is required");
    if (!o.no_text && !o.bpe) return cli_usage("extract", "--bpe is required for text.weights (or give --no-text)");
    if (!!o.images == !!o.split_file) return cli_usage("extract", "give either --images ROOT or --split-file F --image-root R");
    if (o.split_file && !o.image_root) return cli_usage("extract", "--split-file needs --image-root");
    if (o.split_file && (o.val_images || o.test_images || o.val_split >= 0 || o.test_split >= 0))
        return cli_usage("extract", "--val-*/--test-* options apply to --images only; the split file defines the splits");

    {
        const char *tfile = o.templates && !ca_templates_builtin(o.templates, NULL) ? o.templates : NULL;
        cli_file in[] = {{"--model", o.model, 0}, {"--config", o.config, 0}, {"--bpe", o.bpe, 0},
                         {"--templates", tfile, 0}, {"--split-file", o.split_file, 0}, {"--images", o.images, 1},
                         {"--val-images", o.val_images, 1}, {"--test-images", o.test_images, 1},
                         {"--image-root", o.image_root, 1}, {"--prompts", o.prompts, 0}};
        cli_file out[] = {{"--output", o.output, 0}};
        int r = cli_check_outputs(in, 10, out, 1);
        if (r) return r;
    }
    int rc = CLI_FAIL;
    ca_status st = CA_OK;
    ca_dataset *ds = NULL;
    ca_model *model = NULL;
    ca_tokenizer *tok = NULL;
    char **tmpl = NULL;
    int ntmpl = 0;
    ca_prompts *prompts = NULL;
    int *tr_idx[16] = {0}, ntr[16] = {0}, *val_idx = NULL, nval = 0, *uni = NULL, nuni = 0;
    int *dense = NULL;
    float *fu = NULL, *vu = NULL, *fval = NULL, *ftest = NULL, *text = NULL, *tmp = NULL, *vu_s = NULL;
    const char **paths = NULL;
    uint64_t *ids = NULL;
    int32_t *labels = NULL;
    const char **strs = NULL; /* image paths of a split, then class names */
    char *parts = NULL;
    ca_features_writer *w = NULL;
    uint8_t *bad = NULL;
    char **skipped = NULL;   /* images left out as undecodable (--skip-bad) */
    int nskipped = 0;

    /* Everything is checked before the first image is decoded: classes, splits, templates,
     * vocabulary, model and every prompt's length (file names and stats only, no pixels). The
     * dataset is built here once; with --skip-bad the loop below builds it again without the
     * images that turned out undecodable. */
    const char *src = o.images ? o.images : o.split_file;
    if (!(ds = load_dataset(&o, NULL, 0, &st))) { rc = cli_status(st); goto out; }
    if ((rc = check_dataset(ds, &o, src)) != CLI_OK) goto out;
    rc = CLI_FAIL;
    int C = ca_dataset_num_classes(ds);
    if (o.prompts) {
        /* every class must have prompts */
        if (!(prompts = ca_prompts_load(o.prompts, &st))) { rc = cli_status(st); goto out; }
        for (int c = 0; c < C; c++)
            if (!ca_prompts_for(prompts, ca_dataset_class_name(ds, c), NULL)) {
                rc = cli_error("%s: no prompts for class '%s'", o.prompts, ca_dataset_class_name(ds, c));
                goto out;
            }
    }
    if (!o.no_text) {
        if (!prompts && !(tmpl = ca_templates_load(o.templates, &ntmpl, &st))) { rc = cli_status(st); goto out; }
        if (!(tok = ca_tokenizer_load(o.bpe, &st))) { rc = cli_status(st); goto out; }
    }

    /* model; chunk cache next to the output */
    ca_model_params mp = ca_model_default_params();
    mp.config_path = o.config;
    mp.activation = o.act;
    mp.load_text = !o.no_text;
    mp.threads = o.threads;
    if (!(model = cli_load_model(o.model, &mp, o.bf16, &rc))) goto out;
    ca_model_info info;
    if ((st = ca_model_get_info(model, &info)) != CA_OK) { rc = cli_status(st); goto out; }
    int D = info.embed_dim;
    if (tok && (rc = check_prompts(tok, ds, prompts, (const char *const *)tmpl, ntmpl, info.context_length,
                                   prompts ? o.prompts : o.templates)) != CLI_OK) goto out;
    rc = CLI_FAIL;
    warn_short_classes(ds, src, o.shots, o.nshots);
    size_t plen = strlen(o.output) + 8;
    parts = malloc(plen);
    if (!parts) { rc = cli_error("out of memory"); goto out; }
    snprintf(parts, plen, "%s.parts", o.output);
    if (mkdir(parts, 0777) != 0 && errno != EEXIST) { rc = cli_error("%s: cannot create folder: %s", parts, strerror(errno)); goto out; }

    /* With --skip-bad, undecodable images are left out as if they were not there: the dataset is
     * built again without them and sampled again, so the result equals a run on the folder
     * without those files; the chunk cache makes the second round cheap. Rounds repeat only
     * while newly sampled images turn out bad. */
    int reused = 0, n_val_all = 0, n_test = 0, kmax = 0, maxn = 0;
    double t0 = ca_now();
    const char *root = o.images ? o.images : o.image_root;
    for (int round = 0;; round++) {
        if (round > 0) {   /* the dataset less every image found bad so far, checked as up front */
            ca_dataset_free(ds);
            if (!(ds = load_dataset(&o, skipped, nskipped, &st))) { rc = cli_status(st); goto out; }
            if ((rc = check_dataset(ds, &o, src)) != CLI_OK) goto out;
            rc = CLI_FAIL;
        }
        for (int s = 0; s < 16; s++) { free(tr_idx[s]); tr_idx[s] = NULL; }
        free(val_idx); free(uni); free(dense); free(fu); free(vu); free(fval); free(ftest); free(paths); free(ids); free(labels);
        free(bad);
        val_idx = NULL; uni = dense = NULL; labels = NULL; fu = vu = fval = ftest = NULL; paths = NULL; ids = NULL; bad = NULL;
        nuni = 0;
        C = ca_dataset_num_classes(ds);
        n_val_all = ca_dataset_size(ds, CA_SPLIT_VAL); n_test = ca_dataset_size(ds, CA_SPLIT_TEST);

        /* few-shot subsets; CoOp draws val from the same generator after train (we use the largest K) */
        kmax = 0;
        for (int s = 0; s < o.nshots; s++) if (o.shots[s] > o.shots[kmax]) kmax = s;
        nval = 0;
        for (int s = 0; s < o.nshots; s++) {
            int *vi = NULL, nv = 0;
            st = ca_dataset_fewshot2(ds, o.shots[s], s == kmax ? o.val_shots : 0, (uint64_t)o.seed, &tr_idx[s], &ntr[s], &vi, &nv);
            if (st != CA_OK) { rc = cli_status(st); goto out; }
            if (s == kmax) { val_idx = vi; nval = nv; } else free(vi);
        }
        if (!val_idx) nval = n_val_all;

        /* union of the training images over all K: each is encoded once */
        int n_train_all = ca_dataset_size(ds, CA_SPLIT_TRAIN);
        dense = malloc(sizeof(int) * (size_t)n_train_all + 1);
        uni = malloc(sizeof(int) * (size_t)n_train_all + 1);
        if (!dense || !uni) { rc = cli_error("out of memory"); goto out; }
        for (int i = 0; i < n_train_all; i++) dense[i] = -1;
        for (int s = 0; s < o.nshots; s++)
            for (int j = 0; j < ntr[s]; j++) dense[tr_idx[s][j]] = 0;
        for (int i = 0; i < n_train_all; i++) if (dense[i] == 0) { dense[i] = nuni; uni[nuni++] = i; }

        maxn = nuni > nval ? nuni : nval;
        if (n_test > maxn) maxn = n_test;
        /* zeroed: with --shard, rows of other shards stay zero bytes for merge */
        fu = calloc((size_t)nuni * D + 1, sizeof(float));
        vu = o.views ? calloc((size_t)o.views * nuni * D + 1, sizeof(float)) : NULL;
        fval = calloc((size_t)nval * D + 1, sizeof(float));
        ftest = calloc((size_t)n_test * D + 1, sizeof(float));
        paths = malloc(sizeof(char *) * (size_t)maxn + 1);
        ids = malloc(sizeof(uint64_t) * (size_t)maxn + 1);
        labels = malloc(sizeof(int32_t) * (size_t)maxn + 1);
        bad = calloc((size_t)maxn + 1, 1);
        if (!fu || (o.views && !vu) || !fval || !ftest || !paths || !ids || !labels || !bad) { rc = cli_error("out of memory"); goto out; }

        ca_encode_params ep = ca_encode_default_params();
        ep.seed = (uint64_t)o.seed;
        ep.batch = o.batch; ep.chunk = o.chunk;
        ep.cache_dir = parts;
        ep.cache_salt = model_salt(o.model, o.config) ^ (o.bf16 ? 0x6266313600000000ull : 0); /* BF16 chunks differ */
        ep.stage = "extract";
        ep.progress = cli_progress;
        ep.progress_total = (int64_t)nuni + nval + n_test;
        ep.skip_bad = o.skip_bad; ep.bad_out = bad;
        int r = 0, found = 0;
        int64_t g = 0;   /* chunk counter over the three splits, for --shard */
        reused = 0;
        /* train (augmented views), then val and test (centre crop); each image's id (its
         * augmentation stream and part of its chunk key) comes from its own path */
        for (int sp = 0; sp < 3; sp++) {
            int n = sp == 0 ? nuni : sp == 1 ? nval : n_test;
            for (int j = 0; j < n; j++) {
                paths[j] = sp == 0 ? ca_dataset_path(ds, CA_SPLIT_TRAIN, uni[j])
                         : sp == 1 ? ca_dataset_path(ds, CA_SPLIT_VAL, val_idx ? val_idx[j] : j)
                                   : ca_dataset_path(ds, CA_SPLIT_TEST, j);
                ids[j] = image_id(paths[j], root);
            }
            ep.views = sp == 0 ? o.views : 0;
            ep.progress_base = sp == 0 ? 0 : sp == 1 ? nuni : (int64_t)nuni + nval;
            st = encode_owned(model, paths, ids, n, &ep, sp == 0 ? fu : sp == 1 ? fval : ftest, sp == 0 ? vu : NULL, D, o.shard, o.threads, &g, &r);
            if (st != CA_OK) { rc = cli_status(st); goto out; }
            reused += r;
            for (int j = 0; j < n; j++) {
                if (!bad[j]) continue;
                char **nsk = realloc(skipped, sizeof(char *) * (size_t)(nskipped + 1));
                if (!nsk) { rc = cli_error("out of memory"); goto out; }
                skipped = nsk;
                if (!(skipped[nskipped] = strdup(paths[j]))) { rc = cli_error("out of memory"); goto out; }
                nskipped++;
                found++;
                if (bad[j] == 1) report_bad(paths[j]);   /* 2: another shard's, named there */
            }
        }
        if (!found) break;
    }
    double t_img = ca_now() - t0;

    if (!o.no_text) {
        const char **names = malloc(sizeof(char *) * (size_t)C);
        text = calloc((size_t)C * D, sizeof(float));
        if (!names || !text) { free(names); rc = cli_error("out of memory"); goto out; }
        for (int c = 0; c < C; c++) names[c] = ca_dataset_class_name(ds, c);
        /* a few classes per call, so that the text phase has progress too */
        int step = C / 50 > 1 ? C / 50 : 1;
        for (int c = 0; st == CA_OK && o.shard[0] == 0 && c < C; c += step) {   /* shard 0 does the text */
            cli_progress("text", c, C, NULL);
            int nc = C - c < step ? C - c : step;
            if (prompts) st = ca_text_classifier_prompts(model, tok, names + c, nc, prompts, text + (size_t)c * D);
            else st = ca_text_classifier(model, tok, names + c, nc, (const char *const *)tmpl, ntmpl, text + (size_t)c * D);
        }
        if (st == CA_OK) cli_progress("text", C, C, NULL);
        free(names);
        if (st != CA_OK) { rc = cli_status(st); goto out; }
    }
    /* nothing non-finite leaves extract */
    {
        const struct { const char *what; const float *x; size_t n; } parts_[] = {
            {"training images", fu, (size_t)nuni * D}, {"augmented views", vu, vu ? (size_t)o.views * nuni * D : 0},
            {"val images", fval, (size_t)nval * D}, {"test images", ftest, (size_t)n_test * D},
            {"class prompts (text.weights)", text, text ? (size_t)C * D : 0}};
        for (int k = 0; k < 5; k++)
            for (size_t i = 0; i < parts_[k].n; i++)
                if (!isfinite(parts_[k].x[i])) {
                    rc = cli_error("%s: gave non-finite features (NaN or infinity) for the %s; nothing written", o.model, parts_[k].what);
                    goto out;
                }
    }

    /* assemble the feature set */
    ca_features_writer_params wp = ca_features_writer_default_params();
    wp.num_classes = C; wp.dim = D; wp.f16 = o.f16;
    if (!(w = ca_features_writer_new(&wp, &st))) { rc = cli_status(st); goto out; }
    strs = malloc(sizeof(char *) * (size_t)(C > maxn ? C : maxn) + 1);
    if (!strs) { rc = cli_error("out of memory"); goto out; }
    for (int s = 0; st == CA_OK && s < o.nshots; s++) {
        int n = ntr[s];
        char prefix[48];
        snprintf(prefix, sizeof prefix, "train.%dshot", o.shots[s]);
        free(tmp);
        tmp = malloc(sizeof(float) * (size_t)n * D + 1);
        free(vu_s);
        vu_s = o.views ? malloc(sizeof(float) * (size_t)o.views * n * D + 1) : NULL;
        if (!tmp || (o.views && !vu_s)) { rc = cli_error("out of memory"); goto out; }
        for (int j = 0; j < n; j++) {
            int u = dense[tr_idx[s][j]];
            memcpy(tmp + (size_t)j * D, fu + (size_t)u * D, sizeof(float) * (size_t)D);
            for (int v = 0; v < o.views; v++)
                memcpy(vu_s + ((size_t)v * n + j) * D, vu + ((size_t)v * nuni + u) * D, sizeof(float) * (size_t)D);
            labels[j] = ca_dataset_label(ds, CA_SPLIT_TRAIN, tr_idx[s][j]);
            strs[j] = ca_dataset_path(ds, CA_SPLIT_TRAIN, tr_idx[s][j]);
        }
        st = ca_features_writer_add_split(w, prefix, tmp, labels, n, vu_s, o.views, strs);
    }
    for (int j = 0; st == CA_OK && j < nval; j++) {
        labels[j] = ca_dataset_label(ds, CA_SPLIT_VAL, val_idx ? val_idx[j] : j);
        strs[j] = ca_dataset_path(ds, CA_SPLIT_VAL, val_idx ? val_idx[j] : j);
    }
    if (st == CA_OK) st = ca_features_writer_add_split(w, "val", fval, labels, nval, NULL, 0, strs);
    for (int j = 0; st == CA_OK && j < n_test; j++) {
        labels[j] = ca_dataset_label(ds, CA_SPLIT_TEST, j);
        strs[j] = ca_dataset_path(ds, CA_SPLIT_TEST, j);
    }
    if (st == CA_OK) st = ca_features_writer_add_split(w, "test", ftest, labels, n_test, NULL, 0, strs);
    if (st == CA_OK && text) st = ca_features_writer_set_text(w, text);
    for (int c = 0; c < C; c++) strs[c] = ca_dataset_class_name(ds, c);
    if (st == CA_OK) st = ca_features_writer_set_class_names(w, strs);
    /* metadata: what a reader needs to reproduce the file */
    if (st == CA_OK && prompts) st = ca_features_writer_metadata(w, "prompts", ca_basename(o.prompts));
    if (st == CA_OK && !o.no_text && !prompts) {
        cJSON *tj = cJSON_CreateArray();
        for (int t = 0; tj && t < ntmpl; t++) cJSON_AddItemToArray(tj, cJSON_CreateString(tmpl[t]));
        char *s_tj = tj ? cJSON_PrintUnformatted(tj) : NULL;
        cJSON_Delete(tj);
        st = s_tj ? ca_features_writer_metadata(w, "templates", s_tj) : CA_E_NOMEM;
        free(s_tj);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)o.seed);
    if (st == CA_OK) st = ca_features_writer_metadata(w, "seed", buf);
    if (st == CA_OK) st = ca_features_writer_metadata(w, "model", ca_basename(o.model));
    if (st == CA_OK) st = ca_features_writer_metadata(w, "compute", o.bf16 ? "bf16" : "f32");
    snprintf(buf, sizeof buf, "%d/%d", o.shard[0], o.shard[1]);
    if (st == CA_OK && o.shard[1] > 1) st = ca_features_writer_metadata(w, "shard", buf);   /* merge removes it */
    char sig[512];
    if (st == CA_OK && ca_model_signature(model, sig, sizeof sig) == CA_OK) st = ca_features_writer_metadata(w, "model_signature", sig);
    if (st == CA_OK) st = ca_features_writer_save(w, o.output);
    if (st != CA_OK) { rc = cli_status(st); goto out; }
    if (nskipped)   /* the re-run after removing them finds its chunks here */
        fprintf(stderr, "clipadapt: extract: skipped %d undecodable image%s (named above); kept %s/ so that a re-run "
                        "after removing them reuses the encoded chunks\n", nskipped, nskipped == 1 ? "" : "s", parts);
    else
        remove_parts(parts);

    if (o.verbose || isatty(2)) {
        int64_t nimg = (int64_t)nuni * (o.views ? o.views : 1) + nval + n_test;
        fprintf(stderr, "extract: %d classes, %d train images (%d views each), %d val, %d test; %lld encoder inputs in %.2f s "
                        "(%.1f images/s, %.1f inputs/s); %d chunks reused\n",
                C, nuni, o.views, nval, n_test, (long long)nimg, t_img, t_img > 0 ? (nuni + nval + n_test) / t_img : 0.0,
                t_img > 0 ? nimg / t_img : 0.0, reused);
    }
    rc = CLI_OK;
out:
    ca_features_writer_free(w);
    for (int s = 0; s < 16; s++) free(tr_idx[s]);
    free(val_idx); free(uni); free(dense); free(fu); free(vu); free(fval); free(ftest); free(text); free(tmp); free(vu_s);
    free(paths); free(ids); free(labels); free(strs); free(parts); free(bad);
    for (int i = 0; i < nskipped; i++) free(skipped[i]);
    free(skipped);
    ca_templates_free(tmpl, ntmpl);
    ca_prompts_free(prompts);
    ca_tokenizer_free(tok);
    ca_model_free(model);
    ca_dataset_free(ds);
    return rc;
}
