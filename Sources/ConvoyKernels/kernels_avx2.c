// The avx2 variant of kernel_bodies.h: AVX2 + FMA (Haswell and later, Zen). Each function carries the target
// attribute, so the rest of the binary stays baseline x86-64 and runs on any CPU.
#include "table.h"
#if defined(__x86_64__)
#pragma clang attribute push (__attribute__((target("avx2,fma"))), apply_to = function)
#define CK(name) ck_avx2_##name
#include "kernel_bodies.h"
const ck_table *ck_table_avx2(void) { return &CK(table); }
#pragma clang attribute pop
#else
const ck_table *ck_table_avx2(void) { return 0; }
#endif
