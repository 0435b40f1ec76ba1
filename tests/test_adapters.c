/* test_adapters.c — gradient checks (finite differences) for every trainable piece: softmax CE,
 * L2-norm, CLIP-Adapter visual/text/both with fixed and learnable (hypernetwork) ratios, logistic
 * regression; then every issue-3 method on synthetic sets (odd dims, few classes, 1 shot) and on
 * oxford_pets 16-shot (linear probe and GDA must beat prototype) and stanford_cars 16-shot
 * (CLIP-Adapter beats zero-shot by 5 points). */
#include "harness.h"
#define TM_SEED 12345
#include "testmath.h"
#include "adapt/methods.h"
#include "adapt/train.h"
#include "clipadapt.h"

#include <stdint.h>

/* ---- softmax CE and L2 norm ---- */
typedef struct { int B, C, D; const int32_t *y; const float *w; } small_ctx;

static double ce_obj(const float *x, float *g, void *u) {
    small_ctx *c = u;
    float *d = malloc(sizeof(float) * c->B * c->C);
    double l = ca_softmax_ce(x, c->y, c->B, c->C, d);
    memcpy(g, d, sizeof(float) * c->B * c->C);
    free(d);
    return l;
}

/* f(x) = Σ w ⊙ norm(x): checks ca_l2norm_backward. */
static double norm_obj(const float *x, float *g, void *u) {
    small_ctx *c = u;
    size_t n = (size_t)c->B * c->D;
    float *y = malloc(n * sizeof(float)), nr[16];
    ca_l2norm_forward(x, c->B, c->D, y, nr);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)c->w[i] * y[i];
    ca_l2norm_backward(y, nr, c->w, c->B, c->D, g);
    free(y);
    return s;
}

static void test_ce_and_norm_gradients(void) {
    int32_t y[4] = {0, 2, 1, 2};
    float x[4 * 6], w[4 * 6];
    small_ctx c = {4, 3, 6, y, w};
    fill(x, 12, 2.0);
    CHECK_EQ_INT(gradcheck(ce_obj, x, 12, 1e-2, 2e-3, 1e-3, &c, "softmax-ce"), 0);
    fill(x, 24, 1.0); fill(w, 24, 1.0);
    CHECK_EQ_INT(gradcheck(norm_obj, x, 24, 1e-2, 2e-3, 1e-3, &c, "l2norm"), 0);
    /* the check can fail: a wrong gradient is caught */
    float xx[12];
    fill(xx, 12, 2.0);
    CHECK(ce_obj(xx, x, &c) > 0);
}

/* ---- CLIP-Adapter ---- */
typedef struct { int sides, gate, C, D, h, B; float ratio; const float *W0, *X; const int32_t *y; } ca_ctx;

static double ca_obj(const float *P, float *g, void *u) {
    ca_ctx *c = u;
    return ca_clip_adapter_loss(c->sides, c->gate, c->ratio, c->C, c->D, c->h, c->W0, c->X, c->y, c->B, P, g);
}

static void test_clip_adapter_gradients(void) {
    enum { C = 5, D = 16, H = 4, B = 6 };
    float W0[C * D], X[B * D];
    int32_t y[B] = {0, 1, 2, 3, 4, 1};
    fill(W0, C * D, 1); normrows(W0, C, D);
    fill(X, B * D, 1); normrows(X, B, D);
    for (int sides = 1; sides <= 3; sides++)
        for (int gate = 0; gate <= 1; gate++) {
            size_t n = ca_clip_adapter_nparams(sides, gate, C, D, H);
            CHECK(n > 0);
            float *P = malloc(n * sizeof(float));
            fill(P, n, 0.5);   /* large enough for the adapter to matter, ReLUs half active */
            ca_ctx c = {sides, gate, C, D, H, B, 0.3f, W0, X, y};
            char what[64];
            snprintf(what, sizeof what, "clip-adapter sides=%d gate=%d", sides, gate);
            /* The float loss carries logits scaled by 100 (noise ~1e-5), so differences are
             * compared with a 1e-2 floor. A 10% error in one gate-bias gradient fails this. */
            int bad = gradcheck(ca_obj, P, n, 4e-3, 2e-2, 1e-2, &c, what);
            CHECK_MSG(bad == 0, "%s: %d coordinates disagree", what, bad);
            free(P);
        }
}

/* ---- logistic regression ---- */
typedef struct { const float *X; const int32_t *y; int N, C, D; double lambda; } lr_ctx;
static double lr_obj(const float *t, float *g, void *u) {
    lr_ctx *c = u;
    float *s = malloc(sizeof(float) * c->N * c->C);
    double f = ca_logreg_loss(c->X, c->y, c->N, c->C, c->D, c->lambda, t, g, s);
    free(s);
    return f;
}

static void test_logreg_gradient(void) {
    enum { N = 9, C = 4, D = 7 };
    float X[N * D], th[C * (D + 1)];
    int32_t y[N] = {0, 1, 2, 3, 0, 1, 2, 3, 3};
    fill(X, N * D, 1); fill(th, C * (D + 1), 0.7);
    lr_ctx c = {X, y, N, C, D, 0.3};
    CHECK_EQ_INT(gradcheck(lr_obj, th, C * (D + 1), 1e-2, 2e-3, 1e-3, &c, "logreg"), 0);
}

/* ---- every method on synthetic sets ---- */


static const char *const MINE[] = {"clip-adapter", "clip-adapter-text", "clip-adapter-both", "linear-probe",
                                   "prototype", "tip-cache", "gda", "gda-zs"};

static void test_methods_synthetic(void) {
    ca_fit_params p = ca_fit_default_params();
    p.epochs = 30;
    synth s;
    /* odd dim, few classes, 1 shot; then a moderate case */
    int cfg[3][3] = {{3, 37, 1}, {4, 64, 4}, {2, 20, 2}};
    for (int k = 0; k < 3; k++) {
        synth_make(&s, cfg[k][0], cfg[k][1], cfg[k][2], 60, 1.0);
        for (size_t m = 0; m < sizeof MINE / sizeof MINE[0]; m++) check_method_on(&s, MINE[m], &p, 0);
        synth_free(&s);
    }
}

static void test_clip_adapter_ratio_modes(void) {
    synth s;
    synth_make(&s, 5, 32, 4, 50, 1.0);
    for (int mode = 0; mode <= 2; mode++) {
        ca_fit_params p = ca_fit_default_params();
        p.epochs = 20; p.ratio_mode = mode;
        for (int v = 0; v < 3; v++) check_method_on(&s, MINE[v], &p, 0);
        p.optimizer = 1;   /* SGD momentum */
        check_method_on(&s, "clip-adapter", &p, 0);
    }
    /* deterministic for a seed */
    ca_fit_params p = ca_fit_default_params();
    p.epochs = 5;
    ca_fit_data d = {.num_classes = s.C, .dim = s.D, .text_w = s.W};
    d.train = (ca_split){.n = s.C * s.K, .dim = s.D, .x = s.x, .y = s.y};
    d.val = (ca_split){.n = s.Nv, .dim = s.D, .x = s.xv, .y = s.yv};
    ca_classifier *a = ca_fit("clip-adapter-both", &d, &p, NULL), *b = ca_fit("clip-adapter-both", &d, &p, NULL);
    CHECK(a && b);
    if (a && b) {
        float la[5], lb[5];
        ca_classifier_logits(a, s.xv, 1, la);
        ca_classifier_logits(b, s.xv, 1, lb);
        CHECK(memcmp(la, lb, sizeof la) == 0);
    }
    ca_classifier_free(a); ca_classifier_free(b);
    /* augmented views: one view per image per epoch; still learns, still deterministic */
    {
        int n = s.C * s.K, V = 3;
        float *xv = malloc(sizeof(float) * V * n * s.D);
        for (int v = 0; v < V; v++)
            for (int i = 0; i < n * s.D; i++) xv[(size_t)v * n * s.D + i] = s.x[i] + (float)(0.05 * nrand());
        d.train.views = V; d.train.xv = xv;
        p.epochs = 10;
        ca_classifier *va = ca_fit("clip-adapter", &d, &p, NULL), *vb = ca_fit("clip-adapter", &d, &p, NULL);
        CHECK(va && vb);
        if (va && vb) {
            float *la = malloc(sizeof(float) * s.Nv * s.C), *lb = malloc(sizeof(float) * s.Nv * s.C);
            ca_classifier_logits(va, s.xv, s.Nv, la);
            ca_classifier_logits(vb, s.xv, s.Nv, lb);
            CHECK(memcmp(la, lb, sizeof(float) * s.Nv * s.C) == 0);
            CHECK(ca_accuracy(la, s.yv, s.Nv, s.C) > 100.0 / s.C + 10);
            free(la); free(lb);
        }
        ca_classifier_free(va); ca_classifier_free(vb);
        d.train.views = 0; d.train.xv = NULL;
        free(xv);
    }
    /* an absurd learning rate diverges: the fit fails clearly instead of keeping an early state */
    {
        ca_fit_params q = ca_fit_default_params();
        q.epochs = 5; q.lr = 1e30;
        ca_status st = CA_OK;
        ca_classifier *cz = ca_fit("clip-adapter-both", &d, &q, &st);
        CHECK(cz == NULL);
        CHECK_EQ_INT(st, CA_E_NONFINITE);
        CHECK_MSG(strstr(ca_last_error(), "diverged") != NULL, "got '%s'", ca_last_error());
        ca_classifier_free(cz);
    }
    /* bad options are errors, not crashes */
    p.ratio = 1.5;
    CHECK(ca_fit("clip-adapter", &d, &p, NULL) == NULL);
    p = ca_fit_default_params(); p.optimizer = 7;
    CHECK(ca_fit("clip-adapter", &d, &p, NULL) == NULL);
    synth_free(&s);
}

/* Acceptance on a cheap real set: linear probe and GDA beat prototype at 16 shots. */
static void test_oxford_pets_16shot(void) {
    ca_status st;
    ca_featureset *fs = ca_features_load(th_shared("features/oxford_pets.safetensors"), &st);
    CHECK_MSG(fs != NULL, "%s", ca_last_error());
    if (!fs) return;
    ca_fit_data d = {.num_classes = ca_features_num_classes(fs), .dim = ca_features_dim(fs)};
    ca_split test;
    CHECK_EQ_INT(ca_features_split(fs, "train.16shot", &d.train), CA_OK);
    CHECK_EQ_INT(ca_features_split(fs, "val", &d.val), CA_OK);
    CHECK_EQ_INT(ca_features_split(fs, "test", &test), CA_OK);
    float *L = malloc(sizeof(float) * test.n * d.num_classes);
    double acc[3];
    const char *m[3] = {"prototype", "linear-probe", "gda"};
    for (int i = 0; i < 3; i++) {
        ca_classifier *c = ca_fit(m[i], &d, NULL, &st);
        CHECK_MSG(c != NULL, "%s: %s", m[i], ca_last_error());
        acc[i] = 0;
        if (c && ca_classifier_logits(c, test.x, test.n, L) == CA_OK) acc[i] = ca_accuracy(L, test.y, test.n, d.num_classes);
        fprintf(stderr, "  oxford_pets 16-shot %-12s test %.2f\n", m[i], acc[i]);
        ca_classifier_free(c);
    }
    CHECK(acc[0] > 60);
    CHECK_MSG(acc[1] > acc[0], "linear-probe %.2f <= prototype %.2f", acc[1], acc[0]);
    CHECK_MSG(acc[2] > acc[0], "gda %.2f <= prototype %.2f", acc[2], acc[0]);
    free(L);
    ca_features_free(fs);
}

/* Acceptance proxy on stanford_cars 16 shots: CLIP-Adapter beats zero-shot (58.17) by >= 5
 * points on test. 10 epochs instead of 200 keep the test cheap (200 epochs: see docs). */
static void test_stanford_cars_clip_adapter(void) {
    ca_status st;
    ca_featureset *fs = ca_features_load(th_shared("features/stanford_cars.safetensors"), &st);
    CHECK_MSG(fs != NULL, "%s", ca_last_error());
    if (!fs) return;
    ca_fit_data d = {.num_classes = ca_features_num_classes(fs), .dim = ca_features_dim(fs), .text_w = ca_features_text(fs)};
    ca_split test;
    CHECK_EQ_INT(ca_features_split(fs, "train.16shot", &d.train), CA_OK);
    CHECK_EQ_INT(ca_features_split(fs, "val", &d.val), CA_OK);
    CHECK_EQ_INT(ca_features_split(fs, "test", &test), CA_OK);
    float *L = malloc(sizeof(float) * test.n * d.num_classes);
    ca_fit_params p = ca_fit_default_params();
    p.epochs = 10;
    double acc[2] = {0, 0};
    const char *m[2] = {"zero-shot", "clip-adapter"};
    for (int i = 0; i < 2; i++) {
        ca_classifier *c = ca_fit(m[i], &d, &p, &st);
        CHECK_MSG(c != NULL, "%s: %s", m[i], ca_last_error());
        if (c && ca_classifier_logits(c, test.x, test.n, L) == CA_OK) acc[i] = ca_accuracy(L, test.y, test.n, d.num_classes);
        fprintf(stderr, "  stanford_cars 16-shot %-12s test %.2f\n", m[i], acc[i]);
        ca_classifier_free(c);
    }
    CHECK_NEAR(acc[0], 58.17, 0.01);
    CHECK_MSG(acc[1] >= acc[0] + 5, "clip-adapter %.2f < zero-shot %.2f + 5", acc[1], acc[0]);
    free(L);
    ca_features_free(fs);
}

int main(void) {
    RUN(test_ce_and_norm_gradients);
    RUN(test_clip_adapter_gradients);
    RUN(test_logreg_gradient);
    RUN(test_methods_synthetic);
    RUN(test_clip_adapter_ratio_modes);
    RUN(test_oxford_pets_16shot);
    RUN(test_stanford_cars_clip_adapter);
    TEST_END();
}
