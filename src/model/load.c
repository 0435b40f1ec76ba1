/* load.c — loading a CLIP checkpoint from safetensors: tensor-name scheme detection (OpenAI /
 * OpenCLIP or Hugging Face), architecture inference from shapes alone (as OpenAI's build_model),
 * an optional HF config.json. What is done with each tensor depends on the compute path: for
 * the fast/BF16 paths every matrix is packed into GEMM panels straight from the mapped file (F16
 * into F16 panels, no float32 copy of the model on the way; planned while reading, then packed in
 * parallel into one block, see run_jobs), and only small vectors (norms, biases, embeddings,
 * folded BatchNorm) become float32; for the reference path every weight is
 * converted to float32 in one block (HF q/k/v concatenated, projections stored as (out, in)).
 * Every tensor of a loaded tower must be used: unknown, missing or mis-shaped tensors are
 * refused by name.
 * Not here: the forward passes (vit.c, resnet.c, text.c).
 */
#include "io/safetensors.h"
#include "model/kernels.h"
#include "model/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { TOWER_COMMON = 0, TOWER_VISION = 1, TOWER_TEXT = 2 };

typedef struct {
    const ca_st_file *f;
    const char *file;                /* basename for messages */
    int hf;                          /* Hugging Face names */
    int n;                           /* tensor count */
    const ca_tensor_info **t;
    unsigned char *used;
    ca_model *m;
    int64_t dt_numel[CA_DT_BOOL + 1];
    int pack;                        /* fast/BF16 compute: pack matrices, keep no float32 copy */
    int bf16;                        /* pack as BF16 panels */
    float sig[16];                   /* first values of the image tower's output projection */
    int has_sig;
    double t_pack;                   /* seconds spent packing (bench/model.c reports it) */
    struct pack_job *jobs;           /* matrices to pack, run together at the end (run_jobs) */
    int njobs, cap_jobs;
    int keep_file;                   /* the model reads from the mapping after the load */
    size_t page;                     /* in floats */
    ca_status st;                    /* first failure; later calls are no-ops */
    char name[4][256];
    int k;
    int act;                         /* activation from an OpenCLIP config, -1 when none */
    char act_why[200];
} loader;

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *nm(loader *L, const char *fmt, ...) {
    L->k = (L->k + 1) & 3;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->name[L->k], sizeof L->name[L->k], fmt, ap);
    va_end(ap);
    return L->name[L->k];
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends(const char *s, const char *p) {
    size_t a = strlen(s), b = strlen(p);
    return a >= b && strcmp(s + a - b, p) == 0;
}

static int tower_of(const loader *L, const char *name) {
    if (L->hf) {
        if (starts(name, "vision_model.") || starts(name, "visual_projection.")) return TOWER_VISION;
        if (starts(name, "text_model.") || starts(name, "text_projection.")) return TOWER_TEXT;
        return TOWER_COMMON;
    }
    if (starts(name, "visual.")) return TOWER_VISION;
    if (!strcmp(name, "logit_scale") || !strcmp(name, "input_resolution") || !strcmp(name, "context_length") ||
        !strcmp(name, "vocab_size"))
        return TOWER_COMMON;
    return TOWER_TEXT;
}

/* Tensors that carry no weights the forward pass needs (buffers, scalars of the JIT archives). */
static int ignorable(const char *name) {
    return ends(name, "num_batches_tracked") || ends(name, "position_ids") || !strcmp(name, "input_resolution") ||
           !strcmp(name, "context_length") || !strcmp(name, "vocab_size");
}

static int find(const loader *L, const char *name) {
    for (int i = 0; i < L->n; i++)
        if (!strcmp(L->t[i]->name, name)) return i;
    return -1;
}

static const ca_tensor_info *peek(const loader *L, const char *name) {
    int i = find(L, name);
    return i < 0 ? NULL : L->t[i];
}

static void fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

static void failf(loader *L, ca_status st, const char *fmt, ...) {
    if (L->st) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    L->st = ca_fail(st, "%s: %s", L->file, msg);
}

/* A required tensor of exactly this shape, or NULL (failure recorded). */
static const ca_tensor_info *need(loader *L, const char *name, int ndim, const int64_t *shape) {
    if (L->st) return NULL;
    int i = find(L, name);
    if (i < 0) { failf(L, CA_E_NOTFOUND, "missing tensor '%s'", name); return NULL; }
    const ca_tensor_info *t = L->t[i];
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        char want[128], got[128];
        fmt_shape(want, sizeof want, ndim, shape);
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        failf(L, CA_E_SHAPE, "tensor '%s': shape %s, expected %s", name, got, want);
        return NULL;
    }
    if (t->dtype != CA_DT_F32 && t->dtype != CA_DT_F16 && t->dtype != CA_DT_BF16) {
        failf(L, CA_E_UNSUPPORTED, "tensor '%s': dtype %s, expected F32, F16 or BF16", name, ca_dtype_name(t->dtype));
        return NULL;
    }
    L->used[i] = 1;
    L->dt_numel[t->dtype] += t->numel;
    if (!ends(name, "running_mean") && !ends(name, "running_var")) L->m->info.n_params += t->numel;
    return t;
}

static float *arena(loader *L, size_t n) {
    ca_model *m = L->m;
    if (L->st) return NULL;
    if (n > m->weights_cap - m->weights_len) { failf(L, CA_E_INTERNAL, "weight block too small"); return NULL; }
    float *p = m->weights + m->weights_len;
    m->weights_len += n;
    return p;
}

/* Room for a matrix of the reference path, page aligned (a matrix starts on its own page). */
static float *arena_mat(loader *L, size_t n) {
    ca_model *m = L->m;
    if (L->st) return NULL;
    size_t aligned = (m->weights_len + L->page - 1) / L->page * L->page;
    if (aligned > m->weights_cap) { failf(L, CA_E_INTERNAL, "weight block too small"); return NULL; }
    m->weights_len = aligned;
    return arena(L, n);
}

static void convert(loader *L, const ca_tensor_info *t, float *dst) {
    ca_status st = ca_tensor_to_f32(t, dst, t->numel);
    if (st) failf(L, st, "tensor '%s': cannot convert to float32", t->name);
    /* NaN/Inf weights would turn every feature into NaN: refuse them here, naming the tensor */
    for (int64_t i = 0; !st && i < t->numel; i++)
        if (!isfinite(dst[i])) {
            failf(L, CA_E_NONFINITE, "tensor '%s': non-finite value %g at element %lld", t->name, dst[i], (long long)i);
            break;
        }
    /* read once: peak memory is then the float32 block, not that plus the mapped file */
    ca_st_drop_pages(L->f, t);
}

/* Load a required tensor of the given shape into the weight block. */
static const float *take(loader *L, const char *name, int ndim, const int64_t *shape) {
    const ca_tensor_info *t = need(L, name, ndim, shape);
    float *p = t ? arena(L, (size_t)t->numel) : NULL;
    if (p) convert(L, t, p);
    return p;
}
/* The same for a matrix the fast path packs (see arena_mat). */
static const float *take_mat(loader *L, const char *name, int ndim, const int64_t *shape) {
    const ca_tensor_info *t = need(L, name, ndim, shape);
    float *p = t ? arena_mat(L, (size_t)t->numel) : NULL;
    if (p) convert(L, t, p);
    return p;
}
#define TAKE1(L, name, a) take(L, name, 1, (int64_t[]){a})
#define TAKE2(L, name, a, b) take(L, name, 2, (int64_t[]){a, b})
#define MAT2(L, name, a, b, out) mat(L, name, 2, (int64_t[]){a, b}, out)
#define MAT4(L, name, a, b, c, d, out) mat(L, name, 4, (int64_t[]){a, b, c, d}, out)

/* Load a required tensor into dst (already in the weight block). */
static const ca_tensor_info *take_into(loader *L, const char *name, int ndim, const int64_t *shape, float *dst) {
    const ca_tensor_info *t = need(L, name, ndim, shape);
    if (t && dst) convert(L, t, dst);
    return t;
}

/* Load a (rows, cols) tensor used as x @ W and store it transposed, (cols, rows), for ca_linear
 * (a matrix the fast path packs). */
static const float *take_t(loader *L, const char *name, int rows, int cols) {
    const ca_tensor_info *t = need(L, name, 2, (int64_t[]){rows, cols});
    if (!t) return NULL;
    float *tmp = ca_malloc2((size_t)rows * cols, sizeof(float));
    float *p = arena_mat(L, (size_t)rows * cols);
    if (!tmp || !p) {
        free(tmp);
        failf(L, CA_E_NOMEM, "tensor '%s': out of memory", name);
        return NULL;
    }
    convert(L, t, tmp);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) p[(size_t)c * rows + r] = tmp[(size_t)r * cols + c];
    free(tmp);
    return p;
}

/* ---- packing straight from the file (fast and BF16 compute) ------------------------------- */

/* Panels for a matrix stored as dt: F16 stays F16 (exact, half the bytes to stream); F32 and
 * BF16 become F32 panels (BF16 panels would change the numerics), unless BF16 compute. */
static ca_dtype panel_for(const loader *L, ca_dtype dt) {
    if (L->bf16) return CA_DT_BF16;
    return dt == CA_DT_F16 ? CA_DT_F16 : CA_DT_F32;
}

/* Packing is planned while the towers are read (one job per matrix) and run at the end by
 * run_jobs: every job's panels get their place in one block allocated once (huge pages where the
 * system has them: fresh memory is what a load mostly pays for), and the jobs run in parallel on
 * the load's threads, each packing straight from the mapped file and then letting its pages go. */
typedef enum { JOB_MAT, JOB_KN, JOB_STACK, JOB_CONV } job_kind;

typedef struct pack_job {
    job_kind kind;
    const ca_tensor_info *t[4];      /* sources (JOB_STACK: count of them, stacked along N) */
    int count;
    int N, K;                        /* the packed matrix (N, K) */
    int k, stride, pad, Cin;         /* JOB_CONV */
    const float *scale;              /* JOB_CONV: the folded BatchNorm */
    ca_packed *out;                  /* JOB_MAT, JOB_KN, JOB_STACK */
    ca_conv *conv;                   /* JOB_CONV */
    size_t off, bytes;               /* its place in the packed block */
    ca_status st;
    char msg[320];
} pack_job;

static pack_job *add_job(loader *L, job_kind kind, int N, int K) {
    if (L->st) return NULL;
    if (L->njobs == L->cap_jobs) {
        int cap = L->cap_jobs ? 2 * L->cap_jobs : 64;
        pack_job *j = realloc(L->jobs, sizeof *j * (size_t)cap);
        if (!j) { failf(L, CA_E_NOMEM, "out of memory"); return NULL; }
        L->jobs = j;
        L->cap_jobs = cap;
    }
    pack_job *j = &L->jobs[L->njobs++];
    memset(j, 0, sizeof *j);
    j->kind = kind;
    j->N = N;
    j->K = K;
    return j;
}

/* NaN/Inf in a tensor packed straight from the file (the float32 path checks as it converts). */
static ca_status check_finite(const loader *L, const ca_tensor_info *t) {
    size_t i = ca_first_nonfinite(t->data, t->dtype, (size_t)t->numel);
    if (i == (size_t)t->numel) return CA_OK;
    return ca_fail(CA_E_NONFINITE, "%s: tensor '%s': non-finite value at element %lld", L->file, t->name, (long long)i);
}

/* A plain (N, K) matrix into its place: in blocks of rows, each checked for NaN/Inf and then
 * packed while it is still in cache (panels of 32 rows are independent, so the panels are those
 * of packing it whole); one read of the file instead of two. */
static ca_status run_mat_job(const loader *L, pack_job *j, void *mem) {
    const ca_tensor_info *t = j->t[0];
    ca_dtype panel = panel_for(L, t->dtype);
    size_t es = ca_dtype_size(t->dtype), K = (size_t)j->K;
    const unsigned char *src = t->data;
    enum { ROWS = 128 };             /* a multiple of the panel width (32) */
    ca_status st = CA_OK;
    for (int n0 = 0; n0 < j->N && !st; n0 += ROWS) {
        int nn = j->N - n0 < ROWS ? j->N - n0 : ROWS;
        size_t i = ca_first_nonfinite(src + (size_t)n0 * K * es, t->dtype, (size_t)nn * K);
        if (i < (size_t)nn * K)
            return ca_fail(CA_E_NONFINITE, "%s: tensor '%s': non-finite value at element %lld", L->file, t->name,
                           (long long)((size_t)n0 * K + i));
        size_t off = n0 ? ca_pack_size(n0, j->K, panel) : 0;
        ca_packed part;
        st = ca_pack_weights_into(&part, (unsigned char *)mem + off, j->bytes - off, src + (size_t)n0 * K * es, t->dtype, nn,
                                  j->K, j->K, 0, panel);
        if (!st && n0 == 0) *j->out = part;
    }
    if (st) st = ca_fail(st, "%s: tensor '%s': cannot pack: %s", L->file, t->name, ca_last_error());
    else j->out->N = j->N;
    ca_st_drop_pages(L->f, t);
    return st;
}

/* One job, on one thread (inside run_jobs' parallel loop). mem: its panels' place, or NULL to
 * let the packer allocate (BF16 panels, which are converted after packing). */
static ca_status run_job(const loader *L, pack_job *j, void *mem) {
    ca_status st = CA_OK;
    if (j->kind == JOB_MAT && mem) return run_mat_job(L, j, mem);
    for (int i = 0; i < j->count && !st; i++) st = check_finite(L, j->t[i]);
    if (st) return st;
    const ca_tensor_info *t = j->t[0];
    ca_dtype panel = panel_for(L, t->dtype);
    unsigned char *tmp = NULL;
    const void *src = t->data;
    ca_dtype dt = t->dtype;
    if (j->kind == JOB_STACK) {
        /* a temporary stack of just these tensors, in their stored dtype when they share one */
        int same = 1;
        for (int i = 1; i < j->count; i++) same = same && j->t[i]->dtype == dt;
        if (!same) dt = CA_DT_F32;
        size_t es = ca_dtype_size(dt);
        tmp = ca_malloc2((size_t)j->N * (size_t)j->K, es);
        if (!tmp) return ca_fail(CA_E_NOMEM, "%s: tensor '%s': out of memory", L->file, t->name);
        size_t o = 0;
        for (int i = 0; i < j->count && !st; i++) {
            if (same) memcpy(tmp + o, j->t[i]->data, j->t[i]->nbytes);
            else if (ca_tensor_to_f32(j->t[i], (float *)(tmp + o), j->t[i]->numel))
                st = ca_fail(CA_E_FORMAT, "%s: tensor '%s': cannot convert", L->file, j->t[i]->name);
            o += (size_t)j->t[i]->numel * es;
        }
        src = tmp;
        panel = panel_for(L, dt);
    }
    if (!st) {
        size_t cap = j->bytes;
        switch (j->kind) {
        case JOB_CONV:
            st = mem ? ca_conv_pack_weights_into(j->conv, mem, cap, src, dt, j->N, j->Cin, j->k, j->k, j->stride, j->pad, j->scale, panel)
                     : ca_conv_pack_weights(j->conv, src, dt, j->N, j->Cin, j->k, j->k, j->stride, j->pad, j->scale, panel);
            break;
        case JOB_KN: /* stored (K, N), used as x @ W */
            if (mem) st = ca_pack_weights_into(j->out, mem, cap, src, dt, j->N, j->K, j->N, 1, panel);
            else {
                /* the BF16 packer takes (N, K) rows: transpose through a copy of this tensor */
                size_t es = ca_dtype_size(dt);
                tmp = ca_malloc2((size_t)j->N * (size_t)j->K, es);
                if (!tmp) { st = CA_E_NOMEM; break; }
                const unsigned char *s8 = src;
                for (int r = 0; r < j->K; r++)
                    for (int c = 0; c < j->N; c++) memcpy(tmp + ((size_t)c * j->K + r) * es, s8 + ((size_t)r * j->N + c) * es, es);
                st = ca_pack_weights_as(j->out, tmp, dt, j->N, j->K, j->K, panel);
            }
            break;
        default:
            st = mem ? ca_pack_weights_into(j->out, mem, cap, src, dt, j->N, j->K, j->K, 0, panel)
                     : ca_pack_weights_as(j->out, src, dt, j->N, j->K, j->K, panel);
        }
        if (st) st = ca_fail(st, "%s: tensor '%s': cannot pack: %s", L->file, t->name, ca_last_error());
    }
    free(tmp);
    /* read once: the file's pages need not stay resident (peak memory: the packed block) */
    for (int i = 0; i < j->count; i++) ca_st_drop_pages(L->f, j->t[i]);
    return st;
}

/* Every planned job: sizes, one block for all panels, then the jobs in parallel (largest
 * first). A failure reports the first failing job in load order, as a serial load would. */
static void run_jobs(loader *L) {
    if (L->st || !L->njobs) return;
    double t0 = ca_now();
    size_t total = 0;
    for (int i = 0; i < L->njobs && !L->bf16; i++) {
        pack_job *j = &L->jobs[i];
        ca_dtype dt = j->t[0]->dtype;
        for (int k = 1; k < j->count; k++) if (j->t[k]->dtype != dt) dt = CA_DT_F32;
        j->bytes = ca_pack_size(j->N, j->K, panel_for(L, dt));
        if (!j->bytes || total > SIZE_MAX - j->bytes - ((size_t)4 << 20)) {
            failf(L, CA_E_NOMEM, "tensor '%s': packed size overflows", j->t[0]->name);
            return;
        }
        j->off = total;
        total += j->bytes;
    }
    unsigned char *blk = NULL;
    if (total) {
        /* 2 MiB aligned and advised for huge pages: a fresh page is paid for at its first write,
         * and one 2 MiB page costs far less than 512 small ones (on virtual machines most of all) */
        size_t huge = (size_t)2 << 20, len = total + huge;
        void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) { failf(L, CA_E_NOMEM, "cannot allocate %zu MiB of packed weights", total >> 20); return; }
        L->m->packed = map;
        L->m->packed_map = len;
        blk = (unsigned char *)(((uintptr_t)map + huge - 1) & ~(uintptr_t)(huge - 1));
#ifdef MADV_HUGEPAGE
        (void)madvise(blk, total, MADV_HUGEPAGE);
#endif
    }
    int T = ca_kernel_threads(0), n = L->njobs;
    /* largest first, so that no thread is left with a big matrix at the end */
    int *order = malloc(sizeof *order * (size_t)n);
    if (!order) { failf(L, CA_E_NOMEM, "out of memory"); return; }
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort by size, stable: n is a few hundred */
        for (int k = i; k > 0; k--) {
            const pack_job *a = &L->jobs[order[k - 1]], *b = &L->jobs[order[k]];
            if ((int64_t)a->N * a->K >= (int64_t)b->N * b->K) break;
            int tmp = order[k]; order[k] = order[k - 1]; order[k - 1] = tmp;
        }
#pragma omp parallel for num_threads(T) schedule(dynamic, 1) if (T > 1)
    for (int i = 0; i < n; i++) {
        pack_job *j = &L->jobs[order[i]];
        j->st = run_job(L, j, blk ? blk + j->off : NULL);
        if (j->st) snprintf(j->msg, sizeof j->msg, "%s", ca_last_error());
    }
    free(order);
    for (int i = 0; i < n && !L->st; i++)
        if (L->jobs[i].st) L->st = ca_fail(L->jobs[i].st, "%s", L->jobs[i].msg);
    L->t_pack += ca_now() - t0;
}

/* A required matrix: float32 copy in the weight block (reference compute; returned), or packed
 * into *out as (shape[0], product of the other dims) (fast compute; planned, NULL returned). */
static const float *mat(loader *L, const char *name, int ndim, const int64_t *shape, ca_packed *out) {
    if (!L->pack) return take_mat(L, name, ndim, shape);
    const ca_tensor_info *t = need(L, name, ndim, shape);
    int64_t K = 1;
    for (int d = 1; d < ndim; d++) K *= shape[d];
    pack_job *j = t ? add_job(L, JOB_MAT, (int)shape[0], (int)K) : NULL;
    if (j) { j->t[0] = t; j->count = 1; j->out = out; }
    return NULL;
}

/* Element i of a tensor as float32 (for the signature). */
static float elem_f32(const ca_tensor_info *t, size_t i) {
    switch (t->dtype) {
    case CA_DT_F16: return ca_f16_to_f32(((const uint16_t *)t->data)[i]);
    case CA_DT_BF16: return ca_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default: return ((const float *)t->data)[i];
    }
}

/* A (rows, cols) tensor used as x @ W: the (cols, rows) matrix, packed from the stored layout
 * (fast) or a transposed float32 copy (reference). */
static const float *mat_t(loader *L, const char *name, int rows, int cols, ca_packed *out) {
    if (!L->pack) return take_t(L, name, rows, cols);
    const ca_tensor_info *t = need(L, name, 2, (int64_t[]){rows, cols});
    pack_job *j = t ? add_job(L, JOB_KN, cols, rows) : NULL;
    if (j) { j->t[0] = t; j->count = 1; j->out = out; }
    return NULL;
}

/* Separate (n_j, K) tensors stacked along the rows into one matrix: a float32 copy in the weight
 * block (reference) or packed from a temporary stack of just these tensors (fast; see run_job). */
static const float *mat_stack(loader *L, const char *const *names, int count, const int *rows, int K, ca_packed *out) {
    if (L->st) return NULL;
    const ca_tensor_info *t[4];
    size_t total = 0;
    for (int j = 0; j < count; j++) {
        t[j] = need(L, names[j], 2, (int64_t[]){rows[j], K});
        if (!t[j]) return NULL;
        total += (size_t)rows[j];
    }
    if (!L->pack) {
        float *w = arena_mat(L, total * (size_t)K);
        for (int j = 0, r = 0; w && j < count; r += rows[j], j++) convert(L, t[j], w + (size_t)r * K);
        return w;
    }
    pack_job *jb = add_job(L, JOB_STACK, (int)total, K);
    if (!jb) return NULL;
    for (int j = 0; j < count; j++) jb->t[j] = t[j];
    jb->count = count;
    jb->out = out;
    return NULL;
}

/* A convolution (Cout, Cin, k, k) followed by a folded BatchNorm (scale): a float32 copy
 * (reference; returned) or packed with the scale in the epilogue (fast; planned). */
static const float *conv(loader *L, const char *name, int Cout, int Cin, int k, int stride, int pad,
                         const ca_bn *bn, ca_conv *out) {
    if (!L->pack) return take_mat(L, name, 4, (int64_t[]){Cout, Cin, k, k});
    const ca_tensor_info *t = need(L, name, 4, (int64_t[]){Cout, Cin, k, k});
    pack_job *j = t && !L->st ? add_job(L, JOB_CONV, Cout, k * k * Cin) : NULL;
    if (!j) return NULL;
    j->t[0] = t;
    j->count = 1;
    j->k = k; j->stride = stride; j->pad = pad; j->Cin = Cin;
    j->scale = bn->scale;
    j->conv = out;
    return NULL;
}

/* Number of blocks "<prefix><i>." (max index + 1); 0 when none. */
static int count_blocks(loader *L, const char *prefix) {
    size_t pl = strlen(prefix);
    long max = -1;
    for (int i = 0; i < L->n; i++) {
        const char *s = L->t[i]->name;
        if (strncmp(s, prefix, pl) != 0) continue;
        char *end;
        long v = strtol(s + pl, &end, 10);
        if (end == s + pl || *end != '.' || v < 0) continue;
        if (v >= L->n) { failf(L, CA_E_FORMAT, "tensor '%s': block index %ld out of range", s, v); return 0; }
        if (v > max) max = v;
    }
    return (int)(max + 1);
}

/* A required 2-D tensor's shape (for inference); NULL with a failure when absent or not 2-D/4-D. */
static const ca_tensor_info *shape_of(loader *L, const char *name, int ndim) {
    if (L->st) return NULL;
    const ca_tensor_info *t = peek(L, name);
    if (!t) { failf(L, CA_E_NOTFOUND, "missing tensor '%s'", name); return NULL; }
    if (t->ndim != ndim) { failf(L, CA_E_SHAPE, "tensor '%s': %d dimensions, expected %d", name, t->ndim, ndim); return NULL; }
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] <= 0 || t->shape[d] > (1 << 24)) {
            failf(L, CA_E_SHAPE, "tensor '%s': dimension %d is %lld", name, d, (long long)t->shape[d]);
            return NULL;
        }
    return t;
}

static int heads_for(int width) { return width >= 64 ? width / 64 : 1; }

/* ---- transformer blocks -------------------------------------------------------------------- */

static void load_blocks(loader *L, ca_xformer *tf, const char *prefix, int C) {
    if (L->st) return;
    tf->width = C;
    tf->heads = heads_for(C);
    tf->eps = 1e-5f;
    tf->act = CA_ACT_QUICKGELU;
    tf->layers = count_blocks(L, prefix);
    if (L->st) return;
    const ca_tensor_info *fc = tf->layers ? shape_of(L, nm(L, L->hf ? "%s0.mlp.fc1.weight" : "%s0.mlp.c_fc.weight", prefix), 2) : NULL;
    if (L->st) return;
    int H = fc ? (int)fc->shape[0] : 4 * C;
    tf->hidden = H;
    tf->blocks = calloc(tf->layers ? (size_t)tf->layers : 1, sizeof *tf->blocks);
    if (!tf->blocks) { failf(L, CA_E_NOMEM, "out of memory"); return; }
    for (int l = 0; l < tf->layers && !L->st; l++) {
        ca_block *b = &tf->blocks[l];
        char p[160];
        snprintf(p, sizeof p, "%s%d.", prefix, l);
        if (!L->hf) {
            b->ln1_w = TAKE1(L, nm(L, "%sln_1.weight", p), C);
            b->ln1_b = TAKE1(L, nm(L, "%sln_1.bias", p), C);
            b->qkv_w = MAT2(L, nm(L, "%sattn.in_proj_weight", p), 3 * C, C, &b->qkv);
            b->qkv_b = TAKE1(L, nm(L, "%sattn.in_proj_bias", p), 3 * C);
            b->out_w = MAT2(L, nm(L, "%sattn.out_proj.weight", p), C, C, &b->out);
            b->out_b = TAKE1(L, nm(L, "%sattn.out_proj.bias", p), C);
            b->ln2_w = TAKE1(L, nm(L, "%sln_2.weight", p), C);
            b->ln2_b = TAKE1(L, nm(L, "%sln_2.bias", p), C);
            b->fc_w = MAT2(L, nm(L, "%smlp.c_fc.weight", p), H, C, &b->fc);
            b->fc_b = TAKE1(L, nm(L, "%smlp.c_fc.bias", p), H);
            b->proj_w = MAT2(L, nm(L, "%smlp.c_proj.weight", p), C, H, &b->proj);
            b->proj_b = TAKE1(L, nm(L, "%smlp.c_proj.bias", p), C);
        } else {
            static const char *qkv[3] = {"q", "k", "v"};
            char wn[3][192];
            for (int j = 0; j < 3; j++) snprintf(wn[j], sizeof wn[j], "%sself_attn.%s_proj.weight", p, qkv[j]);
            b->qkv_w = mat_stack(L, (const char *const[]){wn[0], wn[1], wn[2]}, 3, (const int[]){C, C, C}, C, &b->qkv);
            float *bias = arena(L, (size_t)3 * C);
            for (int j = 0; j < 3 && bias; j++)
                take_into(L, nm(L, "%sself_attn.%s_proj.bias", p, qkv[j]), 1, (int64_t[]){C}, bias + (size_t)j * C);
            b->qkv_b = bias;
            b->ln1_w = TAKE1(L, nm(L, "%slayer_norm1.weight", p), C);
            b->ln1_b = TAKE1(L, nm(L, "%slayer_norm1.bias", p), C);
            b->out_w = MAT2(L, nm(L, "%sself_attn.out_proj.weight", p), C, C, &b->out);
            b->out_b = TAKE1(L, nm(L, "%sself_attn.out_proj.bias", p), C);
            b->ln2_w = TAKE1(L, nm(L, "%slayer_norm2.weight", p), C);
            b->ln2_b = TAKE1(L, nm(L, "%slayer_norm2.bias", p), C);
            b->fc_w = MAT2(L, nm(L, "%smlp.fc1.weight", p), H, C, &b->fc);
            b->fc_b = TAKE1(L, nm(L, "%smlp.fc1.bias", p), H);
            b->proj_w = MAT2(L, nm(L, "%smlp.fc2.weight", p), C, H, &b->proj);
            b->proj_b = TAKE1(L, nm(L, "%smlp.fc2.bias", p), C);
        }
    }
}

/* ---- vision -------------------------------------------------------------------------------- */

static int grid_of(loader *L, const ca_tensor_info *pos) {
    if (!pos) return 0;
    int64_t n = pos->shape[0] - 1;
    int g = (int)llround(sqrt((double)(n > 0 ? n : 0)));
    if (n < 1 || (int64_t)g * g != n) {
        failf(L, CA_E_SHAPE, "tensor '%s': %lld positions is not a square grid plus one", pos->name,
              (long long)pos->shape[0]);
        return 0;
    }
    return g;
}

static void load_vit(loader *L) {
    ca_vision *v = &L->m->vis;
    const char *conv = L->hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight";
    const char *pos = L->hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding";
    const char *proj = L->hf ? "visual_projection.weight" : "visual.proj";
    const ca_tensor_info *tc = shape_of(L, conv, 4), *tp = shape_of(L, pos, 2), *tj = shape_of(L, proj, 2);
    if (L->st) return;
    int W = (int)tc->shape[0], P = (int)tc->shape[3];
    int G = grid_of(L, tp);
    int E = (int)(L->hf ? tj->shape[0] : tj->shape[1]);
    if (L->st) return;
    v->width = W; v->patch = P; v->grid = G; v->image_size = P * G; v->embed_dim = E;
    v->conv1 = MAT4(L, conv, W, 3, P, P, &v->patch_p);
    v->class_emb = TAKE1(L, L->hf ? "vision_model.embeddings.class_embedding" : "visual.class_embedding", W);
    v->pos = TAKE2(L, pos, (int64_t)G * G + 1, W);
    v->ln_pre_w = TAKE1(L, L->hf ? "vision_model.pre_layrnorm.weight" : "visual.ln_pre.weight", W);
    v->ln_pre_b = TAKE1(L, L->hf ? "vision_model.pre_layrnorm.bias" : "visual.ln_pre.bias", W);
    v->ln_post_w = TAKE1(L, L->hf ? "vision_model.post_layernorm.weight" : "visual.ln_post.weight", W);
    v->ln_post_b = TAKE1(L, L->hf ? "vision_model.post_layernorm.bias" : "visual.ln_post.bias", W);
    if (!L->st) { /* the signature: row 0 of the (E, W) projection, first values */
        for (int i = 0; i < 16; i++) L->sig[i] = elem_f32(tj, L->hf ? (size_t)i : (size_t)i * E);
        L->has_sig = 1;
    }
    v->proj = L->hf ? MAT2(L, proj, E, W, &v->proj_p) : mat_t(L, proj, W, E, &v->proj_p);
    load_blocks(L, &v->tf, L->hf ? "vision_model.encoder.layers." : "visual.transformer.resblocks.", W);
}

static void load_bn(loader *L, ca_bn *bn, const char *prefix_in, int C) {
    char prefix[160]; /* prefix_in may live in the rotating name buffers nm() overwrites */
    snprintf(prefix, sizeof prefix, "%s", prefix_in);
    float *w = (float *)TAKE1(L, nm(L, "%s.weight", prefix), C);
    float *b = (float *)TAKE1(L, nm(L, "%s.bias", prefix), C);
    const float *mean = TAKE1(L, nm(L, "%s.running_mean", prefix), C);
    const float *var = TAKE1(L, nm(L, "%s.running_var", prefix), C);
    if (L->st) return;
    /* Folded in place: scale over weight, shift over bias (each read before it is written). */
    ca_batchnorm_fold(w, b, w, b, mean, var, C, 1e-5f);
    bn->scale = w;
    bn->shift = b;
}

static void load_resnet(loader *L) {
    ca_vision *v = &L->m->vis;
    const ca_tensor_info *t1 = shape_of(L, "visual.layer1.0.conv1.weight", 4);
    const ca_tensor_info *tp = shape_of(L, "visual.attnpool.positional_embedding", 2);
    const ca_tensor_info *tc = shape_of(L, "visual.attnpool.c_proj.weight", 2);
    if (L->st) return;
    int W = (int)t1->shape[0], G = grid_of(L, tp), E = (int)tc->shape[0];
    if (L->st) return;
    if (W < 2 || W % 2) { failf(L, CA_E_SHAPE, "tensor 'visual.layer1.0.conv1.weight': width %d is not even", W); return; }
    v->width = W; v->ap_grid = G; v->image_size = 32 * G; v->embed_dim = E;
    v->ap_dim = 32 * W; v->ap_heads = heads_for(32 * W);
    int nb = 0;
    for (int s = 0; s < 4; s++) {
        v->rn_layers[s] = count_blocks(L, nm(L, "visual.layer%d.", s + 1));
        if (!L->st && v->rn_layers[s] == 0) failf(L, CA_E_NOTFOUND, "missing tensor 'visual.layer%d.0.conv1.weight'", s + 1);
        nb += v->rn_layers[s];
    }
    if (L->st) return;
    for (int i = 0; i < 3; i++) {
        int in = i == 0 ? 3 : W / 2, out = i == 2 ? W : W / 2;
        load_bn(L, &v->stem_bn[i], nm(L, "visual.bn%d", i + 1), out);
        v->stem_conv[i] = conv(L, nm(L, "visual.conv%d.weight", i + 1), out, in, 3, i == 0 ? 2 : 1, 1, &v->stem_bn[i], &v->stem_p[i]);
    }
    v->blocks = calloc((size_t)nb, sizeof *v->blocks);
    if (!v->blocks) { failf(L, CA_E_NOMEM, "out of memory"); return; }
    ca_bottleneck *bk = v->blocks;
    int inpl = W;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < v->rn_layers[s] && !L->st; i++, bk++) {
            int P = W << s;
            char p[64];
            snprintf(p, sizeof p, "visual.layer%d.%d.", s + 1, i);
            bk->inplanes = inpl; bk->planes = P; bk->stride = (s > 0 && i == 0) ? 2 : 1;
            load_bn(L, &bk->bn1, nm(L, "%sbn1", p), P);
            bk->conv1 = conv(L, nm(L, "%sconv1.weight", p), P, inpl, 1, 1, 0, &bk->bn1, &bk->c1);
            load_bn(L, &bk->bn2, nm(L, "%sbn2", p), P);
            bk->conv2 = conv(L, nm(L, "%sconv2.weight", p), P, P, 3, 1, 1, &bk->bn2, &bk->c2);
            load_bn(L, &bk->bn3, nm(L, "%sbn3", p), 4 * P);
            bk->conv3 = conv(L, nm(L, "%sconv3.weight", p), 4 * P, P, 1, 1, 0, &bk->bn3, &bk->c3);
            if (bk->stride > 1 || inpl != 4 * P) {
                bk->has_down = 1;
                load_bn(L, &bk->down_bn, nm(L, "%sdownsample.1", p), 4 * P);
                bk->down = conv(L, nm(L, "%sdownsample.0.weight", p), 4 * P, inpl, 1, 1, 0, &bk->down_bn, &bk->cdown);
            }
            inpl = 4 * P;
        }
    int D = v->ap_dim;
    v->ap_pos = TAKE2(L, "visual.attnpool.positional_embedding", (int64_t)G * G + 1, D);
    static const char *qkv[3] = {"q", "k", "v"};
    if (L->pack) { /* the fast path multiplies only the class token by q: q and k|v apart */
        v->ap_qkv_w = NULL;
        mat(L, "visual.attnpool.q_proj.weight", 2, (int64_t[]){D, D}, &v->ap_q);
        mat_stack(L, (const char *const[]){"visual.attnpool.k_proj.weight", "visual.attnpool.v_proj.weight"}, 2,
                  (const int[]){D, D}, D, &v->ap_kv);
    } else {
        v->ap_qkv_w = mat_stack(L, (const char *const[]){"visual.attnpool.q_proj.weight", "visual.attnpool.k_proj.weight",
                                                         "visual.attnpool.v_proj.weight"}, 3, (const int[]){D, D, D}, D, NULL);
    }
    float *b = arena(L, (size_t)3 * D);
    for (int j = 0; j < 3 && b; j++)
        take_into(L, nm(L, "visual.attnpool.%s_proj.bias", qkv[j]), 1, (int64_t[]){D}, b + (size_t)j * D);
    v->ap_qkv_b = b;
    const ca_tensor_info *tcw = peek(L, "visual.attnpool.c_proj.weight");
    if (!L->st && tcw && tcw->ndim == 2 && tcw->numel >= 16) {
        for (int i = 0; i < 16; i++) L->sig[i] = elem_f32(tcw, (size_t)i);
        L->has_sig = 1;
    }
    v->ap_c_w = MAT2(L, "visual.attnpool.c_proj.weight", E, D, &v->ap_c);
    v->ap_c_b = TAKE1(L, "visual.attnpool.c_proj.bias", E);
}

/* ---- text ---------------------------------------------------------------------------------- */

static void load_text(loader *L) {
    ca_text *t = &L->m->txt;
    const char *tok = L->hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight";
    const char *pos = L->hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding";
    const char *proj = L->hf ? "text_projection.weight" : "text_projection";
    const ca_tensor_info *tt = shape_of(L, tok, 2), *tp = shape_of(L, pos, 2), *tj = shape_of(L, proj, 2);
    if (L->st) return;
    int V = (int)tt->shape[0], W = (int)tt->shape[1], T = (int)tp->shape[0];
    int E = (int)(L->hf ? tj->shape[0] : tj->shape[1]);
    t->vocab = V; t->width = W; t->context = T; t->embed_dim = E;
    const ca_tensor_info *te = L->pack ? need(L, tok, 2, (int64_t[]){V, W}) : NULL;
    if (te && te->dtype != CA_DT_F32) {
        /* fast compute: the table stays in the mapped file in its stored 16-bit dtype (the
         * model keeps the file open); only the rows of tokens used are ever read */
        L->keep_file = 1;
        t->tok_emb16 = te->data;
        t->tok_dt = te->dtype;
    } else if (te) {
        float *e = arena(L, (size_t)V * W);
        if (e) convert(L, te, e);
        t->tok_emb = e;
    } else {
        t->tok_emb = TAKE2(L, tok, V, W);
    }
    t->pos = TAKE2(L, pos, T, W);
    t->ln_final_w = TAKE1(L, L->hf ? "text_model.final_layer_norm.weight" : "ln_final.weight", W);
    t->ln_final_b = TAKE1(L, L->hf ? "text_model.final_layer_norm.bias" : "ln_final.bias", W);
    t->proj = L->hf ? MAT2(L, proj, E, W, &t->proj_p) : mat_t(L, proj, W, E, &t->proj_p);
    load_blocks(L, &t->tf, L->hf ? "text_model.encoder.layers." : "transformer.resblocks.", W);
}

/* ---- Hugging Face config.json -------------------------------------------------------------- */

static int cfg_int(const cJSON *o, const char *key, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it)) return 0;
    *out = (int)it->valuedouble;
    return 1;
}

/* Check a config value against the one the shapes imply. */
static void cfg_check(loader *L, const char *cfg, const cJSON *o, const char *sec, const char *key, int have) {
    int v;
    if (L->st || !cfg_int(o, key, &v) || v == have) return;
    failf(L, CA_E_SHAPE, "%s: %s.%s = %d but the weights imply %d", cfg, sec, key, v, have);
}

static void cfg_tower(loader *L, const char *cfg, const cJSON *o, const char *sec, ca_xformer *tf) {
    if (!cJSON_IsObject(o)) return;
    cfg_check(L, cfg, o, sec, "hidden_size", tf->width);
    cfg_check(L, cfg, o, sec, "num_hidden_layers", tf->layers);
    cfg_check(L, cfg, o, sec, "intermediate_size", tf->hidden);
    int h;
    if (cfg_int(o, "num_attention_heads", &h)) {
        if (h <= 0 || tf->width % h) failf(L, CA_E_SHAPE, "%s: %s.num_attention_heads = %d does not divide width %d", cfg, sec, h, tf->width);
        else tf->heads = h;
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(o, "layer_norm_eps");
    if (cJSON_IsNumber(eps)) tf->eps = (float)eps->valuedouble;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (cJSON_IsString(act)) {
        const char *a = act->valuestring;
        if (!strcmp(a, "quick_gelu")) tf->act = CA_ACT_QUICKGELU;
        else if (!strcmp(a, "gelu")) tf->act = CA_ACT_GELU;
        else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh")) tf->act = CA_ACT_GELU_TANH;
        else failf(L, CA_E_UNSUPPORTED, "%s: %s.hidden_act '%s' is not supported", cfg, sec, a);
    }
}

/* OpenCLIP's open_clip_config.json: model_cfg.quick_gelu picks the activation (absent = false, as
 * OpenCLIP's model classes default it); the sizes it states must match the weights; the text
 * heads (text_cfg.heads) and the ViT head width (vision_cfg.head_width) set the head counts. */
static void apply_openclip(loader *L, const char *cfg, const cJSON *mc) {
    ca_model *m = L->m;
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(mc, "vision_cfg");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(mc, "text_cfg");
    if (m->info.has_vision) cfg_check(L, cfg, mc, "model_cfg", "embed_dim", m->vis.embed_dim);
    if (m->info.has_text) cfg_check(L, cfg, mc, "model_cfg", "embed_dim", m->txt.embed_dim);
    if (m->info.has_vision && m->info.is_vit && cJSON_IsObject(vc)) {
        cfg_check(L, cfg, vc, "vision_cfg", "width", m->vis.width);
        cfg_check(L, cfg, vc, "vision_cfg", "layers", m->vis.tf.layers);
        cfg_check(L, cfg, vc, "vision_cfg", "patch_size", m->vis.patch);
        cfg_check(L, cfg, vc, "vision_cfg", "image_size", m->vis.image_size);
        int hw;
        if (!L->st && cfg_int(vc, "head_width", &hw)) {
            if (hw <= 0 || m->vis.width % hw) failf(L, CA_E_SHAPE, "%s: vision_cfg.head_width = %d does not divide width %d", cfg, hw, m->vis.width);
            else m->vis.tf.heads = m->vis.width / hw;
        }
    }
    if (m->info.has_text && cJSON_IsObject(tc)) {
        cfg_check(L, cfg, tc, "text_cfg", "width", m->txt.width);
        cfg_check(L, cfg, tc, "text_cfg", "layers", m->txt.tf.layers);
        cfg_check(L, cfg, tc, "text_cfg", "context_length", m->txt.context);
        cfg_check(L, cfg, tc, "text_cfg", "vocab_size", m->txt.vocab);
        int h;
        if (!L->st && cfg_int(tc, "heads", &h)) {
            if (h <= 0 || m->txt.width % h) failf(L, CA_E_SHAPE, "%s: text_cfg.heads = %d does not divide width %d", cfg, h, m->txt.width);
            else m->txt.tf.heads = h;
        }
    }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(mc, "quick_gelu");
    if (q && !cJSON_IsBool(q)) { failf(L, CA_E_FORMAT, "%s: model_cfg.quick_gelu is not true or false", cfg); return; }
    L->act = cJSON_IsTrue(q) ? CA_ACT_QUICKGELU : CA_ACT_GELU;
    snprintf(L->act_why, sizeof L->act_why, "%s: model_cfg.quick_gelu %s", cfg, !q ? "absent (OpenCLIP default: GELU)" : cJSON_IsTrue(q) ? "true" : "false");
}

static void apply_config(loader *L, const char *path) {
    ca_status st;
    size_t len;
    char *txt = ca_read_file(path, &len, &st);
    if (!txt) { if (!L->st) L->st = st; return; }
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    const char *cfg = ca_basename(path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        L->st = ca_fail(CA_E_FORMAT, "%s: not a JSON object", cfg);
        return;
    }
    ca_model *m = L->m;
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(root, "model_cfg");
    if (cJSON_IsObject(mc)) {
        if (L->hf) failf(L, CA_E_FORMAT, "%s: an OpenCLIP config for Hugging Face-named weights", cfg);
        else apply_openclip(L, cfg, mc);
        cJSON_Delete(root);
        return;
    }
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (m->info.has_vision && m->info.is_vit) {
        cfg_tower(L, cfg, vc, "vision_config", &m->vis.tf);
        if (cJSON_IsObject(vc)) {
            cfg_check(L, cfg, vc, "vision_config", "image_size", m->vis.image_size);
            cfg_check(L, cfg, vc, "vision_config", "patch_size", m->vis.patch);
        }
        cfg_check(L, cfg, root, "config", "projection_dim", m->vis.embed_dim);
    }
    if (m->info.has_text) {
        cfg_tower(L, cfg, tc, "text_config", &m->txt.tf);
        if (cJSON_IsObject(tc)) {
            cfg_check(L, cfg, tc, "text_config", "max_position_embeddings", m->txt.context);
            cfg_check(L, cfg, tc, "text_config", "vocab_size", m->txt.vocab);
        }
        cfg_check(L, cfg, root, "config", "projection_dim", m->txt.embed_dim);
    }
    cJSON_Delete(root);
}

/* The config beside the weights: "<stem>.NAME" (stem = the file name less its checkpoint
 * extension), then "NAME" in the same folder; NAME is config.json for HF names and
 * open_clip_config.json for OpenAI/OpenCLIP names. NULL if none. */
static char *find_config(const char *path, int hf) {
    static const char *const EXT[] = {".safetensors.index.json", ".bin.index.json", ".safetensors", ".bin", ".pt", ".pth", ".ckpt"};
    const char *name = hf ? "config.json" : "open_clip_config.json";
    size_t n = strlen(path), nl = strlen(name);
    char *buf = malloc(n + nl + 2);
    if (!buf) return NULL;
    size_t stem = n;
    for (size_t i = 0; i < sizeof EXT / sizeof EXT[0] && stem == n; i++)
        if (ends(path, EXT[i])) stem = n - strlen(EXT[i]);
    memcpy(buf, path, stem);
    buf[stem] = '.';
    memcpy(buf + stem + 1, name, nl + 1);
    if (access(buf, R_OK) == 0) return buf;
    const char *base = ca_basename(path);
    size_t dir = (size_t)(base - path);
    memcpy(buf, path, dir);
    memcpy(buf + dir, name, nl + 1);
    if (access(buf, R_OK) == 0) return buf;
    free(buf);
    return NULL;
}

static const char *act_name(ca_act a) { return a == CA_ACT_GELU ? "gelu" : a == CA_ACT_GELU_TANH ? "gelu_tanh" : "quickgelu"; }

/* Decide the MLP activation of both towers and say why (ca_model_info.activation_source). */
static void choose_activation(loader *L, const ca_st_file *f, const ca_model_params *p, const char *cfg) {
    ca_model *m = L->m;
    int act = -1;
    const char *ts = ca_st_metadata(f, "torchscript.activation");
    if (p->activation == CA_ACTIVATION_QUICKGELU || p->activation == CA_ACTIVATION_GELU) {
        act = p->activation == CA_ACTIVATION_GELU ? CA_ACT_GELU : CA_ACT_QUICKGELU;
        snprintf(m->act_source, sizeof m->act_source, "set by the caller (--act)");
    } else if (p->activation != CA_ACTIVATION_AUTO) {
        failf(L, CA_E_ARG, "activation %d is not a CA_ACTIVATION_* value", p->activation);
        return;
    } else if (L->hf) {
        snprintf(m->act_source, sizeof m->act_source, "%s", cfg ? "the Hugging Face config's hidden_act" : "Hugging Face default (quick_gelu; no config.json found)");
    } else if (L->act >= 0) {
        act = L->act;
        snprintf(m->act_source, sizeof m->act_source, "%s", L->act_why);
    } else if (!strcmp(ca_st_format(f), "torchscript")) {
        act = ts && !strcmp(ts, "gelu") ? CA_ACT_GELU : CA_ACT_QUICKGELU;
        snprintf(m->act_source, sizeof m->act_source, "TorchScript archive: %s", ts && !strcmp(ts, "gelu") ? "its modules use GELU" : "OpenAI CLIP, QuickGELU modules");
    } else {
        act = CA_ACT_QUICKGELU;
        snprintf(m->act_source, sizeof m->act_source, "assumed: OpenAI CLIP names and no open_clip_config.json beside the weights "
                                                      "(OpenCLIP LAION weights need --act gelu)");
        ca_log(1, "%s: activation QuickGELU %s", L->file, m->act_source);
    }
    if (act >= 0) {
        m->vis.tf.act = (ca_act)act;
        m->txt.tf.act = (ca_act)act;
    }
    m->info.activation = act_name(m->info.has_text ? m->txt.tf.act : m->vis.tf.act);
    m->info.activation_source = m->act_source;
}

/* ---- entry point --------------------------------------------------------------------------- */

static ca_model *load(const char *path, const ca_model_params *p, ca_status *st);

ca_model *ca_model_load(const char *path, const ca_model_params *p, ca_status *st) {
    CA_ENTER();
    ca_status dummy;
    if (!st) st = &dummy;
    ca_model_params def = ca_model_default_params();
    if (!p) p = &def;
    if (!path) { *st = ca_fail(CA_E_ARG, "ca_model_load: NULL path"); return NULL; }
    if (!p->load_vision && !p->load_text) { *st = ca_fail(CA_E_ARG, "%s: neither tower requested", ca_basename(path)); return NULL; }
    if (!ca_cpu_path(st)) return NULL; /* CLIPADAPT_CPU asked for a path this CPU lacks */
    if (p->compute != CA_COMPUTE_FAST && p->compute != CA_COMPUTE_REFERENCE && p->compute != CA_COMPUTE_BF16) {
        *st = ca_fail(CA_E_ARG, "ca_model_load: unknown compute mode %d", p->compute);
        return NULL;
    }
    if (p->compute == CA_COMPUTE_BF16 && !ca_fastgemm_bf16()) {
        *st = ca_fail(CA_E_UNSUPPORTED, "BF16 compute needs AVX512-BF16 (this build has none)");
        return NULL;
    }
    /* packing runs on the threads the caller gave the model, not a process-wide count */
    int saved = ca_budget_enter(p->threads);
    ca_model *m = load(path, p, st);
    ca_budget_exit(saved);
    return m;
}

static ca_model *load(const char *path, const ca_model_params *p, ca_status *st) {
    /* any format, chosen by content; f's path is the file read (a folder's checkpoint) */
    ca_st_file *f = ca_weights_open(path, st);
    if (!f) return NULL;
    const char *wpath = ca_st_path(f);

    loader L;
    memset(&L, 0, sizeof L);
    L.f = f;
    /* errors name the path as the user gave it (for a folder, the checkpoint file in it) */
    L.file = wpath;
    L.act = -1;
    L.n = ca_st_count(f);
    L.t = calloc(L.n ? (size_t)L.n : 1, sizeof *L.t);
    L.used = calloc(L.n ? (size_t)L.n : 1, 1);
    ca_model *m = L.m = calloc(1, sizeof *m);
    char *cfg_found = NULL;
    if (!L.t || !L.used || !m) { L.st = ca_fail(CA_E_NOMEM, "%s: out of memory", L.file); goto done; }
    m->threads = p->threads;
    m->compute = p->compute;
    L.pack = p->compute != CA_COMPUTE_REFERENCE;
    L.bf16 = p->compute == CA_COMPUTE_BF16;
    for (int i = 0; i < L.n; i++) {
        L.t[i] = ca_st_at(f, i);
        if (starts(L.t[i]->name, "vision_model.") || starts(L.t[i]->name, "text_model.")) L.hf = 1;
    }
    snprintf(m->naming, sizeof m->naming, "%s", L.hf ? "hf" : "openai");
    m->info.naming = m->naming;

    /* One block for every float32 weight: the element count of the requested towers bounds it
     * (BatchNorm folding only shrinks, q/k/v concatenation and transposes keep sizes), plus a
     * page per tensor for aligning the matrices (arena_mat). Mapped rather than malloc'ed:
     * only the pages written are resident, so the reserve costs nothing in pack mode. */
    long pg = sysconf(_SC_PAGESIZE);
    L.page = (size_t)(pg > 0 ? pg : 4096) / sizeof(float);
    size_t total = L.page;
    for (int i = 0; i < L.n; i++) {
        int tw = tower_of(&L, L.t[i]->name);
        if ((tw == TOWER_VISION && !p->load_vision) || (tw == TOWER_TEXT && !p->load_text)) continue;
        size_t add = (size_t)L.t[i]->numel + L.page; /* numel is checked against the file length */
        total = total > SIZE_MAX - add ? SIZE_MAX : total + add;
    }
    size_t bytes;
    void *blk = ca_mul_size(total, sizeof(float), &bytes)
                    ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (blk == MAP_FAILED) { L.st = ca_fail(CA_E_NOMEM, "%s: cannot allocate %zu MiB of weights", L.file, total >> 18); goto done; }
    m->weights = blk;
    m->weights_map = bytes;
    m->weights_cap = total;

    if (p->load_vision) {
        m->info.has_vision = 1;
        if (L.hf || peek(&L, "visual.proj")) {
            m->info.is_vit = 1;
            load_vit(&L);
        } else if (peek(&L, "visual.layer1.0.conv1.weight") || peek(&L, "visual.attnpool.positional_embedding")) {
            load_resnet(&L);
        } else {
            failf(&L, CA_E_NOTFOUND, "no vision tower: missing tensor 'visual.proj' (ViT) or "
                                     "'visual.attnpool.positional_embedding' (ResNet)");
        }
    }
    if (p->load_text) {
        m->info.has_text = 1;
        load_text(&L);
    }
    if (!L.st && p->load_vision && p->load_text && m->vis.embed_dim != m->txt.embed_dim)
        failf(&L, CA_E_SHAPE, "vision embedding dimension %d differs from the text one %d ('%s')", m->vis.embed_dim,
              m->txt.embed_dim, L.hf ? "text_projection.weight" : "text_projection");
    int li = find(&L, "logit_scale");
    m->logit_scale = 100.0f;
    if (!L.st && li >= 0) {
        const ca_tensor_info *ls = need(&L, "logit_scale", L.t[li]->ndim, L.t[li]->shape);
        float v = NAN;
        if (ls && ls->numel != 1) failf(&L, CA_E_SHAPE, "tensor 'logit_scale': %lld elements, expected 1", (long long)ls->numel);
        else if (ls && (ca_tensor_to_f32(ls, &v, 1) != CA_OK || !isfinite(expf(v))))
            failf(&L, CA_E_NONFINITE, "tensor 'logit_scale': non-finite scale exp(%g)", v);
        else if (ls) m->logit_scale = expf(v);
    }
    /* Anything left in a requested tower is a tensor this architecture does not have. */
    for (int i = 0; i < L.n && !L.st; i++) {
        const char *s = L.t[i]->name;
        int tw = tower_of(&L, s);
        if (L.used[i] || ignorable(s)) continue;
        if ((tw == TOWER_VISION && !p->load_vision) || (tw == TOWER_TEXT && !p->load_text)) continue;
        failf(&L, CA_E_FORMAT, "unknown tensor '%s' for a %s %s checkpoint", s, m->naming,
              !m->info.has_vision ? "text" : m->info.is_vit ? "ViT" : "ResNet");
    }
    if (L.st) goto done;

    const char *cfg = p->config_path;
    if (!cfg) cfg = cfg_found = find_config(wpath, L.hf);
    if (cfg) apply_config(&L, cfg);
    if (!L.st) choose_activation(&L, f, p, cfg);
    run_jobs(&L); /* last: a file refused by its names, shapes or config costs no packing */
    if (L.st) goto done;
    m->info.format = ca_st_format(f);

    ca_model_info *in = &m->info;
    const ca_vision *v = &m->vis;
    if (in->has_vision) {
        in->image_size = v->image_size;
        in->patch_size = in->is_vit ? v->patch : 0;
        in->vision_width = v->width;
        if (in->is_vit) {
            in->vision_layers = v->tf.layers;
            in->vision_heads = v->tf.heads;
        } else {
            for (int s = 0; s < 4; s++) { in->rn_layers[s] = v->rn_layers[s]; in->vision_layers += v->rn_layers[s]; }
            in->vision_heads = v->ap_heads;
        }
        in->embed_dim = v->embed_dim;
        /* the image tower's output projection identifies the weights (ca_model_signature) */
        int W = in->is_vit ? v->width : v->ap_dim;
        int len = snprintf(m->signature, sizeof m->signature, "clip-image:%d:%d:", v->embed_dim, W);
        for (int i = 0; L.has_sig && i < 16 && len > 0 && (size_t)len < sizeof m->signature; i++)
            len += snprintf(m->signature + len, sizeof m->signature - (size_t)len, "%s%.5g", i ? "," : "", L.sig[i]);
    }
    if (in->has_text) {
        in->text_width = m->txt.width;
        in->text_layers = m->txt.tf.layers;
        in->text_heads = m->txt.tf.heads;
        in->context_length = m->txt.context;
        in->vocab_size = m->txt.vocab;
        in->embed_dim = m->txt.embed_dim;
    }
    int best = 0;
    for (int d = 1; d <= CA_DT_BOOL; d++) if (L.dt_numel[d] > L.dt_numel[best]) best = d;
    in->dtype = (ca_dtype)best;
    m->pack_seconds = L.t_pack;

done:
    free(cfg_found);
    free(L.jobs);
    free(L.t);
    free(L.used);
    if (!L.st && L.keep_file) m->file = f; /* closed by ca_model_free */
    else ca_st_close(f);
    if (L.st) {
        *st = L.st;
        ca_model_free(m);
        return NULL;
    }
    *st = CA_OK;
    return m;
}
