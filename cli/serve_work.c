/* serve_work.c — the work behind `clipadapt serve`'s requests: a pool of workers that decode and
 * preprocess uploads (and finish requests: classifier logits, JSON, store updates), and one
 * encoder thread that batches the requests arriving together (up to --max-batch, waiting at most
 * --batch-wait-ms while more are being decoded) and is the only caller of the model. Not the HTTP
 * layer (serve.c) nor the classifier store (serve_store.c).
 */
#include "serve_work.h"
#include "serve_metrics.h"
#include "serve_store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Uploads up to this size (compressed) that arrive alone go straight to the encoder thread, which
 * decodes them: a bigger one could keep the encoder decoding while others wait to be encoded. */
#define DIRECT_MAX_BYTES (256u << 10)

struct work {
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_enc;
    job *wq_head, *wq_tail;          /* workers: decode, finish */
    job *eq_head, *eq_tail;          /* encoder */
    int decoding, in_flight, max_queue, stop, enc_done, prev_batch;
    int enc_busy;                    /* the encoder has work (or is about to): no request goes straight to it */
    pthread_t *workers; int nworkers, enc_started;
    pthread_t enc;
    int setup_done;                  /* the encoder thread's start: 1 ready, -1 failed (message in setup_err) */
    char *setup_err; size_t setup_errn;
    char **clfs; int nclf;           /* --classifier arguments, for store_open */
    /* model state: touched by the encoder thread only, once started */
    ca_model *m;                     /* immutable once loaded */
    ca_session *ses;                 /* the encoder's scratch and thread budget */
    ca_tokenizer *tok;
    char **templates; int ntempl;
    int R, E, context, has_text, max_batch, wait_ms;
    float *in_buf, *out_buf;
    int64_t max_pixels;
    srv *s;
};

static void push(job **head, job **tail, job *j, int front) {
    j->next = NULL;
    if (!*head) { *head = *tail = j; return; }
    if (front) { j->next = *head; *head = j; return; }
    (*tail)->next = j; *tail = j;
}

static job *pop(job **head, job **tail) {
    job *j = *head;
    if (j) { *head = j->next; if (!*head) *tail = NULL; j->next = NULL; }
    return j;
}

static void l2norm(float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    if (s > 0) { float r = (float)(1.0 / sqrt(s)); for (int i = 0; i < n; i++) x[i] *= r; }
}

/* ---- the model: every call is in this block, made from the encoder thread only ---- */

static ca_status enc_images(struct work *w, int n) {
    return ca_session_encode_images(w->ses, w->in_buf, n, w->out_buf);
}
static ca_status enc_texts(struct work *w, const int64_t *tokens, int n, float *out) {
    return ca_session_encode_text(w->ses, tokens, n, out);
}
static ca_status enc_class_text(struct work *w, const char *label, float *out) {
    const char *names[1] = {label};
    return ca_session_text_classifier(w->ses, w->tok, names, 1, (const char *const *)w->templates, w->ntempl, out);
}

/* Load the model and make the session (on the encoder thread: see encoder_main). */
static int enc_setup(struct work *w, char *err, size_t errn) {
    const srv_opts *o = &w->s->o;
    srv *s = w->s;
    ca_status st;
    if (o->bpe) {
        if (!(w->tok = ca_tokenizer_load(o->bpe, &st))) { snprintf(err, errn, "%s", ca_last_error()); return -1; }
        if (!(w->templates = ca_templates_load(o->templates, &w->ntempl, &st))) { snprintf(err, errn, "%s", ca_last_error()); return -1; }
    }
    ca_model_params mp = ca_model_default_params();
    mp.config_path = o->config;
    mp.threads = o->threads;
    mp.activation = o->act;
    mp.load_text = w->tok != NULL;   /* text needs the tokenizer; without it, save the memory */
    if (o->bf16) mp.compute = CA_COMPUTE_BF16;
    if (!(w->m = ca_model_load(o->model, &mp, &st))) {
        if (o->bf16 && st == CA_E_UNSUPPORTED)
            snprintf(err, errn, "--bf16: this CPU or build has no AVX512-BF16 kernels; run without --bf16");
        else
            snprintf(err, errn, "%s", ca_last_error());
        return -1;
    }
    ca_session_params sp = ca_session_default_params();
    sp.threads = o->threads;
    if (!(w->ses = ca_session_new(w->m, &sp, &st))) { snprintf(err, errn, "%s", ca_last_error()); return -1; }
    ca_model_info info;
    if (ca_model_get_info(w->m, &info) != CA_OK || !info.has_vision) { snprintf(err, errn, "%s: the model has no image tower", o->model); return -1; }
    w->R = info.image_size; w->E = info.embed_dim; w->context = info.context_length; w->has_text = info.has_text;
    if (ca_model_signature(w->m, s->model_sig, sizeof s->model_sig) != CA_OK) s->model_sig[0] = 0;
    s->embed_dim = w->E;
    s->has_text = w->has_text && w->tok;
    w->in_buf = malloc(sizeof(float) * 3 * (size_t)w->R * w->R * (size_t)w->max_batch);
    w->out_buf = malloc(sizeof(float) * (size_t)w->E * (size_t)w->max_batch);
    if (!w->in_buf || !w->out_buf) { snprintf(err, errn, "out of memory for a batch of %d", w->max_batch); return -1; }
    /* one warm-up encode so the first request does not pay for growing the session scratch */
    memset(w->in_buf, 0, sizeof(float) * 3 * (size_t)w->R * w->R);
    if (enc_images(w, 1) != CA_OK) { snprintf(err, errn, "%s", ca_last_error()); return -1; }
    /* the classifiers too: loading one runs kernels, and on another thread they would start a
     * second OpenMP pool (see work_start) */
    return store_open(s, w->clfs, w->nclf, err, errn);
}

/* ---- completion ---- */

static void complete(struct work *w, job *j) {
    j->t_done = srv_now();
    pthread_mutex_lock(&w->mu);
    w->in_flight--;
    pthread_mutex_unlock(&w->mu);
    if (j->done) j->done(j, j->done_user);
}

/* ---- worker stages ---- */

/* Decode and preprocess the upload into dst (the encoder's batch buffer), or into j->pixels when
 * dst is NULL (a worker: the job waits in the queue). */
static void decode_image(struct work *w, job *j, float *dst) {
    ca_image_params ip = ca_image_default_params();
    ip.max_pixels = w->max_pixels;
    ca_status st;
    ca_image *img = ca_image_decode(j->body, j->len, "upload", &ip, &st);
    if (!img) {
        const char *d = ca_last_error();
        job_error(j, st == CA_E_RANGE ? 413 : 400, "%s", d && *d ? d : ca_strerror(st));
        return;
    }
    if (!dst) dst = j->pixels = malloc(sizeof(float) * 3 * (size_t)w->R * w->R);
    st = dst ? ca_preprocess(img, w->R, dst) : CA_E_NOMEM;
    ca_image_free(img);
    if (st != CA_OK) { job_error(j, st == CA_E_NOMEM ? 503 : 400, "upload: %s", ca_last_error()); return; }
    free(j->body); j->body = NULL; j->len = 0;   /* the compressed bytes are no longer needed */
    if (j->kind == J_ADD) j->want_class_text = store_needs_class_text(w->s, j->clf, j->label);
}

static void parse_texts(job *j) {
    cJSON *root = cJSON_ParseWithLength((const char *)j->body, j->len);
    cJSON *a = root ? cJSON_GetObjectItemCaseSensitive(root, "texts") : NULL;
    if (!cJSON_IsArray(a)) { cJSON_Delete(root); job_error(j, 400, "body: expected JSON {\"texts\": [\"...\", ...]}"); return; }
    int n = cJSON_GetArraySize(a);
    if (n < 1 || n > 256) { cJSON_Delete(root); job_error(j, 400, "body: \"texts\" must hold 1 to 256 strings (has %d)", n); return; }
    j->texts = calloc((size_t)n, sizeof(char *));
    if (!j->texts) { cJSON_Delete(root); job_error(j, 503, "out of memory"); return; }
    cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it)) { cJSON_Delete(root); job_error(j, 400, "body: texts[%d] is not a string", j->ntexts); return; }
        if (!(j->texts[j->ntexts++] = strdup(it->valuestring))) { cJSON_Delete(root); job_error(j, 503, "out of memory"); return; }
    }
    cJSON_Delete(root);
    free(j->body); j->body = NULL; j->len = 0;
}

static void softmax(const float *lg, int n, float *p) {
    double mx = lg[0], s = 0;
    for (int i = 1; i < n; i++) if (lg[i] > mx) mx = lg[i];
    for (int i = 0; i < n; i++) s += exp((double)lg[i] - mx);
    for (int i = 0; i < n; i++) p[i] = (float)(exp((double)lg[i] - mx) / s);
}

static void add_ms(cJSON *t, const char *k, double a, double b) {
    cJSON_AddNumberToObject(t, k, a > 0 && b >= a ? round((b - a) * 1e6) / 1000 : 0);
}

/* Where a request's time went, stage by stage (bench/serve_load.c reads these). */
static void add_timings(cJSON *o, job *j) {
    cJSON *t = cJSON_AddObjectToObject(o, "timings_ms");
    double now = srv_now();
    add_ms(t, "receive", j->t0, j->t_body);        /* headers in to body complete */
    add_ms(t, "wait_decode", j->t_body, j->t_dec0);
    cJSON_AddNumberToObject(t, "decode", round(j->dec_ms * 1000) / 1000);
    add_ms(t, "wait_encode", j->t_dec, j->t_enc0);  /* the queue and the batch wait */
    add_ms(t, "encode", j->t_enc0, j->t_enc);
    add_ms(t, "queue_and_encode", j->t_dec, j->t_enc);
    add_ms(t, "finish", j->t_enc, now);             /* to the worker, logits, JSON */
    add_ms(t, "total", j->t0, now);
    cJSON_AddNumberToObject(t, "batch", j->batch_n);
}

static void finish_classify(struct work *w, job *j) {
    void *ref;
    const ca_classifier *c = store_acquire(w->s, j->clf, &ref);
    if (!c) { job_error(j, 404, "unknown classifier '%s'", j->clf); return; }
    int C = ca_classifier_num_classes(c), k = j->top_k < C ? j->top_k : C;
    float *lg = malloc(sizeof(float) * (size_t)C * 2);
    int *idx = malloc(sizeof(int) * (size_t)k);
    ca_status st = (lg && idx) ? ca_classifier_logits(c, j->feats, 1, lg) : CA_E_NOMEM;
    if (st != CA_OK) {
        job_error(j, 500, "classifier '%s': %s", j->clf, ca_last_error());
    } else {
        softmax(lg, C, lg + C);
        ca_top_k(lg + C, C, k, idx);
        cJSON *o = cJSON_CreateObject(), *top = NULL;
        cJSON_AddStringToObject(o, "classifier", j->clf);
        cJSON_AddStringToObject(o, "method", ca_classifier_method(c));
        top = cJSON_AddArrayToObject(o, "top");
        for (int i = 0; i < k; i++) {
            cJSON *e = cJSON_CreateObject();
            const char *nm = ca_classifier_class_name(c, idx[i]);
            char fb[32];
            if (!nm) { snprintf(fb, sizeof fb, "class %d", idx[i]); nm = fb; }
            cJSON_AddStringToObject(e, "class", nm);
            cJSON_AddNumberToObject(e, "index", idx[i]);
            cJSON_AddNumberToObject(e, "prob", lg[C + idx[i]]);
            cJSON_AddItemToArray(top, e);
        }
        add_timings(o, j);
        j->resp = cJSON_PrintUnformatted(o);
        j->http = j->resp ? 200 : 503;
        cJSON_Delete(o);
    }
    free(lg); free(idx);
    store_release(w->s, ref);
}

static void finish_embed(struct work *w, job *j) {
    int n = j->kind == J_EMBED_TEXT ? j->ntexts : 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "dim", w->E);
    cJSON_AddBoolToObject(o, "normalized", 1);
    cJSON *a = cJSON_AddArrayToObject(o, "embeddings");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateFloatArray(j->feats + (size_t)i * w->E, w->E));
    add_timings(o, j);
    j->resp = cJSON_PrintUnformatted(o);
    j->http = j->resp ? 200 : 503;
    cJSON_Delete(o);
}

/* The last stage of an encoded job: its answer (and for an example, the store). */
static void finish(struct work *w, job *j) {
    if (j->resp) return;
    if (j->kind == J_CLASSIFY) finish_classify(w, j);
    else if (j->kind == J_ADD) store_add(w->s, j);
    else finish_embed(w, j);
}

static void to_encoder(struct work *w, job *j) {
    j->stage = ST_ENCODE;
    j->t_dec = srv_now();
    pthread_mutex_lock(&w->mu);
    w->decoding--;
    push(&w->eq_head, &w->eq_tail, j, 0);
    pthread_cond_signal(&w->cv_enc);
    pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg) {
    struct work *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->wq_head && !(w->stop && w->enc_done)) pthread_cond_wait(&w->cv_work, &w->mu);
        job *j = pop(&w->wq_head, &w->wq_tail);
        pthread_mutex_unlock(&w->mu);
        if (!j) return NULL;   /* stopping, the encoder is done and the queue is empty */
        if (j->stage == ST_DECODE) {
            double t = j->t_dec0 = srv_now();
            switch (j->kind) {
            case J_CLASSIFY: case J_EMBED_IMAGE: case J_ADD: decode_image(w, j, NULL); break;
            case J_EMBED_TEXT: parse_texts(j); break;
            case J_PUT: store_put(w->s, j); break;
            case J_DELETE: store_delete(w->s, j); break;
            }
            j->dec_ms = (srv_now() - t) * 1000;
            if (!j->resp) { to_encoder(w, j); continue; }
            pthread_mutex_lock(&w->mu);
            w->decoding--;
            pthread_mutex_unlock(&w->mu);
        } else {
            finish(w, j);
        }
        complete(w, j);
    }
}

/* ---- the encoder ---- */

static void encode_text_job(struct work *w, job *j) {
    int n = j->ntexts;
    j->tokens = malloc(sizeof(int64_t) * (size_t)n * w->context);
    j->feats = malloc(sizeof(float) * (size_t)n * w->E);
    if (!j->tokens || !j->feats) { job_error(j, 503, "out of memory"); return; }
    for (int i = 0; i < n; i++) {
        ca_status st = ca_tokenize_row(w->tok, j->texts[i], strlen(j->texts[i]), w->context, 0, j->tokens + (size_t)i * w->context, NULL);
        if (st != CA_OK) { job_error(j, 400, "texts[%d]: %s", i, ca_last_error()); return; }
    }
    for (int i0 = 0; i0 < n; i0 += w->max_batch) {
        int m = n - i0 < w->max_batch ? n - i0 : w->max_batch;
        ca_status st = enc_texts(w, j->tokens + (size_t)i0 * w->context, m, j->feats + (size_t)i0 * w->E);
        if (st != CA_OK) { job_error(j, 500, "text encoder: %s", ca_last_error()); return; }
    }
    for (int i = 0; i < n; i++) l2norm(j->feats + (size_t)i * w->E, w->E);
}

static void *encoder_main(void *arg) {
    struct work *w = arg;
    int bad = enc_setup(w, w->setup_err, w->setup_errn);
    job **batch = bad ? NULL : calloc((size_t)w->max_batch, sizeof(job *));
    if (!bad && !batch) { snprintf(w->setup_err, w->setup_errn, "out of memory"); bad = 1; }
    pthread_mutex_lock(&w->mu);
    w->setup_done = bad ? -1 : 1;
    if (bad) w->enc_done = 1;
    pthread_cond_broadcast(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    if (bad) return NULL;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        w->enc_busy = 0;
        while (!w->stop && !w->eq_head) pthread_cond_wait(&w->cv_enc, &w->mu);
        if (!w->eq_head) { pthread_mutex_unlock(&w->mu); break; }
        w->enc_busy = 1;
        job *pre = NULL;   /* a lone request handed straight here: decoded into the batch's slot 0 */
        if (w->eq_head->stage == ST_DECODE) {
            job *j = pop(&w->eq_head, &w->eq_tail);
            pthread_mutex_unlock(&w->mu);
            j->t_dec0 = srv_now();
            decode_image(w, j, w->in_buf);
            j->t_dec = srv_now();
            j->dec_ms = (j->t_dec - j->t_dec0) * 1000;
            if (j->resp) { complete(w, j); continue; }
            pre = j;
            j->stage = ST_ENCODE;
            pthread_mutex_lock(&w->mu);
            push(&w->eq_head, &w->eq_tail, j, 1);   /* first of the batch */
        }
        int n = 0;
        if (w->eq_head->kind == J_EMBED_TEXT) {
            batch[n++] = pop(&w->eq_head, &w->eq_tail);
        } else {
            double deadline = srv_now() + w->wait_ms / 1000.0;
            for (;;) {
                while (n < w->max_batch && w->eq_head && w->eq_head->kind != J_EMBED_TEXT)
                    batch[n++] = pop(&w->eq_head, &w->eq_tail);
                /* wait only while more requests are on their way: some are being decoded, or
                 * the last batch was bigger (clients of a busy server come back together) */
                if (n >= w->max_batch || (w->eq_head && w->eq_head->kind == J_EMBED_TEXT) || w->stop) break;
                if (!(w->decoding > 0 || w->prev_batch > n)) break;
                double now = srv_now();
                if (now >= deadline) break;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                double dt = deadline - now;
                ts.tv_sec += (time_t)dt;
                ts.tv_nsec += (long)((dt - (time_t)dt) * 1e9);
                if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
                pthread_cond_timedwait(&w->cv_enc, &w->mu, &ts);
            }
            w->prev_batch = n;
        }
        pthread_mutex_unlock(&w->mu);
        double t0 = srv_now();
        for (int i = 0; i < n; i++) batch[i]->t_enc0 = t0;

        if (batch[0]->kind == J_EMBED_TEXT) {
            encode_text_job(w, batch[0]);
        } else {
            size_t px = (size_t)3 * w->R * w->R;
            for (int i = 0; i < n; i++)
                if (batch[i] != pre) memcpy(w->in_buf + i * px, batch[i]->pixels, px * sizeof(float));
            ca_status st = enc_images(w, n);
            metrics_batch(n);
            for (int i = 0; i < n; i++) {
                job *j = batch[i];
                free(j->pixels); j->pixels = NULL;
                j->batch_n = n;
                if (st != CA_OK) { job_error(j, 500, "image encoder: %s", ca_last_error()); continue; }
                if (!(j->feats = malloc(sizeof(float) * (size_t)w->E))) { job_error(j, 503, "out of memory"); continue; }
                memcpy(j->feats, w->out_buf + (size_t)i * w->E, sizeof(float) * (size_t)w->E);
                l2norm(j->feats, w->E);
                if (j->want_class_text && w->tok) {
                    j->class_text = malloc(sizeof(float) * (size_t)w->E);
                    if (j->class_text && enc_class_text(w, j->label, j->class_text) != CA_OK)
                        job_error(j, 400, "class '%s': text weight: %s", j->label, ca_last_error());
                }
            }
        }
        double t = srv_now();
        pthread_mutex_lock(&w->mu);
        /* a lone answer with nothing waiting for the encoder is finished here: handing it to a
         * worker would add a thread wake-up to its latency and save nothing */
        int here = n == 1 && (batch[0]->kind == J_CLASSIFY || batch[0]->kind == J_EMBED_IMAGE) && !w->eq_head && !w->decoding;
        for (int i = 0; i < n; i++) {
            batch[i]->t_enc = t;
            batch[i]->stage = ST_FINISH;
            if (!here) push(&w->wq_head, &w->wq_tail, batch[i], 1);
        }
        if (!here) pthread_cond_broadcast(&w->cv_work);
        pthread_mutex_unlock(&w->mu);
        if (here) {
            finish(w, batch[0]);
            pthread_mutex_lock(&w->mu);
            w->enc_busy = 0;   /* before the answer leaves: the client's next request may come straight here */
            pthread_mutex_unlock(&w->mu);
            complete(w, batch[0]);
        }
    }
    free(batch);
    pthread_mutex_lock(&w->mu);
    w->enc_done = 1;
    pthread_cond_broadcast(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- lifetime ---- */

int work_submit(srv *s, job *j) {
    struct work *w = s->w;
    pthread_mutex_lock(&w->mu);
    if (w->in_flight >= w->max_queue || w->stop) { pthread_mutex_unlock(&w->mu); return -1; }
    w->in_flight++;
    j->stage = ST_DECODE;
    if ((j->kind == J_CLASSIFY || j->kind == J_EMBED_IMAGE) && j->len <= DIRECT_MAX_BYTES && !w->enc_busy && !w->eq_head && !w->decoding) {
        /* alone: the idle encoder decodes it itself (nothing to overlap the decoding with, and
         * one thread hand-off fewer); anything arriving meanwhile goes to the workers */
        push(&w->eq_head, &w->eq_tail, j, 0);
        w->enc_busy = 1;
        pthread_cond_signal(&w->cv_enc);
    } else {
        w->decoding++;
        push(&w->wq_head, &w->wq_tail, j, 0);
        pthread_cond_signal(&w->cv_work);
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int work_in_flight(srv *s) {
    pthread_mutex_lock(&s->w->mu);
    int n = s->w->in_flight;
    pthread_mutex_unlock(&s->w->mu);
    return n;
}

int work_start(srv *s, char **clfs, int nclf, char *err, size_t errn) {
    const srv_opts *o = &s->o;
    struct work *w = calloc(1, sizeof *w);
    if (!w) { snprintf(err, errn, "out of memory"); return -1; }
    s->w = w;
    w->s = s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_enc, NULL);
    w->max_queue = o->max_queue; w->max_batch = o->max_batch; w->wait_ms = o->batch_wait_ms;
    w->max_pixels = o->max_pixels;
    /* the encoder thread loads the model, so that the OpenMP pool that packed the weights is the
     * one that encodes (as in `clipadapt encode`). libgomp keeps a pool for every thread that ever
     * ran a team of more than one, and once the process has more pool threads than cores every
     * team sleeps at each barrier instead of spinning: a ViT-B/32 encode of one image then took
     * 51.6 ms instead of 39.2 ms (docs/serve.md). This thread waits for the load (model, then
     * classifier store). */
    w->setup_err = err; w->setup_errn = errn;
    w->clfs = clfs; w->nclf = nclf;
    if (pthread_create(&w->enc, NULL, encoder_main, w)) { snprintf(err, errn, "cannot start the encoder thread"); return -1; }
    w->enc_started = 1;
    pthread_mutex_lock(&w->mu);
    while (!w->setup_done) pthread_cond_wait(&w->cv_work, &w->mu);
    int ok = w->setup_done > 0;
    pthread_mutex_unlock(&w->mu);
    if (!ok) return -1;   /* the encoder thread has returned; work_stop joins it */
    w->nworkers = o->workers;
    w->workers = calloc((size_t)w->nworkers, sizeof(pthread_t));
    if (!w->workers) { snprintf(err, errn, "out of memory"); return -1; }
    for (int i = 0; i < w->nworkers; i++)
        if (pthread_create(&w->workers[i], NULL, worker_main, w)) { w->nworkers = i; snprintf(err, errn, "cannot start a worker thread"); return -1; }
    return 0;
}

void work_stop(srv *s) {
    struct work *w = s->w;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv_work);
    pthread_cond_broadcast(&w->cv_enc);
    pthread_mutex_unlock(&w->mu);
    /* the encoder drains its queue and hands the jobs to the workers, which drain theirs */
    if (w->enc_started) pthread_join(w->enc, NULL);
    else { pthread_mutex_lock(&w->mu); w->enc_done = 1; pthread_cond_broadcast(&w->cv_work); pthread_mutex_unlock(&w->mu); }
    for (int i = 0; i < w->nworkers; i++) pthread_join(w->workers[i], NULL);
    ca_session_free(w->ses);
    ca_model_free(w->m);
    ca_tokenizer_free(w->tok);
    ca_templates_free(w->templates, w->ntempl);
    free(w->in_buf); free(w->out_buf); free(w->workers);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_enc);
    free(w);
    s->w = NULL;
}
