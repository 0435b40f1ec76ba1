/* clap.c — ZS-LP and CLAP (Silva-Rodríguez et al., CVPR 2024): a linear probe on the cosine
 * logits τ·cos(f, w_k) whose prototypes start at the text weights; CLAP adds the class-adaptive
 * penalty (1/C)·Σ_k λ_k‖w_k − t_k‖², λ_k the mean zero-shot probability of the true class over
 * class k's training samples (the official code averages over classes, hence 1/C). A fixed
 * recipe, no validation under any selection regime: SGD momentum 0.9, cosine schedule over 300
 * epochs after one epoch at 1e-5, batch 256, as many batches per epoch as the shots fill (drop
 * last), each batch from a fresh shuffle of the sample pool (every augmented view when the set
 * has views). The objective and the trainer are shared with TaskRes (taskres.c).
 */
#include "adapt/adapt.h"
#include "adapt/methods.h"
#include "adapt/train.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

size_t ca_cosproto_scratch(int B, int C, int D) { return (size_t)B * C + 2 * (size_t)C * D + C; }

double ca_cosproto_loss(const float *X, const int32_t *y, int B, int C, int D, float tau,
                        const float *W, const float *T, const float *lam, float pen, float *G,
                        float *scratch) {
    float *L = scratch, *Wn = L + (size_t)B * C, *dWn = Wn + (size_t)C * D, *nr = dWn + (size_t)C * D;
    ca_l2norm_forward(W, C, D, Wn, nr);
    ca_sgemm(0, 1, B, C, D, tau, X, D, Wn, D, 0.0f, L, C);
    double f = ca_softmax_ce(L, y, B, C, L);
    ca_sgemm(1, 0, C, D, B, tau, L, C, X, D, 0.0f, dWn, D);
    ca_l2norm_backward(Wn, nr, dWn, C, D, G);
    if (lam) {
        double r = 0;
        for (int k = 0; k < C; k++) {
            double s = 0, w = (double)pen * lam[k] / C;
            for (int j = 0; j < D; j++) {
                double dlt = (double)W[(size_t)k * D + j] - T[(size_t)k * D + j];
                s += dlt * dlt;
                G[(size_t)k * D + j] += (float)(2 * w * dlt);
            }
            r += w * s;
        }
        f += r;
    }
    return f;
}

double ca_taskres_loss(const float *X, const int32_t *y, int B, int C, int D, float tau,
                       const float *T, float alpha, const float *R, float *G, float *scratch) {
    size_t nP = (size_t)C * D;
    float *W = scratch + ca_cosproto_scratch(B, C, D);
    for (size_t k = 0; k < nP; k++) W[k] = T[k] + alpha * R[k];
    double f = ca_cosproto_loss(X, y, B, C, D, tau, W, T, NULL, 0.0f, G, scratch);
    for (size_t k = 0; k < nP; k++) G[k] *= alpha;
    return f;
}

#define CLAP_EPOCHS 300
#define CLAP_BATCH 256
#define CLAP_TAU CA_PROBE_TAU
/* The official recipe works on raw CLIP text embeddings (norm ~10 for ViT-B); our text weights
 * are unit vectors. In unit coordinates ŵ = w/s the same run is SGD at lr/s² on
 * CE + s²·penalty(ŵ), so with s = 10: lr 0.1/10² and the penalty weighted by 10². */
#define CLAP_TEXT_NORM 10.0
#define CLAP_LR (0.1 / (CLAP_TEXT_NORM * CLAP_TEXT_NORM))
#define CLAP_PEN ((float)(CLAP_TEXT_NORM * CLAP_TEXT_NORM))
#define CLAP_WARM_LR CA_PROBE_WARM_LR

/* The sample pool: every view when the split has them, else the features. */
typedef struct { const float *x; int n, N0; } pool;
static pool make_pool(const ca_split *s) {
    if (s->views > 0 && s->xv) return (pool){s->xv, s->views * s->n, s->n};
    return (pool){s->x, s->n, s->n};
}

/* dassl's constant warm-up (one epoch) then cosine annealing over the run, per epoch. */
static double ca_probe_lr(double base, double warm, int epoch, int epochs) {
    if (epoch < 1) return warm;
    return 0.5 * base * (1.0 + cos(M_PI * (double)epoch / (double)epochs));
}

ca_status ca_probe_cos_logits(const float *x, int n, const float *W, int C, int D, float *out) {
    float *Wn = ca_malloc2((size_t)C * D + C, sizeof(float));
    if (!Wn) return CA_E_NOMEM;
    ca_l2norm_forward(W, C, D, Wn, Wn + (size_t)C * D);
    ca_sgemm(0, 1, n, C, D, CLAP_TAU, x, D, Wn, D, 0.0f, out, C);
    free(Wn);
    return CA_OK;
}

ca_status ca_probe_train(const ca_fit_data *d, const ca_fit_params *p, const ca_probe_recipe *rc, float *P) {
    const int C = d->num_classes, D = d->dim;
    pool pl = make_pool(&d->train);
    int nb = pl.N0 < CLAP_BATCH ? 1 : pl.N0 / CLAP_BATCH;
    int B = pl.n < CLAP_BATCH ? pl.n : CLAP_BATCH;
    if (pl.n < 1) return ca_fail(CA_E_ARG, "%s: the train split is empty", rc->name);
    if (nb * B > pl.n) nb = pl.n / B;
    size_t nP = (size_t)C * D;
    float *blk = ca_malloc2((size_t)B * D + ca_cosproto_scratch(B, C, D) + 5 * nP, sizeof(float));
    int *perm = ca_malloc2((size_t)pl.n, sizeof(int));
    int32_t *yb = ca_malloc2((size_t)B, sizeof(int32_t));
    ca_status st = CA_OK;
    if (!blk || !perm || !yb) { st = ca_fail(CA_E_NOMEM, "%s: out of memory", rc->name); goto done; }
    /* scr holds the objective's scratch and, for taskres, its prototypes (nP more floats) */
    float *Xb = blk, *scr = Xb + (size_t)B * D, *G = scr + ca_cosproto_scratch(B, C, D) + nP, *m = G + nP, *v = m + nP;
    memset(m, 0, nP * sizeof(float));
    memset(v, 0, nP * sizeof(float));
    ca_optim opt = rc->adam ? (ca_optim){.kind = CA_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f}
                            : (ca_optim){.kind = CA_OPT_SGD, .momentum = 0.9f};
    ca_rng r = ca_rng_make(p->seed, 0xc1a9);
    int epochs = p->epochs > 0 ? p->epochs : rc->epochs;
    double base = p->lr > 0 ? p->lr : rc->lr;
    int64_t step = 0;
    for (int e = 0; e < epochs; e++) {
        double lr = ca_probe_lr(base, rc->warm_lr, e, epochs);
        ca_epoch_order(&r, perm, pl.n);
        for (int bi = 0; bi < nb; bi++) {
            for (int i = 0; i < B; i++) {
                int s = perm[bi * B + i];
                memcpy(Xb + (size_t)i * D, pl.x + (size_t)s * D, sizeof(float) * D);
                yb[i] = d->train.y[s % pl.N0];
            }
            double loss = rc->scale != 0
                ? ca_taskres_loss(Xb, yb, B, C, D, CLAP_TAU, d->text_w, rc->scale, P, G, scr)
                : ca_cosproto_loss(Xb, yb, B, C, D, CLAP_TAU, P, d->text_w, rc->lam, rc->pen, G, scr);
            if (!isfinite(loss)) { st = ca_fail(CA_E_NONFINITE, "%s: the loss diverged at epoch %d", rc->name, e + 1); goto done; }
            ca_optim_step(&opt, lr, ++step, P, G, m, v, nP);
        }
        if (p->progress && p->progress(rc->name, e + 1, epochs, p->progress_user)) { st = ca_fail(CA_E_CANCELLED, "cancelled by the progress callback"); goto done; }
    }
    for (size_t k = 0; k < nP; k++)
        if (!isfinite(P[k])) { st = ca_fail(CA_E_NONFINITE, "%s: a fitted weight is not finite", rc->name); goto done; }
done:
    free(blk); free(perm); free(yb);
    return st;
}

/* λ_k: mean over class k's pool samples of softmax(τ·cos(x, T))_k. */
static ca_status clap_multipliers(const ca_fit_data *d, float *lam) {
    const int C = d->num_classes, D = d->dim;
    pool pl = make_pool(&d->train);
    float *L = ca_malloc2((size_t)pl.n * C, sizeof(float));
    double *s = calloc((size_t)C, sizeof(double));
    int *cnt = calloc((size_t)C, sizeof(int));
    if (!L || !s || !cnt) { free(L); free(s); free(cnt); return ca_fail(CA_E_NOMEM, "clap: out of memory"); }
    ca_status st = ca_probe_cos_logits(pl.x, pl.n, d->text_w, C, D, L);
    for (int i = 0; st == CA_OK && i < pl.n; i++) {
        float *l = L + (size_t)i * C, mx = l[0];
        for (int j = 1; j < C; j++) mx = l[j] > mx ? l[j] : mx;
        double z = 0;
        for (int j = 0; j < C; j++) z += exp((double)l[j] - mx);
        int y = d->train.y[i % pl.N0];
        s[y] += exp((double)l[y] - mx) / z;
        cnt[y]++;
    }
    for (int k = 0; k < C; k++) lam[k] = cnt[k] ? (float)(s[k] / cnt[k]) : 0.0f;
    free(L); free(s); free(cnt);
    return st;
}

static ca_status probe_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p, int constrained) {
    const int C = c->C, D = c->D;
    float *W = ca_clf_add_tensor(c, "proto_w", 2, (int64_t[]){C, D});
    float *lam = NULL;
    if (!W) return CA_E_NOMEM;
    memcpy(W, d->text_w, sizeof(float) * (size_t)C * D);
    if (constrained) {
        if (!(lam = ca_clf_add_tensor(c, "clap_lambda", 1, (int64_t[]){C}))) return CA_E_NOMEM;
        ca_status st = clap_multipliers(d, lam);
        if (st) return st;
    }
    ca_probe_recipe rc = {constrained ? "clap" : "zs-lp", 0, CLAP_LR, CLAP_WARM_LR, CLAP_EPOCHS, 0.0f, lam, CLAP_PEN};
    ca_gemm_threads saved = ca_train_threads_set(p->threads);
    ca_status st = ca_probe_train(d, p, &rc, W);
    ca_train_threads_restore(saved);
    if (st) return st;
    double vacc = 0;
    if (d->val.n > 0) {   /* reported only: the recipe never looks at val */
        float *L = ca_malloc2((size_t)d->val.n * C, sizeof(float));
        if (!L) return CA_E_NOMEM;
        st = ca_probe_cos_logits(d->val.x, d->val.n, W, C, D, L);
        vacc = ca_accuracy(L, d->val.y, d->val.n, C);
        free(L);
        if (st) return st;
    }
    st = ca_clf_set_param(c, "lr", p->lr > 0 ? p->lr : CLAP_LR);
    if (!st) st = ca_clf_set_param(c, "epochs", p->epochs > 0 ? p->epochs : CLAP_EPOCHS);
    if (!st && constrained) st = ca_clf_set_param(c, "penalty_scale", CLAP_PEN);
    if (!st) st = ca_clf_set_param(c, "val_acc", vacc);
    return st;
}

static ca_status zslp_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) { return probe_fit(c, d, p, 0); }
static ca_status clap_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) { return probe_fit(c, d, p, 1); }

static ca_status probe_logits(const ca_classifier *c, const float *x, int n, float *out) {
    const float *W = ca_clf_get_tensor(c, "proto_w", (int64_t)c->C * c->D);
    if (!W) return CA_E_FORMAT;
    return ca_probe_cos_logits(x, n, W, c->C, c->D, out);
}

const ca_method ca_method_zs_lp = {
    .name = "zs-lp",
    .help = "ZS-LP: cosine linear probe initialised at the text weights, fixed recipe, no validation (needs text weights)",
    .needs_text = 1, .fit = zslp_fit, .logits = probe_logits,
};
const ca_method ca_method_clap = {
    .name = "clap",
    .help = "CLAP: ZS-LP with the class-adaptive penalty (1/C)·Σ λ_k‖w_k − t_k‖², fixed recipe, no validation (needs text weights)",
    .needs_text = 1, .fit = clap_fit, .logits = probe_logits,
};
