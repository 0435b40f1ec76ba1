/* kernels.c — plain float32 kernels of the CLIP encoders and their naive oracles. GEMM-shaped
 * work goes through ca_sgemm (OpenBLAS); the rest is loops parallelised with OpenMP over rows.
 * Not here: model structure, weight loading, error handling (see vit.c, resnet.c, load.c).
 */
#include "model/kernels.h"
#include "core/core.h"
#include "model/gemm.h"

#include <math.h>
#include <string.h>

void ca_linear(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC) {
    if (N <= 0 || OC <= 0) return;
    float beta = 0.0f;
    if (b) {
        /* Seed the output with the bias so that the GEMM accumulates onto it (beta = 1). */
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OC, b, (size_t)OC * sizeof *out);
        beta = 1.0f;
    }
    ca_sgemm(0, 1, N, OC, IC, 1.0f, inp, IC, w, IC, beta, out, OC);
}

void ca_linear_ref(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC) {
    ca_sgemm_ref(0, 1, N, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
    if (b)
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OC; o++) out[(size_t)i * OC + o] += b[o];
}

void ca_layernorm(float *out, const float *inp, const float *w, const float *b, int N, int C, float eps) {
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        /* Two passes in double: the mean first, then the centred variance (no cancellation). */
        double s = 0;
        for (int c = 0; c < C; c++) s += x[c];
        double mean = s / C, v = 0;
        for (int c = 0; c < C; c++) { double d = x[c] - mean; v += d * d; }
        float rstd = (float)(1.0 / sqrt(v / C + eps)), m = (float)mean;
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * rstd * w[c] + b[c];
    }
}

void ca_layernorm_ref(float *out, const float *inp, const float *w, const float *b, int N, int C, float eps) {
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
        var /= C;
        for (int c = 0; c < C; c++)
            out[(size_t)i * C + c] = (float)((x[c] - mean) / sqrt(var + eps) * w[c] + b[c]);
    }
}

void ca_quickgelu(float *x, size_t n) {
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void ca_gelu_erf(float *x, size_t n) {
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void ca_gelu_tanh(float *x, size_t n) {
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    }
}

void ca_relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void ca_add(float *x, const float *y, size_t n) {
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void ca_attention(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                  const float *v, int ldv, int B, int Tq, int Tk, int C, int NH, int causal,
                  float *scores) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for num_threads(ca_kernel_threads(0)) collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *qb = q + (size_t)b * Tq * ldq + (size_t)h * hs;
            const float *kb = k + (size_t)b * Tk * ldk + (size_t)h * hs;
            const float *vb = v + (size_t)b * Tk * ldv + (size_t)h * hs;
            float *ob = out + (size_t)b * Tq * ldo + (size_t)h * hs;
            float *sb = scores + ((size_t)b * NH + h) * Tq * Tk;
            ca_team_note();
            for (int i = 0; i < Tq; i++) {
                const float *qi = qb + (size_t)i * ldq;
                float *s = sb + (size_t)i * Tk;
                int n = causal ? i + 1 : Tk;
                float mx = -INFINITY;
                for (int j = 0; j < n; j++) {
                    const float *kj = kb + (size_t)j * ldk;
                    float d = 0.0f;
                    for (int c = 0; c < hs; c++) d += qi[c] * kj[c];
                    s[j] = d * scale;
                    if (s[j] > mx) mx = s[j];
                }
                float sum = 0.0f;
                for (int j = 0; j < n; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }
                float inv = 1.0f / sum;
                float *oi = ob + (size_t)i * ldo;
                for (int c = 0; c < hs; c++) oi[c] = 0.0f;
                for (int j = 0; j < n; j++) {
                    const float *vj = vb + (size_t)j * ldv;
                    float p = s[j] * inv;
                    for (int c = 0; c < hs; c++) oi[c] += p * vj[c];
                }
            }
        }
}

void ca_attention_ref(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                      const float *v, int ldv, int B, int Tq, int Tk, int C, int NH, int causal) {
    int hs = C / NH;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < Tq; i++) {
                const float *qi = q + ((size_t)b * Tq + i) * ldq + (size_t)h * hs;
                double mx = -INFINITY, sum = 0;
                int n = causal ? i + 1 : Tk;
                for (int pass = 0; pass < 2; pass++) {
                    double acc[1024] = {0}; /* hs <= 1024 in tests */
                    for (int j = 0; j < n; j++) {
                        const float *kj = k + ((size_t)b * Tk + j) * ldk + (size_t)h * hs;
                        double d = 0;
                        for (int c = 0; c < hs; c++) d += (double)qi[c] * kj[c];
                        d /= sqrt((double)hs);
                        if (pass == 0) { if (d > mx) mx = d; continue; }
                        double p = exp(d - mx);
                        sum += p;
                        const float *vj = v + ((size_t)b * Tk + j) * ldv + (size_t)h * hs;
                        for (int c = 0; c < hs && c < 1024; c++) acc[c] += p * vj[c];
                    }
                    if (pass == 1)
                        for (int c = 0; c < hs && c < 1024; c++)
                            out[((size_t)b * Tq + i) * ldo + (size_t)h * hs + c] = (float)(acc[c] / sum);
                }
            }
}

/* col (C·KH·KW, OH·OW) from one image x (C, H, W). */
static void im2col(float *col, const float *x, int C, int H, int W, int KH, int KW, int stride,
                   int pad, int OH, int OW) {
#pragma omp parallel for num_threads(ca_kernel_threads(0)) schedule(static)
    for (int r = 0; r < C * KH * KW; r++) {
        int c = r / (KH * KW), kh = (r / KW) % KH, kw = r % KW;
        float *dst = col + (size_t)r * OH * OW;
        const float *src = x + (size_t)c * H * W;
        for (int oh = 0; oh < OH; oh++) {
            int ih = oh * stride - pad + kh;
            for (int ow = 0; ow < OW; ow++) {
                int iw = ow * stride - pad + kw;
                dst[oh * OW + ow] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? src[(size_t)ih * W + iw] : 0.0f;
            }
        }
    }
}

void ca_conv2d(float *out, const float *inp, const float *w, int N, int C, int H, int W, int OC,
               int KH, int KW, int stride, int pad, float *col) {
    int OH = ca_conv_out(H, KH, stride, pad), OW = ca_conv_out(W, KW, stride, pad);
    int K = C * KH * KW, P = OH * OW;
    int direct = KH == 1 && KW == 1 && stride == 1 && pad == 0;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C * H * W;
        const float *B = x;
        if (!direct) {
            im2col(col, x, C, H, W, KH, KW, stride, pad, OH, OW);
            B = col;
        }
        ca_sgemm(0, 0, OC, P, K, 1.0f, w, K, B, P, 0.0f, out + (size_t)n * OC * P, P);
    }
}

void ca_conv2d_ref(float *out, const float *inp, const float *w, int N, int C, int H, int W, int OC,
                   int KH, int KW, int stride, int pad) {
    int OH = ca_conv_out(H, KH, stride, pad), OW = ca_conv_out(W, KW, stride, pad);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = 0;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)inp[(((size_t)n * C + c) * H + ih) * W + iw] *
                                       w[(((size_t)o * C + c) * KH + kh) * KW + kw];
                            }
                    out[(((size_t)n * OC + o) * OH + oh) * OW + ow] = (float)acc;
                }
}

void ca_channel_affine(float *x, const float *scale, const float *shift, int N, int C, int HW, int relu) {
#pragma omp parallel for num_threads(ca_kernel_threads(0)) collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float *p = x + ((size_t)n * C + c) * HW;
            float a = scale[c], s = shift[c];
            if (relu)
                for (int i = 0; i < HW; i++) { float y = p[i] * a + s; p[i] = y > 0.0f ? y : 0.0f; }
            else
                for (int i = 0; i < HW; i++) p[i] = p[i] * a + s;
        }
}

void ca_batchnorm_fold(float *scale, float *shift, const float *w, const float *b, const float *mean,
                       const float *var, int C, float eps) {
    for (int c = 0; c < C; c++) {
        double a = (double)w[c] / sqrt((double)var[c] + eps);
        scale[c] = (float)a;
        shift[c] = (float)((double)b[c] - (double)mean[c] * a);
    }
}

void ca_batchnorm_ref(float *x, const float *w, const float *b, const float *mean, const float *var,
                      int N, int C, int HW, float eps) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) {
                float *p = &x[((size_t)n * C + c) * HW + i];
                *p = (float)((*p - (double)mean[c]) / sqrt((double)var[c] + eps) * w[c] + b[c]);
            }
}

void ca_avgpool2d(float *out, const float *inp, int N, int C, int H, int W, int k) {
    int OH = H / k, OW = W / k;
    float inv = 1.0f / (float)(k * k);
#pragma omp parallel for num_threads(ca_kernel_threads(0)) collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const float *x = inp + ((size_t)n * C + c) * H * W;
            float *y = out + ((size_t)n * C + c) * OH * OW;
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float s = 0.0f;
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++) s += x[(size_t)(oh * k + i) * W + ow * k + j];
                    y[oh * OW + ow] = s * inv;
                }
        }
}
