// Direct convolution for one input channel at stride 1 (LeNet-5's first layer: 1×28×28, 5×5,
// padding 2), included by kernel_bodies.h once per instruction set. im2col would copy each
// input pixel Kh·Kw times into a column matrix several times the L2 (21.6% of a LeNet step);
// here each sample is copied once into a zero-bordered plane of CK_DIRECT_LANES-wide rows and
// every output row is CK_DIRECT_LANES running sums in registers. Products and sums are written
// out one by one (FP_CONTRACT is off: no fused multiply-add), and the weight gradient is reduced
// by a fixed tree, so every variant gives the same bits and a sample's contribution depends on
// that sample alone.

enum { CK_DIRECT_LANES = 32, CK_DIRECT_ROWS = 64, CK_DIRECT_GROUP = 6, CK_DIRECT_TAPS = 5 };

/// 1 when the direct kernels below serve `g`: one input channel, stride 1, output rows of 16
/// to CK_DIRECT_LANES positions, and Kw shifted copies of the padded plane that fit on the stack.
static int CK(conv_direct_applies)(const ck_conv_geometry *g) {
    const long rows = g->height + 2 * g->padHeight;
    return g->channels == 1 && g->strideHeight == 1 && g->strideWidth == 1 && g->outWidth >= 16
        && g->outWidth <= CK_DIRECT_LANES && g->outHeight >= 2 && g->padWidth >= 0 && g->padHeight >= 0
        && g->outHeight + g->kernelHeight - 1 == rows && g->outWidth + g->kernelWidth - 1 == g->width + 2 * g->padWidth
        && rows <= CK_DIRECT_ROWS && g->kernelWidth <= CK_DIRECT_LANES
        && g->kernelWidth * rows * CK_DIRECT_LANES <= CK_PAD_PLANE;
}

/// The sample's zero-padded plane, once per kernel column t shifted left by t, rows of
/// CK_DIRECT_LANES floats: row R of copy t holds padded columns t..t + 31 (zero past the
/// border). Every load in the loops below is then one aligned vector: unaligned loads at
/// offset t split cache lines and bound both kernels by loads, not arithmetic.
static void CK(direct_planes)(const float *restrict x, float *restrict planes, const ck_conv_geometry *g) {
    const long rows = g->height + 2 * g->padHeight, Kw = g->kernelWidth;
    const long stride = 2 * CK_DIRECT_LANES;
    float pad[2 * CK_DIRECT_LANES * CK_DIRECT_ROWS];
    for (long r = 0; r < rows * stride; r++) pad[r] = 0;
    for (long h = 0; h < g->height; h++)
        CK(copy_row)(pad + (h + g->padHeight) * stride + g->padWidth, x + h * g->width, g->width);
    for (long t = 0; t < Kw; t++)
        for (long r = 0; r < rows; r++)
            __builtin_memcpy(planes + (t * rows + r) * CK_DIRECT_LANES, pad + r * stride + t,
                             CK_DIRECT_LANES * sizeof(float));
}

/// Output row i of `M` channels at once: 2·M (AVX-512) independent chains of sums, and each
/// loaded row of the plane feeds M multiply-adds (one channel at a time was bound by the add
/// latency, then by loads).
static inline __attribute__((always_inline)) void CK(direct_rows)(const float *restrict planes,
                                                                 const float *restrict w, float *restrict dst,
                                                                 long ld, long i, const ck_conv_geometry *g,
                                                                 const int M) {
    const long Kh = g->kernelHeight, Kw = g->kernelWidth, Wo = g->outWidth;
    float acc[CK_DIRECT_GROUP][CK_DIRECT_LANES] = {{0}};
    for (long s = 0; s < Kh; s++)
        for (long t = 0; t < Kw; t++) {
            const float *r = planes + (t * (g->outHeight + Kh - 1) + i + s) * CK_DIRECT_LANES;
            for (int c = 0; c < M; c++) {
                const float v = w[c * Kh * Kw + s * Kw + t];
                for (int l = 0; l < CK_DIRECT_LANES; l++) acc[c][l] = __builtin_fmaf(v, r[l], acc[c][l]);
            }
        }
    for (int c = 0; c < M; c++) CK(copy_row)(dst + c * ld + i * Wo, acc[c], Wo);
}

static void CK(conv_direct)(const float *restrict x, const float *restrict w, float *restrict dst, long ld,
                            long outChannels, const ck_conv_geometry *g) {
    float planes[CK_PAD_PLANE] __attribute__((aligned(64)));
    CK(direct_planes)(x, planes, g);
    const long taps = g->kernelHeight * g->kernelWidth;
    for (long m = 0, M; m < outChannels; m += M) {
        const long left = outChannels - m;
        M = left >= 6 ? 6 : left >= 3 ? 3 : left;
        const float *wm = w + m * taps;
        float *d = dst + m * ld;
        for (long i = 0; i < g->outHeight; i++) {
            if (M == 6) CK(direct_rows)(planes, wm, d, ld, i, g, 6);
            else if (M == 3) CK(direct_rows)(planes, wm, d, ld, i, g, 3);
            else if (M == 2) CK(direct_rows)(planes, wm, d, ld, i, g, 2);
            else CK(direct_rows)(planes, wm, d, ld, i, g, 1);
        }
    }
}

/// Weight gradients of `G` taps (flattened s·Kw + t from q) of `M` channels at once, from `dys`
/// (those channels' output gradients, zero-extended rows): 2·M·G independent chains, and each
/// loaded vector feeds several multiply-adds.
static inline __attribute__((always_inline)) void CK(direct_taps)(const float *restrict planes,
                                                                 const float *restrict dys, long q,
                                                                 const ck_conv_geometry *g,
                                                                 float *restrict gradient, const int M, const int G) {
    float acc[2][CK_DIRECT_TAPS][CK_DIRECT_LANES] = {{{0}}};
    const float *r[CK_DIRECT_TAPS];
    const long rows = g->height + 2 * g->padHeight, Ho = g->outHeight, taps = g->kernelHeight * g->kernelWidth;
    for (int u = 0; u < G; u++) {
        const long s = (q + u) / g->kernelWidth, t = (q + u) % g->kernelWidth;
        r[u] = planes + (t * rows + s) * CK_DIRECT_LANES;
    }
    for (long i = 0; i < Ho; i++)
        for (int c = 0; c < M; c++) {
            const float *d = dys + (c * Ho + i) * CK_DIRECT_LANES;
            for (int u = 0; u < G; u++)
                for (int l = 0; l < CK_DIRECT_LANES; l++)
                    acc[c][u][l] = __builtin_fmaf(d[l], r[u][i * CK_DIRECT_LANES + l], acc[c][u][l]);
        }
    for (int c = 0; c < M; c++)
        for (int u = 0; u < G; u++) {
            for (int width = CK_DIRECT_LANES / 2; width >= 1; width /= 2)
                for (int l = 0; l < width; l++) acc[c][u][l] += acc[c][u][l + width];
            gradient[c * taps + q + u] += acc[c][u][0];
        }
}

#define CK_DIRECT_TAPS_CASES(M)                                                                 \
    switch (taps - q) {                                                                         \
    case 1: CK(direct_taps)(planes, dys, q, g, gm, M, 1); break;                                \
    case 2: CK(direct_taps)(planes, dys, q, g, gm, M, 2); break;                                \
    case 3: CK(direct_taps)(planes, dys, q, g, gm, M, 3); break;                                \
    case 4: CK(direct_taps)(planes, dys, q, g, gm, M, 4); break;                                \
    default: CK(direct_taps)(planes, dys, q, g, gm, M, 5); break;                               \
    }

static void CK(conv_direct_weights)(const float *restrict x, const float *restrict dy, long ld, long outChannels,
                                    const ck_conv_geometry *g, float *restrict gradient) {
    float planes[CK_PAD_PLANE] __attribute__((aligned(64)));
    float dys[2 * CK_DIRECT_ROWS * CK_DIRECT_LANES] __attribute__((aligned(64)));
    CK(direct_planes)(x, planes, g);
    const long taps = g->kernelHeight * g->kernelWidth, Ho = g->outHeight, Wo = g->outWidth;
    for (long m = 0; m < outChannels; m += 2) {
        const long M = outChannels - m >= 2 ? 2 : 1;
        // These channels' output gradients, each row zero-extended to CK_DIRECT_LANES.
        for (long i = 0; i < M * Ho; i++) {
            float *d = dys + i * CK_DIRECT_LANES;
            for (long l = 0; l < CK_DIRECT_LANES; l++) d[l] = 0;
            CK(copy_row)(d, dy + (m + i / Ho) * ld + (i % Ho) * Wo, Wo);
        }
        float *gm = gradient + m * taps;
        for (long q = 0; q < taps; q += CK_DIRECT_TAPS) {
            if (M == 2) { CK_DIRECT_TAPS_CASES(2) } else { CK_DIRECT_TAPS_CASES(1) }
        }
    }
}
#undef CK_DIRECT_TAPS_CASES
