/* serve_metrics.c — counters of `clipadapt serve` in the Prometheus text format (version 0.0.4):
 * requests by route and status, latency histograms by route, encoder batch sizes, examples added,
 * refits, queue depth. One mutex; every update is a few increments. */
#include "serve_metrics.h"

#include <pthread.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ROUTES[R_COUNT] = {"page", "health", "info", "classify", "embed", "classifier_put",
                                            "classifier_delete", "examples", "refit", "metrics", "other"};
static const double LAT_B[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_LAT (sizeof LAT_B / sizeof LAT_B[0])
static const int BATCH_B[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_BATCH (sizeof BATCH_B / sizeof BATCH_B[0])
#define MAX_CODES 24

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int codes[MAX_CODES]; uint64_t by_code[MAX_CODES]; int ncodes;
    uint64_t lat[N_LAT + 1]; double lat_sum; uint64_t lat_n;
} R[R_COUNT];
static uint64_t batch_hist[N_BATCH + 1], batch_n, batch_sum, examples, refits_ok, refits_failed, slow_closed;

const char *route_name(route_id r) { return r >= 0 && r < R_COUNT ? ROUTES[r] : "other"; }

void metrics_request(route_id r, int http, double seconds) {
    if (r < 0 || r >= R_COUNT) r = R_OTHER;
    pthread_mutex_lock(&mu);
    int k = 0;
    while (k < R[r].ncodes && R[r].codes[k] != http) k++;
    if (k == R[r].ncodes && k < MAX_CODES) { R[r].codes[k] = http; R[r].ncodes++; }
    if (k < MAX_CODES) R[r].by_code[k]++;
    size_t b = 0;
    while (b < N_LAT && seconds > LAT_B[b]) b++;
    R[r].lat[b]++;
    R[r].lat_sum += seconds;
    R[r].lat_n++;
    pthread_mutex_unlock(&mu);
}

void metrics_batch(int n) {
    pthread_mutex_lock(&mu);
    size_t b = 0;
    while (b < N_BATCH && n > BATCH_B[b]) b++;
    batch_hist[b]++;
    batch_n++;
    batch_sum += (uint64_t)n;
    pthread_mutex_unlock(&mu);
}

void metrics_example_added(void) { pthread_mutex_lock(&mu); examples++; pthread_mutex_unlock(&mu); }
void metrics_slow_closed(void) { pthread_mutex_lock(&mu); slow_closed++; pthread_mutex_unlock(&mu); }
void metrics_refit(int ok) { pthread_mutex_lock(&mu); if (ok) refits_ok++; else refits_failed++; pthread_mutex_unlock(&mu); }

char *metrics_text(int queue_depth, int in_flight) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    pthread_mutex_lock(&mu);
    fprintf(f, "# HELP clipadapt_requests_total HTTP requests answered, by route and status code.\n"
               "# TYPE clipadapt_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (int k = 0; k < R[r].ncodes; k++)
            fprintf(f, "clipadapt_requests_total{route=\"%s\",code=\"%d\"} %llu\n", ROUTES[r], R[r].codes[k], (unsigned long long)R[r].by_code[k]);
    fprintf(f, "# HELP clipadapt_request_duration_seconds Time from the request's arrival to its answer.\n"
               "# TYPE clipadapt_request_duration_seconds histogram\n");
    for (int r = 0; r < R_COUNT; r++) {
        if (!R[r].lat_n) continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < N_LAT; b++) {
            cum += R[r].lat[b];
            fprintf(f, "clipadapt_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", ROUTES[r], LAT_B[b], (unsigned long long)cum);
        }
        fprintf(f, "clipadapt_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", ROUTES[r], (unsigned long long)R[r].lat_n);
        fprintf(f, "clipadapt_request_duration_seconds_sum{route=\"%s\"} %.6f\n", ROUTES[r], R[r].lat_sum);
        fprintf(f, "clipadapt_request_duration_seconds_count{route=\"%s\"} %llu\n", ROUTES[r], (unsigned long long)R[r].lat_n);
    }
    fprintf(f, "# HELP clipadapt_batch_size Images per encoder call.\n# TYPE clipadapt_batch_size histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b < N_BATCH; b++) {
        cum += batch_hist[b];
        fprintf(f, "clipadapt_batch_size_bucket{le=\"%d\"} %llu\n", BATCH_B[b], (unsigned long long)cum);
    }
    fprintf(f, "clipadapt_batch_size_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)batch_n);
    fprintf(f, "clipadapt_batch_size_sum %llu\nclipadapt_batch_size_count %llu\n", (unsigned long long)batch_sum, (unsigned long long)batch_n);
    fprintf(f, "# HELP clipadapt_examples_added_total Examples added through the API.\n# TYPE clipadapt_examples_added_total counter\n"
               "clipadapt_examples_added_total %llu\n", (unsigned long long)examples);
    fprintf(f, "# HELP clipadapt_refits_total Background refits finished, by outcome.\n# TYPE clipadapt_refits_total counter\n"
               "clipadapt_refits_total{outcome=\"ok\"} %llu\nclipadapt_refits_total{outcome=\"failed\"} %llu\n",
            (unsigned long long)refits_ok, (unsigned long long)refits_failed);
    fprintf(f, "# HELP clipadapt_slow_connections_closed_total Connections closed because their request did not arrive within --timeout (headers) or --request-timeout (body).\n"
               "# TYPE clipadapt_slow_connections_closed_total counter\nclipadapt_slow_connections_closed_total %llu\n", (unsigned long long)slow_closed);
    pthread_mutex_unlock(&mu);
    fprintf(f, "# HELP clipadapt_queue_depth Requests accepted and not yet answered (decode, encode, finish).\n"
               "# TYPE clipadapt_queue_depth gauge\nclipadapt_queue_depth %d\n", queue_depth);
    fprintf(f, "# HELP clipadapt_connections_in_flight Requests being received or served.\n"
               "# TYPE clipadapt_connections_in_flight gauge\nclipadapt_connections_in_flight %d\n", in_flight);
    fclose(f);
    return buf;
}
