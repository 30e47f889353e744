import ArgumentParser
import ConvoyEngine
import ConvoyInterop
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training and inference throughput of one process, after a warm-up.")

    @Option(help: "Model to benchmark.") var model = "lenet5"
    @Option(help: "Training batch size.") var batch = 64
    @Option(help: "OpenBLAS threads.") var threads = 1
    @Option(help: "Timed training steps.") var steps = 300
    @Option(name: .customLong("infer-batch"), help: "Inference batch size.") var inferBatch = 1000
    @Option(name: .customLong("micro-batch"), help: "Micro-batch size when --deterministic.") var microBatch = 8
    @Flag(inversion: .prefixedNo, help: "Time the deterministic (fixed-point micro-batch) gradient path.")
    var deterministic = false
    @Option(help: "Kernels: auto, a GEMM (openblas, onednn, reference), an ISA (avx512, avx2, portable), or GEMM+ISA.")
    var kernel = "auto"
    @Flag(help: "Also time each layer (fused blocks as one) forward and backward.") var layers = false
    @Flag(help: "Print one JSON object.") var json = false

    struct Result: Encodable {
        let model: String, batch: Int, threads: Int, deterministic: Bool
        let trainSamplesPerSec: Double, inferSamplesPerSec: Double, stepMilliseconds: Double
        let blasCore: String
        /// The kernels in use ("openblas-Zen+avx2", "onednn+avx512", ...) and their parts.
        let kernel: String, gemm: String, isa: String, kernelNote: String
        let trainGflops: Double, inferGflops: Double
        /// Share of a training step's wall time spent inside GEMM calls.
        let gemmFraction: Double
        let layers: [BenchReport.LayerTime]?
        enum CodingKeys: String, CodingKey {
            case model, batch, threads, deterministic
            case trainSamplesPerSec = "train_samples_per_sec"
            case inferSamplesPerSec = "infer_samples_per_sec"
            case stepMilliseconds = "step_ms"
            case blasCore = "blas_core"
            case kernel, gemm, isa
            case kernelNote = "kernel_note"
            case trainGflops = "train_gflops"
            case inferGflops = "infer_gflops"
            case gemmFraction = "gemm_fraction"
            case layers
        }
    }

    /// Synthetic samples the benchmark trains and infers on; --infer-batch above it is cut to it.
    static let sampleCount = 4096

    func validate() throws {
        try checkFlag("batch", batch, in: FlagRange.batch)
        try checkFlag("threads", threads, in: FlagRange.threads)
        try checkFlag("steps", steps, in: FlagRange.benchSteps)
        try checkFlag("infer-batch", inferBatch, in: FlagRange.batch)
        try checkFlag("micro-batch", microBatch, in: FlagRange.batch)
        guard let architecture = try? Architecture(try ModelZoo.spec(named: model)) else { return }  // run() says why
        try MemoryBudget.check(
            memoryBytes(architecture), for: "bench \(model) at --batch \(batch) --infer-batch \(inferBatch)")
    }

    /// What `run` allocates: the synthetic samples (and the test and inference copies), the
    /// training network and state, the inference network and, with --layers, a network for
    /// the per-layer table.
    func memoryBytes(_ architecture: Architecture) -> Double {
        let samples = Double(Self.sampleCount * architecture.inputShape.count)
        let training = max(deterministic ? microBatch : batch, 256)
        let inference = min(inferBatch, Self.sampleCount)
        return 3 * samples + MemoryBudget.trainingStateBytes(architecture)
            + MemoryBudget.networkBytes(architecture, maxBatch: training)
            + MemoryBudget.networkBytes(architecture, maxBatch: inference)
            + (layers ? MemoryBudget.networkBytes(architecture, maxBatch: batch) : 0)
    }

    /// A session over synthetic MNIST-shaped data: speed does not depend on pixel values.
    func makeSession(_ architecture: Architecture) throws -> (session: TrainingSession, data: Dataset) {
        var config = TrainingConfig()
        config.model = model
        config.batchSize = batch
        config.deterministic = deterministic
        config.microBatch = microBatch
        try config.validate()
        var rng = SeededRandom(seed: 7)
        let sampleCount = Self.sampleCount
        let size = architecture.inputShape.count
        let data = Dataset(
            pixels: (0..<(sampleCount * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
            labels: (0..<sampleCount).map { _ in UInt8(rng.nextIndex(below: 10)) }, sampleSize: size)
        let session = try TrainingSession(
            config: config, train: data, test: data.prefix(inferBatch), runner: LocalStepRunner())
        return (session, data)
    }

    func run() throws {
        reportingErrors {
            BLAS.setThreads(threads)
            let kernels = try KernelChoice.configure(kernel)
            let architecture = try Architecture(try ModelZoo.spec(named: model))
            let (session, data) = try makeSession(architecture)
            let size = architecture.inputShape.count
            let order = session.plan.order(epoch: 0)
            func trainSteps(_ count: Int) throws {
                for step in 0..<count {
                    try session.trainStep(
                        step: step, samples: order[session.plan.batchRange(step: step % session.plan.stepsPerEpoch)])
                }
            }
            try trainSteps(20)
            let started = ContinuousClock.now
            try trainSteps(steps)
            let trainSeconds = secondsSince(started)
            // One batch's samples for the per-layer table.
            var pixels = [UInt8](repeating: 0, count: batch * size)
            var labels = [UInt8](repeating: 0, count: batch)
            pixels.withUnsafeMutableBufferPointer { p in
                labels.withUnsafeMutableBufferPointer { l in
                    data.gather(order[session.plan.batchRange(step: 0)], pixels: p.baseAddress!, labels: l.baseAddress!)
                }
            }
            // The GEMM share in a separate pass, so the clock reads do not touch the figure above.
            let gemmFraction = try BenchReport.gemmShare { try trainSteps(max(20, steps / 5)) }
            let layerTimes =
                layers
                ? BenchReport.layerTimes(
                    architecture, parameters: session.server.parameters.array,
                    batch: batch, rounds: 50, pixels: pixels, labels: labels) : nil
            let inferData = data.prefix(inferBatch)
            let inferRate = BenchReport.inferenceRate(
                architecture, parameters: session.server.parameters.array, data: inferData)
            let trainRate = Double(steps * batch) / trainSeconds
            let result = Result(
                model: model, batch: batch, threads: threads, deterministic: deterministic,
                trainSamplesPerSec: trainRate, inferSamplesPerSec: inferRate,
                stepMilliseconds: trainSeconds / Double(steps) * 1000, blasCore: BLAS.coreName,
                kernel: kernels.name, gemm: kernels.gemm, isa: kernels.isa, kernelNote: kernels.note,
                trainGflops: trainRate * BenchReport.flopsPerSample(architecture, training: true) / 1e9,
                inferGflops: inferRate * BenchReport.flopsPerSample(architecture, training: false) / 1e9,
                gemmFraction: gemmFraction, layers: layerTimes)
            if json {
                ProgressPrinter.line(ProgressPrinter.jsonLine(result))
                return
            }
            ProgressPrinter.line(
                "\(model) batch \(batch), \(threads) thread(s)\(deterministic ? ", deterministic" : ""): train "
                    + "\(Int(result.trainSamplesPerSec)) samples/s (\(format(result.stepMilliseconds, 3)) ms/step, "
                    + "\(format(result.trainGflops, 1)) GFLOP/s, \(percent(gemmFraction)) in GEMM), inference "
                    + "\(Int(result.inferSamplesPerSec)) samples/s at batch \(inferData.count) "
                    + "(\(format(result.inferGflops, 1)) GFLOP/s) [kernels \(kernels.name)]"
            )
            if let layerTimes { BenchReport.printTable(layerTimes) }
        }
    }
}
