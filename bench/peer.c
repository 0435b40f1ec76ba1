/* peer.c — clipadapt's side of the ONNX Runtime / PyTorch comparison (bench/ort.sh): one short
 * process per measurement, so bench/ort.sh can alternate it with the peers' processes on the same
 * input sizes. Prints one JSON line, the same keys bench/ort_clip.mjs and torch_clip.py print.
 * Not a general encoder bench: bench/model.c is that.
 *   peer CKPT info THREADS                  model GFLOP/image (the reference's count, which every
 *                                           engine computes) and the measured FMA peak
 *   peer CKPT time BATCH THREADS REPS [bf16] warm-up + REPS encodes: median and min wall ms/image,
 *                                           CPU ms/image (all threads) over the REPS
 *   peer CKPT check OUT N                   N random images and our float32 features, as a
 *                                           safetensors file (input.images, output.image_features) */
#include "flops.h"

#include <string.h>
#include <time.h>

static double cpu_seconds(void) { /* the whole process: every OpenMP thread */
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void random_images(float *x, size_t n) {
    ca_rng r = ca_rng_make(1, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)ca_rng_normal(&r);
}

static int run_time(const char *path, int batch, int threads, int reps, int bf16) {
    ca_model_params p = ca_model_default_params();
    if (bf16) p.compute = CA_COMPUTE_BF16;
    ca_status st;
    ca_model *m = ca_model_load(path, &p, &st);
    if (!m) { /* no AVX512-BF16: say so as data, so the table shows why the column is empty */
        printf("{\"engine\":\"clipadapt %s\",\"batch\":%d,\"threads\":%d,\"error\":\"%s\"}\n", bf16 ? "BF16" : "F32",
               batch, threads, ca_strerror(st));
        return st == CA_E_UNSUPPORTED ? 0 : 1;
    }
    int R = m->vis.image_size, E = m->info.embed_dim;
    size_t ni = (size_t)batch * 3 * R * R;
    float *img = malloc(sizeof(float) * ni), *out = malloc(sizeof(float) * (size_t)batch * E);
    ca_session *s = ca_session_new(m, &(ca_session_params){.threads = threads}, &st);
    if (!img || !out || !s) { fprintf(stderr, "peer: out of memory\n"); return 1; }
    random_images(img, ni);
    double t[64];
    if (reps > 64) reps = 64;
    if (reps < 1) reps = 1;
    int rc = ca_session_encode_images(s, img, batch, out) != CA_OK; /* warm-up: scratch, page faults */
    double c0 = cpu_seconds();
    for (int r = 0; r < reps && !rc; r++) {
        double t0 = ca_now();
        rc = ca_session_encode_images(s, img, batch, out) != CA_OK;
        t[r] = (ca_now() - t0) * 1e3 / batch;
    }
    double cpu_ms = (cpu_seconds() - c0) * 1e3 / ((double)reps * batch);
    if (rc) fprintf(stderr, "peer: encode failed: %s\n", ca_last_error());
    else {
        double mn = t[0];
        for (int r = 1; r < reps; r++) mn = t[r] < mn ? t[r] : mn;
        printf("{\"engine\":\"clipadapt %s\",\"batch\":%d,\"threads\":%d,\"reps\":%d,\"median_ms\":%.3f,\"min_ms\":%.3f,"
               "\"cpu_ms\":%.3f,\"kernels\":\"%s\"}\n", bf16 ? "BF16" : "F32", batch, threads, reps, median(t, reps), mn, cpu_ms,
               ca_cpu_path(NULL));
    }
    ca_session_free(s);
    free(img); free(out);
    ca_model_free(m);
    return rc;
}

static int run_check(const char *path, const char *outpath, int n) {
    ca_status st;
    ca_model *m = ca_model_load(path, NULL, &st);
    if (!m) { fprintf(stderr, "peer: %s: %s\n", path, ca_last_error()); return 1; }
    int R = m->vis.image_size, E = m->info.embed_dim;
    size_t ni = (size_t)n * 3 * R * R;
    float *img = malloc(sizeof(float) * ni), *out = malloc(sizeof(float) * (size_t)n * E);
    if (!img || !out) { fprintf(stderr, "peer: out of memory\n"); return 1; }
    random_images(img, ni);
    ca_st_writer *w = ca_st_writer_new();
    int rc = ca_model_encode_images(m, img, n, out) != CA_OK || !w ||
             ca_st_writer_add(w, "input.images", CA_DT_F32, 4, (int64_t[]){n, 3, R, R}, img) != CA_OK ||
             ca_st_writer_add(w, "output.image_features", CA_DT_F32, 2, (int64_t[]){n, E}, out) != CA_OK ||
             ca_st_writer_save(w, outpath) != CA_OK;
    if (rc) fprintf(stderr, "peer: %s: %s\n", outpath, ca_last_error());
    ca_st_writer_free(w);
    free(img); free(out);
    ca_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 2 ? argv[2] : "";
    if (!strcmp(cmd, "time") && (argc == 6 || (argc == 7 && !strcmp(argv[6], "bf16"))))
        return run_time(argv[1], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argc == 7);
    if (!strcmp(cmd, "check") && argc == 5) return run_check(argv[1], argv[3], atoi(argv[4]));
    if (!strcmp(cmd, "info") && argc == 4) {
        ca_status st;
        ca_model *m = ca_model_load(argv[1], NULL, &st);
        if (!m) { fprintf(stderr, "peer: %s: %s\n", argv[1], ca_last_error()); return 1; }
        int th = atoi(argv[3]);
        printf("{\"model\":\"%s\",\"gflop\":%.4f,\"threads\":%d,\"fma_peak_gflops\":%.1f}\n", ca_basename(argv[1]),
               image_flops(m, 0) / 1e9, th, fma_peak(th));
        ca_model_free(m);
        return 0;
    }
    fprintf(stderr, "usage: peer CKPT info THREADS | time BATCH THREADS REPS [bf16] | check OUT N\n");
    return 2;
}
