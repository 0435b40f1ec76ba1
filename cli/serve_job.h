/* serve_job.h — what the parts of `clipadapt serve` pass between them: the options, the server's
 * shared facts about the model, and a request's job as it moves from the HTTP layer (serve.c)
 * through the workers and the encoder (serve_work.c) and the classifier store (serve_store.c).
 * The lowest of the serve modules: it calls none of the others.
 */
#ifndef CA_SERVE_JOB_H
#define CA_SERVE_JOB_H

#include "clipadapt.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_NAME_MAX 64       /* classifier names: [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
#define SRV_LABEL_MAX 128     /* class names given to the examples route, bytes */

/* ---- options ---- */
typedef struct {
    const char *model, *config, *host, *data_dir, *api_key, *bpe, *templates;
    int port, threads, workers, max_batch, batch_wait_ms, max_queue, timeout_s, bf16, max_connections, request_timeout_s;
    int act;                  /* CA_ACTIVATION_* (--act) */
    size_t max_body, max_body_total;   /* max_body_total 0: the default */
    int64_t max_pixels;
} srv_opts;

/* ---- a request's work, passed between the stages ---- */
typedef enum { J_CLASSIFY, J_EMBED_IMAGE, J_EMBED_TEXT, J_ADD, J_PUT, J_DELETE } job_kind;
typedef enum { ST_DECODE, ST_ENCODE, ST_FINISH } job_stage;

typedef struct job job;
struct job {
    job_kind kind;
    job_stage stage;
    /* input (owned by the job) */
    uint8_t *body; size_t len;
    char clf[SRV_NAME_MAX + 1];
    char label[SRV_LABEL_MAX + 1];
    char method[48];
    int top_k;
    uint64_t seed;            /* refit: seed of the held-out draw and the method */
    char **texts; int ntexts;
    /* intermediate */
    float *pixels;            /* (3, R, R) preprocessed */
    int64_t *tokens;          /* (ntexts, context) */
    float *feats;             /* (1 or ntexts, E), L2-normalised */
    float *class_text;        /* (E) text weight of a new class, or NULL */
    int want_class_text;
    /* result */
    int http;                 /* status code */
    char *resp;               /* malloc'd JSON */
    int retry_after;
    /* stage clocks (srv_now): request start (headers in), body complete, decode start and end,
     * encode start and end, done; reported in the answer's timings_ms */
    double t0, t_body, t_dec0, t_dec, t_enc0, t_enc, t_done, dec_ms;
    int batch_n;
    void (*done)(job *j, void *user);   /* called once, from any thread, when resp is set */
    void *done_user;
    job *next;
};

/* ---- the server ---- */
typedef struct srv srv;

/* Finish a job with an error body {"error": msg}. */
void job_error(job *j, int http, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void job_free(job *j);
double srv_now(void);

/* The server: options, the model's facts (set once the model is loaded), its parts. */
typedef struct srv {
    srv_opts o;
    int embed_dim, has_text;       /* has_text: text tower and tokenizer loaded */
    char model_sig[512];
    struct work *w;
    struct store *st;
} srv;

#endif
