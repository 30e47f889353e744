// GEMM back ends besides OpenBLAS: oneDNN's dnnl_sgemm, loaded at run time so the build
// needs no oneDNN (Debian's libdnnl2, JIT kernels chosen by CPU features, the fastest on
// LeNet's small shapes where OpenBLAS 0.3.21 falls back to its SSE3 Prescott kernel), and a
// plain-loop reference that the start-up self-check compares against and that is the last
// resort when no library agrees with it.
#include "include/ConvoyKernels.h"
#include <dlfcn.h>
#include <stddef.h>

typedef int (*dnnl_sgemm_fn)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t,
                             const float *, int64_t, float, float *, int64_t);
typedef void (*omp_set_num_threads_fn)(int);

static dnnl_sgemm_fn dnnl_sgemm_ptr;
static omp_set_num_threads_fn omp_threads_ptr;
static _Thread_local int omp_single;

int ck_dnnl_load(void) {
    if (dnnl_sgemm_ptr) return 1;
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) lib = dlopen("libdnnl.so", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) return 0;
    dnnl_sgemm_fn gemm = (dnnl_sgemm_fn)dlsym(lib, "dnnl_sgemm");
    // Debian's oneDNN runs on OpenMP (libgomp, loaded with it): one compute thread per
    // worker process is the project's rule, so every calling thread is set to one thread.
    omp_threads_ptr = (omp_set_num_threads_fn)dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!gemm) return 0;
    dnnl_sgemm_ptr = gemm;
    return 1;
}

int ck_dnnl_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                  const float *b, long ldb, float beta, float *c, long ldc) {
    if (!omp_single) { if (omp_threads_ptr) omp_threads_ptr(1); omp_single = 1; }
    return dnnl_sgemm_ptr(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void ck_reference_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                        const float *b, long ldb, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            double total = 0;
            for (long p = 0; p < k; p++) {
                const double x = trans_a ? a[p * lda + i] : a[i * lda + p];
                const double y = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                total += x * y;
            }
            const double previous = beta == 0 ? 0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)((double)alpha * total + previous);
        }
    }
}
