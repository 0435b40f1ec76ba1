/* api.c — the public model API around the towers: sessions (scratch, thread budget, tap, cancel
 * flag), argument checks, chunking of large batches (so activations stay bounded), the weights'
 * hash and size. Not here: loading (load.c) and the numerics (kernels.c, vit.c, resnet.c, text.c,
 * fast.c), which call nothing in this file.
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
    ca_model_free_packed(m);
    free(m->vis.tf.blocks);
    free(m->vis.blocks);
    free(m->txt.tf.blocks);
    ca_st_close(m->file);
    if (m->weights) munmap(m->weights, m->weights_map);
    if (m->packed) munmap(m->packed, m->packed_map);
    free(m);
}

ca_status ca_model_get_info(const ca_model *m, ca_model_info *out) {
    CA_ENTER();
    if (!m || !out) return ca_fail(CA_E_ARG, "ca_model_get_info: NULL argument");
    *out = m->info;
    return CA_OK;
}

ca_status ca_model_signature(const ca_model *m, char *buf, size_t n) {
    CA_ENTER();
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

float ca_model_logit_scale(const ca_model *m) {
    return m ? m->logit_scale : 100.0f;
}

int ca_model_compute(const ca_model *m) {
    return m ? m->compute : CA_COMPUTE_FAST;
}

/* ---- sessions ---- */

ca_session_params ca_session_default_params(void) {
    ca_session_params p;
    memset(&p, 0, sizeof p);
    return p;
}

ca_session *ca_session_new(const ca_model *m, const ca_session_params *p, ca_status *st) {
    CA_ENTER();
    ca_status dummy;
    if (!st) st = &dummy;
    if (!m) { *st = ca_fail(CA_E_ARG, "ca_session_new: NULL model"); return NULL; }
    ca_session *s = calloc(1, sizeof *s);
    if (!s) { *st = ca_fail(CA_E_NOMEM, "out of memory for a session"); return NULL; }
    s->m = m;
    int t = p && p->threads > 0 ? p->threads : m->threads;
    s->threads = t > 0 ? t : ca_default_threads();
    s->max_chunk = 64;
    *st = CA_OK;
    return s;
}

void ca_session_free(ca_session *s) {
    if (!s) return;
    free(s->scratch);
    for (int i = 0; i < CA_SESSION_WORKERS; i++) free(s->wscratch[i]);
    free(s);
}

const ca_model *ca_session_model(const ca_session *s) {
    return s ? s->m : NULL;
}

void ca_session_cancel(ca_session *s) {
    if (s) __atomic_store_n(&s->cancel, 1, __ATOMIC_RELEASE);
}

void ca_session_resume(ca_session *s) {
    if (s) __atomic_store_n(&s->cancel, 0, __ATOMIC_RELEASE);
}


void ca_session_set_tap(ca_session *s, ca_model_tap_fn fn, void *user) {
    s->tap = fn;
    s->tap_user = user;
}

void ca_session_set_max_chunk(ca_session *s, int n) { s->max_chunk = n > 0 ? n : 1; }


ca_status ca_session_scratch(ca_session *s, size_t n) {
    if (n <= s->scratch_cap) return CA_OK;
    float *p = ca_malloc2(n, sizeof(float));
    if (!p) return ca_fail(CA_E_NOMEM, "model: cannot allocate %zu MiB of activations", n * sizeof(float) >> 20);
    free(s->scratch);
    s->scratch = p;
    s->scratch_cap = n;
    return CA_OK;
}

/* Largest chunk (<= n, <= max_chunk) whose scratch fits the budget, and that scratch size. */
static int pick_chunk(const ca_session *s, int n, size_t (*need)(const ca_model *, int), size_t *size) {
    int c = n < s->max_chunk ? n : s->max_chunk;
    while (c > 1 && need(s->m, c) > CA_SCRATCH_BUDGET) c /= 2;
    *size = need(s->m, c);
    return c;
}

static size_t need_vit(const ca_model *m, int n) { return ca_vit_scratch(&m->vis, n); }
static size_t need_rn(const ca_model *m, int n) { return ca_resnet_scratch(&m->vis, n); }
static size_t need_text(const ca_model *m, int n) { return ca_text_scratch(&m->txt, n); }

static ca_status cancelled(void) { return ca_fail(CA_E_CANCELLED, "cancelled (ca_session_cancel)"); }

static ca_status encode_images_ref(ca_session *s, const float *images, int n, float *out) {
    const ca_model *m = s->m;
    int R = m->vis.image_size;
    size_t img = (size_t)3 * R * R, need;
    int vit = m->info.is_vit;
    int chunk = pick_chunk(s, n, vit ? need_vit : need_rn, &need);
    ca_status st = ca_session_scratch(s, need);
    if (st) return st;
    for (int i = 0; i < n; i += chunk) {
        if (ca_session_cancelled(s)) return cancelled();
        int c = n - i < chunk ? n - i : chunk;
        float *o = out + (size_t)i * m->vis.embed_dim;
        if (vit) ca_vit_forward(s, images + (size_t)i * img, c, o, i);
        else ca_resnet_forward(s, images + (size_t)i * img, c, o, i);
    }
    return CA_OK;
}

ca_status ca_session_encode_images(ca_session *s, const float *images, int n, float *out) {
    CA_ENTER();
    if (!s || (n > 0 && (!images || !out)) || n < 0)
        return ca_fail(CA_E_ARG, "ca_session_encode_images: invalid argument");
    const ca_model *m = s->m;
    if (!m->info.has_vision) return ca_fail(CA_E_ARG, "model: the vision tower was not loaded");
    if (ca_session_cancelled(s)) return cancelled();
    if (n == 0) return CA_OK;
    /* the budget reaches kernels without a `threads` argument (reference path, ca_sgemm) */
    int saved = ca_budget_enter(s->threads);
    ca_status st = m->compute != CA_COMPUTE_REFERENCE ? ca_fast_encode_images(s, images, n, out)
                                                      : encode_images_ref(s, images, n, out);
    ca_budget_exit(saved);
    return st;
}

static ca_status encode_text_ref(ca_session *s, const int64_t *tokens, int n, float *out) {
    const ca_model *m = s->m;
    int T = m->txt.context;
    size_t need;
    int chunk = pick_chunk(s, n, need_text, &need);
    ca_status st = ca_session_scratch(s, need);
    if (st) return st;
    for (int i = 0; i < n; i += chunk) {
        if (ca_session_cancelled(s)) return cancelled();
        int c = n - i < chunk ? n - i : chunk;
        ca_text_forward(s, tokens + (size_t)i * T, c, out + (size_t)i * m->txt.embed_dim, i);
    }
    return CA_OK;
}

ca_status ca_session_encode_text(ca_session *s, const int64_t *tokens, int n, float *out) {
    CA_ENTER();
    if (!s || (n > 0 && (!tokens || !out)) || n < 0)
        return ca_fail(CA_E_ARG, "ca_session_encode_text: invalid argument");
    const ca_model *m = s->m;
    if (!m->info.has_text) return ca_fail(CA_E_ARG, "model: the text tower was not loaded");
    int T = m->txt.context;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            int64_t id = tokens[(size_t)i * T + t];
            if (id < 0 || id >= m->txt.vocab)
                return ca_fail(CA_E_RANGE, "tokens[%d][%d] = %lld is outside the vocabulary [0, %d)", i, t,
                               (long long)id, m->txt.vocab);
        }
    if (ca_session_cancelled(s)) return cancelled();
    if (n == 0) return CA_OK;
    int saved = ca_budget_enter(s->threads);
    ca_status st = m->compute != CA_COMPUTE_REFERENCE ? ca_fast_encode_text(s, tokens, n, out)
                                                      : encode_text_ref(s, tokens, n, out);
    ca_budget_exit(saved);
    return st;
}

/* The one-call conveniences: a session for the call. */
ca_status ca_model_encode_images(const ca_model *m, const float *images, int n, float *out) {
    CA_ENTER();
    if (!m) return ca_fail(CA_E_ARG, "ca_model_encode_images: invalid argument");
    ca_status st;
    ca_session *s = ca_session_new(m, NULL, &st);
    if (!s) return st;
    st = ca_session_encode_images(s, images, n, out);
    ca_session_free(s);
    return st;
}

ca_status ca_model_encode_text(const ca_model *m, const int64_t *tokens, int n, float *out) {
    CA_ENTER();
    if (!m) return ca_fail(CA_E_ARG, "ca_model_encode_text: invalid argument");
    ca_status st;
    ca_session *s = ca_session_new(m, NULL, &st);
    if (!s) return st;
    st = ca_session_encode_text(s, tokens, n, out);
    ca_session_free(s);
    return st;
}

/* ---- weights: size and a hash (tests check a model is never written) ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

typedef struct { uint64_t h; size_t bytes; int hash; } wacc;

static void acc_packed(wacc *a, const ca_packed *p) {
    size_t n = ca_packed_bytes(p);
    a->bytes += n;
    if (!a->hash) return;
    if (p->scale) n -= sizeof(float) * (size_t)p->N; /* ca_packed_bytes counts the scale too */
    if (p->p) a->h = fnv(a->h, p->p, n);
    if (p->ph) a->h = fnv(a->h, p->ph, n);
    if (p->pb) a->h = fnv(a->h, p->pb, n);
    if (p->scale) a->h = fnv(a->h, p->scale, sizeof(float) * (size_t)p->N);
}

static void each_packed(const ca_model *m, wacc *a) {
    const ca_vision *v = &m->vis;
    const ca_xformer *tfs[2] = {&v->tf, &m->txt.tf};
    for (int t = 0; t < 2; t++)
        for (int l = 0; tfs[t]->blocks && l < tfs[t]->layers; l++) {
            const ca_block *b = &tfs[t]->blocks[l];
            acc_packed(a, &b->qkv); acc_packed(a, &b->out); acc_packed(a, &b->fc); acc_packed(a, &b->proj);
        }
    acc_packed(a, &v->patch_p); acc_packed(a, &v->proj_p); acc_packed(a, &m->txt.proj_p);
    for (int i = 0; i < 3; i++) acc_packed(a, &v->stem_p[i].W);
    int nb = v->rn_layers[0] + v->rn_layers[1] + v->rn_layers[2] + v->rn_layers[3];
    for (int i = 0; v->blocks && i < nb; i++) {
        const ca_bottleneck *b = &v->blocks[i];
        acc_packed(a, &b->c1.W); acc_packed(a, &b->c2.W); acc_packed(a, &b->c3.W); acc_packed(a, &b->cdown.W);
    }
    acc_packed(a, &v->ap_q); acc_packed(a, &v->ap_kv); acc_packed(a, &v->ap_c);
}

uint64_t ca_model_weights_hash(const ca_model *m) {
    wacc a = {1469598103934665603ull, 0, 1};
    each_packed(m, &a);
    if (m->weights) a.h = fnv(a.h, m->weights, m->weights_len * sizeof(float));
    if (m->txt.tok_emb16) a.h = fnv(a.h, m->txt.tok_emb16, sizeof(uint16_t) * (size_t)m->txt.vocab * m->txt.width);
    a.h = fnv(a.h, m, sizeof *m);
    return a.h;
}

size_t ca_model_weight_bytes(const ca_model *m) {
    wacc a = {0, 0, 0};
    each_packed(m, &a);
    a.bytes += m->weights_len * sizeof(float);
    if (m->txt.tok_emb16) a.bytes += sizeof(uint16_t) * (size_t)m->txt.vocab * m->txt.width;
    return a.bytes;
}

void ca_model_free_packed(ca_model *m) {
    ca_vision *v = &m->vis;
    ca_xformer *tfs[2] = {&v->tf, &m->txt.tf};
    for (int t = 0; t < 2; t++)
        for (int l = 0; tfs[t]->blocks && l < tfs[t]->layers; l++) {
            ca_block *b = &tfs[t]->blocks[l];
            ca_packed_free(&b->qkv); ca_packed_free(&b->out); ca_packed_free(&b->fc); ca_packed_free(&b->proj);
        }
    ca_packed_free(&v->patch_p); ca_packed_free(&v->proj_p); ca_packed_free(&m->txt.proj_p);
    for (int i = 0; i < 3; i++) ca_conv_free(&v->stem_p[i]);
    int nb = v->rn_layers[0] + v->rn_layers[1] + v->rn_layers[2] + v->rn_layers[3];
    for (int i = 0; v->blocks && i < nb; i++) {
        ca_bottleneck *b = &v->blocks[i];
        ca_conv_free(&b->c1); ca_conv_free(&b->c2); ca_conv_free(&b->c3); ca_conv_free(&b->cdown);
    }
    ca_packed_free(&v->ap_q); ca_packed_free(&v->ap_kv); ca_packed_free(&v->ap_c);
}
