/* serve_work.h — decode workers and the batching encoder thread of `clipadapt serve`
 * (serve_work.c), the only caller of the model. Uses serve_job, serve_store, serve_metrics. */
#ifndef CA_SERVE_WORK_H
#define CA_SERVE_WORK_H

#include "serve_job.h"

/* Start the encoder thread, which loads the model (fills s->embed_dim, has_text, model_sig) and
 * opens the classifier store (store_open with the --classifier arguments), then the workers. */
int work_start(srv *s, char **clfs, int nclf, char *err, size_t errn);
/* Queue a job (stage ST_DECODE). Returns 0, or -1 when the queue is full (the caller answers 503). */
int work_submit(srv *s, job *j);
void work_stop(srv *s);
int work_in_flight(srv *s);

#endif
