/* testmath.h — numeric helpers shared by the method tests (test_adapters.c, test_methods.c):
 * a seeded uniform/normal generator, random and row-normalised matrices, the finite-difference
 * gradient checker, and small synthetic class-structured feature sets. Static, so each test binary
 * has its own generator stream; define TM_SEED before including to pick it. */
#ifndef CA_TESTMATH_H
#define CA_TESTMATH_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "clipadapt.h"
#ifndef TM_SEED
#define TM_SEED 12345
#endif

static uint64_t rs = TM_SEED;
static double urand(void) { rs = rs * 6364136223846793005ull + 1442695040888963407ull; return (double)(rs >> 11) / 9007199254740992.0; }
static double nrand(void) { double u = urand() + 1e-12, v = urand(); return sqrt(-2 * log(u)) * cos(6.283185307179586 * v); }
static void fill(float *x, size_t n, double s) { for (size_t i = 0; i < n; i++) x[i] = (float)(s * nrand()); }
static void normrows(float *x, int n, int D) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < D; k++) s += (double)x[i * D + k] * x[i * D + k];
        for (int k = 0; k < D; k++) x[i * D + k] /= (float)sqrt(s);
    }
}

/* Compare analytic g against central differences of f over all n coordinates of x, at step eps
 * and at eps/4: a coordinate is bad when both disagree beyond tol (relative, with floor_). The
 * large step fights float noise, the small one ReLU kinks; a wrong gradient fails at both. */
typedef double (*objective)(const float *x, float *g, void *u);
static double fd(objective f, float *x, size_t i, double eps, float *tmp, void *u) {
    float x0 = x[i];
    x[i] = x0 + (float)eps; double fp = f(x, tmp, u);
    x[i] = x0 - (float)eps; double fm = f(x, tmp, u);
    x[i] = x0;
    return (fp - fm) / (2 * eps);
}
static int gradcheck(objective f, float *x, size_t n, double eps, double tol, double floor_, void *u, const char *what) {
    float *g = malloc(n * sizeof(float)), *tmp = malloc(n * sizeof(float));
    f(x, g, u);
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double err = 1e30, num = 0;
        for (int k = 0; k < 2 && err > tol; k++) {
            num = fd(f, x, i, k ? eps / 4 : eps, tmp, u);
            double e = fabs(num - g[i]) / fmax(fabs(num) + fabs(g[i]), floor_);
            err = e < err ? e : err;
        }
        if (err > worst) worst = err;
        if (err > tol) { if (bad < 3) fprintf(stderr, "  %s: coord %zu analytic %.6g numeric %.6g\n", what, i, g[i], num); bad++; }
    }
    fprintf(stderr, "  %s: %zu coords, worst rel err %.2g, %d over %.0g\n", what, n, worst, bad, tol);
    free(g); free(tmp);
    return bad;
}

/* C classes of unit-norm centres in D dims; K shots and Nv val rows per class with the given
 * noise; W: noisy centres, a stand-in for text weights. */
typedef struct { int C, D, K, Nv; float *x, *xv, *W; int32_t *y, *yv; } synth;

static void synth_make(synth *s, int C, int D, int K, int Nv, double noise) {
    s->C = C; s->D = D; s->K = K; s->Nv = Nv;
    float *mu = malloc(sizeof(float) * C * D);
    fill(mu, (size_t)C * D, 1); normrows(mu, C, D);
    s->x = malloc(sizeof(float) * C * K * D); s->y = malloc(sizeof(int32_t) * C * K);
    s->xv = malloc(sizeof(float) * Nv * D); s->yv = malloc(sizeof(int32_t) * Nv);
    s->W = malloc(sizeof(float) * C * D);
    for (int i = 0; i < C * K + Nv; i++) {
        int cl = i % C;
        float *r = i < C * K ? s->x + (size_t)i * D : s->xv + (size_t)(i - C * K) * D;
        for (int k = 0; k < D; k++) r[k] = mu[cl * D + k] + (float)(noise * nrand() / sqrt(D));
        normrows(r, 1, D);
        if (i < C * K) s->y[i] = cl; else s->yv[i - C * K] = cl;
    }
    for (int i = 0; i < C * D; i++) s->W[i] = mu[i] + (float)(1.2 * nrand() / sqrt(D));
    normrows(s->W, C, D);
    free(mu);
}
static void synth_free(synth *s) { free(s->x); free(s->xv); free(s->W); free(s->y); free(s->yv); }


/* Fit m on s (with val, or without when no_val), check finite logits above chance on val and a
 * save/load round trip. */
static void check_method_on(const synth *s, const char *m, const ca_fit_params *p, int no_val) {
    ca_fit_data d = {.num_classes = s->C, .dim = s->D, .text_w = s->W};
    d.train = (ca_split){.n = s->C * s->K, .dim = s->D, .x = s->x, .y = s->y};
    d.val = (ca_split){.n = no_val ? 0 : s->Nv, .dim = s->D, .x = s->xv, .y = s->yv};
    ca_status st;
    ca_classifier *c = ca_fit(m, &d, p, &st);
    CHECK_MSG(c != NULL, "%s C=%d D=%d K=%d%s: fit failed: %s", m, s->C, s->D, s->K, no_val ? " (no val)" : "", ca_last_error());
    if (!c) return;
    float *L = malloc(sizeof(float) * s->Nv * s->C), *L2 = malloc(sizeof(float) * s->Nv * s->C);
    CHECK_EQ_INT(ca_classifier_logits(c, s->xv, s->Nv, L), CA_OK);
    int finite = 1;
    for (int i = 0; i < s->Nv * s->C; i++) finite &= isfinite(L[i]) != 0;
    CHECK_MSG(finite, "%s: non-finite logits", m);
    double acc = ca_accuracy(L, s->yv, s->Nv, s->C);
    fprintf(stderr, "  %-8s C=%d D=%d K=%d %s val acc %.1f (chance %.1f)\n", m, s->C, s->D, s->K, no_val ? "no-val" : "val   ", acc, 100.0 / s->C);
    CHECK_MSG(acc > 100.0 / s->C + 10, "%s C=%d D=%d K=%d: acc %.1f not above chance", m, s->C, s->D, s->K, acc);
    char path[600];
    snprintf(path, sizeof path, "%s/m_%s.safetensors", th_tmpdir(), m);
    CHECK_EQ_INT(ca_classifier_save(c, path, NULL), CA_OK);
    ca_classifier *c2 = ca_classifier_load(path, &st);
    CHECK_MSG(c2 != NULL, "%s: reload failed: %s", m, ca_last_error());
    if (c2) {
        ca_classifier_logits(c2, s->xv, s->Nv, L2);
        double md = 0;
        for (int i = 0; i < s->Nv * s->C; i++) md = fmax(md, fabs(L[i] - L2[i]));
        CHECK_NEAR(md, 0, 1e-4);
    }
    ca_classifier_free(c2);
    ca_classifier_free(c);
    free(L); free(L2);
}
#endif
