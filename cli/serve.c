/* serve.c — `clipadapt serve`: a few-shot classifier as an HTTP service (libmicrohttpd does the
 * HTTP; this file routes requests, enforces the limits and API key, and drains on SIGTERM).
 * Requests that need work are suspended and handed to serve_work.c; the answer resumes them, so
 * a slow or vanished client costs a socket, never a worker. Not the batching (serve_work.c) nor
 * the classifier store (serve_store.c).
 */
#include "cli.h"
#include "serve_job.h"
#include "serve_metrics.h"
#include "serve_page.h"
#include "serve_store.h"
#include "serve_work.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    srv *s;
    route_id route;
    double t0;
    char name[SRV_NAME_MAX + 2];   /* one more than a valid name, so a long one stays invalid */
    uint8_t *body; size_t len, cap;
    int too_big, counted;
    job *j;
    struct MHD_Connection *conn;
    int http; char *resp;        /* an answer decided without a job */
    int retry_after;
    struct conn *cn;             /* its connection's record (deadlines), or NULL */
} req;

/* A connection's deadline record (the sweeper's view; under g_conn_mu). A request must send its
 * headers within --timeout and its whole body within --request-timeout of its start (the
 * connection's opening or the previous answer), however it trickles them: libmicrohttpd's own
 * timeout counts idle time only, so a client sending a byte a second would hold its connection
 * forever. Not counted while the request waits for its answer or the answer is being sent. */
typedef struct conn {
    int fd;
    double t_req;                /* start of the current request */
    int headers_done, busy;
    struct conn *prev, *next;
} conn;
static conn *g_conns;
static pthread_mutex_t g_conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_conn_cv = PTHREAD_COND_INITIALIZER;
static int g_sweep_stop;

static srv S;
static long g_requests_in_flight;          /* requests being received or served */
static size_t g_body_bytes, g_body_budget; /* upload bytes held in memory, and their bound */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void conn_state(req *r, int busy) {
    if (!r->cn) return;
    pthread_mutex_lock(&g_conn_mu);
    r->cn->busy = busy;
    pthread_mutex_unlock(&g_conn_mu);
}

/* ---- answering ---- */

static enum MHD_Result answer(req *r, int http, const char *ctype, const char *body, int copy_free) {
    struct MHD_Response *rs = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                              copy_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!rs) { if (copy_free) free((void *)body); return MHD_NO; }
    MHD_add_response_header(rs, "Content-Type", ctype);
    MHD_add_response_header(rs, "Cache-Control", "no-store");
    MHD_add_response_header(rs, "X-Content-Type-Options", "nosniff");
    if (http == 503) MHD_add_response_header(rs, "Retry-After", "1");
    if (http == 405) {
        const char *allow = r->route == R_PUT || r->route == R_DELETE ? "PUT, DELETE"
                          : r->route == R_CLASSIFY || r->route == R_EMBED || r->route == R_EXAMPLES || r->route == R_REFIT ? "POST" : "GET, HEAD";
        MHD_add_response_header(rs, "Allow", allow);
    }
    if (http == 401) MHD_add_response_header(rs, "WWW-Authenticate", "Bearer");
    conn_state(r, 1);   /* sending: the deadline no longer applies */
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)http, rs);
    MHD_destroy_response(rs);
    if (!r->counted) { r->counted = 1; metrics_request(r->route, http, srv_now() - r->t0); }
    return ret;
}

static enum MHD_Result answer_json(req *r, int http, char *json) {
    if (!json) return answer(r, 503, "application/json", "{\"error\":\"out of memory\"}", 0);
    return answer(r, http, "application/json", json, 1);
}

static enum MHD_Result answer_error(req *r, int http, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result answer_error(req *r, int http, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return answer_json(r, http, js);
}

/* ---- routing ---- */

static route_id route_of(const char *url, char *name, const char **sub) {
    *sub = NULL; name[0] = 0;
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) return R_PAGE;
    if (!strcmp(url, "/health")) return R_HEALTH;
    if (!strcmp(url, "/v1/info")) return R_INFO;
    if (!strcmp(url, "/v1/classify")) return R_CLASSIFY;
    if (!strcmp(url, "/v1/embed")) return R_EMBED;
    if (!strcmp(url, "/metrics")) return R_METRICS;
    const char *pre = "/v1/classifiers/";
    if (strncmp(url, pre, strlen(pre)) != 0) return R_OTHER;
    const char *p = url + strlen(pre), *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n > SRV_NAME_MAX + 1) n = SRV_NAME_MAX + 1;
    snprintf(name, SRV_NAME_MAX + 2, "%.*s", (int)n, p);   /* name: SRV_NAME_MAX + 2 bytes */
    if (!slash) return R_PUT;   /* PUT or DELETE, told apart by the method */
    *sub = slash + 1;
    if (!strcmp(slash, "/examples")) return R_EXAMPLES;
    if (!strcmp(slash, "/refit")) return R_REFIT;
    return R_OTHER;
}

static int is_mutating(route_id r) { return r == R_PUT || r == R_DELETE || r == R_EXAMPLES || r == R_REFIT; }

/* Compare in time independent of where the strings differ. */
static int key_ok(const char *got, const char *want) {
    size_t a = strlen(got), b = strlen(want);
    unsigned d = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++) d |= (unsigned)(unsigned char)want[i] ^ (unsigned)(unsigned char)(i < a ? got[i] : 0);
    return d == 0;
}

static void job_done(job *j, void *user) {
    req *r = user;
    (void)j;
    MHD_resume_connection(r->conn);
}

static job *new_job(req *r, job_kind k) {
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = k;
    j->t0 = r->t0;
    j->done = job_done;
    j->done_user = r;
    snprintf(j->clf, sizeof j->clf, "%.*s", SRV_NAME_MAX, r->name);   /* valid by now */
    j->body = r->body; j->len = r->len;    /* the job owns the upload from here */
    r->body = NULL; r->len = 0;            /* r->cap stays counted in g_body_bytes until the request completes */
    return j;
}

/* Suspend the connection and hand the job to the workers; 503 when the queue is full. */
static enum MHD_Result dispatch(req *r, job *j) {
    if (!j) return answer_error(r, 503, "out of memory");
    r->j = j;
    j->t_body = srv_now();
    conn_state(r, 1);
    MHD_suspend_connection(r->conn);
    if (work_submit(r->s, j) != 0) {
        job_error(j, 503, "server busy: %d requests in the queue; retry shortly", r->s->o.max_queue);
        MHD_resume_connection(r->conn);
    }
    return MHD_YES;
}

static int valid_label(const char *l) {
    size_t n = strlen(l);
    if (n < 1 || n > SRV_LABEL_MAX) return 0;
    for (size_t i = 0; i < n; i++) if ((unsigned char)l[i] < 0x20 || l[i] == 0x7f) return 0;
    return 1;
}

static char *info_json(srv *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", s->o.model);
    cJSON_AddNumberToObject(o, "embed_dim", s->embed_dim);
    cJSON_AddBoolToObject(o, "text", s->has_text);
    cJSON *m = cJSON_AddArrayToObject(o, "methods");
    for (const char *const *p = ca_method_names(); *p; p++) cJSON_AddItemToArray(m, cJSON_CreateString(*p));
    cJSON *lm = cJSON_AddArrayToObject(o, "live_methods");
    const char *live[] = {"tip-adapter", "tip-adapter-f", "tip-cache", "prototype"};
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(lm, cJSON_CreateString(live[i]));
    cJSON *lim = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(lim, "max_body", (double)s->o.max_body);
    cJSON_AddNumberToObject(lim, "max_pixels", (double)s->o.max_pixels);
    cJSON_AddNumberToObject(lim, "max_batch", s->o.max_batch);
    cJSON_AddNumberToObject(lim, "max_queue", s->o.max_queue);
    cJSON_AddBoolToObject(o, "api_key", s->o.api_key != NULL);
    cJSON_AddBoolToObject(o, "persistent", s->o.data_dir != NULL);
    char *cl = store_info_json(s);
    cJSON *ca = cl ? cJSON_Parse(cl) : NULL;
    free(cl);
    cJSON_AddItemToObject(o, "classifiers", ca ? ca : cJSON_CreateArray());
    char *r = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return r;
}

static enum MHD_Result route(req *r, const char *method) {
    srv *s = r->s;
    struct MHD_Connection *c = r->conn;
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    switch (r->route) {
    case R_PAGE:
        if (!get) return answer_error(r, 405, "use GET");
        return answer(r, 200, "text/html; charset=utf-8", SERVE_PAGE_HTML, 0);
    case R_HEALTH:
        if (!get) return answer_error(r, 405, "use GET");
        return answer(r, 200, "application/json", "{\"status\":\"ok\"}", 0);
    case R_INFO:
        if (!get) return answer_error(r, 405, "use GET");
        return answer_json(r, 200, info_json(s));
    case R_METRICS: {
        if (!get) return answer_error(r, 405, "use GET");
        pthread_mutex_lock(&g_mu);
        long inf = g_requests_in_flight;
        pthread_mutex_unlock(&g_mu);
        char *t = metrics_text(work_in_flight(s), (int)inf);
        if (!t) return answer_error(r, 503, "out of memory");
        return answer(r, 200, "text/plain; version=0.0.4; charset=utf-8", t, 1);
    }
    case R_CLASSIFY: case R_EMBED: case R_EXAMPLES: {
        if (!post) return answer_error(r, 405, "use POST");
        if (!r->len) return answer_error(r, 400, "empty body: send the image bytes%s", r->route == R_EMBED ? " or JSON {\"texts\": [...]}" : "");
        if (r->route == R_EMBED) {
            const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
            int is_json = ct && !strncasecmp(ct, "application/json", 16);
            if (is_json && !s->has_text) return answer_error(r, 400, "text embedding needs the model's text tower and --bpe");
            return dispatch(r, new_job(r, is_json ? J_EMBED_TEXT : J_EMBED_IMAGE));
        }
        if (r->route == R_CLASSIFY) {
            const char *cn = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "classifier");
            if (cn && *cn) snprintf(r->name, sizeof r->name, "%s", cn);   /* too long: stays invalid */
            else if (store_default_name(s, r->name, sizeof r->name)) return answer_error(r, 400, "name a classifier: ?classifier=NAME (GET /v1/info lists them)");
        }
        void *ref;
        if (!valid_name(r->name) || !store_acquire(s, r->name, &ref)) return answer_error(r, 404, "unknown classifier '%s'", r->name);
        store_release(s, ref);
        job *j;
        if (r->route == R_CLASSIFY) {
            long k = 5;
            const char *tk = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "top_k");
            if (tk && (cli_int(tk, &k) || k < 1 || k > 100000)) return answer_error(r, 400, "top_k must be an integer >= 1");
            if (!(j = new_job(r, J_CLASSIFY))) return answer_error(r, 503, "out of memory");
            j->top_k = (int)k;
        } else {
            const char *l = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "label");
            if (!l || !valid_label(l)) return answer_error(r, 400, "label: give ?label=CLASS (1 to %d bytes, no control characters)", SRV_LABEL_MAX);
            if (!(j = new_job(r, J_ADD))) return answer_error(r, 503, "out of memory");
            snprintf(j->label, sizeof j->label, "%s", l);
        }
        return dispatch(r, j);
    }
    case R_PUT: case R_DELETE: {
        int put = !strcmp(method, "PUT"), del = !strcmp(method, "DELETE");
        if (!put && !del) return answer_error(r, 405, "use PUT or DELETE");
        if (del) r->route = R_DELETE;
        if (!valid_name(r->name)) return answer_error(r, 400, "bad classifier name: 1 to %d of letters, digits, '_', '-', '.', starting with a letter or digit", SRV_NAME_MAX);
        if (put && !r->len) return answer_error(r, 400, "empty body: send a classifier file (clipadapt fit --output)");
        return dispatch(r, new_job(r, del ? J_DELETE : J_PUT));
    }
    case R_REFIT: {
        if (!post) return answer_error(r, 405, "use POST");
        if (!valid_name(r->name)) return answer_error(r, 404, "unknown classifier");
        const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "method");
        job tmp;
        memset(&tmp, 0, sizeof tmp);
        snprintf(tmp.clf, sizeof tmp.clf, "%.*s", SRV_NAME_MAX, r->name);
        snprintf(tmp.method, sizeof tmp.method, "%s", m && *m ? m : "tip-adapter");
        const char *sd = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seed");
        long seed = 1;
        if (sd && (cli_int(sd, &seed) || seed < 0)) return answer_error(r, 400, "seed must be an integer >= 0");
        tmp.seed = (uint64_t)seed;
        store_refit(s, &tmp);
        enum MHD_Result ret = answer_json(r, tmp.http, tmp.resp);
        return ret;
    }
    default:
        return answer_error(r, 404, "no such route (GET /v1/info; see docs/serve.md)");
    }
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)cls; (void)version;
    req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        r->s = &S;
        r->conn = c;
        r->t0 = srv_now();
        const char *sub;
        r->route = route_of(url, r->name, &sub);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context) {
            r->cn = ci->socket_context;
            pthread_mutex_lock(&g_conn_mu);
            r->cn->headers_done = 1;
            pthread_mutex_unlock(&g_conn_mu);
        }
        if (!strcmp(method, "DELETE") && r->route == R_PUT) r->route = R_DELETE;
        pthread_mutex_lock(&g_mu);
        g_requests_in_flight++;
        pthread_mutex_unlock(&g_mu);
        if (S.o.api_key && is_mutating(r->route)) {
            const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
            if (!h || strncmp(h, "Bearer ", 7) || !key_ok(h + 7, S.o.api_key))
                return answer_error(r, 401, "this route needs 'Authorization: Bearer <api key>'");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > S.o.max_body) { r->too_big = 1; return answer_error(r, 413, "request body of %s bytes is over --max-body %zu", cl, S.o.max_body); }
            /* the whole body is reserved at once: uploads growing side by side could otherwise
             * each hold part of the budget and all be refused */
            if (n > 0) {
                pthread_mutex_lock(&g_mu);
                int over = g_body_bytes + n > g_body_budget;
                if (!over) g_body_bytes += n;
                pthread_mutex_unlock(&g_mu);
                if (!over && !(r->body = malloc(n))) { pthread_mutex_lock(&g_mu); g_body_bytes -= n; pthread_mutex_unlock(&g_mu); over = 1; }
                if (over) { r->http = 503; return answer_error(r, 503, "server busy: too many uploads in memory; retry shortly"); }
                r->cap = n;
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_big || r->http) return MHD_YES;   /* already refused: discard the rest */
        if (r->len + n > S.o.max_body) {
            r->too_big = 1;
            free(r->body); r->body = NULL;
            pthread_mutex_lock(&g_mu); g_body_bytes -= r->cap; pthread_mutex_unlock(&g_mu);
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 65536;
            while (cap < r->len + n) cap *= 2;
            if (cap > S.o.max_body) cap = S.o.max_body;
            pthread_mutex_lock(&g_mu);
            int over = g_body_bytes + (cap - r->cap) > g_body_budget;
            if (!over) g_body_bytes += cap - r->cap;
            pthread_mutex_unlock(&g_mu);
            uint8_t *b = over ? NULL : realloc(r->body, cap);
            if (!b) {   /* the server holds too many uploads: refuse, bounded memory first */
                if (!over) { pthread_mutex_lock(&g_mu); g_body_bytes -= cap - r->cap; pthread_mutex_unlock(&g_mu); }
                r->http = 503;
                return MHD_YES;
            }
            r->body = b; r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    /* the whole request is here (or its job has finished) */
    if (r->j) {
        job *j = r->j;
        if (!j->resp) job_error(j, 500, "internal error: no answer");
        char *resp = j->resp;
        j->resp = NULL;
        return answer_json(r, j->http, resp);
    }
    if (r->too_big) return answer_error(r, 413, "request body is over --max-body %zu bytes", S.o.max_body);
    if (r->http == 503) return answer_error(r, 503, "server busy: too many uploads in memory; retry shortly");
    return route(r, method);
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decoding of the path and query (MHD's callback): as MHD's own, except that %00 stays
 * as it is, so a NUL can never cut a classifier name or label short. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls; (void)c;
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && r[1] && r[2] && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls; (void)c; (void)toe;
    req *r = *con_cls;
    if (!r) return;
    if (!r->counted) metrics_request(r->route, 499, srv_now() - r->t0);   /* the client went away */
    pthread_mutex_lock(&g_mu);
    g_requests_in_flight--;
    g_body_bytes -= r->cap;
    pthread_mutex_unlock(&g_mu);
    if (r->cn) {   /* the next request on this connection starts now */
        pthread_mutex_lock(&g_conn_mu);
        r->cn->t_req = srv_now();
        r->cn->headers_done = r->cn->busy = 0;
        pthread_mutex_unlock(&g_conn_mu);
    }
    job_free(r->j);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe) {
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *cn = ci ? calloc(1, sizeof *cn) : NULL;
        *socket_context = cn;
        if (!cn) return;   /* untracked: libmicrohttpd's idle timeout still applies */
        cn->fd = ci->connect_fd;
        cn->t_req = srv_now();
        pthread_mutex_lock(&g_conn_mu);
        cn->next = g_conns;
        if (g_conns) g_conns->prev = cn;
        g_conns = cn;
        pthread_mutex_unlock(&g_conn_mu);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        /* called before libmicrohttpd closes the socket: once the record is unlinked here the
         * sweeper can never shut down a descriptor number reused by a newer connection */
        conn *cn = *socket_context;
        pthread_mutex_lock(&g_conn_mu);
        if (cn->prev) cn->prev->next = cn->next; else g_conns = cn->next;
        if (cn->next) cn->next->prev = cn->prev;
        pthread_mutex_unlock(&g_conn_mu);
        free(cn);
        *socket_context = NULL;
    }
}

/* Every 250 ms: shut down the sockets of requests past their deadline (see struct conn);
 * libmicrohttpd then sees the end of the stream and closes the connection in its own thread. */
static void *sweeper_main(void *arg) {
    const srv_opts *o = arg;
    pthread_mutex_lock(&g_conn_mu);
    while (!g_sweep_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000;
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&g_conn_cv, &g_conn_mu, &ts);
        double now = srv_now();
        for (conn *cn = g_conns; cn; cn = cn->next) {
            double limit = cn->headers_done ? o->request_timeout_s : o->timeout_s;
            if (!cn->busy && cn->fd >= 0 && now - cn->t_req > limit) {
                shutdown(cn->fd, SHUT_RDWR);
                cn->fd = -1;   /* once */
                metrics_slow_closed();
            }
        }
    }
    pthread_mutex_unlock(&g_conn_mu);
    return NULL;
}

static int listen_on(const char *host, int port, int *bound_port, char *err, size_t errn) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) { snprintf(err, errn, "--host %s: %s", host, gai_strerror(rc)); return -1; }
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 256) == 0) break;
        snprintf(err, errn, "%s port %d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* --classifier NAME=FILE (repeatable): appended to the list at dst. */
typedef struct { char **v; int n; } clf_list;
static int take_classifier(const char *cmd, const char *v, void *dst) {
    clf_list *l = dst;
    l->v[l->n++] = (char *)v;   /* room for argc entries: at most one per argument */
    (void)cmd;
    return 0;
}

static int parse_size(const char *v, size_t *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || errno || !(d >= 0)) return -1;
    double mul = 1;
    if (*end == 'K' || *end == 'k') { mul = 1024; end++; }
    else if (*end == 'M' || *end == 'm') { mul = 1024 * 1024; end++; }
    else if (*end == 'G' || *end == 'g') { mul = 1024.0 * 1024 * 1024; end++; }
    if (*end == 'B' || *end == 'b') end++;
    if (*end || d * mul > 4.0 * 1024 * 1024 * 1024) return -1;
    *out = (size_t)(d * mul);
    return 0;
}

/* --max-body and --max-body-total SIZE: bytes with an optional K/M/G suffix. */
static int take_size_named(const char *cmd, const char *flag, const char *v, void *dst) {
    if (!parse_size(v, dst) && *(size_t *)dst >= 1) return 0;
    cli_usage(cmd, "%s wants a size of at least 1 byte such as 20M (K, M, G suffixes), got '%s'", flag, v);
    return 1;
}
static int take_size(const char *cmd, const char *v, void *dst) { return take_size_named(cmd, "--max-body", v, dst); }
static int take_size_total(const char *cmd, const char *v, void *dst) { return take_size_named(cmd, "--max-body-total", v, dst); }

static int take_pixels(const char *cmd, const char *v, void *dst) {
    long n;
    if (!cli_int(v, &n) && n >= 1) { *(int64_t *)dst = n; return 0; }
    cli_usage(cmd, "--max-pixels wants an integer >= 1, got '%s'", v);
    return 1;
}

int cmd_serve(int argc, char **argv) {
    srv_opts o = {.host = "127.0.0.1", .port = 8080, .workers = 2, .max_batch = 32, .batch_wait_ms = 5,
                  .max_queue = 256, .timeout_s = 30, .max_body = 20u << 20, .max_pixels = 50000000,
                  .max_connections = 1000, .request_timeout_s = 120, .templates = "simple", .act = CA_ACTIVATION_AUTO};
    clf_list cl = {calloc((size_t)argc + 1, sizeof(char *)), 0};
    char **clfs = cl.v;
    if (!clfs) return cli_error("out of memory");
    cli_opt t[] = {
        {.name = "--model", .kind = CLI_STR, .dst = &o.model, .metavar = "W", .section = "model",
         .help = "CLIP checkpoint, any format clipadapt reads (chosen by content) (required)"},
        cli_opt_str("--config", &o.config, "C", "Hugging Face config.json or OpenCLIP open_clip_config.json (optional)"),
        cli_opt_act(&o.act),
        cli_opt_int("--threads", &o.threads, 0, 4096, "N", "threads of the image encoder (default: all cores)"),
        cli_opt_flag("--bf16", &o.bf16, "BF16 image encoder (AVX512-BF16; faster, features within ~1% of float32)"),
        cli_opt_str("--bpe", &o.bpe, "VOCAB", "CLIP BPE vocabulary: enables text embedding and new classes of classifiers "
                                               "with text weights (default $CLIPADAPT_BPE)"),
        cli_opt_str("--templates", &o.templates, "NAME|FILE", "prompt templates for a new class's text weight (default simple)"),
        {.name = "--classifier", .kind = CLI_FN, .fn = take_classifier, .dst = &cl, .metavar = "NAME=FILE", .section = "classifiers",
         .help = "serve the classifier file FILE (from `clipadapt fit`) as NAME; repeatable; NAME defaults to FILE's base name"},
        cli_opt_str("--data-dir", &o.data_dir, "DIR", "keep uploaded classifiers and added examples here (fsync'd before the answer; "
                                                     "a restart serves exactly the acknowledged ones); without it, in memory only"),
        {.name = "--host", .kind = CLI_STR, .dst = &o.host, .metavar = "H", .section = "network",
         .help = "address to bind (default 127.0.0.1; 0.0.0.0 or :: to listen on all)"},
        cli_opt_int("--port", &o.port, 0, 65535, "P", "TCP port (default 8080; 0 picks a free one, printed at start)"),
        cli_opt_str("--api-key", &o.api_key, "KEY", "PUT, DELETE, examples and refit need 'Authorization: Bearer KEY' "
                                                   "(default $CLIPADAPT_API_KEY)"),
        cli_opt_int("--timeout", &o.timeout_s, 1, 3600, "S", "close a connection idle, or sending too slowly, for S seconds (default 30)"),
        cli_opt_int("--request-timeout", &o.request_timeout_s, 1, 86400, "S",
                    "close a connection whose request (headers and body) has not fully arrived S seconds after it "
                    "began, however it trickles (default 120; headers alone: --timeout)"),
        cli_opt_int("--max-connections", &o.max_connections, 1, 100000, "N",
                    "open connections at once; beyond it new ones are closed at accept (default 1000)"),
        {.name = "--max-body", .kind = CLI_FN, .fn = take_size, .dst = &o.max_body, .metavar = "SIZE", .section = "limits",
         .help = "largest request body, bytes with an optional K/M/G suffix (default 20M); larger: 413"},
        {.name = "--max-body-total", .kind = CLI_FN, .fn = take_size_total, .dst = &o.max_body_total, .metavar = "SIZE",
         .help = "request bodies held in memory at once, all requests together (default 256M, or 4 x --max-body when "
                 "larger); an upload beyond it: 503 with Retry-After"},
        {.name = "--max-pixels", .kind = CLI_FN, .fn = take_pixels, .dst = &o.max_pixels, .metavar = "N",
         .help = "largest image in pixels (default 50000000); larger: 413"},
        cli_opt_int("--max-queue", &o.max_queue, 1, 100000, "N", "requests accepted at once; beyond it 503 with Retry-After (default 256)"),
        {.name = "--max-batch", .kind = CLI_INT, .dst = &o.max_batch, .lo = 1, .hi = 1024, .metavar = "N", .section = "batching",
         .help = "images per encoder call (default 32)"},
        cli_opt_int("--batch-wait-ms", &o.batch_wait_ms, 0, 10000, "MS",
                    "longest wait for more images to batch, while some are on their way (default 5)"),
        cli_opt_int("--workers", &o.workers, 1, 64, "N", "decode and preprocess threads (default 2)"),
    };
    cli_cmd cmd = {"serve", "--model W [--classifier NAME=FILE]... [options]",
                   "Serve few-shot classifiers over HTTP (JSON): the model is loaded once and shared; requests\n"
                   "arriving together are encoded together; examples added to a tip-adapter, tip-adapter-f,\n"
                   "tip-cache or prototype classifier are used by the next request, with no training.",
                   "Routes: GET / (web page), GET /health, GET /v1/info, POST /v1/classify?classifier=N&top_k=K\n"
                   "(image bytes), POST /v1/embed (image bytes, or JSON {\"texts\": [...]}), PUT and DELETE\n"
                   "/v1/classifiers/N, POST /v1/classifiers/N/examples?label=L (image bytes),\n"
                   "POST /v1/classifiers/N/refit?method=M[&seed=S], GET /metrics (Prometheus). See docs/serve.md.\n"
                   "SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.\n",
                   t, (int)(sizeof t / sizeof t[0]), NULL};
    int pr = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (pr) { free(clfs); return pr == CLI_HELP ? CLI_OK : pr; }
    int nclf = cl.n;
    if (!o.model) { free(clfs); return cli_usage("serve", "--model is required"); }
    if (!o.api_key && getenv("CLIPADAPT_API_KEY") && *getenv("CLIPADAPT_API_KEY")) o.api_key = getenv("CLIPADAPT_API_KEY");
    if (!o.bpe && getenv("CLIPADAPT_BPE") && *getenv("CLIPADAPT_BPE")) o.bpe = getenv("CLIPADAPT_BPE");
    S.o = o;
    g_body_budget = o.max_body_total ? o.max_body_total : o.max_body * 4 > (size_t)256 << 20 ? o.max_body * 4 : (size_t)256 << 20;
    if (g_body_budget < o.max_body) { free(clfs); return cli_usage("serve", "--max-body-total %zu is below --max-body %zu", g_body_budget, o.max_body); }

    /* signals: every thread blocks them; this one waits for them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[2048] = "";
    int port = 0, rc = CLI_FAIL;
    int lfd = listen_on(o.host, o.port, &port, err, sizeof err);
    struct MHD_Daemon *d = NULL;
    pthread_t sweeper;
    int sweeping = 0;
    if (lfd < 0) { cli_error("%s", err); goto out; }
    if (work_start(&S, clfs, nclf, err, sizeof err)) { cli_error("%s", err); goto out; }
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                         handler, NULL,
                         MHD_OPTION_LISTEN_SOCKET, lfd,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o.timeout_s,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o.max_connections,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                         MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL,
                         MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                         MHD_OPTION_END);
    if (!d) { cli_error("cannot start the HTTP server on %s port %d", o.host, port); goto out; }
    if (pthread_create(&sweeper, NULL, sweeper_main, &S.o) != 0) { cli_error("cannot start a thread"); goto out; }
    sweeping = 1;
    fprintf(stderr, "clipadapt serve: listening on http://%s%s%s:%d/ (model %s, %d classifier%s)\n",
            strchr(o.host, ':') ? "[" : "", o.host, strchr(o.host, ':') ? "]" : "", port, o.model, store_count(&S), store_count(&S) == 1 ? "" : "s");
    fflush(stderr);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "clipadapt serve: %s: finishing the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    MHD_socket q = MHD_quiesce_daemon(d);   /* no new connections; the listening socket is ours again */
    if (q != MHD_INVALID_SOCKET) close(q);
    lfd = -1;
    double t_end = srv_now() + 60;
    for (;;) {
        pthread_mutex_lock(&g_mu);
        long n = g_requests_in_flight;
        pthread_mutex_unlock(&g_mu);
        if (n <= 0 || srv_now() > t_end) break;
        usleep(10000);
    }
    store_drain(&S);
    rc = CLI_OK;
out:
    if (sweeping) {
        pthread_mutex_lock(&g_conn_mu);
        g_sweep_stop = 1;
        pthread_cond_broadcast(&g_conn_cv);
        pthread_mutex_unlock(&g_conn_mu);
        pthread_join(sweeper, NULL);
    }
    if (d) MHD_stop_daemon(d);
    if (lfd >= 0 && !d) close(lfd);
    work_stop(&S);
    store_close(&S);
    free(clfs);
    if (rc == CLI_OK) fprintf(stderr, "clipadapt serve: stopped\n");
    return rc;
}
