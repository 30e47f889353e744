// The avx512 variant of kernel_bodies.h: AVX-512 F/BW/VL (Skylake-SP and later, Zen 4). Each function carries the target
// attribute, so the rest of the binary stays baseline x86-64 and runs on any CPU.
#include "table.h"
#if defined(__x86_64__)
#pragma clang attribute push (__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))), apply_to = function)
#define CK(name) ck_avx512_##name
#include "kernel_bodies.h"
const ck_table *ck_table_avx512(void) { return &CK(table); }
#pragma clang attribute pop
#else
const ck_table *ck_table_avx512(void) { return 0; }
#endif
