// The portable variant of kernel_bodies.h: baseline x86-64 (SSE2) or any other CPU; the fallback
// and the reference the vector variants are tested against.
#include "table.h"
#if defined(__x86_64__)
#define CK_PORTABLE_FMA 1   // the direct convolution only (kernel_bodies.h)
#endif
#define CK(name) ck_portable_##name
#include "kernel_bodies.h"
const ck_table *ck_table_portable(void) { return &CK(table); }
