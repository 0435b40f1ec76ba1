/* serve_store.h — the classifiers of `clipadapt serve`, their snapshots, examples log and refits
 * (serve_store.c). Uses serve_job and serve_metrics only. */
#ifndef CA_SERVE_STORE_H
#define CA_SERVE_STORE_H

#include "serve_job.h"

/* Open the data dir and the --classifier files; needs s->embed_dim and s->model_sig set. */
int store_open(srv *s, char **clf_args, int nclf, char *err, size_t errn);
void store_close(srv *s);
/* Look a classifier up; the snapshot stays valid until store_release. NULL when unknown. */
const ca_classifier *store_acquire(srv *s, const char *name, void **ref);
void store_release(srv *s, void *ref);
/* Name of the only classifier when exactly one is loaded (copied into buf), else -1. */
int store_default_name(srv *s, char *buf, size_t n);
int store_count(srv *s);
/* Worker-side operations, each filling the job's answer. */
void store_add(srv *s, job *j);
void store_put(srv *s, job *j);
void store_delete(srv *s, job *j);
/* Starts a background refit; fills the job's answer at once (202 or an error). */
void store_refit(srv *s, job *j);
/* 1 when the label is not a class of the classifier yet and the classifier keeps text. */
int store_needs_class_text(srv *s, const char *name, const char *label);
/* JSON array for /v1/info's "classifiers" (malloc'd). */
char *store_info_json(srv *s);
/* Cancel running refits and wait for them to end. */
void store_drain(srv *s);
int valid_name(const char *name);

#endif
