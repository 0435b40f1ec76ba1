/* tipf.c — Tip-Adapter-F: the cache keys become trainable (initialised from the K-shot
 * features) and are fitted with AdamW + cosine schedule on the cross-entropy of the Tip logits
 * at fixed (init_alpha, init_beta); the best epoch is chosen on val (the original code chose it
 * on test; we never look at test), then α, β are re-searched on val. Values stay one-hot.
 * Without val (selection regime "none"): the keys of the last epoch, at the training α, β.
 */
#include "adapt/tip.h"
#include "adapt/train.h"
#include "model/gemm.h"
#include "model/vmath.h"

#include <math.h>
#include <string.h>

size_t ca_tipf_scratch_floats(int B, int N, int C) {
    return (size_t)B * (size_t)N + 2 * (size_t)B * (size_t)C + (size_t)B;
}

// x: (B,D), y: (B), clip: (B,C), keys: (N,D), key_y: (N) -> dkeys: (N,D)
double ca_tipf_loss_grad(const float *x, const int32_t *y, const float *clip, int B,
                         const float *keys, const int32_t *key_y, int N, int D, int C,
                         float alpha, float beta, float *dkeys, float *scratch) {
    float *A = scratch;                      /* (B,N) affinity, then exp, then dloss/daffinity */
    float *L = A + (size_t)B * N;            /* (B,C) logits */
    float *G = L + (size_t)B * C;            /* (B,C) dloss/dlogits */
    float *row_loss = G + (size_t)B * C;     /* (B) summed in order afterwards: deterministic */
    ca_sgemm(0, 1, B, N, D, 1.0f, x, D, keys, D, 0.0f, A, N);
    const float ab = alpha * beta, invB = 1.0f / (float)B;
    /* Single-threaded on purpose: this loop is ~5% of a step next to the two GEMMs, and an
     * OpenMP pool spinning between OpenBLAS calls halved throughput on a busy 2-core host. */
    for (int b = 0; b < B; b++) {
        float *a = A + (size_t)b * N, *l = L + (size_t)b * C, *g = G + (size_t)b * C;
        const float *cl = clip + (size_t)b * C;
        /* forward: E = exp(-(β - β·A)) in place; cache = E·onehot (per-class sums); logits */
        ca_vexp_affinity(a, a, N, beta);
        memset(l, 0, sizeof(float) * (size_t)C);
        for (int k = 0; k < N; k++) l[key_y[k]] += a[k];
        float mx = -INFINITY;
        for (int c = 0; c < C; c++) {
            l[c] = cl[c] + l[c] * alpha;
            if (l[c] > mx) mx = l[c];
        }
        double s = 0;
        for (int c = 0; c < C; c++) s += exp((double)l[c] - mx);
        double lse = mx + log(s);
        row_loss[b] = (float)(lse - l[y[b]]);
        /* backward: dlogits = (softmax − onehot)/B; dE[k] = α·dlogits[key_y[k]];
         * dA = dE · β·E (d/dA of exp(−β + βA)) */
        for (int c = 0; c < C; c++) g[c] = (float)exp((double)l[c] - lse) * invB;
        g[y[b]] -= invB;
        for (int k = 0; k < N; k++) a[k] = ab * g[key_y[k]] * a[k];
    }
    ca_sgemm(1, 0, N, D, B, 1.0f, A, N, x, D, 0.0f, dkeys, D); /* dkeys(N,D) = dAᵀ·x */
    double loss = 0;
    for (int b = 0; b < B; b++) loss += row_loss[b];
    return loss / B;
}

/* Val accuracy of keys at (alpha, beta). clipv: (nv,C); affv: (nv,N) and L: (nv,C) scratch. */
static double val_acc(const ca_fit_data *d, const float *keys, const float *clipv, float alpha, float beta,
                      float *affv, float *L) {
    const ca_split *v = &d->val;
    int N = d->train.n, C = d->num_classes;
    ca_sgemm(0, 1, v->n, N, d->dim, 1.0f, v->x, d->dim, keys, d->dim, 0.0f, affv, N);
    if (ca_tip_logits_from_aff(clipv, affv, d->train.y, v->n, N, C, alpha, beta, L) != CA_OK) return -1;
    return ca_accuracy(L, v->y, v->n, C);
}

static ca_status tipf_fit(ca_classifier *c, const ca_fit_data *d, const ca_fit_params *p) {
    const int N = d->train.n, D = c->D, C = c->C, nv = d->val.n, V = d->train.views;
    const int epochs = p->epochs > 0 ? p->epochs : 20;
    const int B = p->batch > 0 ? (p->batch < N ? p->batch : N) : (N < 256 ? N : 256);
    const double lr = p->lr > 0 ? p->lr : 1e-3, wd = p->weight_decay >= 0 ? p->weight_decay : 0.01;
    const float a0 = (float)p->init_alpha, b0 = (float)p->init_beta;
    if (N < 1) return ca_fail(CA_E_ARG, "tip-adapter-f: the train split is empty");
    if (epochs > 100000 || !(isfinite(p->init_alpha) && isfinite(p->init_beta) && p->init_beta >= 0 && p->init_beta <= 1000))
        return ca_fail(CA_E_ARG, "tip-adapter-f: bad epochs %d or init alpha/beta %g/%g", epochs, p->init_alpha, p->init_beta);
    if (V > 0 && !d->train.xv) return ca_fail(CA_E_ARG, "tip-adapter-f: train split claims %d views but has none", V);

    /* one block for the training lifetime: keys, best keys, grad, batch, val, scratch */
    const size_t nd = (size_t)N * D, sc = ca_tipf_scratch_floats(B, N, C);
    const size_t total_f = 3 * nd + (size_t)B * D + (size_t)B * C + (size_t)nv * C +
                           (size_t)nv * N + (size_t)nv * C + sc;
    float *blk = ca_malloc2(total_f, sizeof(float));
    int *perm = ca_malloc2((size_t)N, sizeof(int)), *view = ca_malloc2((size_t)N, sizeof(int));
    int32_t *yb = ca_malloc2((size_t)B, sizeof(int32_t));
    /* AdamW as torch.optim.AdamW (betas 0.9/0.999, eps 1e-4 as the original); moments m, v */
    const ca_optim opt = {.kind = CA_OPT_ADAMW, .weight_decay = (float)wd, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-4f};
    float *mom = ca_calloc2(2 * nd, sizeof(float));
    ca_status st = CA_OK;
    if (!blk || !perm || !view || !yb || !mom) {
        st = ca_fail(CA_E_NOMEM, "tip-adapter-f: out of memory for %d keys", N);
        goto done;
    }
    float *keys = blk, *best = keys + nd, *grad = best + nd;
    float *xb = grad + nd, *clipb = xb + (size_t)B * D, *clipv = clipb + (size_t)B * C;
    float *affv = clipv + (size_t)nv * C, *Lv = affv + (size_t)nv * N, *scratch = Lv + (size_t)nv * C;

    memcpy(keys, d->train.x, sizeof(float) * nd);  /* keys start as the cache */
    memcpy(best, keys, sizeof(float) * nd);
    if (nv > 0) ca_logits_linear(d->val.x, nv, d->text_w, C, D, 100.0f, clipv);

    const int64_t spe = (N + B - 1) / B, total = (int64_t)epochs * spe;
    int64_t step = 0;
    double best_acc = -1, last_loss = 0;
    int best_epoch = -1;
    for (int e = 0; e < epochs; e++) {
        ca_rng rng = ca_rng_make(p->seed, 0x746970660000ull + (uint64_t)e); /* "tipf" + epoch */
        for (int i = 0; i < N; i++) perm[i] = i;
        ca_rng_shuffle_int(&rng, perm, N);
        /* one augmented view per image per epoch, as the original sees one augmentation */
        for (int i = 0; i < N; i++) view[i] = V > 0 ? (int)ca_rng_below(&rng, (uint32_t)V) : -1;
        double loss_sum = 0;
        for (int64_t s = 0; s < spe; s++, step++) {
            int r0 = (int)(s * B), m = N - r0 < B ? N - r0 : B;
            for (int j = 0; j < m; j++) {
                int i = perm[r0 + j];
                const float *src = V > 0 ? d->train.xv + ((size_t)view[i] * N + i) * D : d->train.x + (size_t)i * D;
                memcpy(xb + (size_t)j * D, src, sizeof(float) * D);
                yb[j] = d->train.y[i];
            }
            ca_logits_linear(xb, m, d->text_w, C, D, 100.0f, clipb); /* (m,C), cheap next to (m,N) */
            loss_sum += m * ca_tipf_loss_grad(xb, yb, clipb, m, keys, d->train.y, N, D, C, a0, b0, grad, scratch);
            ca_optim_step(&opt, ca_lr_cosine(lr, step, total, 0), step + 1, keys, grad, mom, mom + nd, nd);
        }
        last_loss = loss_sum / N;
        if (!isfinite(last_loss)) { st = ca_fail(CA_E_NONFINITE, "tip-adapter-f: training diverged: loss %g at epoch %d with lr %g (lower --lr)", last_loss, e + 1, lr); goto done; }
        /* model selection on val only, at the training α, β; the first best epoch wins; without
         * val every epoch "wins", so the last one is kept */
        double acc = nv > 0 ? val_acc(d, keys, clipv, a0, b0, affv, Lv) : 0;
        if (acc < 0) { st = CA_E_NOMEM; goto done; }
        if (acc > best_acc || nv == 0) {
            best_acc = acc; best_epoch = e;
            memcpy(best, keys, sizeof(float) * nd);
        }
        if (p->progress && p->progress("tip-adapter-f", e + 1, epochs, p->progress_user)) {
            st = ca_fail(CA_E_CANCELLED, "tip-adapter-f: cancelled by the progress callback");
            goto done;
        }
    }
    if ((st = ca_tip_store(c, d, best)) != CA_OK) goto done;
    if (nv > 0) st = ca_tip_search_val(c, d, best, p);
    else st = ca_tip_set_fixed(c, p->init_alpha, p->init_beta);
    if (st != CA_OK) goto done;
    const char *names[] = {"best_epoch", "select_val_acc", "train_loss", "epochs", "batch", "lr",
                           "weight_decay", "init_alpha", "init_beta", "seed"};
    double vals[] = {best_epoch + 1, best_acc, last_loss, epochs, B, lr, wd, p->init_alpha, p->init_beta, (double)p->seed};
    for (size_t i = 0; st == CA_OK && i < sizeof vals / sizeof vals[0]; i++) st = ca_clf_set_param(c, names[i], vals[i]);
done:
    free(mom);
    free(blk); free(perm); free(view); free(yb);
    return st;
}

const ca_method ca_method_tip_adapter_f = {
    .name = "tip-adapter-f",
    .help = "Tip-Adapter-F: cache keys fine-tuned with AdamW (20 epochs, best epoch on val), then α, β searched on val; without val the last epoch at the training α, β (needs text weights)",
    .needs_text = 1,
    .fit = tipf_fit,
    .logits = ca_tip_stored_logits,
};
