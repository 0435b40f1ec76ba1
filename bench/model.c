/* model.c — encoder benchmark on one checkpoint: load time, ms/image at batch 1 and 32 on 1 and
 * 2 threads, GFLOP/s (FLOPs counted from the architecture), text ms/prompt at batch 64, peak
 * RSS, the machine's measured FMA peak and our fraction of it, agreement with the PyTorch
 * reference's features, and the speed ratio against PyTorch timings passed in by bench/run.sh.
 * Usage: model CKPT [--reps N] [--torch-golden F] [--torch-img-ms X] [--torch-text-ms Y]
 *        [--batches 1,32] [--threads 1,2] [--text-batch 64] [--load-only 1]
 * --load-only 1 stops after the load line (load time, of it the packing, weight bytes and peak
 * RSS: what `make bench` reports per format). */
#include "flops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* prompt-like rows as bench/torch_clip.py bench_tokens: SOT, 5..15 ids, EOT, zeros */
static void bench_tokens(int64_t *t, int n, int ctx) {
    ca_rng r = ca_rng_make(7, 0);
    memset(t, 0, sizeof(int64_t) * (size_t)n * ctx);
    for (int i = 0; i < n; i++) {
        int L = 5 + (i * 7) % 11;
        t[(size_t)i * ctx] = CA_TOKEN_SOT;
        for (int k = 1; k <= L; k++) t[(size_t)i * ctx + k] = 1 + ca_rng_below(&r, 48999);
        t[(size_t)i * ctx + L + 1] = CA_TOKEN_EOT;
    }
}

static double time_images(ca_session *m, const float *img, int batch, float *out, int reps) {
    double t[16];
    if (reps > 16) reps = 16;
    ca_session_encode_images(m, img, batch, out); /* warm-up: scratch, page faults */
    for (int r = 0; r < reps; r++) {
        double t0 = ca_now();
        if (ca_session_encode_images(m, img, batch, out) != CA_OK) { fprintf(stderr, "encode failed: %s\n", ca_last_error()); exit(1); }
        t[r] = ca_now() - t0;
    }
    return median(t, reps) * 1e3 / batch;
}

static double time_text(ca_session *m, const int64_t *tok, int batch, float *out, int reps) {
    double t[16];
    if (reps > 16) reps = 16;
    ca_session_encode_text(m, tok, batch, out);
    for (int r = 0; r < reps; r++) {
        double t0 = ca_now();
        if (ca_session_encode_text(m, tok, batch, out) != CA_OK) { fprintf(stderr, "encode failed: %s\n", ca_last_error()); exit(1); }
        t[r] = ca_now() - t0;
    }
    return median(t, reps) * 1e3 / batch;
}

/* max |ours - torch| / (1 + |torch|) */
static double rel_err(const float *a, const float *b, long n, double *maxabs) {
    double w = 0, ma = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > ma) ma = d;
        d /= 1 + fabs((double)b[i]);
        if (!(d <= w)) w = d;
    }
    *maxabs = ma;
    return w;
}

static int check_torch(ca_model *m, const char *path) {
    ca_status st;
    ca_st_file *g = ca_st_open(path, &st);
    if (!g) { printf("  torch check: cannot open %s: %s\n", path, ca_last_error()); return 1; }
    int64_t ish[4];
    float *img = ca_st_load_f32(g, "input.images", 4, NULL, ish, &st);
    float *gi = ca_st_load_f32(g, "output.image_features", 2, NULL, NULL, &st);
    float *gt = ca_st_load_f32(g, "output.text_features", 2, NULL, NULL, &st);
    const ca_tensor_info *ti = ca_st_find(g, "input.tokens");
    int rc = 1;
    if (img && gi && gt && ti) {
        int n = (int)ish[0], nt = (int)ti->shape[0], E = m->info.embed_dim;
        int64_t *tok = malloc(sizeof(int64_t) * (size_t)ti->numel);
        float *fi = malloc(sizeof(float) * n * E), *ft = malloc(sizeof(float) * nt * E);
        ca_tensor_to_i64(ti, tok, ti->numel);
        if (ca_model_encode_images(m, img, n, fi) == CA_OK && ca_model_encode_text(m, tok, nt, ft) == CA_OK) {
            double ai, at, ri = rel_err(fi, gi, (long)n * E, &ai), rt = rel_err(ft, gt, (long)nt * E, &at);
            printf("  vs PyTorch (%d images, %d texts): image max|d| %.2e (rel %.2e), text max|d| %.2e (rel %.2e) -> %s\n",
                   n, nt, ai, ri, at, rt, ri <= 1e-4 && rt <= 1e-4 ? "same features (<= 1e-4)" : "MISMATCH");
            rc = ri <= 1e-4 && rt <= 1e-4 ? 0 : 1;
        }
        free(tok); free(fi); free(ft);
    }
    free(img); free(gi); free(gt);
    ca_st_close(g);
    return rc;
}

static int parse_list(const char *s, int *v, int max) {
    int n = 0;
    while (*s && n < max) {
        v[n++] = atoi(s);
        const char *c = strchr(s, ',');
        if (!c) break;
        s = c + 1;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: model CKPT [--reps N] [--torch-golden F] [--torch-img-ms X] [--torch-text-ms Y]\n"); return 2; }
    const char *path = argv[1], *golden = NULL;
    int reps = 3, batches[4] = {1, 32}, nb = 2, threads[4] = {1, 2}, nth = 2, text_batch = 64, load_only = 0;
    double torch_img = 0, torch_text = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--torch-golden")) golden = argv[i + 1];
        else if (!strcmp(argv[i], "--torch-img-ms")) torch_img = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--torch-text-ms")) torch_text = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--batches")) nb = parse_list(argv[i + 1], batches, 4);
        else if (!strcmp(argv[i], "--threads")) nth = parse_list(argv[i + 1], threads, 4);
        else if (!strcmp(argv[i], "--text-batch")) text_batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--load-only")) load_only = atoi(argv[i + 1]);
        else { fprintf(stderr, "model: unknown option %s\n", argv[i]); return 2; }
    }
    ca_status st;
    double t0 = ca_now();
    ca_model *m = ca_model_load(path, NULL, &st);
    if (!m) { fprintf(stderr, "model: %s: %s\n", path, ca_last_error()); return 1; }
    double t_load = ca_now() - t0, rss_load = peak_rss_mib();
    const char *name = ca_basename(path);
    /* the load packs the weights straight from the mapped file; of its time, the packing */
    printf("== %s: load + pack %.3f s (of it packing %.3f s), %.0f MiB of weights, peak RSS after load %.0f MiB\n",
           name, t_load, m->pack_seconds, ca_model_weight_bytes(m) / 1048576.0, rss_load);
    printf("LOAD | %s | %.3f s | %.3f s | %.0f MiB | %.0f MiB |\n", name, t_load, m->pack_seconds,
           ca_model_weight_bytes(m) / 1048576.0, rss_load);
    if (load_only) { ca_model_free(m); return 0; }
    double peak[4];
    for (int t = 0; t < nth; t++) peak[t] = fma_peak(threads[t]);
    /* GFLOP/s and % of peak count the FLOPs we execute (fl); the model's own count (fl_model) is
     * what the reference computes, for comparison */
    double fl = image_flops(m, 1), fl_model = image_flops(m, 0);
    printf("== %s: %s, %.1f M params, %s weights, %.2f GFLOP/image (model), %.2f executed\n", name,
           m->info.is_vit ? "ViT" : "ResNet", m->info.n_params / 1e6, ca_dtype_name(m->info.dtype), fl_model / 1e9,
           fl / 1e9);
    const char *cpu = ca_cpu_path(NULL);
    printf("  kernels: %s path (%s)\n", cpu ? cpu : "?", strstr(argv[0], "native") ? "-march=native build" : "this build");
    int bad = golden ? check_torch(m, golden) : 0;

    int R = m->vis.image_size, E = m->info.embed_dim, bmax = 1;
    for (int b = 0; b < nb; b++) if (batches[b] > bmax) bmax = batches[b];
    float *img = malloc(sizeof(float) * (size_t)bmax * 3 * R * R), *out = malloc(sizeof(float) * (size_t)(bmax > text_batch ? bmax : text_batch) * E);
    ca_rng rng = ca_rng_make(1, 0);
    for (size_t i = 0; i < (size_t)bmax * 3 * R * R; i++) img[i] = (float)ca_rng_normal(&rng);
    double ms_b32_t2 = 0;
    for (int t = 0; t < nth; t++) {
        ca_session *ss = ca_session_new(m, &(ca_session_params){.threads = threads[t]}, &st);
        for (int b = 0; b < nb; b++) {
            double ms = time_images(ss, img, batches[b], out, batches[b] == 1 ? 2 * reps + 1 : reps);
            double gf = fl / (ms * 1e-3) / 1e9;
            printf("  image  batch %-3d threads %d: %8.2f ms/image  %7.1f GFLOP/s  (%4.1f%% of FMA peak %.0f)\n", batches[b],
                   threads[t], ms, gf, 100 * gf / peak[t], peak[t]);
            if (batches[b] == 32 && threads[t] == 2) ms_b32_t2 = ms;
        }
        ca_session_free(ss);
    }
    int ctx = m->txt.context;
    int64_t *tok = malloc(sizeof(int64_t) * (size_t)text_batch * ctx);
    bench_tokens(tok, text_batch, ctx);
    double tok_eff = 0;
    for (int i = 0; i < text_batch; i++) tok_eff += 5 + (i * 7) % 11 + 2;
    tok_eff /= text_batch;
    double tfl = xformer_flops(&m->txt.tf, tok_eff, 1) + 2.0 * m->txt.width * E;
    double ms_text_t2 = 0;
    for (int t = 0; t < nth; t++) {
        ca_session *ss = ca_session_new(m, &(ca_session_params){.threads = threads[t]}, &st);
        double ms = time_text(ss, tok, text_batch, out, reps);
        ca_session_free(ss);
        printf("  text   batch %-3d threads %d: %8.2f ms/prompt %7.1f GFLOP/s  (%.1f tokens/prompt up to EOT)\n", text_batch,
               threads[t], ms, tfl / (ms * 1e-3) / 1e9, tok_eff);
        if (threads[t] == 2) ms_text_t2 = ms;
    }
    /* optional BF16 compute: speed, and its accuracy loss against the float32 features */
    double ms_bf16 = 0;
    ca_model_params bp = ca_model_default_params();
    bp.compute = CA_COMPUTE_BF16;
    ca_model *mb = ca_model_load(path, &bp, NULL); /* the compute path is fixed at load */
    if (mb) {
        int nb32 = bmax < 32 ? bmax : 32;
        float *ref = malloc(sizeof(float) * (size_t)nb32 * E), *bf = malloc(sizeof(float) * (size_t)nb32 * E);
        ca_model_encode_images(m, img, nb32, ref);
        ca_session *ss = NULL;
        for (int t = 0; t < nth; t++) {
            ca_session_free(ss);
            ss = ca_session_new(mb, &(ca_session_params){.threads = threads[t]}, &st);
            double ms = time_images(ss, img, nb32, bf, reps);
            double gf = fl / (ms * 1e-3) / 1e9;
            printf("  BF16   batch %-3d threads %d: %8.2f ms/image  %7.1f GFLOP/s  (%4.1f%% of F32 FMA peak)\n", nb32, threads[t], ms, gf,
                   100 * gf / peak[t]);
            if (threads[t] == 2) ms_bf16 = ms;
        }
        double mincos = 1, ma, re = rel_err(bf, ref, (long)nb32 * E, &ma);
        for (int i = 0; i < nb32; i++) {
            double ab = 0, aa = 0, bb = 0;
            for (int j = 0; j < E; j++) {
                double x = ref[(size_t)i * E + j], y = bf[(size_t)i * E + j];
                ab += x * y; aa += x * x; bb += y * y;
            }
            if (ab / sqrt(aa * bb) < mincos) mincos = ab / sqrt(aa * bb);
        }
        double tms = time_text(ss, tok, text_batch, out, reps);
        ca_session_free(ss);
        printf("  BF16   text batch %d threads %d: %.2f ms/prompt\n", text_batch, threads[nth - 1], tms);
        printf("  BF16 vs F32 image features (%d images): min cosine %.6f, max|d| %.3g (max rel %.3g)\n", nb32, mincos, ma, re);
        free(ref); free(bf);
        ca_model_free(mb);
    }
    printf("  peak RSS %.0f MiB\n", peak_rss_mib());
    if (torch_img > 0 && ms_b32_t2 > 0)
        printf("  PyTorch image %.1f ms/image (2 threads): ours is %.1fx faster\n", torch_img, torch_img / ms_b32_t2);
    if (torch_text > 0 && ms_text_t2 > 0)
        printf("  PyTorch text  %.2f ms/prompt (2 threads): ours is %.1fx faster\n", torch_text, torch_text / ms_text_t2);
    printf("ROW | %s | %.2f GFLOP | %.1f ms | %.0f GFLOP/s | %.1f ms | %.1fx | %.1f ms | %.2f ms |\n", name, fl / 1e9, ms_b32_t2,
           ms_b32_t2 > 0 ? fl / (ms_b32_t2 * 1e-3) / 1e9 : 0, torch_img, torch_img > 0 && ms_b32_t2 > 0 ? torch_img / ms_b32_t2 : 0,
           ms_bf16, ms_text_t2);
    free(img); free(out); free(tok);
    ca_model_free(m);
    return bad;
}
