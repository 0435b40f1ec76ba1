/* serve_job.c — a request's job in `clipadapt serve`: freeing it, giving it an error answer,
 * and the clock every stage stamps it with. */
#include "serve_job.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void job_free(job *j) {
    if (!j) return;
    free(j->body); free(j->pixels); free(j->tokens); free(j->feats); free(j->class_text); free(j->resp);
    for (int i = 0; i < j->ntexts; i++) free(j->texts[i]);
    free(j->texts);
    free(j);
}

void job_error(job *j, int http, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    free(j->resp);
    j->resp = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    j->http = http;
}

