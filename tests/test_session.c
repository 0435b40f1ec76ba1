/* test_session.c — one immutable model, many sessions: 4 threads, each with its own session,
 * encoding images and text, building a text classifier and classifying images concurrently on
 * one shared model, for every architecture (ViT, ResNet, HF-named ViT) and both compute paths:
 * results bit-identical to a sequential run, the model's bytes unchanged. Also: thread budgets
 * per session, cancellation, numbered status codes, the last-error contract, and an error
 * raised inside OpenMP workers carried back to the caller.
 * Run under ASan/UBSan (make test SAN=1) and ThreadSanitizer (make test TSAN=1). */
#include "core/core.h"
#include "harness.h"
#include "model/model.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 4
#define BPE "clip/bpe_simple_vocab_16e6.txt.gz"

static const char *const CLASSES[] = {"cat", "dog", "car"};
static const char *const TEMPLATES[] = {"a photo of a {}.", "a drawing of a {}."};

/* Everything one worker computes: image and text features, a text classifier, probabilities
 * of classifying one decoded image per input image. */
typedef struct {
    const ca_model *m;
    const ca_classifier *clf;
    const char *bpe;
    const float *images;
    const int64_t *tokens;
    int ni, nt, E, R, threads;
    float *fi, *ft, *tw, *probs;
    ca_status st;
    char err[256];
} job;

static void *run_job(void *arg) {
    job *j = arg;
    ca_status st;
    ca_session *s = ca_session_new(j->m, &(ca_session_params){.threads = j->threads}, &st);
    ca_tokenizer *tok = ca_tokenizer_load(j->bpe, &st); /* a tokenizer is one thread's (BPE cache) */
    if (!s || !tok) goto out;
    if ((st = ca_session_encode_images(s, j->images, j->ni, j->fi))) goto out;
    if ((st = ca_session_encode_text(s, j->tokens, j->nt, j->ft))) goto out;
    if ((st = ca_session_text_classifier(s, tok, CLASSES, 3, TEMPLATES, 2, j->tw))) goto out;
    /* classify each input image as a decoded picture: rescale its pixels to bytes */
    for (int i = 0; i < j->ni && st == CA_OK; i++) {
        int R = j->R;
        uint8_t *px = malloc((size_t)R * R * 3);
        if (!px) { st = CA_E_NOMEM; break; }
        for (int y = 0; y < R; y++)
            for (int x = 0; x < R; x++)
                for (int c = 0; c < 3; c++) {
                    float v = j->images[(((size_t)i * 3 + c) * R + y) * R + x];
                    int b = (int)(128 + 40 * v);
                    px[((size_t)y * R + x) * 3 + c] = (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
                }
        ca_image *img = ca_image_from_pixels(px, R, R, 3, (size_t)R * 3, &st);
        free(px);
        if (img) st = ca_session_classify_image(s, j->clf, img, j->probs + (size_t)i * 3);
        ca_image_free(img);
    }
out:
    if (st) snprintf(j->err, sizeof j->err, "%s", ca_last_error());
    j->st = st;
    ca_tokenizer_free(tok);
    ca_session_free(s);
    return NULL;
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void alloc_job(job *j) {
    j->fi = malloc(sizeof(float) * (size_t)j->ni * j->E);
    j->ft = malloc(sizeof(float) * (size_t)j->nt * j->E);
    j->tw = malloc(sizeof(float) * 3 * (size_t)j->E);
    j->probs = malloc(sizeof(float) * 3 * (size_t)j->ni);
}

static void free_job(job *j) { free(j->fi); free(j->ft); free(j->tw); free(j->probs); }

static void check_model(const char *model_rel, int compute) {
    ca_model_params p = ca_model_default_params();
    p.compute = compute;
    ca_status st;
    ca_model *m = ca_model_load(th_shared(model_rel), &p, &st);
    ca_st_file *g = ca_st_open(th_shared(strstr(model_rel, "rn-") ? "testdata/models/rn-tiny-golden.safetensors"
                                                                 : "testdata/models/vit-tiny-golden.safetensors"), &st);
    CHECK_MSG(m && g, "%s: %s", model_rel, ca_last_error());
    if (!m || !g) { ca_model_free(m); ca_st_close(g); return; }
    ca_model_info in;
    ca_model_get_info(m, &in);
    int64_t ish[4];
    float *images = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
    const ca_tensor_info *ti = ca_st_find(g, "input.tokens");
    int64_t *tokens = malloc(sizeof(int64_t) * (size_t)ti->numel);
    ca_tensor_to_i64(ti, tokens, ti->numel);
    /* a zero-shot classifier over 3 classes: any fixed weights of the right width do */
    float *w = malloc(sizeof(float) * 3 * (size_t)in.embed_dim);
    for (int i = 0; i < 3 * in.embed_dim; i++) w[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int c = 0; c < 3; c++) ca_l2_normalize(w + (size_t)c * in.embed_dim, in.embed_dim);
    ca_fit_data fd = {.num_classes = 3, .dim = in.embed_dim, .text_w = w};
    ca_classifier *clf = ca_fit("zero-shot", &fd, NULL, &st);
    CHECK(clf != NULL);

    job base = {.m = m, .clf = clf, .bpe = th_shared(BPE), .images = images, .tokens = tokens, .ni = (int)ish[0],
                .nt = (int)ti->shape[0], .E = in.embed_dim, .R = in.image_size};
    job seq = base, par[NTHREADS];
    seq.threads = 1;
    alloc_job(&seq);
    uint64_t h0 = ca_model_weights_hash(m);
    run_job(&seq); /* the sequential run, on this thread */
    CHECK_MSG(seq.st == CA_OK, "%s sequential: %s", model_rel, seq.err);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        par[t] = base;
        par[t].threads = 1 + t % 2; /* different budgets side by side */
        alloc_job(&par[t]);
        CHECK(pthread_create(&th[t], NULL, run_job, &par[t]) == 0);
    }
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < NTHREADS; t++) {
        CHECK_MSG(par[t].st == CA_OK, "%s thread %d: %s", model_rel, t, par[t].err);
        if (par[t].st || seq.st) continue;
        CHECK_MSG(same(par[t].fi, seq.fi, (size_t)seq.ni * seq.E), "%s thread %d: image features differ", model_rel, t);
        CHECK_MSG(same(par[t].ft, seq.ft, (size_t)seq.nt * seq.E), "%s thread %d: text features differ", model_rel, t);
        CHECK_MSG(same(par[t].tw, seq.tw, 3 * (size_t)seq.E), "%s thread %d: text classifier differs", model_rel, t);
        CHECK_MSG(same(par[t].probs, seq.probs, 3 * (size_t)seq.ni), "%s thread %d: probabilities differ", model_rel, t);
    }
    CHECK_MSG(ca_model_weights_hash(m) == h0, "%s: the model was written", model_rel);
    /* and the same features as the one-call convenience */
    float *fi = malloc(sizeof(float) * (size_t)seq.ni * seq.E);
    CHECK(ca_model_encode_images(m, images, seq.ni, fi) == CA_OK && same(fi, seq.fi, (size_t)seq.ni * seq.E));
    free(fi);
    free_job(&seq);
    for (int t = 0; t < NTHREADS; t++) free_job(&par[t]);
    ca_classifier_free(clf);
    free(w); free(images); free(tokens);
    ca_st_close(g);
    ca_model_free(m);
}

static void test_concurrent_vit(void) {
    check_model("testdata/models/vit-tiny.safetensors", CA_COMPUTE_FAST);
    check_model("testdata/models/vit-tiny.safetensors", CA_COMPUTE_REFERENCE);
}
static void test_concurrent_rn(void) {
    check_model("testdata/models/rn-tiny.safetensors", CA_COMPUTE_FAST);
    check_model("testdata/models/rn-tiny.safetensors", CA_COMPUTE_REFERENCE);
}
static void test_concurrent_hf(void) {
    check_model("testdata/models/vit-tiny-hf.safetensors", CA_COMPUTE_FAST);
    check_model("testdata/models/vit-tiny-hf.safetensors", CA_COMPUTE_REFERENCE);
}

/* ---- thread budget ---- */

static int process_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    if (f) fclose(f);
    return n;
}

typedef struct { const ca_model *m; const float *img; int n, threads, before, after; ca_status st; } budget_job;

static void *run_budget(void *arg) {
    budget_job *b = arg;
    ca_status st;
    ca_session *s = ca_session_new(b->m, &(ca_session_params){.threads = b->threads}, &st);
    float *out = malloc(sizeof(float) * 64 * (size_t)b->n);
    b->before = process_threads();
    b->st = s && out ? ca_session_encode_images(s, b->img, b->n, out) : CA_E_NOMEM;
    b->after = process_threads(); /* an OpenMP team this thread started would still be alive */
    free(out);
    ca_session_free(s);
    return NULL;
}

/* A session's budget is what its kernels get: a 1-thread session on a fresh thread starts no
 * OpenMP team at all, whatever the process default; and nothing process-wide moves. */
static void test_budget(void) {
    ca_status st;
    ca_model *m = ca_model_load(th_shared("testdata/models/vit-tiny.safetensors"), NULL, &st);
    ca_st_file *g = ca_st_open(th_shared("testdata/models/vit-tiny-golden.safetensors"), &st);
    CHECK(m && g);
    if (!m || !g) { ca_model_free(m); ca_st_close(g); return; }
    int64_t ish[4];
    float *img = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
    int before_max = ca_default_threads();
    budget_job b = {m, img, (int)ish[0], 1, 0, 0, CA_OK};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_budget, &b) == 0);
    pthread_join(th, NULL);
    CHECK(b.st == CA_OK);
    CHECK_MSG(b.after == b.before, "a 1-thread session started threads: %d -> %d", b.before, b.after);
    CHECK_EQ_INT(ca_default_threads(), before_max); /* this thread's OpenMP setting untouched */
    /* training sets OpenBLAS's count for its loop and restores it exactly */
    extern int openblas_get_num_threads(void);
    int blas = openblas_get_num_threads();
    ca_featureset *fs = ca_features_load(th_shared("features/stanford_cars.safetensors"), &st);
    if (fs) {
        ca_fit_params fp = ca_fit_default_params();
        fp.threads = 1;
        fp.epochs = 1;
        ca_classifier *c = ca_fit_features("clip-adapter", fs, 1, &fp, &st);
        CHECK(c != NULL);
        ca_classifier_free(c);
        CHECK_EQ_INT(openblas_get_num_threads(), blas);
        CHECK_EQ_INT(ca_default_threads(), before_max);
    }
    ca_features_free(fs);
    free(img);
    ca_st_close(g);
    ca_model_free(m);
}

/* ---- cancellation ---- */

static void cancel_on_tap(const char *name, int64_t first, const float *data, int ndim, const int64_t *shape,
                          void *user) {
    (void)name; (void)first; (void)data; (void)ndim; (void)shape;
    ca_session_cancel(user); /* as another thread would, mid-call */
}

static int stop_now(const char *stage, int64_t done, int64_t total, void *user) {
    (void)stage; (void)done; (void)total;
    return ++*(int *)user >= 1;
}

static void test_cancel(void) {
    ca_status st;
    ca_model *m = ca_model_load(th_shared("testdata/models/vit-tiny.safetensors"), NULL, &st);
    ca_st_file *g = ca_st_open(th_shared("testdata/models/vit-tiny-golden.safetensors"), &st);
    CHECK(m && g);
    if (!m || !g) { ca_model_free(m); ca_st_close(g); return; }
    int64_t ish[4];
    float *img = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
    int n = (int)ish[0];
    float *out = malloc(sizeof(float) * 64 * (size_t)n);
    ca_session *s = ca_session_new(m, NULL, &st);
    CHECK(s != NULL);
    ca_session_cancel(s);
    CHECK_EQ_INT(ca_session_encode_images(s, img, n, out), CA_E_CANCELLED);
    CHECK(strstr(ca_last_error(), "cancel") != NULL);
    ca_session_resume(s);
    CHECK_EQ_INT(ca_session_encode_images(s, img, n, out), CA_OK);
    CHECK_STR(ca_last_error(), "");
    /* cancelled during a call: the next chunk boundary stops it */
    ca_session_set_max_chunk(s, 1);
    ca_session_set_tap(s, cancel_on_tap, s);
    CHECK_EQ_INT(ca_session_encode_images(s, img, n, out), CA_E_CANCELLED);
    ca_session_free(s);
    /* a progress callback asking to stop gives CA_E_CANCELLED, not CA_E_ARG */
    ca_featureset *fs = ca_features_load(th_shared("features/stanford_cars.safetensors"), &st);
    if (fs) {
        int calls = 0;
        ca_fit_params fp = ca_fit_default_params();
        fp.progress = stop_now;
        fp.progress_user = &calls;
        fp.epochs = 3;
        ca_classifier *c = ca_fit_features("clip-adapter", fs, 1, &fp, &st);
        CHECK(c == NULL);
        CHECK_EQ_INT(st, CA_E_CANCELLED);
        ca_classifier_free(c);
        calls = 0;
        c = ca_fit_features("tip-adapter-f", fs, 1, &fp, &st);
        CHECK(c == NULL && st == CA_E_CANCELLED);
        ca_classifier_free(c);
    }
    ca_features_free(fs);
    free(out); free(img);
    ca_st_close(g);
    ca_model_free(m);
}

/* ---- status codes and the last error ---- */

static void test_status_numbers(void) {
    CHECK_EQ_INT(CA_OK, 0); CHECK_EQ_INT(CA_E_IO, 1); CHECK_EQ_INT(CA_E_FORMAT, 2); CHECK_EQ_INT(CA_E_SHAPE, 3);
    CHECK_EQ_INT(CA_E_NOMEM, 4); CHECK_EQ_INT(CA_E_ARG, 5); CHECK_EQ_INT(CA_E_NOTFOUND, 6);
    CHECK_EQ_INT(CA_E_UNSUPPORTED, 7); CHECK_EQ_INT(CA_E_RANGE, 8); CHECK_EQ_INT(CA_E_INTERNAL, 9);
    CHECK_EQ_INT(CA_E_CANCELLED, 10); CHECK_EQ_INT(CA_E_NONFINITE, 11); CHECK_EQ_INT(CA_E_UNSAFE, 12);
    for (int a = 0; a <= 12; a++) {
        CHECK(strcmp(ca_strerror((ca_status)a), "unknown status") != 0);
        for (int b = 0; b < a; b++) CHECK(strcmp(ca_strerror((ca_status)a), ca_strerror((ca_status)b)) != 0);
    }
}

static void test_last_error(void) {
    ca_status st;
    CHECK(ca_model_load("/nonexistent/model.safetensors", NULL, &st) == NULL);
    CHECK(*ca_last_error() != 0);
    ca_model *m = ca_model_load(th_shared("testdata/models/vit-tiny.safetensors"), NULL, &st);
    CHECK(m != NULL);
    CHECK_STR(ca_last_error(), ""); /* cleared by the successful call */
    CHECK(ca_model_encode_text(m, (int64_t[77]){-1}, 1, (float[64]){0}) == CA_E_RANGE);
    CHECK(strstr(ca_last_error(), "vocabulary") != NULL);
    ca_model_info in;
    CHECK(ca_model_get_info(m, &in) == CA_OK);
    CHECK_STR(ca_last_error(), "");
    ca_model_free(m);
}

/* An error raised inside the OpenMP workers that decode images comes back whole: its status and
 * the message naming the bad file, whichever worker hit it. */
static void test_worker_error(void) {
    ca_status st;
    ca_model *m = ca_model_load(th_shared("testdata/models/vit-tiny.safetensors"), NULL, &st);
    CHECK(m != NULL);
    if (!m) return;
    char bad[600], good[600];
    snprintf(bad, sizeof bad, "%s/not-an-image.png", th_tmpdir());
    FILE *f = fopen(bad, "wb");
    if (f) { fputs("this is not a PNG", f); fclose(f); }
    snprintf(good, sizeof good, "%s/good.png", th_tmpdir());
    uint8_t px[32 * 32 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7);
    ca_image *img = ca_image_from_pixels(px, 32, 32, 3, 96, &st);
    CHECK(img != NULL);
    ca_image_free(img);
    /* nine unreadable files among none good: every worker fails; the first caught is raised */
    const char *paths[9];
    for (int i = 0; i < 9; i++) paths[i] = bad;
    float feats[9 * 64];
    ca_encode_params ep = ca_encode_default_params();
    ep.batch = 9;
    st = ca_encode_images(m, paths, NULL, 9, &ep, feats, NULL, NULL);
    CHECK_EQ_INT(st, CA_E_FORMAT);
    CHECK_MSG(strstr(ca_last_error(), "not-an-image.png") != NULL, "message: %s", ca_last_error());
    ca_model_free(m);
}

int main(void) {
    RUN(test_status_numbers);
    RUN(test_last_error);
    RUN(test_worker_error);
    RUN(test_cancel);
    RUN(test_budget);
    RUN(test_concurrent_vit);
    RUN(test_concurrent_rn);
    RUN(test_concurrent_hf);
    TEST_END();
}
