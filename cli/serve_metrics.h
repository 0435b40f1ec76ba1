/* serve_metrics.h — Prometheus counters of `clipadapt serve` (serve_metrics.c); calls nothing
 * else of serve. */
#ifndef CA_SERVE_METRICS_H
#define CA_SERVE_METRICS_H

typedef enum { R_PAGE, R_HEALTH, R_INFO, R_CLASSIFY, R_EMBED, R_PUT, R_DELETE, R_EXAMPLES, R_REFIT,
               R_METRICS, R_OTHER, R_COUNT } route_id;
void metrics_request(route_id r, int http, double seconds);
void metrics_batch(int n);
void metrics_example_added(void);
void metrics_refit(int ok);
/* A connection closed because its request did not arrive in time (--timeout, --request-timeout). */
void metrics_slow_closed(void);
/* The exposition text (malloc'd), with two gauges supplied by the caller. */
char *metrics_text(int queue_depth, int in_flight);
const char *route_name(route_id r);

#endif
