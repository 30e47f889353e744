// Chooses the kernel variant once: the best the CPU supports, unless a caller (the
// `--kernel` flag, tests) selects another. Wrappers read one pointer per call.
#include "table.h"
#include <stddef.h>

static const ck_table *selected;
static int selected_isa = -1;

int ck_isa_supported(int isa) {
    switch (isa) {
    case CK_ISA_PORTABLE: return 1;
#if defined(__x86_64__)
    case CK_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CK_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && ck_isa_supported(CK_ISA_AVX2);
#endif
    default: return 0;
    }
}

int ck_best_isa(void) {
    if (ck_isa_supported(CK_ISA_AVX512)) return CK_ISA_AVX512;
    if (ck_isa_supported(CK_ISA_AVX2)) return CK_ISA_AVX2;
    return CK_ISA_PORTABLE;
}

int ck_select_isa(int isa) {
    if (!ck_isa_supported(isa)) return 0;
    const ck_table *table = isa == CK_ISA_AVX512 ? ck_table_avx512()
                          : isa == CK_ISA_AVX2 ? ck_table_avx2() : ck_table_portable();
    if (table == NULL) return 0;
    selected = table;
    selected_isa = isa;
    return 1;
}

int ck_selected_isa(void) {
    if (selected == NULL) ck_select_isa(ck_best_isa());
    return selected_isa;
}

const char *ck_isa_name(int isa) {
    switch (isa) {
    case CK_ISA_PORTABLE: return "portable";
    case CK_ISA_AVX2: return "avx2";
    case CK_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
}

static inline const ck_table *T(void) {
    if (selected == NULL) ck_select_isa(ck_best_isa());
    return selected;
}

void ck_relu_forward(const float *x, float *y, long n) { T()->relu_forward(x, y, n); }
void ck_relu_backward(const float *y, const float *dy, float *dx, long n) { T()->relu_backward(y, dy, dx, n); }
void ck_conv_unpack(const float *src, long ld, const float *bias, float *y, long channels, long positions,
                    long samples, int relu) {
    T()->conv_unpack(src, ld, bias, y, channels, positions, samples, relu);
}
void ck_conv_pack(const float *dy, const float *y, float *dst, long ld, long channels, long positions, long samples) {
    T()->conv_pack(dy, y, dst, ld, channels, positions, samples);
}
void ck_conv_relu_pool2(const float *src, long ld, const float *bias, float *y, uint8_t *idx, long channels,
                        long height, long width, long samples) {
    T()->conv_relu_pool2(src, ld, bias, y, idx, channels, height, width, samples);
}
void ck_pool2_scatter(const float *dy, const uint8_t *idx, float *dst, long ld, long channels, long height,
                      long width, long samples) {
    T()->pool2_scatter(dy, idx, dst, ld, channels, height, width, samples);
}
void ck_im2col(const float *x, float *col, long row_stride, const ck_conv_geometry *g) {
    T()->im2col(x, col, row_stride, g);
}
void ck_col2im(const float *col, long row_stride, float *dx, const ck_conv_geometry *g) {
    T()->col2im(col, row_stride, dx, g);
}
void ck_add_row_sums(const float *src, long ld, long rows, long n, float *out) {
    T()->add_row_sums(src, ld, rows, n, out);
}
int ck_conv_direct_applies(const ck_conv_geometry *g) {
#if defined(__x86_64__)
    // The direct kernels multiply-add with one rounding (fmaf); without FMA hardware that is a
    // slow library call, so such CPUs keep im2col and a GEMM (the same choice for every ISA).
    if (!__builtin_cpu_supports("fma")) return 0;
#endif
    return T()->conv_direct_applies(g);
}
void ck_conv_direct(const float *x, const float *w, float *dst, long ld, long out_channels, const ck_conv_geometry *g) {
    T()->conv_direct(x, w, dst, ld, out_channels, g);
}
void ck_conv_direct_weights(const float *x, const float *dy, long ld, long out_channels, const ck_conv_geometry *g,
                            float *gradient) {
    T()->conv_direct_weights(x, dy, ld, out_channels, g, gradient);
}
