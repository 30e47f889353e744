// The dispatch table: one per instruction set, filled by kernel_bodies.h.
#ifndef CONVOY_KERNELS_TABLE_H
#define CONVOY_KERNELS_TABLE_H
#include "include/ConvoyKernels.h"
#include <stddef.h>

typedef struct {
    void (*relu_forward)(const float *, float *, long);
    void (*relu_backward)(const float *, const float *, float *, long);
    void (*conv_unpack)(const float *, long, const float *, float *, long, long, long, int);
    void (*conv_pack)(const float *, const float *, float *, long, long, long, long);
    void (*conv_relu_pool2)(const float *, long, const float *, float *, uint8_t *, long, long, long, long);
    void (*pool2_scatter)(const float *, const uint8_t *, float *, long, long, long, long, long);
    void (*im2col)(const float *, float *, long, const ck_conv_geometry *);
    void (*col2im)(const float *, long, float *, const ck_conv_geometry *);
    void (*add_row_sums)(const float *, long, long, long, float *);
    int (*conv_direct_applies)(const ck_conv_geometry *);
    void (*conv_direct)(const float *, const float *, float *, long, long, const ck_conv_geometry *);
    void (*conv_direct_weights)(const float *, const float *, long, long, const ck_conv_geometry *, float *);
} ck_table;

extern const ck_table *ck_table_portable(void);
extern const ck_table *ck_table_avx2(void);
extern const ck_table *ck_table_avx512(void);
#endif
