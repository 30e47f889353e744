import CBLAS
import ConvoyKernels
#if canImport(Glibc)
    import Glibc
#endif

/// Single-precision GEMM, row-major throughout, on one of several back ends chosen once at
/// start-up (the engine's `KernelChoice` decides and self-checks; this type only runs them).
///
/// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, with `lda`, `ldb`, `ldc` the row
/// strides of the matrices as stored.
public enum BLAS {
    public enum Backend: String, CaseIterable, Sendable {
        /// OpenBLAS with the kernel it detected (or that OPENBLAS_CORETYPE named).
        case openblas
        /// oneDNN's `dnnl_sgemm`, loaded at run time, on one OpenMP thread.
        case onednn
        /// Plain loops in double precision: the self-check's reference, the last resort.
        case reference
    }

    nonisolated(unsafe) public private(set) static var backend: Backend = .openblas
    /// When set, `gemmNanoseconds` accumulates the time spent in GEMM (for `convoy bench`).
    nonisolated(unsafe) public static var timing = false
    nonisolated(unsafe) public static var gemmNanoseconds: UInt64 = 0

    /// Whether `backend` can run here (oneDNN: the library is installed).
    public static func isAvailable(_ backend: Backend) -> Bool {
        backend == .onednn ? ck_dnnl_load() != 0 : true
    }

    /// Routes every later `sgemm` to `backend`; false (and nothing changes) if it cannot run.
    @discardableResult
    public static func use(_ backend: Backend) -> Bool {
        guard isAvailable(backend) else { return false }
        self.backend = backend
        return true
    }

    @inline(__always)
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if timing {
            let start = now()
            sgemm(
                on: backend, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            gemmNanoseconds &+= now() &- start
        } else {
            sgemm(
                on: backend, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// The same product on a named back end (the self-check runs each candidate).
    @inline(__always)
    public static func sgemm(
        on backend: Backend, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        switch backend {
        case .openblas:
            cblas_sgemm(
                CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                beta, c, Int32(ldc))
        case .onednn:
            let status = ck_dnnl_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            precondition(status == 0, "dnnl_sgemm failed with status \(status) (m \(m), n \(n), k \(k))")
        case .reference:
            ck_reference_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
    }

    @inline(__always)
    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// Sets OpenBLAS's thread count for this process. One thread per worker process by
    /// default, so N workers on N cores do not oversubscribe.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel OpenBLAS picked at load time, e.g. "Cooperlake".
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Whether the user named OpenBLAS's kernel (`OPENBLAS_CORETYPE`): then it is honoured.
    public static var coreNamedByUser: String? {
        guard let value = getenv("OPENBLAS_CORETYPE") else { return nil }
        let name = String(cString: value)
        return name.isEmpty ? nil : name
    }
}
