import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import Foundation

/// The coordinator's capacity: the real coordinator over real ZeroMQ on loopback against N
/// synthetic workers that answer instantly, so what it measures is the most steps per
/// second the coordinator itself can drive (docs/SCALING.md turns it into a projection).
struct CoordinatorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-coordinator",
        abstract: "Steps/s, MB/s and coordinator time per step against N instant synthetic workers.",
        discussion: """
            --workers takes one count or a comma-separated list (1,2,4); --sweep runs 1,2,4,…,64. \
            Each count is a separate run. --per-worker-batch K sets the global batch to K × N, so \
            every worker gets a slice; otherwise every run uses --batch and only the first \
            batch/micro-batch workers get work.
            """)

    @Option(help: "Worker count, or a comma-separated list of counts.") var workers = "1"
    @Flag(help: "Run N = 1, 2, 4, 8, 16, 32, 64.") var sweep = false
    @Option(help: "Timed steps per worker count.") var steps = 200
    @Option(help: "Untimed steps first.") var warmup = 20
    @Option(help: "Model whose gradient layout the workers send.") var model = "lenet5"
    @Flag(inversion: .prefixedNo, help: "Fixed-point (exact) gradients; off: Float32.") var deterministic = true
    @Option(name: .customLong("micro-batch"), help: "Micro-batch of the deterministic mode.") var microBatch = 8
    @Option(help: "Global batch of every step.") var batch = 64
    @Option(name: .customLong("per-worker-batch"), help: "Global batch = K × N instead of --batch.")
    var perWorkerBatch: Int?
    @Flag(help: "Print one JSON object per worker count.") var json = false
    @Flag(inversion: .prefixedNo, help: "Send the updated head while the trunk is computed (deterministic).")
    var headAhead = true
    @Option(help: "zmq (ZeroMQ over TCP loopback) or shm (shared memory, as convoy local).")
    var transport = LocalTransport.zmq
    @Option(
        name: .customLong("gradient-encoding"),
        help: ArgumentHelp(
            "How the synthetic workers write fixed-point gradients: packed, varint, raw, or auto (packed, as "
                + "workers on the coordinator's host do; varint is what workers across a network send)."))
    var gradientEncoding = GradientEncodingOption.Choice.auto

    func counts() throws -> [Int] {
        if sweep { return [1, 2, 4, 8, 16, 32, 64] }
        let parts = workers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        let range = 1...ClusterOptions.maxWorkers
        guard !parts.isEmpty, parts.allSatisfy({ range.contains($0 ?? 0) }) else {
            throw FlagError("--workers \(workers): give a count in \(range) or a comma-separated list of them")
        }
        return parts.map { $0! }
    }

    func validate() throws {
        try checkFlag("steps", steps, in: FlagRange.benchSteps)
        try checkFlag("warmup", warmup, in: FlagRange.warmupSteps)
        try checkFlag("batch", batch, in: FlagRange.batch)
        try checkFlag("micro-batch", microBatch, in: FlagRange.batch)
        do {
            // Checked before multiplying: K × N is the global batch, which has --batch's range.
            for n in try counts() {
                if let k = perWorkerBatch, !(1...(FlagRange.batch.upperBound / n)).contains(k) {
                    throw FlagError("--per-worker-batch \(k): K × \(n) workers must be a batch in \(FlagRange.batch)")
                }
            }
        } catch let error as FlagError { throw ValidationError(error.description) }
    }

    func run() throws {
        reportingErrors {
            for n in try counts() {
                var settings = CoordinatorBenchSettings(workers: n)
                settings.steps = steps
                settings.warmupSteps = warmup
                settings.model = model
                settings.deterministic = deterministic
                settings.microBatch = microBatch
                settings.headAhead = headAhead
                settings.sharedMemory = transport == .shm
                settings.gradientEncoding = gradientEncoding.encoding(coordinatorOnThisHost: true)
                settings.batch = perWorkerBatch.map { $0 * n } ?? batch
                let result = try CoordinatorBenchmark.run(
                    settings,
                    log: { line in
                        if line.contains("dropped") { ProgressPrinter.error("bench-coordinator: \(line)") }
                    })
                ProgressPrinter.line(json ? ProgressPrinter.jsonLine(result) : Self.text(result))
            }
        }
    }

    static func text(_ r: CoordinatorBenchResult) -> String {
        "\(r.workers) workers (\(r.slices) with a slice, batch \(r.batch)): \(format(r.stepsPerSec, 0)) steps/s, "
            + "\(format(r.samplesPerSec, 0)) samples/s, step \(format(r.stepMs, 3)) ms, coordinator "
            + "\(format(r.coordinatorMs, 3)) ms (CPU \(format(r.coordinatorCPUMs, 3)) + I/O "
            + "\(format(r.coordinatorIOCPUMs, 3)) ms), \(format(r.bytesPerStep / 1e6, 2)) MB/step, "
            + "\(format(r.megabytesPerSec, 0)) MB/s\(r.dropped > 0 ? ", \(r.dropped) DROPPED" : "")"
    }
}
