/* encode.c — image files to L2-normalised CLIP features, chunk by chunk, with optional
 * augmented views and a chunk cache on disk so that an interrupted extraction resumes where it
 * stopped. Decoding and preprocessing run in parallel (OpenMP); the model is called from one
 * thread. It does not choose which images to encode (see dataset.c / fewshot.c).
 */
#include "core/core.h"
#include "model/model.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

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

/* Decode images [i0, i0+m) and fill inputs (m·max(V,1), 3, R, R), in parallel on the call's
 * budget. Each worker's failure is caught in one slot and raised on the caller's thread. */
static ca_status prepare(const char *const *paths, const uint64_t *ids, int i0, int m, int V, uint64_t seed, int R,
                         float *in, uint8_t *bad) {
    size_t img_sz = (size_t)3 * R * R;
    int per = V > 0 ? V : 1;
    ca_err_slot es = CA_ERR_SLOT_INIT;
    ca_image_params ip = ca_image_default_params();
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(dynamic, 1)
    for (int j = 0; j < m; j++) {
        if (ca_err_failed(&es)) continue;
        int i = i0 + j;
        ca_status st;
        ca_image *img = ca_image_load(paths[i], &ip, &st);
        if (img) {
            for (int v = 0; st == CA_OK && v < per; v++) {
                float *dst = in + ((size_t)j * per + v) * img_sz;
                st = V > 0 ? ca_augment(img, R, seed, ids ? ids[i] : (uint64_t)i, (uint64_t)v, dst) : ca_preprocess(img, R, dst);
            }
            ca_image_free(img);
        }
        if (bad) bad[i] = st != CA_OK;
        if (st != CA_OK && bad) { /* skipped: zero inputs keep the batch shape; its features are zeroed */
            memset(in + (size_t)j * per * img_sz, 0, sizeof(float) * per * img_sz);
        } else if (st != CA_OK) {
            /* every error names the image file */
            const char *d = ca_last_error();
            if (!(d && strstr(d, paths[i]))) ca_fail(st, "%s: %s", paths[i], d && *d ? d : ca_strerror(st));
            ca_err_catch(&es, st);
        }
    }
    return ca_err_raise(&es);
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
    if (!in || !out || (V > 0 && !views)) { st = CA_E_NOMEM; goto done; }
    if (p->cache_dir && !(file = malloc(strlen(p->cache_dir) + 64))) { st = ca_fail(CA_E_NOMEM, "out of memory"); goto done; }
    if (p->progress && p->progress(stage, p->progress_base, total, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }

    uint8_t *bad = p->skip_bad ? (p->bad_out ? p->bad_out : (badtmp = calloc((size_t)n, 1))) : NULL;
    if (p->skip_bad && !bad) { st = ca_fail(CA_E_NOMEM, "out of memory"); goto done; }
    if (p->bad_out && !p->skip_bad) memset(p->bad_out, 0, (size_t)n);
    for (int c0 = 0, c1; c0 < n; c0 = c1) {
        c1 = chunk_end(paths, ids, c0, n, p->chunk);
        int cm = c1 - c0;
        if (file) {
            sprintf(file, "%s/chunk-%016llx.safetensors", p->cache_dir,
                    (unsigned long long)chunk_key(paths, ids, c0, c1, p, R, D));
            if (load_chunk(file, cm, V, n, c0, D, feats, views, p->skip_bad, bad)) {
                if (chunks_reused) (*chunks_reused)++;
                if (p->progress && p->progress(stage, p->progress_base + c1, total, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }
                continue;
            }
        }
        for (int b0 = c0; b0 < c1; b0 += bimg) {
            int bm = b0 + bimg < c1 ? bimg : c1 - b0;
            int saved = ca_budget_enter(s->threads); /* decoding runs on the session's budget too */
            st = prepare(paths, ids, b0, bm, V, p->seed, R, in, bad);
            ca_budget_exit(saved);
            if (st != CA_OK) goto done;
            if ((st = ca_session_encode_images(s, in, bm * per, out)) != CA_OK) goto done;
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
            if (p->progress && p->progress(stage, p->progress_base + b0 + bm, total, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }
        }
        if (file && (st = save_chunk(file, cm, V, n, c0, D, feats, views, bad)) != CA_OK) goto done;
    }
done:
    free(in); free(out); free(vtmp); free(file); free(badtmp);
    if (st == CA_E_NOMEM && !*ca_last_error()) ca_fail(CA_E_NOMEM, "out of memory");
    return st;
}
