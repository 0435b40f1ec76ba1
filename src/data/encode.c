/* encode.c — image files to L2-normalised CLIP features, chunk by chunk, with optional
 * augmented views and a chunk cache on disk so that an interrupted extraction resumes where it
 * stopped. A pipeline: the next batch decodes and preprocesses on a low-priority background
 * thread while the model encodes this one (called from one thread), and whatever is left of it
 * is finished on the call's threads (OpenMP). It does not choose which images to encode (see dataset.c / fewshot.c).
 */
#include "core/core.h"
#include "model/model.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

ca_encode_params ca_encode_default_params(void) {
    ca_encode_params p;
    memset(&p, 0, sizeof p);
    p.seed = 1;
    p.chunk = 64;
    p.batch = 64;
    p.stage = "encode";
    return p;
}

/* FNV-1a, 64 bit: chunk keys only need to change whenever any input changes. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}

/* Key of chunk [i0, i1): model, views, seed, and each image's path, id, size and mtime. */
static uint64_t chunk_key(const char *const *paths, const uint64_t *ids, int i0, int i1, const ca_encode_params *p,
                          int R, int D) {
    uint64_t h = 0xcbf29ce484222325ull;
    int64_t hdr[6] = {2 /* format version: 2 = keys from the raw view mean */, p->views, (int64_t)p->seed, R, D, (int64_t)p->cache_salt};
    h = fnv(h, hdr, sizeof hdr);
    for (int i = i0; i < i1; i++) {
        struct stat sb;
        int64_t meta[4] = {(int64_t)(ids ? ids[i] : (uint64_t)i), -1, -1, -1};
        if (stat(paths[i], &sb) == 0) { meta[1] = (int64_t)sb.st_size; meta[2] = (int64_t)sb.st_mtim.tv_sec; meta[3] = sb.st_mtim.tv_nsec; }
        h = fnv(h, paths[i], strlen(paths[i]) + 1);
        h = fnv(h, meta, sizeof meta);
    }
    return h;
}

/* Where the chunk starting at c0 ends (exclusive). Boundaries come from the images themselves: an
 * image ends a chunk when the hash of its path and id falls in a 1-in-`chunk` bucket (at most
 * 4·chunk images per chunk), so removing or adding one image changes only the chunk it is in
 * and the chunk keys of all others stay the same: a re-run reuses them. */
static int chunk_end(const char *const *paths, const uint64_t *ids, int c0, int n, int chunk) {
    int i = c0;
    while (i < n) {
        uint64_t h = fnv(0xcbf29ce484222325ull, paths[i], strlen(paths[i]));
        h = ca_hash64(h ^ (ids ? ids[i] : (uint64_t)i)); /* the id as chunk_key and ca_augment see it */
        i++;
        if (chunk <= 1 || h % (uint64_t)chunk == 0 || i - c0 >= 4 * chunk) break;
    }
    return i;
}

/* Load chunk file into feats/views rows [i0, i1) (and its undecodable-image flags into bad);
 * 1 when it was valid and used. A chunk with undecodable images is used only when skipping them. */
static int load_chunk(const char *file, int m, int V, int n, int i0, int D, float *feats, float *views,
                      int skip_bad, uint8_t *bad) {
    ca_status st;
    ca_st_file *f = ca_st_open(file, &st);
    if (!f) return 0;
    int ok = 0;
    const ca_tensor_info *bt = ca_st_find(f, "bad");
    if (bt && (!skip_bad || bt->dtype != CA_DT_U8 || bt->numel != m)) {
        ca_st_close(f);
        ca_clear_error();
        return 0;
    }
    int64_t ef[2] = {m, D}, ev[3] = {V, m, D};
    float *x = ca_st_load_f32(f, "features", 2, ef, NULL, &st), *xv = NULL;
    if (x && V > 0) xv = ca_st_load_f32(f, "views", 3, ev, NULL, &st);
    if (x && (V == 0 || xv)) {
        ok = 1;
        for (size_t j = 0; j < (size_t)m * D; j++) ok &= isfinite(x[j]) != 0;
        if (ok) memcpy(feats + (size_t)i0 * D, x, sizeof(float) * (size_t)m * D);
        if (ok && bad) {
            if (bt) memcpy(bad + i0, bt->data, (size_t)m);
            else memset(bad + i0, 0, (size_t)m);
        }
        for (int v = 0; ok && views && v < V; v++)
            memcpy(views + ((size_t)v * n + i0) * D, xv + (size_t)v * m * D, sizeof(float) * (size_t)m * D);
    }
    free(x); free(xv);
    ca_st_close(f);
    ca_clear_error();
    return ok;
}

static ca_status save_chunk(const char *file, int m, int V, int n, int i0, int D, const float *feats, const float *views,
                            const uint8_t *bad) {
    ca_st_writer *w = ca_st_writer_new();
    if (!w) return ca_fail(CA_E_NOMEM, "out of memory");
    ca_status st = ca_st_writer_add(w, "features", CA_DT_F32, 2, (int64_t[]){m, D}, feats + (size_t)i0 * D);
    int any = 0;
    for (int j = 0; bad && j < m; j++) any |= bad[i0 + j];
    if (st == CA_OK && any) st = ca_st_writer_add(w, "bad", CA_DT_U8, 1, (int64_t[]){m}, bad + i0);
    float *xv = NULL;
    if (st == CA_OK && V > 0) {
        xv = ca_malloc2((size_t)V * m, (size_t)D * sizeof(float));
        if (!xv) st = CA_E_NOMEM;
        for (int v = 0; xv && v < V; v++)
            memcpy(xv + (size_t)v * m * D, views + ((size_t)v * n + i0) * D, sizeof(float) * (size_t)m * D);
        if (st == CA_OK) st = ca_st_writer_add(w, "views", CA_DT_F32, 3, (int64_t[]){V, m, D}, xv);
    }
    if (st == CA_OK) st = ca_st_writer_save(w, file);
    free(xv);
    ca_st_writer_free(w);
    return st;
}

/* One batch being decoded and preprocessed into its input buffer (m·max(V,1), 3, R, R): the decode
 * side of the pipeline. Images are taken one at a time from `next`: by the background thread
 * while the encoder runs the previous batch, then by all of the call's threads once the encoder
 * needs this one, so decoding never waits and never needs more than the call's budget for long.
 * Without skip_bad the first failure in input order is kept (the same message whichever thread
 * met it); with it a bad image gets zero inputs and its flag. */
typedef struct {
    const char *const *paths;
    const uint64_t *ids;
    uint64_t seed;
    int i0, m, V, R;
    float *in;
    uint8_t *bad;
    int next;                 /* next image of the batch to take (atomic) */
    pthread_mutex_t mu;       /* guards the first failure */
    int first_bad;            /* batch index of the first failure in input order, m when none */
    ca_status st;
    char msg[1024];
    pthread_t th;
    int running;              /* the background thread was started and not yet joined */
} prep_batch;

static void prep_image(prep_batch *b, int j) {
    size_t img_sz = (size_t)3 * b->R * b->R;
    int per = b->V > 0 ? b->V : 1, i = b->i0 + j;
    ca_image_params ip = ca_image_default_params();
    ca_status st;
    ca_image *img = ca_image_load(b->paths[i], &ip, &st);
    if (img) {
        for (int v = 0; st == CA_OK && v < per; v++) {
            float *dst = b->in + ((size_t)j * per + v) * img_sz;
            st = b->V > 0 ? ca_augment(img, b->R, b->seed, b->ids ? b->ids[i] : (uint64_t)i, (uint64_t)v, dst)
                          : ca_preprocess(img, b->R, dst);
        }
        ca_image_free(img);
    }
    if (b->bad) b->bad[i] = st != CA_OK;
    if (st == CA_OK) return;
    if (b->bad) { /* skipped: zero inputs keep the batch shape; its features are zeroed */
        memset(b->in + (size_t)j * per * img_sz, 0, sizeof(float) * per * img_sz);
        return;
    }
    const char *d = ca_last_error();   /* every error names the image file */
    pthread_mutex_lock(&b->mu);
    if (j < b->first_bad) {
        b->first_bad = j;
        b->st = st;
        if (d && strstr(d, b->paths[i])) snprintf(b->msg, sizeof b->msg, "%s", d);
        else snprintf(b->msg, sizeof b->msg, "%s: %s", b->paths[i], d && *d ? d : ca_strerror(st));
    }
    pthread_mutex_unlock(&b->mu);
}

/* Take images until none is left (after a failure, only those before it still matter). */
static void prep_drain(prep_batch *b) {
    for (;;) {
        int j = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED);
        if (j >= b->m) return;
        pthread_mutex_lock(&b->mu);
        int skip = j > b->first_bad;
        pthread_mutex_unlock(&b->mu);
        if (!skip) prep_image(b, j);
    }
}

/* The background decoder: one thread at the lowest priority, so that while the encoder keeps
 * every core of the budget busy it takes only the idle moments (barriers, the caller's writes,
 * I/O waits) instead of slowing the encoder; what it has not done by the time the batch is
 * needed, prep_finish does on the budget's threads. */
static void *prep_thread(void *arg) {
#ifdef __linux__
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19); /* Linux: nice is per thread */
#endif
    prep_drain(arg);
    return NULL;
}

static void prep_start(prep_batch *b, const char *const *paths, const uint64_t *ids, uint64_t seed, int i0, int m,
                       int V, int R, float *in, uint8_t *bad, int background) {
    b->paths = paths; b->ids = ids; b->seed = seed;
    b->i0 = i0; b->m = m; b->V = V; b->R = R; b->in = in; b->bad = bad;
    b->next = 0; b->first_bad = m; b->st = CA_OK; b->msg[0] = 0;
    b->running = background && pthread_create(&b->th, NULL, prep_thread, b) == 0;
}

/* Finish the batch on `threads` threads (the background thread helps until nothing is left),
 * then raise its first failure on the caller's thread. */
static ca_status prep_finish(prep_batch *b, int threads) {
#pragma omp parallel num_threads(threads)
    prep_drain(b);
    if (b->running) pthread_join(b->th, NULL);
    b->running = 0;
    return b->first_bad < b->m ? ca_fail(b->st, "%s", b->msg) : CA_OK;
}

/* Stop the batch where it is (an error elsewhere): its buffer is about to be freed. */
static void prep_abort(prep_batch *b) {
    __atomic_store_n(&b->next, b->m, __ATOMIC_RELAXED);
    if (b->running) pthread_join(b->th, NULL);
    b->running = 0;
}

ca_status ca_encode_images(const ca_model *m, const char *const *paths, const uint64_t *ids, int n,
                           const ca_encode_params *pp, float *feats, float *views_out, int *chunks_reused) {
    CA_ENTER();
    if (chunks_reused) *chunks_reused = 0;
    if (!m) return ca_fail(CA_E_ARG, "ca_encode_images: bad argument");
    ca_status st;
    ca_session *s = ca_session_new(m, NULL, &st);
    if (!s) return st;
    st = ca_session_encode_image_files(s, paths, ids, n, pp, feats, views_out, chunks_reused);
    ca_session_free(s);
    return st;
}

ca_status ca_session_encode_image_files(ca_session *s, const char *const *paths, const uint64_t *ids, int n,
                                        const ca_encode_params *pp, float *feats, float *views_out,
                                        int *chunks_reused) {
    CA_ENTER();
    const ca_model *m = s ? ca_session_model(s) : NULL;
    ca_encode_params def = ca_encode_default_params();
    const ca_encode_params *p = pp ? pp : &def;
    if (chunks_reused) *chunks_reused = 0;
    if (!m || n < 0 || (n > 0 && (!paths || !feats)) || p->views < 0 || p->views > 1024 || p->chunk < 1 || p->batch < 1)
        return ca_fail(CA_E_ARG, "ca_encode_images: bad argument");
    if (n == 0) return CA_OK;
    ca_model_info info;
    ca_status st = ca_model_get_info(m, &info);
    if (st != CA_OK) return st;
    if (!info.has_vision) return ca_fail(CA_E_ARG, "encode images: the model has no vision tower");
    int R = info.image_size, D = info.embed_dim, V = p->views, per = V > 0 ? V : 1;
    const char *stage = p->stage ? p->stage : "encode";
    int64_t total = p->progress_total > 0 ? p->progress_total : n;
    /* per model call: about `batch` encoder inputs, and always all views of at least one image */
    int bimg = p->batch / per > 0 ? p->batch / per : 1;
    size_t img_sz = (size_t)3 * R * R;
    float *in = ca_malloc2((size_t)bimg * per, img_sz * sizeof(float));
    float *out = ca_malloc2((size_t)bimg * per, (size_t)D * sizeof(float));
    float *vtmp = NULL;
    if (V > 0 && !views_out) vtmp = ca_malloc2((size_t)V * n, (size_t)D * sizeof(float));
    float *views = views_out ? views_out : vtmp;
    char *file = NULL;
    uint8_t *badtmp = NULL;
    float *in2 = NULL;
    int *todo = NULL;
    prep_batch pb[2];
    int pb_live[2] = {0, 0};
    for (int i = 0; i < 2; i++) pthread_mutex_init(&pb[i].mu, NULL);
    if (!in || !out || (V > 0 && !views)) { st = CA_E_NOMEM; goto done; }
    if (p->cache_dir && !(file = malloc(strlen(p->cache_dir) + 64))) { st = ca_fail(CA_E_NOMEM, "out of memory"); goto done; }
    if (p->progress && p->progress(stage, p->progress_base, total, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }

    uint8_t *bad = p->skip_bad ? (p->bad_out ? p->bad_out : (badtmp = calloc((size_t)n, 1))) : NULL;
    if (p->skip_bad && !bad) { st = ca_fail(CA_E_NOMEM, "out of memory"); goto done; }
    if (p->bad_out && !p->skip_bad) memset(p->bad_out, 0, (size_t)n);
    /* The chunks cache_dir holds are taken first; the others (todo: c0, c1 pairs) are encoded
     * after, in order, batch by batch, the next batch decoding while this one encodes. */
    if (!(todo = malloc(sizeof(int) * 2 * (size_t)n))) { st = ca_fail(CA_E_NOMEM, "out of memory"); goto done; }
    int ntodo = 0;
    int64_t ndone = 0;
    for (int c0 = 0, c1; c0 < n; c0 = c1) {
        c1 = chunk_end(paths, ids, c0, n, p->chunk);
        if (file) {
            sprintf(file, "%s/chunk-%016llx.safetensors", p->cache_dir,
                    (unsigned long long)chunk_key(paths, ids, c0, c1, p, R, D));
            if (load_chunk(file, c1 - c0, V, n, c0, D, feats, views, p->skip_bad, bad)) {
                if (chunks_reused) (*chunks_reused)++;
                ndone += c1 - c0;
                if (p->progress && p->progress(stage, p->progress_base + ndone, total, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }
                continue;
            }
        }
        todo[2 * ntodo] = c0; todo[2 * ntodo + 1] = c1; ntodo++;
    }
    /* Two input buffers when a background decoder runs (a budget of one thread has none: it
     * decodes, then encodes, in one buffer as before). */
    int background = s->threads >= 2 && ntodo > 0 && (todo[2 * ntodo - 1] - todo[0] > bimg || ntodo > 1);
    if (background && !(in2 = ca_malloc2((size_t)bimg * per, img_sz * sizeof(float)))) { st = CA_E_NOMEM; goto done; }
    float *inb[2] = {in, background ? in2 : in};
    /* batch cursor: chunk tc of todo, from b0, bm images */
    int tc = 0, b0 = ntodo ? todo[0] : 0, k = 0;
    int bm = ntodo ? (todo[1] - b0 < bimg ? todo[1] - b0 : bimg) : 0;
    if (ntodo) { prep_start(&pb[0], paths, ids, p->seed, b0, bm, V, R, inb[0], bad, 0); pb_live[0] = 1; }
    while (tc < ntodo) {
        int saved = ca_budget_enter(s->threads); /* decoding runs on the session's budget too */
        st = prep_finish(&pb[k & 1], s->threads);
        ca_budget_exit(saved);
        if (st != CA_OK) goto done;
        /* the next batch starts decoding in the background before this one is encoded */
        int ntc = tc, nb0 = b0 + bm, c1 = todo[2 * tc + 1];
        if (nb0 == c1 && ++ntc < ntodo) nb0 = todo[2 * ntc];
        int nbm = ntc < ntodo ? (todo[2 * ntc + 1] - nb0 < bimg ? todo[2 * ntc + 1] - nb0 : bimg) : 0;
        if (ntc < ntodo) { prep_start(&pb[(k + 1) & 1], paths, ids, p->seed, nb0, nbm, V, R, inb[(k + 1) & 1], bad, background); pb_live[(k + 1) & 1] = 1; }
        if ((st = ca_session_encode_images(s, inb[k & 1], bm * per, out)) != CA_OK) goto done;
        for (int j = 0; j < bm; j++) {
            float *f = feats + (size_t)(b0 + j) * D;
            if (bad && bad[b0 + j]) { /* an undecodable image: zero feature and views, flagged */
                memset(f, 0, sizeof(float) * (size_t)D);
                for (int v = 0; v < V; v++) memset(views + ((size_t)v * n + b0 + j) * D, 0, sizeof(float) * (size_t)D);
                continue;
            }
            if (V == 0) {
                memcpy(f, out + (size_t)j * D, sizeof(float) * (size_t)D);
                ca_l2_normalize(f, D);
                continue;
            }
            /* The cache key is Tip-Adapter's build_cache_model: the mean of the *raw* view
             * features, then L2-normalised. Each stored view is normalised on its own (it
             * is a training feature). */
            for (int d = 0; d < D; d++) f[d] = 0;
            for (int v = 0; v < V; v++) {
                float *o = out + ((size_t)j * V + v) * D;
                for (int d = 0; d < D; d++) f[d] += o[d];
                ca_l2_normalize(o, D);
                memcpy(views + ((size_t)v * n + b0 + j) * D, o, sizeof(float) * (size_t)D);
            }
            ca_l2_normalize(f, D);
        }
        ndone += bm;
        /* with no cache_dir the batches run in input order: ndone is also the position */
        if (p->progress && p->progress(stage, p->progress_base + ndone, total, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }
        if (file && b0 + bm == c1) {   /* the chunk is complete */
            int c0 = todo[2 * tc];
            sprintf(file, "%s/chunk-%016llx.safetensors", p->cache_dir,
                    (unsigned long long)chunk_key(paths, ids, c0, c1, p, R, D));
            if ((st = save_chunk(file, c1 - c0, V, n, c0, D, feats, views, bad)) != CA_OK) goto done;
        }
        tc = ntc; b0 = nb0; bm = nbm; k++;
    }
done:
    for (int i = 0; i < 2; i++) if (pb_live[i]) prep_abort(&pb[i]);   /* before their buffers go */
    for (int i = 0; i < 2; i++) pthread_mutex_destroy(&pb[i].mu);
    free(in); free(in2); free(out); free(vtmp); free(file); free(badtmp); free(todo);
    if (st == CA_E_NOMEM && !*ca_last_error()) ca_fail(CA_E_NOMEM, "out of memory");
    return st;
}
