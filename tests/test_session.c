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

#include <omp.h>
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

/* Loads model_rel (p NULL: the defaults) and opens its golden file (rn-tiny's for "rn-" models,
 * vit-tiny's otherwise). On failure the check fails, both are freed and it returns 0. */
static int open_fixture(const char *model_rel, const ca_model_params *p, ca_model **m, ca_st_file **g) {
    ca_status st;
    *m = ca_model_load(th_shared(model_rel), p, &st);
    *g = ca_st_open(th_shared(strstr(model_rel, "rn-") ? "testdata/models/rn-tiny-golden.safetensors"
                                                       : "testdata/models/vit-tiny-golden.safetensors"), &st);
    CHECK_MSG(*m && *g, "%s: %s", model_rel, ca_last_error());
    if (*m && *g) return 1;
    ca_model_free(*m);
    ca_st_close(*g);
    return 0;
}

/* The golden's input images (shape into ish) and tokens (prompt count into *nt); caller frees. */
static float *golden_inputs(ca_st_file *g, int64_t ish[4], int64_t **tokens, int *nt) {
    ca_status st;
    float *images = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
    const ca_tensor_info *ti = ca_st_find(g, "input.tokens");
    *tokens = malloc(sizeof(int64_t) * (size_t)ti->numel);
    ca_tensor_to_i64(ti, *tokens, ti->numel);
    *nt = (int)ti->shape[0];
    return images;
}

static void check_model(const char *model_rel, int compute) {
    ca_model_params p = ca_model_default_params();
    p.compute = compute;
    ca_status st;
    ca_model *m;
    ca_st_file *g;
    if (!open_fixture(model_rel, &p, &m, &g)) return;
    ca_model_info in;
    ca_model_get_info(m, &in);
    int64_t ish[4];
    int64_t *tokens;
    int nt;
    float *images = golden_inputs(g, ish, &tokens, &nt);
    /* a zero-shot classifier over 3 classes: any fixed weights of the right width do */
    float *w = malloc(sizeof(float) * 3 * (size_t)in.embed_dim);
    for (int i = 0; i < 3 * in.embed_dim; i++) w[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int c = 0; c < 3; c++) ca_l2_normalize(w + (size_t)c * in.embed_dim, in.embed_dim);
    ca_fit_data fd = {.num_classes = 3, .dim = in.embed_dim, .text_w = w};
    ca_classifier *clf = ca_fit("zero-shot", &fd, NULL, &st);
    CHECK(clf != NULL);

    job base = {.m = m, .clf = clf, .bpe = th_shared(BPE), .images = images, .tokens = tokens, .ni = (int)ish[0],
                .nt = nt, .E = in.embed_dim, .R = in.image_size};
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
    ca_model *m;
    ca_st_file *g;
    if (!open_fixture("testdata/models/vit-tiny.safetensors", NULL, &m, &g)) return;
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
    ca_model *m;
    ca_st_file *g;
    if (!open_fixture("testdata/models/vit-tiny.safetensors", NULL, &m, &g)) return;
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

/* ---- budgets reach the kernels, per session, also when building text classifiers ---- */

static const char PROMPTS_JSON[] = "{\"cat\": [\"a photo of a cat.\", \"a cat.\"], \"dog\": [\"a dog.\"], "
                                   "\"car\": [\"a car.\", \"a red car.\", \"a photo of a car.\"]}";

/* the largest OpenMP team this thread's kernels ran since the last probe (ca_team_note) */
typedef struct {
    const ca_model *m;
    const char *bpe;
    const float *images;
    const int64_t *tokens;
    int ni, nt, E, R, threads;
    pthread_barrier_t *go;   /* both budgets run at once */
    int team[5];             /* images, text, text classifier, prompts classifier, classify one image */
    ca_status st;
    char err[256];
} team_job;

static void *run_team(void *arg) {
    team_job *j = arg;
    ca_status st = CA_OK;
    ca_session *s = ca_session_new(j->m, &(ca_session_params){.threads = j->threads}, &st);
    ca_tokenizer *tok = ca_tokenizer_load(j->bpe, &st);
    ca_prompts *pr = ca_prompts_parse(PROMPTS_JSON, sizeof PROMPTS_JSON - 1, "test.json", &st);
    float *fi = malloc(sizeof(float) * (size_t)j->ni * j->E), *ft = malloc(sizeof(float) * (size_t)j->nt * j->E);
    float *tw = malloc(sizeof(float) * 3 * (size_t)j->E), probs[3];
    uint8_t *px = calloc((size_t)j->R * j->R, 3);
    if (j->go) pthread_barrier_wait(j->go);
    if (!s || !tok || !pr || !fi || !ft || !tw || !px) { if (st == CA_OK) st = CA_E_NOMEM; goto out; }
    ca_team_probe(1);
    if ((st = ca_session_encode_images(s, j->images, j->ni, fi))) goto out;
    j->team[0] = ca_team_probe(1);
    if ((st = ca_session_encode_text(s, j->tokens, j->nt, ft))) goto out;
    j->team[1] = ca_team_probe(1);
    if ((st = ca_session_text_classifier(s, tok, CLASSES, 3, TEMPLATES, 2, tw))) goto out;
    j->team[2] = ca_team_probe(1);
    if ((st = ca_session_text_classifier_prompts(s, tok, CLASSES, 3, pr, tw))) goto out;
    j->team[3] = ca_team_probe(1);
    for (int i = 0; i < j->R * j->R * 3; i++) px[i] = (uint8_t)(i * 13);
    ca_image *img = ca_image_from_pixels(px, j->R, j->R, 3, (size_t)j->R * 3, &st);
    ca_fit_data fd = {.num_classes = 3, .dim = j->E, .text_w = tw};
    ca_classifier *clf = img ? ca_fit("zero-shot", &fd, NULL, &st) : NULL;
    ca_team_probe(1);
    if (clf) st = ca_session_classify_image(s, clf, img, probs);
    j->team[4] = ca_team_probe(1);
    ca_classifier_free(clf);
    ca_image_free(img);
out:
    if (st) snprintf(j->err, sizeof j->err, "%s", ca_last_error());
    j->st = st;
    free(fi); free(ft); free(tw); free(px);
    ca_prompts_free(pr);
    ca_tokenizer_free(tok);
    ca_session_free(s);
    return NULL;
}

/* Two sessions with budgets 2 and 3 run at the same time in one process: the teams inside the
 * kernels of each (images, text, both text-classifier builders) are exactly its budget, never
 * the other's nor the process default; the one-call forms take the model's params.threads. */
static void check_teams(const char *model_rel, int compute) {
    ca_model_params p = ca_model_default_params();
    p.compute = compute;
    p.threads = 3;
    ca_status st;
    ca_model *m;
    ca_st_file *g;
    if (!open_fixture(model_rel, &p, &m, &g)) return;
    ca_model_info in;
    ca_model_get_info(m, &in);
    int64_t ish[4];
    int64_t *tokens;
    int nt;
    float *images = golden_inputs(g, ish, &tokens, &nt);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    team_job j[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        j[t] = (team_job){.m = m, .bpe = th_shared(BPE), .images = images, .tokens = tokens, .ni = (int)ish[0],
                          .nt = nt, .E = in.embed_dim, .R = in.image_size, .threads = 2 + t, .go = &go};
        CHECK(pthread_create(&th[t], NULL, run_team, &j[t]) == 0);
    }
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&go);
    static const char *const what[5] = {"images", "text", "text classifier", "prompts classifier", "classify"};
    for (int t = 0; t < 2; t++) {
        CHECK_MSG(j[t].st == CA_OK, "%s budget %d: %s", model_rel, j[t].threads, j[t].err);
        for (int k = 0; k < 4; k++)
            CHECK_MSG(j[t].team[k] == j[t].threads, "%s (compute %d) budget %d: %s ran teams of %d", model_rel, compute,
                      j[t].threads, what[k], j[t].team[k]);
        /* one image may have too little work for every thread, never more than the budget */
        CHECK_MSG(j[t].team[4] >= 1 && j[t].team[4] <= j[t].threads, "%s budget %d: classify ran teams of %d",
                  model_rel, j[t].threads, j[t].team[4]);
    }
    /* a one-call text classifier: a session on the fly with the model's budget (3) */
    ca_tokenizer *tok = ca_tokenizer_load(th_shared(BPE), &st);
    float *tw = malloc(sizeof(float) * 3 * (size_t)in.embed_dim);
    ca_team_probe(1);
    CHECK(tok && ca_text_classifier(m, tok, CLASSES, 3, TEMPLATES, 2, tw) == CA_OK);
    CHECK_EQ_INT(ca_team_probe(1), 3);
    ca_tokenizer_free(tok);
    free(tw); free(images); free(tokens);
    ca_st_close(g);
    ca_model_free(m);
}

static void test_budget_teams(void) {
    const char *models[] = {"testdata/models/vit-tiny.safetensors", "testdata/models/rn-tiny.safetensors",
                            "testdata/models/vit-tiny-hf.safetensors"};
    for (int i = 0; i < 3; i++) {
        check_teams(models[i], CA_COMPUTE_FAST);
        check_teams(models[i], CA_COMPUTE_REFERENCE);
    }
}

/* ---- cancelling a text classifier while it is being built ---- */

typedef struct {
    ca_session *s;
    int taps, taps_at_cancel;
    int started, go;          /* handshake with the cancelling thread (atomics) */
} cancel_ctx;

/* The first tap parks the encoding thread until the other thread has cancelled the session. */
static void park_on_tap(const char *name, int64_t first, const float *data, int ndim, const int64_t *shape,
                        void *user) {
    (void)name; (void)first; (void)data; (void)ndim; (void)shape;
    cancel_ctx *c = user;
    if (c->taps++ == 0) {
        __atomic_store_n(&c->started, 1, __ATOMIC_RELEASE);
        for (int w = 0; w < 60000 && !__atomic_load_n(&c->go, __ATOMIC_ACQUIRE); w++) usleep(1000);
        c->taps_at_cancel = c->taps;
    }
}

static void count_tap(const char *name, int64_t first, const float *data, int ndim, const int64_t *shape,
                      void *user) {
    (void)name; (void)first; (void)data; (void)ndim; (void)shape;
    ((cancel_ctx *)user)->taps++;
}

typedef struct { ca_session *s; ca_tokenizer *tok; const ca_prompts *pr; float *out; ca_status st; } clf_call;

static void *build_clf(void *arg) {
    clf_call *c = arg;
    c->st = c->pr ? ca_session_text_classifier_prompts(c->s, c->tok, CLASSES, 3, c->pr, c->out)
                  : ca_session_text_classifier(c->s, c->tok, CLASSES, 3, TEMPLATES, 2, c->out);
    return NULL;
}

static void test_cancel_text_classifier(void) {
    ca_status st;
    ca_model *m = ca_model_load(th_shared("testdata/models/vit-tiny.safetensors"), NULL, &st);
    ca_tokenizer *tok = ca_tokenizer_load(th_shared(BPE), &st);
    ca_prompts *pr = ca_prompts_parse(PROMPTS_JSON, sizeof PROMPTS_JSON - 1, "test.json", &st);
    CHECK(m && tok && pr);
    if (!m || !tok || !pr) { ca_model_free(m); ca_tokenizer_free(tok); ca_prompts_free(pr); return; }
    ca_model_info in;
    ca_model_get_info(m, &in);
    float *out = malloc(sizeof(float) * 3 * (size_t)in.embed_dim);
    for (int use_prompts = 0; use_prompts < 2; use_prompts++) {
        const ca_prompts *P = use_prompts ? pr : NULL;
        ca_session *s = ca_session_new(m, NULL, &st);
        CHECK(s != NULL);
        if (!s) break;
        ca_session_set_max_chunk(s, 1); /* one prompt per forward chunk: each is a boundary */
        /* cancelled before the call: nothing is encoded */
        cancel_ctx cc = {.s = s};
        ca_session_set_tap(s, count_tap, &cc);
        ca_session_cancel(s);
        clf_call c = {s, tok, P, out, CA_OK};
        build_clf(&c);
        CHECK_EQ_INT(c.st, CA_E_CANCELLED);
        CHECK_EQ_INT(cc.taps, 0);
        CHECK(strstr(ca_last_error(), "cancel") != NULL);
        /* a whole run, to know the taps one prompt's forward pass makes */
        ca_session_resume(s);
        cc.taps = 0;
        build_clf(&c);
        CHECK_MSG(c.st == CA_OK, "%s", ca_last_error());
        int prompts = 6, per = cc.taps / prompts; /* 3 classes x 2 templates; 2 + 1 + 3 prompts */
        CHECK(per >= 1 && cc.taps == per * prompts);
        /* cancelled from another thread while the first prompt is encoding: the call stops at the
         * next chunk, so at most the rest of that one forward pass runs */
        cancel_ctx pc = {.s = s};
        ca_session_set_tap(s, park_on_tap, &pc);
        pthread_t th;
        CHECK(pthread_create(&th, NULL, build_clf, &c) == 0);
        /* bounded waits: a classifier that never reaches the session's tap fails, not hangs */
        for (int w = 0; w < 60000 && !__atomic_load_n(&pc.started, __ATOMIC_ACQUIRE); w++) usleep(1000);
        CHECK_MSG(__atomic_load_n(&pc.started, __ATOMIC_ACQUIRE), "the classifier's encodes never ran on the session");
        ca_session_cancel(s);
        __atomic_store_n(&pc.go, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        CHECK_EQ_INT(c.st, CA_E_CANCELLED);
        CHECK_MSG(pc.taps <= per, "%s: %d taps after the cancel, one forward pass makes %d",
                  use_prompts ? "prompts" : "templates", pc.taps, per);
        ca_session_free(s); /* SAN=1: nothing of the cancelled call leaks */
    }
    free(out);
    ca_prompts_free(pr);
    ca_tokenizer_free(tok);
    ca_model_free(m);
}

/* ---- nothing process-wide moves: OpenMP's and OpenBLAS's thread counts around every family ---- */

extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int n);

#define SAME_COUNTS(what)                                                                          \
    do {                                                                                           \
        CHECK_MSG(omp_get_max_threads() == omp0, "%s: omp_get_max_threads %d -> %d", what, omp0,   \
                  omp_get_max_threads());                                                          \
        CHECK_MSG(openblas_get_num_threads() == blas0, "%s: openblas_get_num_threads %d -> %d", what, \
                  blas0, openblas_get_num_threads());                                              \
    } while (0)

static void test_global_counts(void) {
    /* values no default would give back: the library must restore, not reset */
    int omp_saved = omp_get_max_threads(), blas_saved = openblas_get_num_threads();
    omp_set_num_threads(3);
    openblas_set_num_threads(1); /* 1: TSAN cannot see OpenBLAS's pool (scripts/run_tests.sh) */
    int omp0 = omp_get_max_threads(), blas0 = openblas_get_num_threads();
    ca_status st;
    for (int compute = 0; compute < 2; compute++) {
        ca_model_params mp = ca_model_default_params();
        mp.compute = compute;
        ca_model *m = ca_model_load(th_shared("testdata/models/rn-tiny.safetensors"), &mp, &st);
        SAME_COUNTS("ca_model_load");
        CHECK(m != NULL);
        if (!m) continue;
        ca_model_info in;
        ca_model_get_info(m, &in);
        size_t img = (size_t)3 * in.image_size * in.image_size;
        float *x = calloc(img * 2, sizeof(float)), *f = malloc(sizeof(float) * 3 * (size_t)in.embed_dim);
        CHECK(ca_model_encode_images(m, x, 2, f) == CA_OK);
        SAME_COUNTS("ca_model_encode_images");
        int64_t tk[2 * 77] = {49406, 320, 49407};
        CHECK(in.context_length == 77 && ca_model_encode_text(m, tk, 1, f) == CA_OK);
        SAME_COUNTS("ca_model_encode_text");
        ca_session *s = ca_session_new(m, &(ca_session_params){.threads = 2}, &st);
        CHECK(s && ca_session_encode_images(s, x, 2, f) == CA_OK && ca_session_encode_text(s, tk, 1, f) == CA_OK);
        SAME_COUNTS("ca_session_encode_*");
        ca_tokenizer *tok = ca_tokenizer_load(th_shared(BPE), &st);
        CHECK(tok && ca_session_text_classifier(s, tok, CLASSES, 3, TEMPLATES, 2, f) == CA_OK);
        CHECK(tok && ca_text_classifier(m, tok, CLASSES, 3, TEMPLATES, 2, f) == CA_OK);
        SAME_COUNTS("ca_*text_classifier");
        uint8_t px[40 * 30 * 3];
        for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 5);
        ca_image *im = ca_image_from_pixels(px, 40, 30, 3, 120, &st);
        ca_fit_data fd = {.num_classes = 3, .dim = in.embed_dim, .text_w = f};
        ca_classifier *clf = ca_fit("zero-shot", &fd, NULL, &st);
        float probs[3], feat[1024];
        CHECK(im && clf && ca_classify_image(m, clf, im, probs) == CA_OK && ca_session_classify_image(s, clf, im, probs) == CA_OK);
        CHECK(in.embed_dim <= 1024 && ca_image_features(m, im, feat) == CA_OK);
        SAME_COUNTS("ca_*classify_image");
        char path[600];
        snprintf(path, sizeof path, "%s/counts.ppm", th_tmpdir());
        FILE *fp = fopen(path, "wb");
        if (fp) { fprintf(fp, "P6 40 30 255\n"); fwrite(px, 1, sizeof px, fp); fclose(fp); }
        const char *paths[3] = {path, path, path};
        float feats[3 * 1024];
        ca_encode_params ep = ca_encode_default_params();
        ep.views = 2;
        CHECK_MSG(ca_encode_images(m, paths, NULL, 3, &ep, feats, NULL, NULL) == CA_OK, "%s", ca_last_error());
        CHECK(ca_session_encode_image_files(s, paths, NULL, 3, &ep, feats, NULL, NULL) == CA_OK);
        SAME_COUNTS("ca_encode_images");
        ca_classifier_free(clf);
        ca_image_free(im);
        ca_tokenizer_free(tok);
        ca_session_free(s);
        free(x); free(f);
        ca_model_free(m);
        SAME_COUNTS("ca_model_free");
    }
    /* every method, fitted with its own thread budget (small synthetic data: the counts, not the
     * fits, are under test), and a few-shot run on a real feature set with search and training */
    enum { SC = 6, SD = 32, SK = 4, SV = 24 };
    static float sx[SC * SK * SD], sv[SV * SD], sw[SC * SD];
    static int32_t sy[SC * SK], syv[SV];
    uint64_t r = 7;
    for (int i = 0; i < SC * SD; i++) { r = r * 6364136223846793005ull + 1442695040888963407ull; sw[i] = (float)(r >> 40) / 16777216.0f - 0.5f; }
    for (int i = 0; i < SC * SK + SV; i++) { /* class centre plus a little noise */
        float *row = i < SC * SK ? sx + (size_t)i * SD : sv + (size_t)(i - SC * SK) * SD;
        for (int k = 0; k < SD; k++) { r = r * 6364136223846793005ull + 1442695040888963407ull; row[k] = sw[(i % SC) * SD + k] + 0.1f * ((float)(r >> 40) / 16777216.0f - 0.5f); }
        ca_l2_normalize(row, SD);
        if (i < SC * SK) sy[i] = i % SC; else syv[i - SC * SK] = i % SC;
    }
    for (int c = 0; c < SC; c++) ca_l2_normalize(sw + (size_t)c * SD, SD);
    ca_fit_data d = {.num_classes = SC, .dim = SD, .text_w = sw};
    d.train = (ca_split){.n = SC * SK, .dim = SD, .x = sx, .y = sy};
    d.val = (ca_split){.n = SV, .dim = SD, .x = sv, .y = syv};
    for (const char *const *mn = ca_method_names(); *mn; mn++) {
        ca_fit_params fp = ca_fit_default_params();
        fp.threads = 2;
        fp.epochs = 2;
        ca_classifier *c = ca_fit(*mn, &d, &fp, &st);
        CHECK_MSG(c != NULL, "%s: %s", *mn, ca_last_error());
        ca_classifier_free(c);
        SAME_COUNTS(*mn);
    }
    ca_featureset *fs = ca_features_load(th_shared("features/stanford_cars.safetensors"), &st);
    SAME_COUNTS("ca_features_load");
    CHECK(fs != NULL);
    if (fs) {
        ca_fit_params fp = ca_fit_default_params();
        fp.epochs = 1;
        fp.search_steps_alpha = fp.search_steps_beta = 4;
        ca_run_result r;
        CHECK(ca_run_fewshot(fs, "tip-adapter-f", 1, &fp, &r) == CA_OK);
        ca_run_free(&r);
        SAME_COUNTS("ca_run_fewshot");
    }
    ca_features_free(fs);
    omp_set_num_threads(omp_saved);
    openblas_set_num_threads(blas_saved);
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
    RUN(test_budget_teams);
    RUN(test_cancel_text_classifier);
    RUN(test_global_counts);
    RUN(test_concurrent_vit);
    RUN(test_concurrent_rn);
    RUN(test_concurrent_hf);
    TEST_END();
}
