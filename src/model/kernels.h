/* kernels.h — the numerical building blocks of the CLIP encoders: plain functions on float*
 * with their shapes in comments. Each optimised kernel has a naive `_ref` twin that the tests
 * use as the oracle. No allocation, no errors: callers check shapes and pass scratch space.
 * Layout conventions: row-major; images NCHW; token sequences (B, T, C).
 */
#ifndef CA_KERNELS_H
#define CA_KERNELS_H

#include <stddef.h>

/* Output size of a convolution or pooling along one axis (floor mode, as PyTorch). */
static inline int ca_conv_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* out (N, OC) = inp (N, IC) · w (OC, IC)ᵀ + b (OC); b may be NULL. out must not alias inp. */
void ca_linear(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC);
void ca_linear_ref(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC);

/* out (N, C) = (x - mean) / sqrt(var + eps) · w + b, per row of inp (N, C). out may equal inp. */
void ca_layernorm(float *out, const float *inp, const float *w, const float *b, int N, int C, float eps);
void ca_layernorm_ref(float *out, const float *inp, const float *w, const float *b, int N, int C, float eps);

/* In place activations on x (n). */
void ca_quickgelu(float *x, size_t n);   /* x · sigmoid(1.702 x) (CLIP) */
void ca_gelu_erf(float *x, size_t n);    /* 0.5 x (1 + erf(x/√2)) (HF "gelu") */
void ca_gelu_tanh(float *x, size_t n);   /* tanh approximation (HF "gelu_new", "gelu_pytorch_tanh") */
void ca_relu(float *x, size_t n);

/* x (n) += y (n). */
void ca_add(float *x, const float *y, size_t n);

/* Multi-head scaled dot-product attention, heads of size C/NH.
 * q: (B, Tq) rows of stride ldq (the first C values of each row are used), k, v: (B, Tk) rows
 * of stride ldk, ldv; out: (B, Tq) rows of stride ldo, C values each.
 * causal != 0: query i sees keys j <= i only (requires Tq == Tk).
 * scores: scratch (B, NH, Tq, Tk). */
void ca_attention(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                  const float *v, int ldv, int B, int Tq, int Tk, int C, int NH, int causal,
                  float *scores);
/* The oracle: the same in double precision, one score row at a time (no scratch). */
void ca_attention_ref(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                      const float *v, int ldv, int B, int Tq, int Tk, int C, int NH, int causal);

/* 2-D convolution without bias, zero padding.
 * out (N, OC, OH, OW) = conv(inp (N, C, H, W), w (OC, C, KH, KW)), OH = ca_conv_out(H, KH, s, pad).
 * col: scratch (C·KH·KW, OH·OW) (unused for 1×1 stride-1 unpadded convolutions; may be NULL then). */
void ca_conv2d(float *out, const float *inp, const float *w, int N, int C, int H, int W, int OC,
               int KH, int KW, int stride, int pad, float *col);
void ca_conv2d_ref(float *out, const float *inp, const float *w, int N, int C, int H, int W, int OC,
                   int KH, int KW, int stride, int pad);

/* Inference BatchNorm folded to a per-channel affine map: x (N, C, HW) = x · scale[c] + shift[c],
 * then max(x, 0) when relu != 0. */
void ca_channel_affine(float *x, const float *scale, const float *shift, int N, int C, int HW, int relu);
/* Fold BatchNorm (weight, bias, running mean, running var, eps) of C channels into scale/shift. */
void ca_batchnorm_fold(float *scale, float *shift, const float *w, const float *b, const float *mean,
                       const float *var, int C, float eps);
/* The oracle: x (N, C, HW) = (x - mean) / sqrt(var + eps) · w + b, in double. */
void ca_batchnorm_ref(float *x, const float *w, const float *b, const float *mean, const float *var,
                      int N, int C, int HW, float eps);

/* Average pooling with kernel = stride = k, no padding (PyTorch AvgPool2d(k)):
 * out (N, C, H/k, W/k) from inp (N, C, H, W), floor mode. */
void ca_avgpool2d(float *out, const float *inp, int N, int C, int H, int W, int k);

#endif
