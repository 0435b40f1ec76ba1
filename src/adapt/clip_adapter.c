/* clip_adapter.c — CLIP-Adapter (Gao et al.): a bottleneck MLP on the frozen image feature
 * (`clip-adapter`), on the text classifier (`clip-adapter-text`), or on both, blended with the
 * original by residual ratios a, b; logits 100·norm(f*)·norm(W*)ᵀ, cross-entropy.
 *   adapter(x) = ReLU(ReLU(x·W1ᵀ)·W2ᵀ), W1: (D/r, D), W2: (D, D/r), no biases
 *   f* = a·adapter_v(f) + (1-a)·f        W* = b·adapter_t(W) + (1-b)·W
 * Ratios: fixed, chosen on val (trained once, the blend re-chosen on a grid — cheap, no
 * retraining), or learnable by a gating hypernetwork (see gate_* below). It does not touch the
 * CLIP encoders: it trains on cached features only.
 */
#include "adapt/adapt.h"
#include "adapt/train.h"
#include "adapt/methods.h"
#include "adapt/clip_adapter_step.h"
#include "model/fastgemm.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

enum { SIDE_V = 1, SIDE_T = 2 };
#define EVAL_ROWS 256     /* inference/validation works on row blocks of this size */

/* One adapted side's activations for up to `cap` rows. */
typedef struct {
    float *H1, *A, *r, *Fn, *norm;   /* (cap,h) (cap,D) (cap) (cap,D) (cap) */
    float *dF, *dH1;                 /* (cap,D) (cap,h), training only */
} side_buf;

/* Adapter forward with residual blend and normalisation.
 * X: (n,D) -> Fn: (n,D) = norm(r·A + (1-r)·X), A = ReLU(ReLU(X·w1ᵀ)·w2ᵀ); w1: (h,D); w2: (D,h).
 * Row ratio r_i = sigmoid(q·X_i + q[D]) when the gate q (D+1) is given, else `ratio`. */
static void adapter_forward(const float *X, int n, int D, int h, const float *w1, const float *w2,
                            const float *q, float ratio, side_buf *b) {
    ca_sgemm(0, 1, n, h, D, 1.0f, X, D, w1, D, 0.0f, b->H1, h);
    ca_relu_forward(b->H1, (size_t)n * h);
    ca_sgemm(0, 1, n, D, h, 1.0f, b->H1, h, w2, h, 0.0f, b->A, D);
    ca_relu_forward(b->A, (size_t)n * D);
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * D, *a = b->A + (size_t)i * D;
        float r = ratio;
        if (q) {
            float z = q[D];
            for (int k = 0; k < D; k++) z += q[k] * x[k];
            r = 1.0f / (1.0f + expf(-z));
        }
        b->r[i] = r;
        float *f = b->Fn + (size_t)i * D;
        for (int k = 0; k < D; k++) f[k] = r * a[k] + (1 - r) * x[k];
    }
    ca_l2norm_forward(b->Fn, n, D, b->Fn, b->norm);
}

/* Backward of adapter_forward from dFn (n,D) to the weights: gw1 (h,D), gw2 (D,h) are
 * overwritten, gq (D+1) is accumulated into (when the gate is on). X's gradient is not needed. */
static void adapter_backward(const float *X, int n, int D, int h, const float *w2, const float *q,
                             side_buf *b, const float *dFn, float *gw1, float *gw2, float *gq) {
    float *dF = b->dF;
    ca_l2norm_backward(b->Fn, b->norm, dFn, n, D, dF);
    for (int i = 0; i < n; i++) {
        float *d = dF + (size_t)i * D;
        const float *a = b->A + (size_t)i * D, *x = X + (size_t)i * D;
        float r = b->r[i];
        if (q) {
            float dr = 0;
            for (int k = 0; k < D; k++) dr += d[k] * (a[k] - x[k]);
            float dz = dr * r * (1 - r);
            for (int k = 0; k < D; k++) gq[k] += dz * x[k];
            gq[D] += dz;
        }
        for (int k = 0; k < D; k++) d[k] *= r;           /* now dA */
    }
    ca_relu_backward(b->A, dF, (size_t)n * D);           /* now dZ2 */
    ca_sgemm(1, 0, D, h, n, 1.0f, dF, D, b->H1, h, 0.0f, gw2, h);
    ca_sgemm(0, 0, n, h, D, 1.0f, dF, D, w2, h, 0.0f, b->dH1, h);
    ca_relu_backward(b->H1, b->dH1, (size_t)n * h);      /* now dZ1 */
    ca_sgemm(1, 0, h, D, n, 1.0f, b->dH1, h, X, D, 0.0f, gw1, D);
}

static int side_buf_alloc(side_buf *b, int cap, int D, int h, int train) {
    memset(b, 0, sizeof *b);
    b->H1 = ca_malloc2((size_t)cap * h, sizeof(float));
    b->A = ca_malloc2((size_t)cap * D, sizeof(float));
    b->Fn = ca_malloc2((size_t)cap * D, sizeof(float));
    b->r = ca_malloc2((size_t)cap, sizeof(float));
    b->norm = ca_malloc2((size_t)cap, sizeof(float));
    if (train) {
        b->dF = ca_malloc2((size_t)cap * D, sizeof(float));
        b->dH1 = ca_malloc2((size_t)cap * h, sizeof(float));
    }
    return b->H1 && b->A && b->Fn && b->r && b->norm && (!train || (b->dF && b->dH1));
}

static void side_buf_free(side_buf *b) {
    free(b->H1); free(b->A); free(b->Fn); free(b->r); free(b->norm); free(b->dF); free(b->dH1);
}

/* The trainable state: one parameter block [vw1 vw2 vq | tw1 tw2 tq] (absent parts empty). */
typedef struct {
    int sides, gate, D, h, C;
    float ratio_v, ratio_t;          /* fixed ratios (used when gate == 0) */
    size_t n, o_vw1, o_vw2, o_vq, o_tw1, o_tw2, o_tq;
} layout;

static void layout_make(layout *L, int sides, int gate, int C, int D, int h) {
    L->sides = sides; L->gate = gate; L->C = C; L->D = D; L->h = h;
    size_t hd = (size_t)h * D, qn = gate ? (size_t)D + 1 : 0, o = 0;
    int v = (sides & SIDE_V) != 0, t = (sides & SIDE_T) != 0;
    L->o_vw1 = o; o += v ? hd : 0;
    L->o_vw2 = o; o += v ? hd : 0;
    L->o_vq = o;  o += v ? qn : 0;
    L->o_tw1 = o; o += t ? hd : 0;
    L->o_tw2 = o; o += t ? hd : 0;
    L->o_tq = o;  o += t ? qn : 0;
    L->n = o;
}

/* The training step's two large products, logits = 100·Fn·W0ᵀ and dFn = 100·dlogits·W0, on the
 * frozen text classifier: with the visual side alone W0 never changes, so it is packed once
 * (both ways) for the AVX-512 kernel instead of going through BLAS at each of the ~10^5 steps.
 * on = 0: the plain ca_sgemm step. */
typedef struct {
    int on, threads;
    ca_packed w0, w0t;   /* W0 (C,D) as weights of N = C, K = D; and W0ᵀ: N = D, K = C */
} fast_w0;

/* A step's logits product reaches this many multiply-adds (the 1000-class sets: 32·1000·512):
 * there the packed path pays; below it (every shipped set, C <= 196) the step stays as it was. */
#define FAST_LOGITS_MACS 8388608.0

/* force: whatever the size (the gradient tests); still only for the visual side on AVX-512. */
static ca_status fast_w0_make(fast_w0 *f, int sides, int B, int C, int D, const float *W0, int threads, int force) {
    memset(f, 0, sizeof *f);
    if (sides != SIDE_V || !ca_fastgemm_avx512() || (!force && (double)B * C * D < FAST_LOGITS_MACS)) return CA_OK;
    ca_status st = ca_pack_weights(&f->w0, W0, CA_DT_F32, C, D, D);
    if (st == CA_OK) {
        size_t need = ca_pack_size(D, C, CA_DT_F32);
        void *mem = need ? aligned_alloc(64, need) : NULL;
        st = mem ? ca_pack_weights_into(&f->w0t, mem, need, W0, CA_DT_F32, D, C, D, 1, CA_DT_F32) : CA_E_NOMEM;
        if (st != CA_OK) free(mem);
    }
    if (st != CA_OK) { ca_packed_free(&f->w0); return st; }
    f->on = 1;
    f->threads = threads;
    return CA_OK;
}

static void fast_w0_free(fast_w0 *f) {
    if (f->on) free(f->w0t.p);   /* borrowed panels: ours */
    ca_packed_free(&f->w0);
    ca_packed_free(&f->w0t);
    memset(f, 0, sizeof *f);
}

/* Adapted, normalised text classifier W* (C,D) from the normalised text W0 into out. */
/* Returns W0 itself when the text side is not adapted (no copy in the training loop). */
static const float *text_classifier(const layout *L, const float *P, const float *W0, side_buf *tb, float *out) {
    if (!(L->sides & SIDE_T)) return W0;
    adapter_forward(W0, L->C, L->D, L->h, P + L->o_tw1, P + L->o_tw2, L->gate ? P + L->o_tq : NULL,
                    L->ratio_t, tb);
    memcpy(out, tb->Fn, sizeof(float) * (size_t)L->C * L->D);
    return out;
}

/* logits (n,C) = 100 · norm(f*) · Wsᵀ for X (n <= cap rows) with the visual side of P.
 * wp: Ws packed once (a plan on Ws) or NULL: where ca_sgemm would take our kernel it gets the
 * same panels from the plan instead of packing Ws per call, so the same values. */
static void visual_logits(const layout *L, const float *P, const float *Ws, const float *X, int n,
                          side_buf *vb, const fast_w0 *fw, const ca_sgemm_bt_plan *wp, float *out) {
    const float *F = X;
    if (L->sides & SIDE_V) {
        adapter_forward(X, n, L->D, L->h, P + L->o_vw1, P + L->o_vw2, L->gate ? P + L->o_vq : NULL,
                        L->ratio_v, vb);
        F = vb->Fn;
    } else {
        ca_l2norm_forward(X, n, L->D, vb->Fn, vb->norm);
        F = vb->Fn;
    }
    if (fw && fw->on && ca_gemm_packed(n, F, L->D, &fw->w0, 100.0f, NULL, CA_EPI_NONE, 0.0f, out, L->C, fw->threads) == CA_OK)
        return;   /* (an allocation failure there falls back to the same product through BLAS) */
    if (wp && ca_sgemm_bt_fast(wp, n) &&
        ca_gemm_packed(n, F, L->D, &wp->pk, 100.0f, NULL, CA_EPI_NONE, 0.0f, out, L->C, ca_kernel_threads(0)) == CA_OK)
        return;   /* ca_sgemm's own kernel and panels, packed once */
    ca_sgemm(0, 1, n, L->C, L->D, 100.0f, F, L->D, Ws, L->D, 0.0f, out, L->C);
}

/* Top-1 accuracy on a split with the current parameters (Ws: adapted text classifier); -1 when
 * a logit is not finite (training diverged). */
/* wp: W0 packed once (the visual side alone, so Ws == W0), or NULL. */
static double split_accuracy(const layout *L, const float *P, const float *Ws, const ca_split *s,
                             side_buf *vb, const ca_sgemm_bt_plan *wp, float *logits) {
    int correct = 0;
    for (int i0 = 0; i0 < s->n; i0 += EVAL_ROWS) {
        int n = s->n - i0 < EVAL_ROWS ? s->n - i0 : EVAL_ROWS;
        visual_logits(L, P, Ws, s->x + (size_t)i0 * L->D, n, vb, NULL, wp, logits);
        for (int i = 0; i < n; i++) {
            const float *r = logits + (size_t)i * L->C;
            for (int j = 0; j < L->C; j++) if (!isfinite(r[j])) return -1.0;   /* diverged */
            int best = 0;
            for (int j = 1; j < L->C; j++) if (r[j] > r[best]) best = j;
            correct += best == s->y[i0 + i];
        }
    }
    return s->n ? 100.0 * correct / s->n : 0.0;
}

/* One minibatch: loss and gradient G (layout L) of the CE objective at parameters P.
 * Xb: (nb,D), W0: normalised text (C,D). Scratch: Ws, dWs (C,D), logits (nb,C), dFn (nb,D). */
static double loss_grad(const layout *L, const float *P, const float *W0, const float *Xb,
                        const int32_t *yb, int nb, side_buf *vb, side_buf *tb, const fast_w0 *fw, float *Wbuf,
                        float *dWs, float *logits, float *dFn, float *G) {
    const int C = L->C, D = L->D, h = L->h;
    const float *Ws = text_classifier(L, P, W0, tb, Wbuf);
    visual_logits(L, P, Ws, Xb, nb, vb, fw, NULL, logits);
    double loss = ca_softmax_ce(logits, yb, nb, C, logits);
    if (L->gate) memset(G, 0, sizeof(float) * L->n);
    if (L->sides & SIDE_T) ca_sgemm(1, 0, C, D, nb, 100.0f, logits, C, vb->Fn, D, 0.0f, dWs, D);
    if (L->sides & SIDE_V) {
        if (!(fw && fw->on && ca_gemm_packed(nb, logits, C, &fw->w0t, 100.0f, NULL, CA_EPI_NONE, 0.0f, dFn, D, fw->threads) == CA_OK))
            ca_sgemm(0, 0, nb, D, C, 100.0f, logits, C, Ws, D, 0.0f, dFn, D);
        adapter_backward(Xb, nb, D, h, P + L->o_vw2, L->gate ? P + L->o_vq : NULL, vb, dFn,
                         G + L->o_vw1, G + L->o_vw2, G + L->o_vq);
    }
    if (L->sides & SIDE_T)
        adapter_backward(W0, C, D, h, P + L->o_tw2, L->gate ? P + L->o_tq : NULL, tb, dWs,
                         G + L->o_tw1, G + L->o_tw2, G + L->o_tq);
    return loss;
}

size_t ca_clip_adapter_nparams(int sides, int gate, int C, int D, int h) {
    layout L;
    layout_make(&L, sides, gate, C, D, h);
    return L.n;
}

/* path 0: the plain step; 1: the packed-W0 step (fast_w0); 2: the large-C step on `threads`
 * threads (clip_adapter_step.c). NAN where the path does not exist or out of memory. */
static double loss_once(int path, int threads, int sides, int gate, float ratio, int C, int D, int h, const float *W0,
                        const float *X, const int32_t *y, int B, const float *P, float *G) {
    if (path == 2) {
        if (sides != SIDE_V || gate || !ca_fastgemm_avx512() || threads < 1) return NAN;
        ca_castep cs;
        size_t n = ca_clip_adapter_nparams(sides, gate, C, D, h);
        float *Pc = ca_malloc2(n, sizeof(float));   /* the step's P is writable (its update) */
        double loss = NAN;
        if (Pc && ca_castep_init(&cs, W0, C, D, h, B, threads) == CA_OK) {
            memcpy(Pc, P, sizeof(float) * n);
            loss = ca_castep_run(&cs, Pc, X, y, B, ratio, G, NULL, 0, 0, NULL, NULL);
            ca_castep_free(&cs);
        }
        free(Pc);
        return loss;
    }
    fast_w0 fw = {0};
    if (path == 1 && (fast_w0_make(&fw, sides, B, C, D, W0, 0, 1) != CA_OK || !fw.on)) return NAN;
    layout L;
    layout_make(&L, sides, gate, C, D, h);
    L.ratio_v = L.ratio_t = ratio;
    side_buf vb, tb;
    int ok = side_buf_alloc(&vb, B, D, h, 1) & side_buf_alloc(&tb, C, D, h, 1);
    float *s = ca_malloc2((size_t)C * D * 2 + (size_t)B * C + (size_t)B * D, sizeof(float));
    double loss = NAN;
    if (ok && s)
        loss = loss_grad(&L, P, W0, X, y, B, &vb, &tb, &fw, s, s + (size_t)C * D, s + (size_t)C * D * 2,
                         s + (size_t)C * D * 2 + (size_t)B * C, G);
    side_buf_free(&vb); side_buf_free(&tb); free(s);
    fast_w0_free(&fw);
    return loss;
}

double ca_clip_adapter_loss(int sides, int gate, float ratio, int C, int D, int h, const float *W0,
                            const float *X, const int32_t *y, int B, const float *P, float *G) {
    return loss_once(0, 1, sides, gate, ratio, C, D, h, W0, X, y, B, P, G);
}

double ca_clip_adapter_loss_packed(int sides, int gate, float ratio, int C, int D, int h, const float *W0,
                                   const float *X, const int32_t *y, int B, const float *P, float *G) {
    return loss_once(1, 1, sides, gate, ratio, C, D, h, W0, X, y, B, P, G);
}

double ca_clip_adapter_loss_fast(int threads, int sides, int gate, float ratio, int C, int D, int h, const float *W0,
                                 const float *X, const int32_t *y, int B, const float *P, float *G) {
    return loss_once(2, threads, sides, gate, ratio, C, D, h, W0, X, y, B, P, G);
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    return 1;
}

/* One epoch's minibatches for the large-C step: the rows of perm in order, a random view each
 * when the split has views — the same draws, in the same order, as the plain loop. */
typedef struct {
    const ca_fit_data *d;
    const int *perm;
    ca_rng *rng;
    int N, B, D, views;
    double lr;
    int64_t step0, total, warm;
} epoch_batches;

static int next_batch(void *u, int i, float *X, int32_t *y, double *lr, int64_t *step) {
    epoch_batches *e = u;
    const int D = e->D, b0 = i * e->B, N = e->N;
    int nb = N - b0 < e->B ? N - b0 : e->B;
    for (int r = 0; r < nb; r++) {
        int idx = e->perm[b0 + r];
        const float *src = e->d->train.x + (size_t)idx * D;
        if (e->views) src = e->d->train.xv + ((size_t)ca_rng_below(e->rng, (uint32_t)e->views) * N + idx) * D;
        memcpy(X + (size_t)r * D, src, sizeof(float) * D);
        y[r] = e->d->train.y[idx];
    }
    *lr = ca_lr_cosine(e->lr, e->step0 + i, e->total, e->warm);
    *step = e->step0 + i + 1;
    return nb;
}

static ca_status fit_variant(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p, int sides) {
    const int C = c->C, D = c->D, N = d->train.n;
    int red = p->reduction > 0 ? p->reduction : 4;
    int h = D / red > 0 ? D / red : 1;
    int mode = p->ratio_mode;
    if (p->ratio < 0 && mode == 0) mode = 1;
    if (mode < 0 || mode > 2) return ca_fail(CA_E_ARG, "clip-adapter: ratio_mode %d is not 0, 1 or 2", mode);
    float ratio = (float)(p->ratio >= 0 && p->ratio <= 1 ? p->ratio : 0.2);
    if (p->ratio > 1) return ca_fail(CA_E_ARG, "clip-adapter: ratio %g is outside [0,1]", p->ratio);
    if (N < 1) return ca_fail(CA_E_ARG, "clip-adapter: empty training split");
    /* Without val (selection regime "none") the adapters train at the fixed ratio and the last
     * epoch is kept; a ratio search has nothing to search on, so it is refused, not faked. */
    if (mode == 1 && d->val.n < 1)
        return ca_fail(CA_E_ARG, "%s: --ratio-mode search needs val images, and this run has none (selection 'none'); use a fixed --ratio", c->m->name);
    int epochs = p->epochs > 0 ? p->epochs : 200;
    int B = p->batch > 0 ? p->batch : 32;
    if (B > N) B = N;
    int opt_kind = p->optimizer ? p->optimizer : CA_OPT_ADAMW;
    if (opt_kind != CA_OPT_SGD && opt_kind != CA_OPT_ADAMW) return ca_fail(CA_E_ARG, "clip-adapter: optimizer %d unknown (1 SGD, 2 AdamW)", opt_kind);
    double lr = p->lr > 0 ? p->lr : (opt_kind == CA_OPT_SGD ? 0.02 : 1e-3);
    if (!isfinite(lr) || !isfinite(p->weight_decay)) return ca_fail(CA_E_ARG, "clip-adapter: lr and weight decay must be finite");
    ca_optim opt = {.kind = opt_kind, .momentum = 0.9f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                    .weight_decay = (float)(p->weight_decay >= 0 ? p->weight_decay : (opt_kind == CA_OPT_SGD ? 5e-4 : 1e-2))};
    int warm_ep = p->warmup_epochs >= 0 ? p->warmup_epochs : 1;
    int64_t steps_per_epoch = (N + B - 1) / B, total = steps_per_epoch * epochs;
    int64_t warm = steps_per_epoch * warm_ep;
    if (warm >= total) warm = total / 10;

    layout L;
    layout_make(&L, sides, mode == 2, C, D, h);
    L.ratio_v = L.ratio_t = ratio;
    int cap = B > EVAL_ROWS ? B : EVAL_ROWS;
    ca_gemm_threads blas_saved = ca_train_threads_set(p->threads);
    fast_w0 fw = {0};
    ca_castep cs = {0};
    int cs_on = 0, cs_threads = 1;
    double step_sec[2] = {-1, -1};   /* last seconds per step on 1 thread and on cs_threads */
    ca_sgemm_bt_plan w0plan = {0};
    float *blk = ca_calloc2(L.n * 5 + (size_t)C * D * 4 + (size_t)cap * C + (size_t)B * D * 2, sizeof(float));
    int *perm = ca_malloc2((size_t)N, sizeof(int));
    int32_t *yb = ca_malloc2((size_t)B, sizeof(int32_t));
    side_buf vb, tb;
    int okv = side_buf_alloc(&vb, cap, D, h, 1), okt = side_buf_alloc(&tb, C, D, h, 1);
    ca_status st = CA_OK;
    if (!blk || !perm || !yb || !okv || !okt) { st = ca_fail(CA_E_NOMEM, "clip-adapter: out of memory"); goto done; }
    float *P = blk, *G = P + L.n, *M = G + L.n, *V = M + L.n, *Best = V + L.n;
    float *W0 = Best + L.n, *Ws = W0 + (size_t)C * D, *dWs = Ws + (size_t)C * D, *BestWs = dWs + (size_t)C * D;
    float *logits = BestWs + (size_t)C * D, *Xb = logits + (size_t)cap * C;  /* Xb: batch (B,D) then dFn (B,D) */

    /* Normalised text classifier; zero rows stay zero (norm floored). */
    float *nrm = vb.norm;
    for (int j0 = 0; j0 < C; j0 += cap) {
        int n = C - j0 < cap ? C - j0 : cap;
        ca_l2norm_forward(d->text_w + (size_t)j0 * D, n, D, W0 + (size_t)j0 * D, nrm);
    }
    /* Large class counts (the ImageNet-size sets): the whole step on our own tiles in one
     * OpenMP region (clip_adapter_step.c), on the fit's threads; results do not depend on how
     * many. The gate keeps the packed-W0 step below; the shipped sets (C <= 196) the plain one. */
    if (sides == SIDE_V && !L.gate && ca_fastgemm_avx512() && (double)B * C * D >= FAST_LOGITS_MACS) {
        st = ca_castep_init(&cs, W0, C, D, h, B, ca_kernel_threads(0));
        if (st == CA_E_NOMEM) { st = ca_fail(st, "clip-adapter: out of memory"); goto done; }
        cs_on = st == CA_OK;
        cs_threads = cs.threads;
        st = CA_OK;
    }
    if (!cs_on && (st = fast_w0_make(&fw, sides, B, C, D, W0, 1, 0)) != CA_OK) goto done;
    /* validation rows meet W0 itself when only the visual side is adapted: pack it once */
    if (!(sides & SIDE_T) && (st = ca_sgemm_bt_init(&w0plan, W0, C, D, D, EVAL_ROWS)) != CA_OK) goto done;
    /* The packed-W0 step is a chain of ~10 small products (32 rows): on one thread it took 0.61x
     * the CPU of the two-thread step (OpenBLAS threads yielding, OpenMP teams spinning between
     * products) on the shared 2-core machine, so it runs on one; --threads does not change it. */
    if (fw.on) { ca_train_threads_restore(blas_saved); blas_saved = ca_train_threads_set(1); }
    ca_rng rng = ca_rng_make(p->seed, 0xADA97E5ull);
    if (sides & SIDE_V) { ca_init_uniform(&rng, P + L.o_vw1, (size_t)h * D, D); ca_init_uniform(&rng, P + L.o_vw2, (size_t)h * D, h); }
    if (sides & SIDE_T) { ca_init_uniform(&rng, P + L.o_tw1, (size_t)h * D, D); ca_init_uniform(&rng, P + L.o_tw2, (size_t)h * D, h); }
    if (L.gate) {   /* gate starts at the fixed ratio: q = 0, bias = logit(ratio) */
        float r0 = ratio < 0.01f ? 0.01f : ratio > 0.99f ? 0.99f : ratio;
        if (sides & SIDE_V) P[L.o_vq + D] = logf(r0 / (1 - r0));
        if (sides & SIDE_T) P[L.o_tq + D] = logf(r0 / (1 - r0));
    }
    const int V_ = d->train.views > 0 && d->train.xv ? d->train.views : 0;
    int eval_every = epochs / 20 > 0 ? epochs / 20 : 1;
    double best_acc = -0.5, t0 = ca_now();   /* above split_accuracy's "diverged" -1 */
    int best_epoch = 0;
    int64_t step = 0;
    memcpy(Best, P, sizeof(float) * L.n);
    memcpy(BestWs, text_classifier(&L, P, W0, &tb, Ws), sizeof(float) * (size_t)C * D);
    for (int ep = 0; ep < epochs; ep++) {
        ca_epoch_order(&rng, perm, N);
        if (cs_on) {   /* the epoch's steps in one parallel region; batches drawn as below */
            epoch_batches eb = {d, perm, &rng, N, B, D, V_, lr, step, total, warm};
            /* Threads by timing: the step's ~10 barriers pay on an idle machine and cost a time
             * slice each when the cores are shared (then one thread is faster). The first 50
             * steps of epoch 1 run on all threads, the rest on one; from then on each epoch runs
             * on the count with the shorter last time per step, and every 10th epoch times the
             * other count on its first 50 steps. Results are the same whatever the count. */
            for (int i0 = 0, len; i0 < (int)steps_per_epoch; i0 += len) {
                int left = (int)steps_per_epoch - i0, best = step_sec[0] > step_sec[1], use = best;
                len = left;
                if (cs_threads > 1 && i0 == 0 && (step_sec[1] < 0 || step_sec[0] < 0 || ep % 10 == 9)) {
                    use = step_sec[1] < 0 ? 1 : step_sec[0] < 0 ? 0 : !best;   /* a probe */
                    len = left < 50 ? left : 50;
                }
                if (cs_threads <= 1) use = 0;
                cs.threads = use ? cs_threads : 1;
                double te = ca_now();
                int bad;
                double loss = ca_castep_epoch(&cs, i0, len, next_batch, &eb, L.ratio_v, P, G, &opt, M, V, &bad);
                step_sec[use] = (ca_now() - te) / len;
                if (bad >= 0) {
                    st = ca_fail(CA_E_NONFINITE, "%s: training diverged: loss %g at epoch %d with lr %g (lower --lr)",
                                 ca_classifier_method(c), fabs(loss), ep + 1, lr);
                    goto done;
                }
            }
            step += steps_per_epoch;
        }
        for (int b0 = 0; b0 < N && !cs_on; b0 += B) {
            int nb = N - b0 < B ? N - b0 : B;
            for (int i = 0; i < nb; i++) {
                int idx = perm[b0 + i];
                const float *src = d->train.x + (size_t)idx * D;
                if (V_) src = d->train.xv + ((size_t)ca_rng_below(&rng, (uint32_t)V_) * N + idx) * D;
                memcpy(Xb + (size_t)i * D, src, sizeof(float) * D);
                yb[i] = d->train.y[idx];
            }
            double loss = loss_grad(&L, P, W0, Xb, yb, nb, &vb, &tb, &fw, Ws, dWs, logits, Xb + (size_t)B * D, G);
            if (!isfinite(loss)) {
                st = ca_fail(CA_E_NONFINITE, "%s: training diverged: loss %g at epoch %d with lr %g (lower --lr)",
                             ca_classifier_method(c), fabs(loss), ep + 1, lr);
                goto done;
            }
            step++;
            ca_optim_step(&opt, ca_lr_cosine(lr, step - 1, total, warm), step, P, G, M, V, L.n);
        }
        if (!all_finite(P, L.n)) {
            st = ca_fail(CA_E_NONFINITE, "%s: training diverged: non-finite weights after epoch %d with lr %g (lower --lr)",
                         ca_classifier_method(c), ep + 1, lr);
            goto done;
        }
        if ((ep + 1) % eval_every == 0 || ep + 1 == epochs) {
            const float *Wc = text_classifier(&L, P, W0, &tb, Ws);
            /* validation on the thread count the steps found faster (the same values either way) */
            ca_gemm_threads vsaved = {0};
            int vset = cs_on && cs_threads > 1 && step_sec[0] >= 0 && step_sec[0] <= step_sec[1];
            if (vset) vsaved = ca_train_threads_set(1);
            double acc = d->val.n > 0 ? split_accuracy(&L, P, Wc, &d->val, &vb, Wc == W0 ? &w0plan : NULL, logits) : 0.0;
            if (vset) ca_train_threads_restore(vsaved);
            /* Ties go to the later, longer-trained state; a diverged (non-finite) state is never
             * kept, so the result is finite even when a too-large lr blows training up. */
            if (acc >= best_acc && all_finite(P, L.n)) {
                best_acc = acc; best_epoch = ep + 1;
                memcpy(Best, P, sizeof(float) * L.n);
                memcpy(BestWs, Wc, sizeof(float) * (size_t)C * D);
            }
        }
        if (p->progress && p->progress("clip-adapter", ep + 1, epochs, p->progress_user)) {
            st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done;
        }
    }
    memcpy(P, Best, sizeof(float) * L.n);
    /* Ratio search on val: the adapters are trained once at `ratio`; the blend is re-chosen on a
     * grid (visual/text: 0..1 step 0.05; both: 0..1 step 0.1 on each axis). */
    if (mode == 1 && d->val.n > 0) {
        int steps = sides == (SIDE_V | SIDE_T) ? 10 : 20;
        float bv = L.ratio_v, bt = L.ratio_t;
        double bacc = -1;
        for (int iv = 0; iv <= steps; iv++) {
            if (!(sides & SIDE_V) && iv > 0) break;
            for (int it = 0; it <= steps; it++) {
                if (!(sides & SIDE_T) && it > 0) break;
                L.ratio_v = (sides & SIDE_V) ? (float)iv / steps : 0;
                L.ratio_t = (sides & SIDE_T) ? (float)it / steps : 0;
                const float *Wc = text_classifier(&L, P, W0, &tb, Ws);
                double acc = split_accuracy(&L, P, Wc, &d->val, &vb, Wc == W0 ? &w0plan : NULL, logits);
                if (acc > bacc) { bacc = acc; bv = L.ratio_v; bt = L.ratio_t; }
            }
        }
        L.ratio_v = bv; L.ratio_t = bt; best_acc = bacc;
        memcpy(BestWs, text_classifier(&L, P, W0, &tb, Ws), sizeof(float) * (size_t)C * D);
    }

    /* Store: the adapted text classifier is folded into cls_w; the visual adapter is kept. */
    float *cw = ca_clf_add_tensor(c, "cls_w", 2, (int64_t[]){C, D});
    if (!cw) { st = CA_E_NOMEM; goto done; }
    memcpy(cw, BestWs, sizeof(float) * (size_t)C * D);
    if (sides & SIDE_V) {
        float *w1 = ca_clf_add_tensor(c, "adapter_w1", 2, (int64_t[]){h, D});
        float *w2 = ca_clf_add_tensor(c, "adapter_w2", 2, (int64_t[]){D, h});
        if (!w1 || !w2) { st = CA_E_NOMEM; goto done; }
        memcpy(w1, P + L.o_vw1, sizeof(float) * (size_t)h * D);
        memcpy(w2, P + L.o_vw2, sizeof(float) * (size_t)h * D);
        if (L.gate) {
            float *q = ca_clf_add_tensor(c, "gate_q", 1, (int64_t[]){D + 1});
            if (!q) { st = CA_E_NOMEM; goto done; }
            memcpy(q, P + L.o_vq, sizeof(float) * (size_t)(D + 1));
        }
    }
    if ((st = ca_clf_set_param(c, "visual", (sides & SIDE_V) != 0))) goto done;
    if ((st = ca_clf_set_param(c, "gate", L.gate))) goto done;
    double rv = (sides & SIDE_V) ? L.ratio_v : 0;
    if (L.gate && (sides & SIDE_V) && d->val.n > 0) {   /* report the learnt visual ratio: its val mean */
        double sum = 0;
        for (int i0 = 0; i0 < d->val.n; i0 += EVAL_ROWS) {
            int m = d->val.n - i0 < EVAL_ROWS ? d->val.n - i0 : EVAL_ROWS;
            adapter_forward(d->val.x + (size_t)i0 * D, m, D, h, P + L.o_vw1, P + L.o_vw2, P + L.o_vq, 0, &vb);
            for (int i = 0; i < m; i++) sum += vb.r[i];
        }
        rv = sum / d->val.n;
    }
    if ((st = ca_clf_set_param(c, "ratio_v", rv))) goto done;
    if ((st = ca_clf_set_param(c, "ratio_t", (sides & SIDE_T) ? L.ratio_t : 0))) goto done;
    if ((st = ca_clf_set_param(c, "ratio_mode", mode))) goto done;
    if ((st = ca_clf_set_param(c, "reduction", red))) goto done;
    if ((st = ca_clf_set_param(c, "epochs", epochs))) goto done;
    if ((st = ca_clf_set_param(c, "best_epoch", best_epoch))) goto done;
    if ((st = ca_clf_set_param(c, "optimizer", opt_kind))) goto done;
    if ((st = ca_clf_set_param(c, "lr", lr))) goto done;
    if (d->val.n > 0 && (st = ca_clf_set_param(c, "val_acc", best_acc < 0 ? 0 : best_acc))) goto done;
    st = ca_clf_set_param(c, "train_seconds", ca_now() - t0);
done:
    fast_w0_free(&fw);
    ca_castep_free(&cs);
    ca_sgemm_bt_free(&w0plan);
    ca_train_threads_restore(blas_saved);
    side_buf_free(&vb); side_buf_free(&tb);
    free(blk); free(perm); free(yb);
    return st;
}

static ca_status ca_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const int C = c->C, D = c->D;
    const float *cw = ca_clf_get_tensor(c, "cls_w", (int64_t)C * D);
    if (!cw) return CA_E_FORMAT;
    int visual = ca_classifier_param(c, "visual", 0) != 0, gate = ca_classifier_param(c, "gate", 0) != 0;
    layout L;
    memset(&L, 0, sizeof L);
    L.sides = visual ? SIDE_V : 0; L.C = C; L.D = D; L.gate = gate;
    L.ratio_v = (float)ca_classifier_param(c, "ratio_v", 0.2);
    const float *w1 = NULL, *w2 = NULL, *q = NULL;
    float *P = NULL;
    if (visual) {
        int h = 0;
        for (int i = 0; i < c->nt; i++) if (!strcmp(c->t[i].name, "adapter_w1")) h = (int)c->t[i].shape[0];
        if (h < 1 || h > D) return ca_fail(CA_E_FORMAT, "clip-adapter: tensor 'adapter_w1' missing or of bad shape");
        L.h = h;
        if (!(w1 = ca_clf_get_tensor(c, "adapter_w1", (int64_t)h * D)) || !(w2 = ca_clf_get_tensor(c, "adapter_w2", (int64_t)h * D)))
            return CA_E_FORMAT;
        if (gate && !(q = ca_clf_get_tensor(c, "gate_q", D + 1))) return CA_E_FORMAT;
        layout_make(&L, SIDE_V, gate, C, D, h);
        L.ratio_v = (float)ca_classifier_param(c, "ratio_v", 0.2);
        /* The layout functions take one parameter block: assemble it (small, per call). */
        P = ca_malloc2(L.n, sizeof(float));
        if (!P) return CA_E_NOMEM;
        memcpy(P + L.o_vw1, w1, sizeof(float) * (size_t)h * D);
        memcpy(P + L.o_vw2, w2, sizeof(float) * (size_t)h * D);
        if (gate) memcpy(P + L.o_vq, q, sizeof(float) * (size_t)(D + 1));
    }
    side_buf vb;
    if (!side_buf_alloc(&vb, EVAL_ROWS, D, L.h > 0 ? L.h : 1, 0)) { side_buf_free(&vb); free(P); return ca_fail(CA_E_NOMEM, "out of memory"); }
    for (int i0 = 0; i0 < n; i0 += EVAL_ROWS) {
        int m = n - i0 < EVAL_ROWS ? n - i0 : EVAL_ROWS;
        visual_logits(&L, P, cw, x + (size_t)i0 * D, m, &vb, NULL, NULL, out + (size_t)i0 * C);
    }
    side_buf_free(&vb);
    free(P);
    return CA_OK;
}

static ca_status fit_v(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) { return fit_variant(c, d, p, SIDE_V); }
static ca_status fit_t(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) { return fit_variant(c, d, p, SIDE_T); }
static ca_status fit_vt(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) { return fit_variant(c, d, p, SIDE_V | SIDE_T); }

const ca_method ca_method_clip_adapter = {
    .name = "clip-adapter",
    .help = "CLIP-Adapter on the image feature: f* = a·MLP(f) + (1-a)·f, trained with CE (needs text weights)",
    .needs_text = 1, .fit = fit_v, .logits = ca_logits,
};
const ca_method ca_method_clip_adapter_text = {
    .name = "clip-adapter-text",
    .help = "CLIP-Adapter on the text classifier: W* = b·MLP(W) + (1-b)·W (needs text weights)",
    .needs_text = 1, .fit = fit_t, .logits = ca_logits,
};
const ca_method ca_method_clip_adapter_both = {
    .name = "clip-adapter-both",
    .help = "CLIP-Adapter on both the image feature and the text classifier (needs text weights)",
    .needs_text = 1, .fit = fit_vt, .logits = ca_logits,
};
