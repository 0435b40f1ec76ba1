/* fastops.c — fused attention, LayerNorm, implicit-GEMM convolution and pooling for the CPU
 * fast path, each beside its naive oracle. Not the model: the forward passes call these. */
#include "model/fastops.h"

#include "core/core.h"
#include "model/simd.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- attention ---- */

void ca_mha_packed_ref(const float *qkv, int B, int T, int heads, int hd, int causal, float *out) {
    int C = heads * hd;
    double *s = malloc(sizeof(double) * (size_t)(T > 0 ? T : 1));
    if (!s) return;
    double scale = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * 3 * C + (size_t)h * hd;
                int nk = causal ? i + 1 : T;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < nk; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * 3 * C + C + (size_t)h * hd;
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double)q[e] * k[e];
                    s[j] = d * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < nk; j++) sum += (s[j] = exp(s[j] - mx));
                float *o = out + ((size_t)b * T + i) * C + (size_t)h * hd;
                for (int e = 0; e < hd; e++) {
                    double acc = 0;
                    for (int j = 0; j < nk; j++) acc += s[j] * qkv[((size_t)b * T + j) * 3 * C + 2 * C + (size_t)h * hd + e];
                    o[e] = (float)(acc / sum);
                }
            }
    free(s);
}

#if CA_HAVE_AVX512
enum { QB = 8 }; /* query rows per block: 8 score accumulators in QKᵀ; PV runs 4 rows at a time */

/* One (sequence, head): kt is scratch (hd, Tp), s scratch (QB, Tp). hd is a multiple of 16. */
static void attn_head(const float *qkv, int T, int C, int hd, int h, int causal, float *out,
                      float *kt, float *s, int Tp) {
    const float scale = 1.0f / sqrtf((float)hd);
    /* K of this head transposed, so a query row's scores are FMAs along the key axis */
    for (int j = 0; j < T; j++) {
        const float *k = qkv + (size_t)j * 3 * C + C + (size_t)h * hd;
        for (int e = 0; e < hd; e++) kt[(size_t)e * Tp + j] = k[e];
    }
    for (int e = 0; e < hd; e++)
        for (int j = T; j < Tp; j++) kt[(size_t)e * Tp + j] = 0;
    int nv = hd / 16;
    for (int i0 = 0; i0 < T; i0 += QB) {
        int qb = T - i0 < QB ? T - i0 : QB;
        int nk = causal ? i0 + qb : T; /* keys any row of this block may see */
        int nchunk = (nk + 15) / 16;
        const float *q[QB];
        for (int r = 0; r < QB; r++) q[r] = qkv + (size_t)(i0 + (r < qb ? r : 0)) * 3 * C + (size_t)h * hd;
        for (int c = 0; c < nchunk; c++) {
            __m512 acc[QB];
#pragma GCC unroll 8
            for (int r = 0; r < QB; r++) acc[r] = _mm512_setzero_ps();
            const float *kc = kt + 16 * c;
            for (int e = 0; e < hd; e++) {
                __m512 kv = _mm512_loadu_ps(kc + (size_t)e * Tp);
#pragma GCC unroll 8
                for (int r = 0; r < QB; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][e]), kv, acc[r]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < QB; r++) _mm512_storeu_ps(s + (size_t)r * Tp + 16 * c, _mm512_mul_ps(acc[r], _mm512_set1_ps(scale)));
        }
        /* softmax per row over its visible keys; masked and padding keys get weight 0 */
        float inv[QB];
        int nkp = nchunk * 16;
        for (int r = 0; r < QB; r++) {
            float *sr = s + (size_t)r * Tp;
            int n = r < qb ? (causal ? i0 + r + 1 : T) : 0;
            if (n == 0) { memset(sr, 0, sizeof(float) * nkp); inv[r] = 0; continue; }
            __m512 mv = _mm512_set1_ps(-FLT_MAX);
            int j = 0;
            for (; j + 16 <= n; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(sr + j));
            float mx = _mm512_reduce_max_ps(mv);
            for (; j < n; j++) mx = sr[j] > mx ? sr[j] : mx;
            __m512 sum = _mm512_setzero_ps(), mxv = _mm512_set1_ps(mx);
            for (j = 0; j < nkp; j += 16) {
                __mmask16 m = j + 16 <= n ? 0xffff : j >= n ? 0 : (__mmask16)((1u << (n - j)) - 1);
                __m512 x = _mm512_sub_ps(_mm512_loadu_ps(sr + j), mxv);
                __m512 e = _mm512_maskz_mov_ps(m, ca_exp512(x));
                _mm512_storeu_ps(sr + j, e);
                sum = _mm512_add_ps(sum, e);
            }
            inv[r] = 1.0f / _mm512_reduce_add_ps(sum);
        }
        /* O = P V, V rows read straight from the projection, 4 query rows x 64 values at a time */
        for (int r0 = 0; r0 < qb; r0 += 4) {
            int rn = qb - r0 < 4 ? qb - r0 : 4;
            int jmax = causal ? i0 + r0 + rn : T;
            for (int v0 = 0; v0 < nv; v0 += 4) {
                int vn = nv - v0 < 4 ? nv - v0 : 4;
                __m512 o[4][4];
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
                    for (int v = 0; v < 4; v++) o[r][v] = _mm512_setzero_ps();
                const float *vb = qkv + 2 * C + (size_t)h * hd + 16 * v0;
                const float *p0 = s + (size_t)r0 * Tp;
                if (vn == 4) {
                    for (int j = 0; j < jmax; j++) {
                        const float *vr = vb + (size_t)j * 3 * C;
                        __m512 v0v = _mm512_loadu_ps(vr), v1v = _mm512_loadu_ps(vr + 16), v2v = _mm512_loadu_ps(vr + 32),
                               v3v = _mm512_loadu_ps(vr + 48);
#pragma GCC unroll 4
                        for (int r = 0; r < 4; r++) {
                            __m512 p = _mm512_set1_ps(p0[(size_t)r * Tp + j]);
                            o[r][0] = _mm512_fmadd_ps(p, v0v, o[r][0]);
                            o[r][1] = _mm512_fmadd_ps(p, v1v, o[r][1]);
                            o[r][2] = _mm512_fmadd_ps(p, v2v, o[r][2]);
                            o[r][3] = _mm512_fmadd_ps(p, v3v, o[r][3]);
                        }
                    }
                } else {
                    for (int j = 0; j < jmax; j++) {
                        const float *vr = vb + (size_t)j * 3 * C;
                        for (int r = 0; r < 4; r++) {
                            __m512 p = _mm512_set1_ps(p0[(size_t)r * Tp + j]);
                            for (int v = 0; v < vn; v++) o[r][v] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16 * v), o[r][v]);
                        }
                    }
                }
                for (int r = 0; r < rn; r++) {
                    float *dst = out + (size_t)(i0 + r0 + r) * C + (size_t)h * hd + 16 * v0;
                    for (int v = 0; v < vn; v++) _mm512_storeu_ps(dst + 16 * v, _mm512_mul_ps(o[r][v], _mm512_set1_ps(inv[r0 + r])));
                }
            }
        }
    }
}
#endif

ca_status ca_mha_varlen(const float *qkv, int nseq, const int *offs, int heads, int hd, int causal,
                       float *out, int threads) {
    if (nseq <= 0) return CA_OK;
    int C = heads * hd, Tmax = 0;
    for (int b = 0; b < nseq; b++) {
        int T = offs[b + 1] - offs[b];
        if (T < 0) return ca_fail(CA_E_ARG, "attention: sequence %d has negative length", b);
        if (T > Tmax) Tmax = T;
    }
#if CA_HAVE_AVX512
    if (hd % 16 == 0) {
        int Tp = (Tmax + 15) & ~15, th = ca_kernel_threads(threads);
        size_t per = (size_t)hd * Tp + (size_t)QB * Tp;
        float *scratch = ca_malloc2(sizeof(float) * (per ? per : 1), (size_t)th);
        if (!scratch) return CA_E_NOMEM;
        int ntask = nseq * heads;
#pragma omp parallel for num_threads(th) schedule(dynamic, 1) if (th > 1)
        for (int t = 0; t < ntask; t++) {
#ifdef _OPENMP
            float *kt = scratch + per * (size_t)omp_get_thread_num();
#else
            float *kt = scratch;
#endif
            ca_team_note();
            int b = t / heads, h = t % heads, T = offs[b + 1] - offs[b];
            if (T > 0)
                attn_head(qkv + (size_t)offs[b] * 3 * C, T, C, hd, h, causal, out + (size_t)offs[b] * C, kt,
                          kt + (size_t)hd * Tp, (T + 15) & ~15);
        }
        free(scratch);
        return CA_OK;
    }
#endif
    (void)threads;
    for (int b = 0; b < nseq; b++)
        ca_mha_packed_ref(qkv + (size_t)offs[b] * 3 * C, 1, offs[b + 1] - offs[b], heads, hd, causal,
                          out + (size_t)offs[b] * C);
    return CA_OK;
}

ca_status ca_mha_packed(const float *qkv, int B, int T, int heads, int hd, int causal, float *out,
                        int threads) {
    if (B <= 0 || T <= 0) return CA_OK;
    int *offs = ca_malloc2(sizeof(int), (size_t)B + 1);
    if (!offs) return CA_E_NOMEM;
    for (int b = 0; b <= B; b++) offs[b] = b * T;
    ca_status st = ca_mha_varlen(qkv, B, offs, heads, hd, causal, out, threads);
    free(offs);
    return st;
}

/* ---- LayerNorm ---- */

void ca_ln_rows_ref(const float *x, int ldx, int rows, int C, const float *w, const float *b,
                      float *y, int ldy) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *yr = y + (size_t)r * ldy;
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += xr[c];
        m /= C;
        for (int c = 0; c < C; c++) v += ((double)xr[c] - m) * ((double)xr[c] - m);
        double rs = 1.0 / sqrt(v / C + 1e-5);
        for (int c = 0; c < C; c++) yr[c] = (float)(((double)xr[c] - m) * rs * w[c] + b[c]);
    }
}

static void layernorm_row(const float *xr, int C, const float *w, const float *b, float *yr) {
    int c = 0;
#if CA_HAVE_AVX512
    __m512 s = _mm512_setzero_ps();
    for (; c + 16 <= C; c += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(xr + c));
    float m = _mm512_reduce_add_ps(s);
    for (; c < C; c++) m += xr[c];
    m /= (float)C;
    __m512 mv = _mm512_set1_ps(m), v2 = _mm512_setzero_ps();
    for (c = 0; c + 16 <= C; c += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xr + c), mv);
        v2 = _mm512_fmadd_ps(d, d, v2);
    }
    float var = _mm512_reduce_add_ps(v2);
    for (; c < C; c++) var += (xr[c] - m) * (xr[c] - m);
    float rs = 1.0f / sqrtf(var / (float)C + 1e-5f);
    __m512 rv = _mm512_set1_ps(rs);
    for (c = 0; c + 16 <= C; c += 16) {
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + c), mv), rv);
        _mm512_storeu_ps(yr + c, _mm512_fmadd_ps(d, _mm512_loadu_ps(w + c), _mm512_loadu_ps(b + c)));
    }
    for (; c < C; c++) yr[c] = (xr[c] - m) * rs * w[c] + b[c];
#else
    float m = 0, var = 0;
    for (c = 0; c < C; c++) m += xr[c];
    m /= (float)C;
    for (c = 0; c < C; c++) var += (xr[c] - m) * (xr[c] - m);
    float rs = 1.0f / sqrtf(var / (float)C + 1e-5f);
    for (c = 0; c < C; c++) yr[c] = (xr[c] - m) * rs * w[c] + b[c];
#endif
}

void ca_ln_rows(const float *x, int ldx, int rows, int C, const float *w, const float *b,
                  float *y, int ldy, int threads) {
    int th = ca_kernel_threads(threads);
    if ((long)rows * C < 32768) th = 1;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1)
    for (int r = 0; r < rows; r++) layernorm_row(x + (size_t)r * ldx, C, w, b, y + (size_t)r * ldy);
}

/* ---- convolution ---- */

ca_status ca_conv_pack_weights(ca_conv *c, const void *w, ca_dtype dt, int Cout, int Cin, int KH,
                               int KW, int stride, int pad, const float *scale, ca_dtype panel) {
    return ca_conv_pack_weights_into(c, NULL, 0, w, dt, Cout, Cin, KH, KW, stride, pad, scale, panel);
}

ca_status ca_conv_pack_weights_into(ca_conv *c, void *mem, size_t cap, const void *w, ca_dtype dt, int Cout, int Cin,
                                    int KH, int KW, int stride, int pad, const float *scale, ca_dtype panel) {
    memset(c, 0, sizeof *c);
    if (Cout <= 0 || Cin <= 0 || KH <= 0 || KW <= 0 || stride <= 0 || pad < 0)
        return ca_fail(CA_E_ARG, "bad convolution geometry");
    if (dt != CA_DT_F32 && dt != CA_DT_F16 && dt != CA_DT_BF16)
        return ca_fail(CA_E_UNSUPPORTED, "cannot pack %s conv weights", ca_dtype_name(dt));
    int K = KH * KW * Cin;
    /* reorder (Cout, Cin, KH, KW) -> (Cout, KH, KW, Cin), values moved as stored (the packer
     * then takes F16 into F16 panels without converting) */
    size_t es = ca_dtype_size(dt);
    unsigned char *r = NULL; /* a 1x1 kernel is already in that order */
    if (KH * KW > 1) {
        r = ca_malloc2(es * (size_t)Cout, (size_t)K);
        if (!r) return CA_E_NOMEM;
        const unsigned char *wb = w;
        for (int o = 0; o < Cout; o++)
            for (int ci = 0; ci < Cin; ci++)
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++) {
                        size_t src = (((size_t)o * Cin + ci) * KH + ky) * KW + kx;
                        memcpy(r + ((size_t)o * K + ((size_t)ky * KW + kx) * Cin + ci) * es, wb + src * es, es);
                    }
    }
    const void *src = r ? (const void *)r : w;
    ca_status st = mem ? ca_pack_weights_into(&c->W, mem, cap, src, dt, Cout, K, K, 0, panel)
                       : ca_pack_weights_as(&c->W, src, dt, Cout, K, K, panel);
    free(r);
    if (!st) st = ca_packed_set_scale(&c->W, scale);
    if (st != CA_OK) { ca_packed_free(&c->W); return st; }
    c->KH = KH; c->KW = KW; c->stride = stride; c->pad = pad; c->Cin = Cin; c->Cout = Cout;
    return CA_OK;
}

ca_status ca_conv_unpack_weights(const ca_conv *c, float *w) {
    int K = c->KH * c->KW * c->Cin;
    float *r = ca_malloc2(sizeof(float) * (size_t)c->Cout, (size_t)K);
    if (!r) return ca_fail(CA_E_NOMEM, "out of memory unpacking conv weights");
    ca_status st = ca_packed_unpack(&c->W, r, K);
    for (int o = 0; !st && o < c->Cout; o++)
        for (int ci = 0; ci < c->Cin; ci++)
            for (int ky = 0; ky < c->KH; ky++)
                for (int kx = 0; kx < c->KW; kx++)
                    w[(((size_t)o * c->Cin + ci) * c->KH + ky) * c->KW + kx] = r[(size_t)o * K + ((size_t)ky * c->KW + kx) * c->Cin + ci];
    free(r);
    return st;
}

void ca_conv_free(ca_conv *c) {
    if (c) ca_packed_free(&c->W);
}

ca_status ca_conv2d_nhwc(const ca_conv *c, const float *in, int N, int H, int W, const float *bias,
                         ca_epi act, float beta, float *out, int threads) {
    ca_conv_geom g = {N, H, W, c->Cin, c->KH, c->KW, c->stride, c->pad, 0, 0};
    g.Ho = (H + 2 * c->pad - c->KH) / c->stride + 1;
    g.Wo = (W + 2 * c->pad - c->KW) / c->stride + 1;
    if (g.Ho <= 0 || g.Wo <= 0) return ca_fail(CA_E_SHAPE, "convolution input %dx%d smaller than its kernel", H, W);
    if (c->KH == 1 && c->KW == 1 && c->stride == 1 && c->pad == 0) /* a plain GEMM over pixels */
        return ca_gemm_packed(N * H * W, in, c->Cin, &c->W, 1.0f, bias, act, beta, out, c->Cout, threads);
    return ca_gemm_conv_nhwc(&g, in, &c->W, bias, act, beta, out, threads);
}

void ca_conv2d_nhwc_ref(const float *in, int N, int H, int W, int Cin, const float *w, int Cout,
                        int KH, int KW, int stride, int pad, const float *bias, ca_epi act,
                        float beta, float *out) {
    int Ho = (H + 2 * pad - KH) / stride + 1, Wo = (W + 2 * pad - KW) / stride + 1;
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int o = 0; o < Cout; o++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int ky = 0; ky < KH; ky++)
                        for (int kx = 0; kx < KW; kx++) {
                            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            for (int ci = 0; ci < Cin; ci++)
                                acc += (double)in[(((size_t)n * H + iy) * W + ix) * Cin + ci] *
                                       w[(((size_t)o * Cin + ci) * KH + ky) * KW + kx];
                        }
                    float *y = out + (((size_t)n * Ho + oy) * Wo + ox) * Cout + o;
                    if (beta != 0.0f) acc += (double)beta * *y;
                    *y = ca_epi_ref(act, (float)acc);
                }
}

void ca_avgpool_nhwc(const float *in, int N, int H, int W, int C, int k, float *out, int threads) {
    int Ho = H / k, Wo = W / k, th = ca_kernel_threads(threads);
    float inv = 1.0f / (float)(k * k);
    long rows = (long)N * Ho;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1 && rows * Wo * C > 65536)
    for (long r = 0; r < rows; r++) {
        int n = (int)(r / Ho), oy = (int)(r % Ho);
        for (int ox = 0; ox < Wo; ox++) {
            float *o = out + ((size_t)r * Wo + ox) * C;
            for (int c = 0; c < C; c++) o[c] = 0;
            for (int dy = 0; dy < k; dy++)
                for (int dx = 0; dx < k; dx++) {
                    const float *p = in + (((size_t)n * H + oy * k + dy) * W + ox * k + dx) * C;
                    for (int c = 0; c < C; c++) o[c] += p[c];
                }
            for (int c = 0; c < C; c++) o[c] *= inv;
        }
    }
}
