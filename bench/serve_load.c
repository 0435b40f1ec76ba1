/* serve_load.c — a load generator for `clipadapt serve` (make bench): N keep-alive connections to
 * 127.0.0.1 (never anything else), each POSTing the same body until the request count or the time
 * bound is reached; prints throughput and latency percentiles. A bench tool, not a general HTTP
 * client: it reads only what it needs of the answers (status line, Content-Length).
 * Usage: serve_load PORT PATH BODY_FILE CONCURRENCY REQUESTS MAX_SECONDS
 *        serve_load --encode-single MODEL IMAGE N  the reference for latency: the time to encode
 *            IMAGE, decoded and preprocessed once, N times one image per call, on a model loaded
 *            and a session made as serve makes them (same threads): serve's work minus HTTP and
 *            decoding
 *        serve_load --make-input OUT N R        random `images` [N,3,R,R] for `clipadapt encode`
 *        serve_load --make-classifier OUT D C K  a tip-adapter on random D-d features, C classes x K shots
 */
#include "clipadapt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, total, conc;
static double max_s, t_start;
static const char *path;
static char *body;
static size_t body_len;
static double *lat;
/* the server's own account of each answered request (its timings_ms), stage by stage */
static const char *const stage_names[] = {"receive", "wait_decode", "decode", "wait_encode", "encode", "finish", "total"};
#define NSTAGES (int)(sizeof stage_names / sizeof stage_names[0])
static double *stage_ms[NSTAGES];
static int nstaged;
static int next_req, done_ok, done_err, codes_503;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int connect_lo(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) { if (w < 0 && errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* Stage times from an answer's "timings_ms":{...} into st (-1: absent). */
static void parse_stages(const char *b, double *st) {
    for (int k = 0; k < NSTAGES; k++) st[k] = -1;
    const char *t = strstr(b, "\"timings_ms\":{");
    if (!t) return;
    const char *e = strchr(t, '}');
    for (int k = 0; k < NSTAGES; k++) {
        char key[32];
        snprintf(key, sizeof key, "\"%s\":", stage_names[k]);
        const char *p = strstr(t, key);
        if (p && (!e || p < e)) st[k] = atof(p + strlen(key));
    }
}

/* One request on fd; returns the HTTP status, or -1 when the connection failed; st: its stages. */
static int one_request(int fd, double *st) {
    char hdr[512];
    int hn = snprintf(hdr, sizeof hdr, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n"
                                       "Content-Type: application/octet-stream\r\n\r\n", path, body_len);
    if (send_all(fd, hdr, (size_t)hn) || send_all(fd, body, body_len)) return -1;
    char buf[65536];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have == sizeof buf - 1) return -1;
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0) return -1;
        have += (size_t)r;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    int code = atoi(buf + 9);
    long clen = 0;
    for (char *l = strstr(buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
        if (!strncasecmp(l + 2, "Content-Length:", 15)) clen = atol(l + 17);
    size_t got = have - (size_t)(end + 4 - buf);
    while ((long)got < clen) {   /* the answers are small: keep what fits, for the stages */
        size_t room = sizeof buf - 1 - have;
        ssize_t r = room ? recv(fd, buf + have, room, 0) : recv(fd, buf, sizeof buf, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
        if (room) { have += (size_t)r; buf[have] = 0; }
    }
    parse_stages(end + 4, st);
    return code;
}

static void *client(void *arg) {
    (void)arg;
    int fd = connect_lo();
    for (;;) {
        pthread_mutex_lock(&mu);
        int i = next_req < total && now() - t_start < max_s ? next_req++ : -1;
        pthread_mutex_unlock(&mu);
        if (i < 0) break;
        if (fd < 0 && (fd = connect_lo()) < 0) { pthread_mutex_lock(&mu); done_err++; pthread_mutex_unlock(&mu); continue; }
        double t0 = now(), st[NSTAGES];
        int code = one_request(fd, st);
        double dt = now() - t0;
        pthread_mutex_lock(&mu);
        if (code == 200 && st[NSTAGES - 1] >= 0) {
            for (int k = 0; k < NSTAGES; k++) stage_ms[k][nstaged] = st[k];
            nstaged++;
        }
        if (code == 200) lat[done_ok++] = dt;
        else { done_err++; if (code == 503) codes_503++; }
        pthread_mutex_unlock(&mu);
        if (code < 0) { close(fd); fd = -1; }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted x[0..n) by the nearest rank (the smallest value with at least q*n at
 * or below it): p99 of 500 answers is the 495th, not an interpolation. */
static double pct(const double *x, int n, double q) {
    if (n <= 0) return 0;
    int r = (int)ceil(q * n);
    if (r < 1) r = 1;
    return x[r - 1];
}

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) {   /* xorshift64, uniform in [-1, 1) */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}
static void unit(float *x, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)x[i] * x[i];
    for (int i = 0; i < d; i++) x[i] = (float)(x[i] / sqrt(s));
}

static int make_input(const char *out, int n, int r) {
    size_t m = (size_t)n * 3 * r * r;
    float *x = malloc(sizeof(float) * m);
    for (size_t i = 0; i < m; i++) x[i] = 2 * frand();
    ca_st_writer *w = ca_st_writer_new();
    int64_t shape[4] = {n, 3, r, r};
    ca_status st = ca_st_writer_add(w, "images", CA_DT_F32, 4, shape, x);
    if (!st) st = ca_st_writer_save(w, out);
    ca_st_writer_free(w);
    free(x);
    if (st) fprintf(stderr, "%s\n", ca_last_error());
    return st ? 1 : 0;
}

static int make_classifier(const char *out, int d, int c, int k) {
    int n = c * k, nv = c * 2;
    float *x = malloc(sizeof(float) * (size_t)(n + nv + c) * d);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)(n + nv));
    for (int i = 0; i < (n + nv + c) * d; i++) x[i] = frand();
    for (int i = 0; i < n + nv + c; i++) unit(x + (size_t)i * d, d);
    for (int i = 0; i < n + nv; i++) y[i] = i % c;
    ca_fit_data fd = {.num_classes = c, .dim = d, .text_w = x + (size_t)(n + nv) * d};
    fd.train = (ca_split){.n = n, .dim = d, .x = x, .y = y};
    fd.val = (ca_split){.n = nv, .dim = d, .x = x + (size_t)n * d, .y = y + n};
    ca_status st;
    ca_classifier *clf = ca_fit("tip-adapter", &fd, NULL, &st);
    if (clf) st = ca_classifier_save(clf, out, NULL);
    if (st) fprintf(stderr, "%s\n", ca_last_error());
    ca_classifier_free(clf);
    free(x); free(y);
    return st ? 1 : 0;
}

static int encode_single(const char *model, const char *image, int n) {
    ca_status st;
    ca_model_params mp = ca_model_default_params();
    mp.load_text = 0;   /* as serve without --bpe */
    ca_model *m = ca_model_load(model, &mp, &st);
    ca_session_params sp = ca_session_default_params();
    ca_session *s = m ? ca_session_new(m, &sp, &st) : NULL;
    ca_image *img = s ? ca_image_load(image, NULL, &st) : NULL;
    if (!img) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    ca_model_info in;
    ca_model_get_info(m, &in);
    float *px = malloc(sizeof(float) * 3 * (size_t)in.image_size * in.image_size), *out = malloc(sizeof(float) * (size_t)in.embed_dim);
    double *t = malloc(sizeof(double) * (size_t)n), sum = 0;
    if (!px || !out || !t || ca_preprocess(img, in.image_size, px) != CA_OK) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
    for (int i = -2; i < n; i++) {   /* two untimed: the session's scratch grows on the first */
        double t0 = now();
        if (ca_session_encode_images(s, px, 1, out) != CA_OK) { fprintf(stderr, "%s\n", ca_last_error()); return 1; }
        if (i >= 0) sum += t[i] = now() - t0;
    }
    qsort(t, (size_t)n, sizeof(double), cmp);
    printf("single-image encode %d images mean %.2f ms p50 %.2f ms p90 %.2f ms p99 %.2f ms\n", n, 1000 * sum / n,
           1000 * pct(t, n, 0.50), 1000 * pct(t, n, 0.90), 1000 * pct(t, n, 0.99));
    free(px); free(out); free(t);
    ca_image_free(img); ca_session_free(s); ca_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--encode-single")) return encode_single(argv[2], argv[3], atoi(argv[4]) > 0 ? atoi(argv[4]) : 1);
    if (argc == 5 && !strcmp(argv[1], "--make-input")) return make_input(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "--make-classifier")) return make_classifier(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc != 7) { fprintf(stderr, "usage: serve_load PORT PATH BODY_FILE CONCURRENCY REQUESTS MAX_SECONDS\n"); return 2; }
    port = atoi(argv[1]); path = argv[2]; conc = atoi(argv[4]); total = atoi(argv[5]); max_s = atof(argv[6]);
    if (port < 1 || port > 65535 || conc < 1 || conc > 1024 || total < 1 || max_s <= 0) { fprintf(stderr, "serve_load: bad arguments\n"); return 2; }
    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 1; }
    fseek(f, 0, SEEK_END);
    body_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    body = malloc(body_len ? body_len : 1);
    if (!body || fread(body, 1, body_len, f) != body_len) { fprintf(stderr, "%s: cannot read\n", argv[3]); return 1; }
    fclose(f);
    lat = malloc(sizeof(double) * (size_t)total);
    for (int k = 0; k < NSTAGES; k++) stage_ms[k] = malloc(sizeof(double) * (size_t)total);
    pthread_t *th = malloc(sizeof(pthread_t) * (size_t)conc);
    t_start = now();
    for (int i = 0; i < conc; i++) pthread_create(&th[i], NULL, client, NULL);
    for (int i = 0; i < conc; i++) pthread_join(th[i], NULL);
    double el = now() - t_start;
    qsort(lat, (size_t)done_ok, sizeof(double), cmp);
    printf("concurrency %d requests %d ok %d errors %d (503: %d) seconds %.2f throughput %.2f req/s p50 %.2f ms p90 %.2f ms p99 %.2f ms\n",
           conc, done_ok + done_err, done_ok, done_err, codes_503, el, done_ok / el,
           1000 * pct(lat, done_ok, 0.50), 1000 * pct(lat, done_ok, 0.90), 1000 * pct(lat, done_ok, 0.99));
    if (nstaged) {   /* the server's stages (stderr: the bench parses stdout's one line) */
        fprintf(stderr, "server stages over %d answers, ms p50/p90/p99:", nstaged);
        for (int k = 0; k < NSTAGES; k++) {
            qsort(stage_ms[k], (size_t)nstaged, sizeof(double), cmp);
            fprintf(stderr, " %s %.2f/%.2f/%.2f", stage_names[k], pct(stage_ms[k], nstaged, 0.50), pct(stage_ms[k], nstaged, 0.90), pct(stage_ms[k], nstaged, 0.99));
        }
        fprintf(stderr, "\n");
    }
    for (int k = 0; k < NSTAGES; k++) free(stage_ms[k]);
    free(lat); free(th); free(body);
    return done_err ? 1 : 0;
}
