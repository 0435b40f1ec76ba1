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

#endif
