// The kernel bodies (not a normal header: no include guard), included once per instruction set by kernels_*.c with CK(name) naming
// the variant and, for the x86 variants, a `#pragma clang attribute` giving every function
// its target. Written as plain branch-free loops that clang vectorizes for each target
// (checked with perf annotate: vmaxps/vblendvps/vmovups on ymm or zmm registers); a compare
// with a branch per element cost 1.5 ms per LeNet step on relu1 alone (mispredictions).
// Exact operations only (copies, one add, compares, selects): every variant gives the same bits.

#pragma STDC FP_CONTRACT OFF

static void CK(relu_forward)(const float *restrict x, float *restrict y, long n) {
    for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

static void CK(relu_backward)(const float *restrict y, const float *restrict dy, float *restrict dx, long n) {
    for (long i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

static void CK(conv_unpack)(const float *restrict src, long ld, const float *restrict bias, float *restrict y,
                            long channels, long positions, long samples, int relu) {
    for (long k = 0; k < samples; k++) {
        for (long m = 0; m < channels; m++) {
            const float *s = src + m * ld + k * positions;
            float *d = y + (k * channels + m) * positions;
            const float b = bias[m];
            if (relu) {
                for (long p = 0; p < positions; p++) { float v = s[p] + b; d[p] = v > 0 ? v : 0; }
            } else {
                for (long p = 0; p < positions; p++) d[p] = s[p] + b;
            }
        }
    }
}

static void CK(conv_pack)(const float *restrict dy, const float *restrict y, float *restrict dst, long ld,
                          long channels, long positions, long samples) {
    for (long k = 0; k < samples; k++) {
        for (long m = 0; m < channels; m++) {
            const float *g = dy + (k * channels + m) * positions;
            float *d = dst + m * ld + k * positions;
            if (y) {
                const float *a = y + (k * channels + m) * positions;
                for (long p = 0; p < positions; p++) d[p] = a[p] > 0 ? g[p] : 0;
            } else {
                for (long p = 0; p < positions; p++) d[p] = g[p];
            }
        }
    }
}

static void CK(conv_relu_pool2)(const float *restrict src, long ld, const float *restrict bias, float *restrict y,
                                uint8_t *restrict idx, long channels, long height, long width, long samples) {
    const long oh = height / 2, ow = width / 2, plane = height * width;
    for (long k = 0; k < samples; k++) {
        for (long m = 0; m < channels; m++) {
            const float *s = src + m * ld + k * plane;
            float *d = y + (k * channels + m) * oh * ow;
            uint8_t *q = idx + (k * channels + m) * oh * ow;
            const float b = bias[m];
            for (long i = 0; i < oh; i++) {
                const float *top = s + 2 * i * width, *bottom = top + width;
                for (long j = 0; j < ow; j++) {
                    // The conv output plus bias, exactly as the unfused layers compute it;
                    // strict ">" keeps the first maximum on ties (docs/SPEC.md §4.1).
                    float a0 = top[2 * j] + b, a1 = top[2 * j + 1] + b;
                    float a2 = bottom[2 * j] + b, a3 = bottom[2 * j + 1] + b;
                    float best = a0; int at = 0;
                    at = a1 > best ? 1 : at; best = a1 > best ? a1 : best;
                    at = a2 > best ? 2 : at; best = a2 > best ? a2 : best;
                    at = a3 > best ? 3 : at; best = a3 > best ? a3 : best;
                    // max(relu(a)) = relu(max(a)); a non-positive max passes no gradient.
                    d[i * ow + j] = best > 0 ? best : 0;
                    q[i * ow + j] = (uint8_t)(best > 0 ? at : 4);
                }
            }
        }
    }
}

static void CK(pool2_scatter)(const float *restrict dy, const uint8_t *restrict idx, float *restrict dst, long ld,
                              long channels, long height, long width, long samples) {
    const long oh = height / 2, ow = width / 2, plane = height * width;
    for (long k = 0; k < samples; k++) {
        for (long m = 0; m < channels; m++) {
            float *d = dst + m * ld + k * plane;
            const float *g = dy + (k * channels + m) * oh * ow;
            const uint8_t *q = idx + (k * channels + m) * oh * ow;
            for (long i = 0; i < oh; i++) {
                float *top = d + 2 * i * width, *bottom = top + width;
                for (long j = 0; j < ow; j++) {
                    const float v = g[i * ow + j];
                    const int at = q[i * ow + j];
                    top[2 * j] = at == 0 ? v : 0;
                    top[2 * j + 1] = at == 1 ? v : 0;
                    bottom[2 * j] = at == 2 ? v : 0;
                    bottom[2 * j + 1] = at == 3 ? v : 0;
                }
                // An odd width leaves a column that no window covers.
                for (long j = 2 * ow; j < width; j++) { top[j] = 0; bottom[j] = 0; }
            }
            for (long r = 2 * oh * width; r < plane; r++) d[r] = 0;
        }
    }
}

static void CK(add_row_sums)(const float *restrict src, long ld, long rows, long n, float *restrict out) {
    // 16 running partial sums in a fixed order, then a fixed pairwise tree: the arithmetic is
    // spelled out, so every variant gives the same bits, and it is not one serial chain of
    // adds (4 cycles each: ~7 µs per LeNet sample for conv1's bias gradient alone).
    for (long m = 0; m < rows; m++) {
        const float *s = src + m * ld;
        float acc[16] = {0};
        long i = 0;
        for (; i + 16 <= n; i += 16)
            for (int l = 0; l < 16; l++) acc[l] += s[i + l];
        for (int l = 0; i < n; i++, l++) acc[l] += s[i];
        for (int w = 8; w >= 1; w /= 2)
            for (int l = 0; l < w; l++) acc[l] += acc[l + w];
        out[m] += acc[0];
    }
}

/// First and one-past-last output column whose input column j·S + t − P lies in [0, W).
static inline void CK(valid_columns)(long t, long stride, long pad, long width, long outWidth, long *lo, long *hi) {
    long low = pad - t > 0 ? (pad - t + stride - 1) / stride : 0;
    long highNumerator = width - 1 + pad - t;
    long high = highNumerator < 0 ? -1 : highNumerator / stride;
    if (high > outWidth - 1) high = outWidth - 1;
    if (low > high + 1) low = high + 1;
    *lo = low; *hi = high + 1;
}

/// Copies n floats. Rows of up to 32 (LeNet's 10 and 28) as 8-float blocks plus one
/// overlapping last block, with no loop: fixed-size copies compile to single vector moves in
/// every variant, while clang turned a loop of them into a memcpy call per row (19% of a
/// step in memmove). Longer rows (conv1d's 98–392) are what memcpy is good at.
static inline void CK(copy_row)(float *restrict d, const float *restrict s, long n) {
    if (n < 8) { for (long j = 0; j < n; j++) d[j] = s[j]; return; }
    if (n > 32) { __builtin_memcpy(d, s, (size_t)n * sizeof(float)); return; }
    __builtin_memcpy(d, s, 32);
    if (n >= 16) __builtin_memcpy(d + 8, s + 8, 32);
    if (n >= 24) __builtin_memcpy(d + 16, s + 16, 32);
    if (n >= 32) __builtin_memcpy(d + 24, s + 24, 32);
    __builtin_memcpy(d + n - 8, s + n - 8, 32);
}

enum { CK_PAD_PLANE = 8192 };

/// With a padded plane that fits on the stack: copy each input plane once into a
/// zero-bordered buffer, after which every column row is a plain copy (stride 1) or a
/// strided gather with no bounds logic. The bounds-checked loop below took 38% of a fused
/// LeNet-5 step (12 µs per sample and layer on Zen 4), most of it in per-row range
/// arithmetic and small memset calls.
static int CK(im2col_padded)(const float *restrict x, float *restrict col, long row_stride, const ck_conv_geometry *g) {
    const long H = g->height, W = g->width, Ho = g->outHeight, Wo = g->outWidth;
    const long Ph = g->padHeight, Pw = g->padWidth, Hp = H + 2 * Ph, Wp = W + 2 * Pw;
    const long Sh = g->strideHeight, Sw = g->strideWidth;
    if (Hp * Wp > CK_PAD_PLANE) return 0;
    float pad[CK_PAD_PLANE];
    for (long r = 0; r < Hp * Wp; r++) pad[r] = 0;
    float *row = col;
    for (long c = 0; c < g->channels; c++) {
        const float *plane = x + c * H * W;
        for (long h = 0; h < H; h++) CK(copy_row)(pad + (h + Ph) * Wp + Pw, plane + h * W, W);
        for (long s = 0; s < g->kernelHeight; s++)
            for (long t = 0; t < g->kernelWidth; t++, row += row_stride)
                for (long i = 0; i < Ho; i++) {
                    const float *src = pad + (i * Sh + s) * Wp + t;
                    float *d = row + i * Wo;
                    if (Sw == 1) CK(copy_row)(d, src, Wo);
                    else if (Sw == 2) { for (long j = 0; j < Wo; j++) d[j] = src[2 * j]; }
                    else { for (long j = 0; j < Wo; j++) d[j] = src[j * Sw]; }
                }
    }
    return 1;
}

static void CK(im2col)(const float *restrict x, float *restrict col, long row_stride, const ck_conv_geometry *g) {
    if (CK(im2col_padded)(x, col, row_stride, g)) return;
    const long H = g->height, W = g->width, Ho = g->outHeight, Wo = g->outWidth, S = g->strideWidth;
    float *row = col;
    for (long c = 0; c < g->channels; c++) {
        const float *plane = x + c * H * W;
        for (long s = 0; s < g->kernelHeight; s++) {
            for (long t = 0; t < g->kernelWidth; t++, row += row_stride) {
                long lo, hi;
                CK(valid_columns)(t, S, g->padWidth, W, Wo, &lo, &hi);
                for (long i = 0; i < Ho; i++) {
                    float *d = row + i * Wo;
                    const long h = i * g->strideHeight + s - g->padHeight;
                    if (h < 0 || h >= H) { for (long j = 0; j < Wo; j++) d[j] = 0; continue; }
                    const float *src = plane + h * W + t - g->padWidth;
                    for (long j = 0; j < lo; j++) d[j] = 0;
                    if (S == 1) { for (long j = lo; j < hi; j++) d[j] = src[j]; }
                    else if (S == 2) { for (long j = lo; j < hi; j++) d[j] = src[2 * j]; }
                    else { for (long j = lo; j < hi; j++) d[j] = src[j * S]; }
                    for (long j = hi; j < Wo; j++) d[j] = 0;
                }
            }
        }
    }
}

typedef float CK(v8f) __attribute__((vector_size(32), aligned(4)));

/// d[j] += s[j] for j < n: 8-float vector adds, then the remainder one by one.
static inline void CK(add_row)(float *restrict d, const float *restrict s, long n) {
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        CK(v8f) a, b;
        __builtin_memcpy(&a, d + j, 32);
        __builtin_memcpy(&b, s + j, 32);
        a += b;
        __builtin_memcpy(d + j, &a, 32);
    }
    for (; j < n; j++) d[j] += s[j];
}

/// Mirrors im2col_padded: accumulate into a zero-bordered plane, then copy its interior
/// out. Every element receives its terms in the same order as in the general loop below
/// (channel, kernel row, kernel column, output row), so both give the same bits.
static int CK(col2im_padded)(const float *restrict col, long row_stride, float *restrict dx, const ck_conv_geometry *g) {
    const long H = g->height, W = g->width, Ho = g->outHeight, Wo = g->outWidth;
    const long Ph = g->padHeight, Pw = g->padWidth, Hp = H + 2 * Ph, Wp = W + 2 * Pw;
    const long Sh = g->strideHeight, Sw = g->strideWidth;
    if (Hp * Wp > CK_PAD_PLANE) return 0;
    float pad[CK_PAD_PLANE];
    const float *row = col;
    for (long c = 0; c < g->channels; c++) {
        for (long r = 0; r < Hp * Wp; r++) pad[r] = 0;
        for (long s = 0; s < g->kernelHeight; s++)
            for (long t = 0; t < g->kernelWidth; t++, row += row_stride)
                for (long i = 0; i < Ho; i++) {
                    float *d = pad + (i * Sh + s) * Wp + t;
                    const float *src = row + i * Wo;
                    if (Sw == 1) { CK(add_row)(d, src, Wo); continue; }
                    // Stride 2 (the conv1d model): taps t and t+1 write alternate elements, so
                    // interleaving their rows and adding them in one contiguous pass gives
                    // every element the same terms in the same order, vectorized; the strided
                    // scalar loop was 9% of a conv1d step.
                    const int paired = Sw == 2 && Wo <= CK_PAD_PLANE / 2;
                    if (paired && (t & 1) == 0 && t + 1 < g->kernelWidth) {
                        float pair[CK_PAD_PLANE];
                        const float *next = src + row_stride;
                        for (long j = 0; j < Wo; j++) { pair[2 * j] = src[j]; pair[2 * j + 1] = next[j]; }
                        CK(add_row)(d, pair, 2 * Wo);
                        continue;
                    }
                    if (paired && (t & 1) == 1) continue;   // added with tap t - 1 above
                    for (long j = 0; j < Wo; j++) d[j * Sw] += src[j];
                }
        float *plane = dx + c * H * W;
        for (long h = 0; h < H; h++) CK(copy_row)(plane + h * W, pad + (h + Ph) * Wp + Pw, W);
    }
    return 1;
}

static void CK(col2im)(const float *restrict col, long row_stride, float *restrict dx, const ck_conv_geometry *g) {
    if (CK(col2im_padded)(col, row_stride, dx, g)) return;
    const long H = g->height, W = g->width, Ho = g->outHeight, Wo = g->outWidth, S = g->strideWidth;
    for (long i = 0; i < g->channels * H * W; i++) dx[i] = 0;
    const float *row = col;
    for (long c = 0; c < g->channels; c++) {
        float *plane = dx + c * H * W;
        for (long s = 0; s < g->kernelHeight; s++) {
            for (long t = 0; t < g->kernelWidth; t++, row += row_stride) {
                long lo, hi;
                CK(valid_columns)(t, S, g->padWidth, W, Wo, &lo, &hi);
                for (long i = 0; i < Ho; i++) {
                    const long h = i * g->strideHeight + s - g->padHeight;
                    if (h < 0 || h >= H) continue;
                    const float *src = row + i * Wo;
                    float *d = plane + h * W + t - g->padWidth;
                    if (S == 1) { for (long j = lo; j < hi; j++) d[j] += src[j]; }
                    else { for (long j = lo; j < hi; j++) d[j * S] += src[j]; }
                }
            }
        }
    }
}

// The portable variant's direct kernels are built for FMA on x86 (CK_PORTABLE_FMA): fmaf would
// otherwise be a library call per lane (14× slower training), and dispatch.c only runs them where
// CPUID reports FMA.
#if defined(CK_PORTABLE_FMA)
#pragma clang attribute push (__attribute__((target("fma"))), apply_to = function)
#endif
#include "direct_bodies.h"
#if defined(CK_PORTABLE_FMA)
#pragma clang attribute pop
#endif

static const ck_table CK(table) = {
    CK(relu_forward), CK(relu_backward), CK(conv_unpack), CK(conv_pack),
    CK(conv_relu_pool2), CK(pool2_scatter), CK(im2col), CK(col2im), CK(add_row_sums),
    CK(conv_direct_applies), CK(conv_direct), CK(conv_direct_weights),
};
