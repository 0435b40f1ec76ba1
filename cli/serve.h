/* serve.h — internals of `clipadapt serve`, shared by its files: serve.c (options, HTTP routes on
 * libmicrohttpd, signals), serve_work.c (decode workers, the batching encoder thread: the only
 * place that calls the model), serve_store.c (classifiers, examples log, refit) and
 * serve_metrics.c (Prometheus counters). Not a library API: the reusable pieces (growing a
 * classifier) are in src/adapt/grow.c.
 */
#ifndef CA_SERVE_H
#define CA_SERVE_H

#include "clipadapt.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_NAME_MAX 64       /* classifier names: [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
#define SRV_LABEL_MAX 128     /* class names given to the examples route, bytes */

/* ---- options ---- */
typedef struct {
    const char *model, *config, *host, *data_dir, *api_key, *bpe, *templates;
    int port, threads, workers, max_batch, batch_wait_ms, max_queue, timeout_s, bf16;
    size_t max_body;
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
    double t0, t_dec, t_enc, t_done, dec_ms;
    int batch_n;
    void (*done)(job *j, void *user);   /* called once, from any thread, when resp is set */
    void *done_user;
    job *next;
};

/* ---- the server ---- */
typedef struct srv srv;

/* serve_work.c: starts decode workers and the encoder thread; the model is loaded there. */
int work_start(srv *s, const srv_opts *o, char *err, size_t errn);
/* Queue a job (stage ST_DECODE). Returns 0, or -1 when the queue is full (the caller answers 503). */
int work_submit(srv *s, job *j);
void work_stop(srv *s);
int work_in_flight(srv *s);
int work_embed_dim(srv *s);
int work_has_text(srv *s);
const char *work_model_sig(srv *s);
void job_free(job *j);
/* Finish a job with an error body {"error": msg}. */
void job_error(job *j, int http, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* serve_store.c */
typedef struct entry entry;
int store_open(srv *s, const srv_opts *o, char **clf_args, int nclf, char *err, size_t errn);
void store_close(srv *s);
/* Look a classifier up; the snapshot stays valid until store_release. NULL when unknown. */
const ca_classifier *store_acquire(srv *s, const char *name, void **ref);
void store_release(srv *s, void *ref);
/* Name of the only classifier when exactly one is loaded (copied into buf), else -1. */
int store_default_name(srv *s, char *buf, size_t n);
/* Worker-side operations, each finishing the job. */
void store_add(srv *s, job *j);
void store_put(srv *s, job *j);
void store_delete(srv *s, job *j);
/* Starts a background refit; fills the job's response at once (202 or an error). */
void store_refit(srv *s, job *j);
/* 1 when the label is not a class of the classifier yet and the classifier keeps text. */
int store_needs_class_text(srv *s, const char *name, const char *label);
/* JSON object for /v1/info's "classifiers" (malloc'd). */
char *store_info_json(srv *s);
/* Wait for running refits to end (cancelling them). */
void store_drain(srv *s);
int valid_name(const char *name);

/* serve_metrics.c */
typedef enum { R_PAGE, R_HEALTH, R_INFO, R_CLASSIFY, R_EMBED, R_PUT, R_DELETE, R_EXAMPLES, R_REFIT,
               R_METRICS, R_OTHER, R_COUNT } route_id;
void metrics_request(route_id r, int http, double seconds);
void metrics_batch(int n);
void metrics_example_added(void);
void metrics_refit(int ok);
char *metrics_text(int queue_depth, int in_flight);
const char *route_name(route_id r);

/* serve_page.c */
extern const char SERVE_PAGE_HTML[];

struct srv {
    srv_opts o;
    struct work *w;
    struct store *st;
};

double srv_now(void);

#endif
