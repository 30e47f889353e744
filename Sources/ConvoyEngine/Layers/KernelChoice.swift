import ConvoyInterop
import Foundation

/// Which GEMM and which instruction set of the engine's own kernels this process runs,
/// chosen once, self-checked, and named (start-up line, `convoy bench --json`).
///
/// No library's CPU table is trusted to know the CPU: OpenBLAS 0.3.21 runs its SSE3 Prescott
/// kernel on CPUs newer than its table (Emerald Rapids: every GEMM at a fifth of the
/// hardware), so when it reports a kernel older than the CPU's vector units, oneDNN's
/// `dnnl_sgemm` (JIT-generated per CPU) is used instead. Before anything runs, one small GEMM
/// and one convolution (with the fused ReLU and pooling) are compared with plain Double
/// loops; a kernel that disagrees is refused and the next candidate checked.
public enum KernelChoice {
    public struct Selection: Sendable, Equatable, Codable {
        /// GEMM back end: "openblas", "onednn" or "reference".
        public let gemm: String
        /// OpenBLAS's kernel (e.g. "Cooperlake", "Zen", "Prescott").
        public let openblasCore: String
        /// The engine's own kernels: "avx512", "avx2" or "portable".
        public let isa: String
        /// Why this choice, and anything the self-check refused.
        public let note: String

        /// What `convoy bench` prints and the start-up line shows.
        public var name: String {
            (gemm == "openblas" ? "openblas-\(openblasCore)" : gemm) + "+\(isa)"
        }
        public var startupLine: String { "convoy: kernels \(name) (\(note))" }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var chosen: Selection?

    /// The selection in force; the first use makes the automatic one and prints its line.
    public static var current: Selection {
        lock.lock()
        defer { lock.unlock() }
        if let chosen { return chosen }
        let selection = choose(request: nil)
        announce(selection)
        return selection
    }

    /// Chooses with a user's request: nil or "auto", a GEMM ("openblas", "onednn",
    /// "reference"), an ISA ("avx512", "avx2", "portable"), or both as "GEMM+ISA". A named
    /// kernel is used if it passes the self-check. Throws on a name it does not know or a
    /// kernel this CPU or installation cannot run.
    @discardableResult
    public static func configure(_ request: String?) throws -> Selection {
        var gemm: BLAS.Backend?
        var isa: Kernels.ISA?
        for part in (request ?? "auto").lowercased().split(separator: "+").map(String.init) where part != "auto" {
            if let backend = BLAS.Backend(rawValue: part) {
                gemm = backend
            } else if let named = Kernels.ISA(name: part) {
                isa = named
            } else {
                throw KernelChoiceError.unknown(request: request ?? "", part: part)
            }
        }
        if let gemm, !BLAS.isAvailable(gemm) {
            throw KernelChoiceError.unavailable(kernel: gemm.rawValue, reason: "oneDNN (libdnnl.so.2) is not installed")
        }
        if let isa, !isa.isSupported {
            throw KernelChoiceError.unavailable(kernel: isa.name, reason: "this CPU lacks \(isa.name)")
        }
        lock.lock()
        defer { lock.unlock() }
        let selection = choose(request: (gemm, isa))
        announce(selection)
        return selection
    }

    /// Where the startup line goes: stderr unless a program routes it into its own log (the
    /// CLI does, for `--log-format json`). Set once at startup, before any kernel is chosen.
    nonisolated(unsafe) public static var announceLine: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private static func announce(_ selection: Selection) {
        chosen = selection
        announceLine(selection.startupLine)
    }

    /// OpenBLAS kernels that use the vector units of the CPUs they are named after (AVX2 or
    /// wider); anything else on an AVX2 CPU means its table did not know the CPU.
    static let modernOpenBLASCores: Set<String> = [
        "haswell", "zen", "skylakex", "cooperlake", "sapphirerapids", "excavator",
    ]

    /// The GEMM back ends to try, in order, and why: a pure function of what the user named,
    /// OpenBLAS's kernel, and what this machine has (tested on the Prescott case).
    static func gemmCandidates(
        named: BLAS.Backend?, userCore: String?, core: String, vectorCPU: Bool,
        oneDNN: Bool
    ) -> (gemms: [BLAS.Backend], notes: [String]) {
        var gemms: [BLAS.Backend]
        var notes: [String] = []
        if let named {
            gemms = [named]
            notes.append("GEMM named by --kernel")
        } else if let userCore {
            gemms = [.openblas]
            notes.append("OPENBLAS_CORETYPE=\(userCore) honoured")
        } else if vectorCPU && !modernOpenBLASCores.contains(core.lowercased()) {
            if oneDNN {
                gemms = [.onednn, .openblas]
                notes.append("OpenBLAS detected \(core), older than this CPU: oneDNN GEMM")
            } else {
                gemms = [.openblas]
                notes.append(
                    "OpenBLAS detected \(core), older than this CPU, and oneDNN (libdnnl2) is not installed: GEMM "
                        + "runs slowly"
                )
            }
        } else {
            gemms = [.openblas]
        }
        if !gemms.contains(.reference) { gemms.append(.reference) }
        return (gemms, notes)
    }

    private static func choose(request: (BLAS.Backend?, Kernels.ISA?)?) -> Selection {
        let core = BLAS.coreName
        let (gemms, reasons) = gemmCandidates(
            named: request?.0, userCore: BLAS.coreNamedByUser, core: core,
            vectorCPU: Kernels.best != .portable, oneDNN: BLAS.isAvailable(.onednn))
        var notes = reasons
        let isas: [Kernels.ISA] = request?.1.map { [$0, .portable] } ?? [Kernels.best, .portable]
        for gemm in gemms {
            guard BLAS.isAvailable(gemm), SelfCheck.gemmAgrees(on: gemm), BLAS.use(gemm) else {
                notes.append("refused \(gemm.rawValue) GEMM: unavailable or disagrees with the reference")
                continue
            }
            for isa in isas {
                Kernels.select(isa)
                if SelfCheck.convolutionAgrees() {
                    notes.append("self-check passed")
                    return Selection(
                        gemm: gemm.rawValue, openblasCore: core, isa: isa.name, note: notes.joined(separator: "; "))
                }
                notes.append("refused \(isa.name) kernels: convolution disagrees with the reference")
            }
        }
        // Even plain loops disagreed: something is badly wrong; run the most basic path and say so.
        BLAS.use(.reference)
        Kernels.select(.portable)
        return Selection(
            gemm: "reference", openblasCore: core, isa: "portable",
            note: notes.joined(separator: "; ") + "; NOTHING PASSED")
    }
}

/// A kernel request that cannot be met; the CLI names its flag.
public enum KernelChoiceError: Error, CustomStringConvertible, Equatable {
    case unknown(request: String, part: String)
    case unavailable(kernel: String, reason: String)

    public var description: String {
        switch self {
        case let .unknown(request, part):
            "kernel \(request): unknown kernel '\(part)'; use auto, openblas, onednn, reference, avx512, avx2, "
                + "portable or GEMM+ISA"
        case let .unavailable(kernel, reason): "kernel \(kernel): \(reason)"
        }
    }
}
