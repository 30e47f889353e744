// The engine's own vectorized kernels: the memory-bound glue around the GEMMs (bias, ReLU,
// 2×2 max pooling with saved arg-max indices, im2col/col2im for zero padding), compiled three
// times (portable, AVX2+FMA, AVX-512) and chosen once at run time (ck_select_isa). Only
// ConvoyInterop includes this header; the engine calls it through Swift wrappers.
//
// Every kernel does exact operations only (copies, one add, compares and selects), so all
// three variants give bit-identical results; tests check that.
#ifndef CONVOY_KERNELS_H
#define CONVOY_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { CK_ISA_PORTABLE = 0, CK_ISA_AVX2 = 1, CK_ISA_AVX512 = 2 };

/// 1 when this CPU can run `isa`'s variant (CPUID via __builtin_cpu_supports).
int ck_isa_supported(int isa);
/// The best variant this CPU supports.
int ck_best_isa(void);
/// Selects the variant every kernel below runs; returns 0 when the CPU cannot run it.
int ck_select_isa(int isa);
int ck_selected_isa(void);
const char *ck_isa_name(int isa);

/// A zero-padded 2-D convolution over one `(C, H, W)` sample (1-D: H = 1, Kh = 1).
typedef struct {
    long channels, height, width;
    long kernelHeight, kernelWidth, strideHeight, strideWidth, padHeight, padWidth;
    long outHeight, outWidth;
} ck_conv_geometry;

/// y[i] = x[i] > 0 ? x[i] : 0
void ck_relu_forward(const float *x, float *y, long n);
/// dx[i] = y[i] > 0 ? dy[i] : 0
void ck_relu_backward(const float *y, const float *dy, float *dx, long n);

/// Forward epilogue of a convolution chunk. `src` holds `channels` rows `ld` apart; sample k's
/// `positions` outputs of channel m start at src[m·ld + k·positions]. Writes the sample-major
/// y[k][m][p] = src + bias[m], then ReLU when `relu` is 1.
void ck_conv_unpack(const float *src, long ld, const float *bias, float *y,
                    long channels, long positions, long samples, int relu);
/// Backward prologue, the adjoint layout move: dst[m·ld + k·P + p] = dy[k][m][p], masked by
/// y > 0 when `y` is not NULL (the ReLU that followed the convolution).
void ck_conv_pack(const float *dy, const float *y, float *dst, long ld,
                  long channels, long positions, long samples);

/// Forward epilogue with bias + ReLU + 2×2/2 max pooling: from the chunk layout above with
/// `height × width` planes to pooled sample-major y[k][m][i][j] (floor(height/2) × floor(width/2)),
/// and idx[k][m][i][j] = position of the first maximum in the window (0 top-left, 1 top-right,
/// 2 bottom-left, 3 bottom-right), or 4 when the pooled value is ≤ 0 (the ReLU passes no gradient).
void ck_conv_relu_pool2(const float *src, long ld, const float *bias, float *y, uint8_t *idx,
                        long channels, long height, long width, long samples);
/// Backward of the above: writes the whole `height × width` gradient plane of every channel
/// and sample into the chunk layout (dy at the saved arg-max, 0 elsewhere and in rows or
/// columns no window covers).
void ck_pool2_scatter(const float *dy, const uint8_t *idx, float *dst, long ld,
                      long channels, long height, long width, long samples);

/// col[(c·Kh + s)·Kw + t][i·Wo + j] = x[c][i·Sh + s − Ph][j·Sw + t − Pw], 0 in the padding;
/// rows `row_stride` apart.
void ck_im2col(const float *x, float *col, long row_stride, const ck_conv_geometry *g);
/// The adjoint: dx is overwritten with the sum of every column entry at the element it came from.
void ck_col2im(const float *col, long row_stride, float *dx, const ck_conv_geometry *g);

/// out[m] += Σ_{i<n} src[m·ld + i] for m < rows, summed in a fixed order (16 partial sums).
void ck_add_row_sums(const float *src, long ld, long rows, long n, float *out);

/// 1 when the direct convolution below serves `g` (one input channel, stride 1, zero padding,
/// 16 to 32 output columns); otherwise im2col and a GEMM.
int ck_conv_direct_applies(const ck_conv_geometry *g);
/// One sample's convolution without bias, no column matrix: dst[m·ld + i·Wo + j] =
/// Σ_{s,t} w[m][s][t]·x[i + s − Ph][j + t − Pw] (0 in the padding), in the order s, t.
void ck_conv_direct(const float *x, const float *w, float *dst, long ld, long out_channels,
                    const ck_conv_geometry *g);
/// Its weight gradient: gradient[m][s][t] += Σ_{i,j} dy[m·ld + i·Wo + j]·x[i + s − Ph][j + t − Pw],
/// 32 lane sums over the rows, then a fixed pairwise tree: one sample, one add per weight.
void ck_conv_direct_weights(const float *x, const float *dy, long ld, long out_channels,
                            const ck_conv_geometry *g, float *gradient);

/// Loads oneDNN (libdnnl.so.2) if it is installed; 1 when dnnl_sgemm is available.
int ck_dnnl_load(void);
/// Row-major C = alpha·op(A)·op(B) + beta·C through dnnl_sgemm on one OpenMP thread
/// (ck_dnnl_load first); returns oneDNN's status (0 = success).
int ck_dnnl_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                  const float *b, long ldb, float beta, float *c, long ldc);
/// The same product with plain loops in double precision: the self-check's reference.
void ck_reference_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                        const float *b, long ldb, float beta, float *c, long ldc);

#ifdef __cplusplus
}
#endif
#endif
