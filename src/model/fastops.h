/* fastops.h — the encoders' non-GEMM hot spots, vectorised and threaded: fused multi-head
 * attention straight from the packed QKV projection, LayerNorm over rows, an im2col-free
 * (implicit GEMM) NHWC convolution, NHWC average pooling. Each has a naive `_ref` twin in
 * fastops.c, the oracle for tests/test_kernels.c. All functions are thread-safe on distinct
 * outputs; `threads` 0 = library default (1 when already inside a parallel region). */
#ifndef CA_FASTOPS_H
#define CA_FASTOPS_H

#include "model/fastgemm.h"

/* Multi-head attention on a packed projection.
 * qkv: (B, T, 3C) rows [q | k | v], head h at columns h*hd .. h*hd+hd-1 of each part.
 * out: (B, T, C) heads concatenated, ready for the output projection. C = heads * hd.
 * causal != 0: query i sees keys 0..i only (the text tower's mask).
 * Scores exist only one query block at a time (never T x T per head). */
ca_status ca_mha_packed(const float *qkv, int B, int T, int heads, int hd, int causal, float *out,
                       int threads);
/* The same over nseq packed sequences of different lengths: sequence b is rows
 * offs[b] .. offs[b+1]-1 of qkv (3C wide) and of out (C wide). */
ca_status ca_mha_varlen(const float *qkv, int nseq, const int *offs, int heads, int hd, int causal,
                        float *out, int threads);
void ca_mha_packed_ref(const float *qkv, int B, int T, int heads, int hd, int causal, float *out);

/* y = LayerNorm(x) over the last dim C with weight w and bias b, eps 1e-5; rows = number of
 * rows, x and y row strides ldx/ldy (in place allowed when equal). */
void ca_ln_rows(const float *x, int ldx, int rows, int C, const float *w, const float *b,
                  float *y, int ldy, int threads);
void ca_ln_rows_ref(const float *x, int ldx, int rows, int C, const float *w, const float *b,
                      float *y, int ldy);

/* NHWC convolution as an implicit GEMM (the A-operand packing gathers the receptive field;
 * no im2col buffer): out(N,Ho,Wo,Cout) = act(conv(in) + bias + beta·out). W packed from
 * weights laid out (Cout, KH, KW, Cin) — use ca_conv_pack_weights for PyTorch's
 * (Cout, Cin, KH, KW) order. Ho = (H + 2·pad − KH)/stride + 1, same for Wo. */
typedef struct {
    int KH, KW, stride, pad, Cin, Cout;
    ca_packed W;
} ca_conv;
/* w: (Cout, Cin, KH, KW) of dtype F32/F16/BF16, packed as `panel` (see ca_pack_weights_as);
 * scale (Cout) or NULL folds a following BatchNorm: the outputs are multiplied by it per channel
 * in the GEMM epilogue (the weights stay as stored, so they unpack exactly; the BN shift becomes
 * the caller's bias). */
ca_status ca_conv_pack_weights(ca_conv *c, const void *w, ca_dtype dt, int Cout, int Cin, int KH,
                               int KW, int stride, int pad, const float *scale, ca_dtype panel);
/* The same into the caller's memory (mem, cap: as ca_pack_weights_into, for Cout x KH·KW·Cin;
 * F32 or F16 panels); the scale is still the conv's own. */
ca_status ca_conv_pack_weights_into(ca_conv *c, void *mem, size_t cap, const void *w, ca_dtype dt, int Cout, int Cin,
                                    int KH, int KW, int stride, int pad, const float *scale, ca_dtype panel);
/* The weights back as w (Cout, Cin, KH, KW), exactly as packed (CA_E_UNSUPPORTED for BF16). */
ca_status ca_conv_unpack_weights(const ca_conv *c, float *w);
void ca_conv_free(ca_conv *c);
ca_status ca_conv2d_nhwc(const ca_conv *c, const float *in, int N, int H, int W, const float *bias,
                         ca_epi act, float beta, float *out, int threads);
/* Oracle: plain 7-loop convolution on NHWC with F32 weights (Cout, Cin, KH, KW). */
void ca_conv2d_nhwc_ref(const float *in, int N, int H, int W, int Cin, const float *w, int Cout,
                        int KH, int KW, int stride, int pad, const float *bias, ca_epi act,
                        float beta, float *out);

/* k x k average pooling with stride k on NHWC (H, W divisible by k is not required: floor). */
void ca_avgpool_nhwc(const float *in, int N, int H, int W, int C, int k, float *out, int threads);

#endif
