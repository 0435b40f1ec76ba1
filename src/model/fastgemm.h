/* fastgemm.h — the CPU fast path for the encoders' matrix products: an AVX-512 blocked SGEMM
 * with fused epilogues (bias, QuickGELU, ReLU, residual via beta), weights pre-packed once at
 * load time (from F32, F16 or BF16) as F32 panels, or as F16 panels widened to F32 in the
 * kernel (half the weight bytes, same results), threads over tiles.
 * Not a BLAS: row-major only, and every entry point has a naive oracle (gemm.h ca_sgemm_ref plus
 * ca_epilogue_ref) that tests/test_kernels.c compares against. Without AVX-512 it falls back to
 * OpenBLAS + a scalar epilogue, so results match the oracle either way. */
#ifndef CA_FASTGEMM_H
#define CA_FASTGEMM_H

#include "clipadapt.h"

typedef enum {
    CA_EPI_NONE = 0,
    CA_EPI_QUICKGELU,   /* x * sigmoid(1.702 x), CLIP's MLP activation */
    CA_EPI_RELU         /* max(x, 0), the ResNet's */
} ca_epi;

/* Packed right-hand side of y = x Wᵀ: W (N, K) row-major as stored in PyTorch Linear/Conv
 * weights, re-laid out as panels of 32 output columns ([N/32][K][32], zero padded). Immutable
 * after packing, so one packed matrix may be used by many threads at once. */
typedef struct {
    int N, K;
    /* exactly one panel block is set, 64-byte aligned; owned unless borrowed */
    float *p;            /* F32 panels [N/32][K][32] */
    uint16_t *ph;        /* F16 panels, the same layout: widened exactly in the kernel */
    uint16_t *pb;        /* BF16 panels [N/32][K/2][32][2] (k pairs interleaved) */
    float *scale;        /* (N) multiplier of each output column (a folded BatchNorm), or NULL */
    int borrowed;        /* the panels live in the caller's memory (ca_pack_weights_into): not freed */
} ca_packed;

/* Pack W (N, K) of dtype F32/F16/BF16, row stride ldw elements, into panels of dtype `panel`:
 * CA_DT_F32, CA_DT_F16 (values rounded to nearest even: exact when W holds F16 numbers, which
 * is when to choose it; without AVX-512 they are stored widened, same numbers) or CA_DT_BF16
 * (as ca_pack_weights_bf16). Returns CA_E_NOMEM, CA_E_ARG or CA_E_UNSUPPORTED (other dtypes).
 * Free with ca_packed_free (NULL-safe on zeroed structs). */
ca_status ca_pack_weights_as(ca_packed *out, const void *W, ca_dtype dt, int N, int K, int ldw, ca_dtype panel);
/* Bytes ca_pack_weights_into needs for (N, K) weights as `panel` (F32 or F16; what the F16
 * panels take depends on the CPU path, as in ca_pack_weights_as); 0 for other panels or on
 * overflow. A multiple of 64. */
size_t ca_pack_size(int N, int K, ca_dtype panel);
/* ca_pack_weights_as into the caller's memory: mem (64-byte aligned, cap >= ca_pack_size bytes)
 * holds the panels and stays the caller's (ca_packed_free frees only the column scale), so many
 * matrices can share one block (the model's, one allocation for all its weights). w_kn: W is
 * stored (K, N), row stride ldw >= N (x @ W layouts), else (N, K) with ldw >= K. F32 and F16
 * panels only; same panels, so same results, as ca_pack_weights_as. */
ca_status ca_pack_weights_into(ca_packed *out, void *mem, size_t cap, const void *W, ca_dtype dt, int N, int K, int ldw,
                               int w_kn, ca_dtype panel);
/* ca_pack_weights_as with F32 panels. */
ca_status ca_pack_weights(ca_packed *out, const void *W, ca_dtype dt, int N, int K, int ldw);
void ca_packed_free(ca_packed *p);
/* Set (copy) or clear (NULL) the per-column scale: outputs become act(alpha·scale ⊙ (A·Wᵀ) + …). */
ca_status ca_packed_set_scale(ca_packed *w, const float *scale);
/* The packed weights back as W (N, K), row stride ldw, exactly as they were packed (scale not
 * applied). CA_E_UNSUPPORTED for BF16 panels, which hold rounded values. */
ca_status ca_packed_unpack(const ca_packed *w, float *W, int ldw);
/* The same packed as BF16 (round to nearest even): ca_gemm_packed then rounds A to BF16 too and
 * multiplies with AVX512-BF16 dot products (float32 accumulation) — twice the FMA throughput,
 * about 3 significant digits per product. CA_E_UNSUPPORTED without AVX512-BF16. */
ca_status ca_pack_weights_bf16(ca_packed *out, const void *W, ca_dtype dt, int N, int K, int ldw);
/* Convert F32- or F16-packed weights to BF16 in place (frees the F32/F16 panels). */
ca_status ca_packed_to_bf16(ca_packed *w);
/* Bytes of the BF16 panels of (N, K) weights (0 on overflow or empty), and a BF16 copy of src's
 * panels in the caller's 64-byte aligned mem (cap bytes; out borrows it, src is unchanged). Each
 * weight is rounded to nearest even, so within 2^-8 of its F32 value (relative). */
size_t ca_pack_bf16_size(int N, int K);
ca_status ca_packed_bf16_into(ca_packed *out, void *mem, size_t cap, const ca_packed *src);
/* 1 when the AVX512-BF16 kernels are compiled in and this CPU runs them (cpu.c). */
int ca_fastgemm_bf16(void);
/* A view of output columns [n0, n0+n) of a packed matrix (any panel dtype, and its column
 * scale), sharing its panels (do not free it;
 * valid while *w lives). CA_E_ARG unless n0 is a multiple of the 32-column panel width and the
 * range lies inside w. */
ca_status ca_packed_cols(const ca_packed *w, int n0, int n, ca_packed *view);
/* Bytes held by a packed matrix. */
size_t ca_packed_bytes(const ca_packed *p);

/* C(M,N) = act(alpha · A(M,K) · Wᵀ + bias + beta · C). A row stride lda, C row stride ldc;
 * bias (N) or NULL. Uses up to `threads` OpenMP threads (0 = default; 1 when called inside a
 * parallel region). A and C must not alias. */
ca_status ca_gemm_packed(int M, const float *A, int lda, const ca_packed *W, float alpha,
                         const float *bias, ca_epi act, float beta, float *C, int ldc, int threads);

/* General row-major SGEMM on the same kernel (packs op(B) per call):
 * C(M,N) = act(alpha · op(A) · op(B) + bias + beta · C). */
ca_status ca_gemm_ex(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, const float *bias, ca_epi act, float beta,
                     float *C, int ldc, int threads);

/* Cp = alpha · Aᵀ · B laid out as ca_packed panels: B is given as F32 panels Bp [ceil(N/32)][K][32]
 * (N columns, zero padded), A is (K, M) row-major with row stride lda, and Cp receives
 * [ceil(N/32)][M][32], i.e. the (N, M) matrix (Aᵀ·B)ᵀ packed as weights of K = M (padded columns
 * stay 0 when B's are). Bp and Cp 64-byte aligned; up to `threads` threads over panels. This is
 * the gradient of y = x·Wᵀ with respect to packed W, so trained weights can stay packed
 * (Tip-Adapter-F); oracle: ca_sgemm_ref then packing. */
ca_status ca_gemm_tn_panels(int M, int N, int K, float alpha, const float *A, int lda, const float *Bp,
                            float *Cp, int threads);

/* Called once per finished output panel jp of ca_gemm_tn_panels_each: panel is its (M, 32)
 * block [M][32]; calls for different panels may run at once on different threads. */
typedef void (*ca_panel_fn)(int jp, float *panel, void *user);
/* ca_gemm_tn_panels, handing each panel to fn as soon as it is complete (while it is still in
 * the cache of the core that computed it), e.g. to apply an optimiser step without a pass over
 * a whole gradient. Cp NULL: the panels live only in per-thread buffers, valid during fn; else
 * as ca_gemm_tn_panels. The panel values are those of ca_gemm_tn_panels, bit for bit. */
ca_status ca_gemm_tn_panels_each(int M, int N, int K, float alpha, const float *A, int lda, const float *Bp,
                                 float *Cp, int threads, ca_panel_fn fn, void *user);

/* Row of a panel-laid-out (n, 32-wide panels) matrix from a gathered product: element j of n
 * goes to dst[(j/32)·stride + j%32] as h[idx[j]]·a[j] (idx[j] in range of h: the caller's
 * promise); the last panel's row is zero-padded to 32. Vectorised (gathers) on the AVX-512
 * path, one float multiply per element on every path. Tip-Adapter-F's dloss/daffinity rows. */
void ca_gather_mul_panels(float *dst, size_t stride, const float *a, const float *h, const int32_t *idx, int n);

/* One AdamW update of n parameters p with gradient g and moments m, v (torch.optim.AdamW's
 * order: p *= decay; m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; p −= stepsz·m / (√v / bc2s + eps)),
 * the scalars as ca_optim_step computes them (decay = 1 − lr·wd, stepsz = lr / (1 − b1^t),
 * bc2s = √(1 − b2^t)). Vectorised on the AVX-512 path; the same value per element as
 * ca_optim_step (its oracle) on every path. Used on gradient panels as ca_gemm_tn_panels_each
 * hands them over. */
void ca_adamw_f32(float *p, const float *g, float *m, float *v, size_t n, float decay, float b1, float b2, float stepsz,
                  float bc2s, float eps);

/* Implicit-GEMM NHWC convolution (used by fastops.h ca_conv2d_nhwc): rows are output pixels,
 * K = KH·KW·Cin ordered (ky, kx, ci); W packed (Cout, K); out (N, Ho, Wo, Cout). */
typedef struct { int N, H, W, Cin, KH, KW, stride, pad, Ho, Wo; } ca_conv_geom;
ca_status ca_gemm_conv_nhwc(const ca_conv_geom *g, const float *in, const ca_packed *W,
                            const float *bias, ca_epi act, float beta, float *out, int threads);

/* The activation on one value, scalar: the oracle for the fused epilogues. */
float ca_epi_ref(ca_epi act, float x);

/* Vectorised helpers used by the model code (each with a scalar oracle in tests). */
/* y[i] = x[i] * sigmoid(1.702 x[i]) for n elements, in place allowed. */
void ca_quickgelu_fast(const float *x, float *y, long n);
/* exp(x) for n elements (relative error < 2e-7 on [-87, 88]). */
void ca_exp_fast(const float *x, float *y, long n);

/* 1 when the kernels in use are the AVX-512 ones (the path chosen in cpu.c). */
int ca_fastgemm_avx512(void);

#endif
