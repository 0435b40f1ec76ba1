/* api.c — the public model API around the towers: argument checks, chunking of large batches
 * (so activations stay bounded), the scratch block and the debug tap.
 * Not here: loading (load.c) and the numerics (kernels.c, vit.c, resnet.c, text.c).
 */
#include "model/model.h"

#include "model/fast.h"
#include "model/fastgemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Activation budget per forward chunk: chunks shrink until their scratch fits (at least 1 input). */
#define CA_SCRATCH_BUDGET ((size_t)256 << 20) /* floats: 1 GiB */

ca_model_params ca_model_default_params(void) {
    ca_model_params p;
    memset(&p, 0, sizeof p);
    p.load_vision = 1;
    p.load_text = 1;
    return p;
}

void ca_model_free(ca_model *m) {
    if (!m) return;
    ca_fast_free(m->fast);
    free(m->vis.tf.blocks);
    free(m->vis.blocks);
    free(m->txt.tf.blocks);
    if (m->weights) munmap(m->weights, m->weights_map);
    free(m->scratch);
    free(m);
}

ca_status ca_model_get_info(const ca_model *m, ca_model_info *out) {
    if (!m || !out) return ca_fail(CA_E_ARG, "ca_model_get_info: NULL argument");
    *out = m->info;
    return CA_OK;
}

ca_status ca_model_signature(const ca_model *m, char *buf, size_t n) {
    if (!m || !buf || n == 0) return ca_fail(CA_E_ARG, "ca_model_signature: NULL argument");
    buf[0] = 0;
    if (!m->signature[0]) return ca_fail(CA_E_ARG, "ca_model_signature: the image tower is not loaded");
    if (strlen(m->signature) >= n) return ca_fail(CA_E_ARG, "ca_model_signature: buffer of %zu bytes is too small", n);
    memcpy(buf, m->signature, strlen(m->signature) + 1);
    return CA_OK;
}

/* header "clip-image:E:W:" equal, then 16 comma-separated numbers each within 1% */
int ca_model_signature_match(const char *a, const char *b) {
    if (!a || !b) return 0;
    const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
    if (!ca || !cb || ca - a != cb - b || strncmp(a, b, (size_t)(ca - a)) != 0) return 0;
    ca++, cb++;
    int n = 0;
    while (*ca && *cb) {
        char *ea, *eb;
        double x = strtod(ca, &ea), y = strtod(cb, &eb);
        if (ea == ca || eb == cb) return 0;
        if (!(fabs(x - y) <= 1e-2 * fmax(fabs(x), fabs(y)) + 1e-7)) return 0;
        n++;
        ca = *ea == ',' ? ea + 1 : ea;
        cb = *eb == ',' ? eb + 1 : eb;
    }
    return !*ca && !*cb && n > 0;
}

float ca_model_logit_scale(const ca_model *m) { return m ? m->logit_scale : 100.0f; }

void ca_model_set_tap(ca_model *m, ca_model_tap_fn fn, void *user) {
    m->tap = fn;
    m->tap_user = user;
}

void ca_model_set_max_chunk(ca_model *m, int n) { m->max_chunk = n > 0 ? n : 1; }

ca_status ca_model_set_compute(ca_model *m, int mode) {
    if (!m || (mode != CA_COMPUTE_FAST && mode != CA_COMPUTE_REFERENCE && mode != CA_COMPUTE_BF16))
        return ca_fail(CA_E_ARG, "ca_model_set_compute: unknown mode %d", mode);
    if (mode == CA_COMPUTE_BF16 && !ca_fastgemm_bf16())
        return ca_fail(CA_E_UNSUPPORTED, "BF16 compute needs AVX512-BF16 (this build has none)");
    m->compute = mode;
    return CA_OK;
}

ca_status ca_model_scratch(ca_model *m, size_t n) {
    if (n <= m->scratch_cap) return CA_OK;
    float *p = ca_malloc2(n, sizeof(float));
    if (!p) return ca_fail(CA_E_NOMEM, "model: cannot allocate %zu MiB of activations", n * sizeof(float) >> 20);
    free(m->scratch);
    m->scratch = p;
    m->scratch_cap = n;
    return CA_OK;
}

/* Largest chunk (<= n, <= max_chunk) whose scratch fits the budget, and that scratch size. */
static int pick_chunk(const ca_model *m, int n, size_t (*need)(const ca_model *, int), size_t *size) {
    int c = n < m->max_chunk ? n : m->max_chunk;
    while (c > 1 && need(m, c) > CA_SCRATCH_BUDGET) c /= 2;
    *size = need(m, c);
    return c;
}

static size_t need_vit(const ca_model *m, int n) { return ca_vit_scratch(&m->vis, n); }
static size_t need_rn(const ca_model *m, int n) { return ca_resnet_scratch(&m->vis, n); }
static size_t need_text(const ca_model *m, int n) { return ca_text_scratch(&m->txt, n); }

static void set_threads(const ca_model *m) {
#ifdef _OPENMP
    if (m->threads > 0) omp_set_num_threads(m->threads);
#else
    (void)m;
#endif
}

ca_status ca_model_encode_images(ca_model *m, const float *images, int n, float *out) {
    if (!m || (n > 0 && (!images || !out)) || n < 0)
        return ca_fail(CA_E_ARG, "ca_model_encode_images: invalid argument");
    if (!m->info.has_vision) return ca_fail(CA_E_ARG, "model: the vision tower was not loaded");
    if (n == 0) return CA_OK;
    set_threads(m);
    if (m->compute != CA_COMPUTE_REFERENCE) return ca_fast_encode_images(m, images, n, out);
    ca_status st = ca_fast_restore(m);
    if (st) return st;
    int R = m->vis.image_size;
    size_t img = (size_t)3 * R * R, need;
    int vit = m->info.is_vit;
    int chunk = pick_chunk(m, n, vit ? need_vit : need_rn, &need);
    st = ca_model_scratch(m, need);
    if (st) return st;
    for (int i = 0; i < n; i += chunk) {
        int c = n - i < chunk ? n - i : chunk;
        float *o = out + (size_t)i * m->vis.embed_dim;
        if (vit) ca_vit_forward(m, images + (size_t)i * img, c, o, i);
        else ca_resnet_forward(m, images + (size_t)i * img, c, o, i);
    }
    return CA_OK;
}

ca_status ca_model_encode_text(ca_model *m, const int64_t *tokens, int n, float *out) {
    if (!m || (n > 0 && (!tokens || !out)) || n < 0)
        return ca_fail(CA_E_ARG, "ca_model_encode_text: invalid argument");
    if (!m->info.has_text) return ca_fail(CA_E_ARG, "model: the text tower was not loaded");
    int T = m->txt.context;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            int64_t id = tokens[(size_t)i * T + t];
            if (id < 0 || id >= m->txt.vocab)
                return ca_fail(CA_E_RANGE, "tokens[%d][%d] = %lld is outside the vocabulary [0, %d)", i, t,
                               (long long)id, m->txt.vocab);
        }
    if (n == 0) return CA_OK;
    set_threads(m);
    if (m->compute != CA_COMPUTE_REFERENCE) return ca_fast_encode_text(m, tokens, n, out);
    ca_status st = ca_fast_restore(m);
    if (st) return st;
    size_t need;
    int chunk = pick_chunk(m, n, need_text, &need);
    st = ca_model_scratch(m, need);
    if (st) return st;
    for (int i = 0; i < n; i += chunk) {
        int c = n - i < chunk ? n - i : chunk;
        ca_text_forward(m, tokens + (size_t)i * T, c, out + (size_t)i * m->txt.embed_dim, i);
    }
    return CA_OK;
}
