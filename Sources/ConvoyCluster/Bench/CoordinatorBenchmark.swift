import ConvoyEngine
import ConvoyInterop
import Foundation

/// What one coordinator benchmark runs: a real `TrainingSession` over a real
/// `ClusterStepRunner` and a real transport (ZeroMQ on loopback TCP, or shared memory), fed by
/// `SyntheticWorkers` that answer at once, so its figures are the coordinator's ceiling.
public struct CoordinatorBenchSettings: Sendable {
    public var workers: Int
    public var steps = 200
    /// Steps before the timed ones (connections warm, allocations done).
    public var warmupSteps = 20
    public var model = "lenet5"
    public var deterministic = true
    public var microBatch = 8
    /// The global batch of every step.
    public var batch = 64
    /// The coordinator sends the updated head while the workers compute the trunk.
    public var headAhead = true
    /// Shared memory (`shm://`, workers on the coordinator's host) instead of ZeroMQ over TCP.
    public var sharedMemory = false
    /// How the synthetic workers write fixed-point gradients (packed, as workers on the
    /// coordinator's host do by default).
    public var gradientEncoding = GradientEncoding.packed
    public init(workers: Int) { self.workers = workers }
}

/// The figures of one benchmark run; `--json` prints exactly these keys.
public struct CoordinatorBenchResult: Codable, Equatable, Sendable {
    public var workers: Int
    /// Workers that got a slice each step: at most the batch's micro-batches.
    public var slices: Int
    public var batch: Int
    public var deterministic: Bool
    public var steps: Int
    public var stepsPerSec: Double
    public var samplesPerSec: Double
    /// Wall time of a whole step: send, wait, combine, optimizer step.
    public var stepMs: Double
    /// The coordinator's send + combine time per step (`ClusterStats.coordinatorMs`).
    public var coordinatorMs: Double
    /// CPU time per step of the coordinator's thread (optimizer step included) and of its
    /// ZeroMQ I/O thread: what a faster network cannot remove.
    public var coordinatorCPUMs: Double
    public var coordinatorIOCPUMs: Double
    /// Bytes sent plus received per step, as the transport counted them.
    public var bytesPerStep: Double
    public var megabytesPerSec: Double
    /// Workers dropped during the run (0 unless something went wrong).
    public var dropped: Int
    /// Training slices each synthetic worker answered, warm-up included.
    public var slicesAnswered: [Int]

    enum CodingKeys: String, CodingKey {
        case workers, slices, batch, deterministic, steps, dropped
        case stepsPerSec = "steps_per_sec"
        case samplesPerSec = "samples_per_sec"
        case stepMs = "step_ms"
        case coordinatorMs = "coordinator_ms"
        case coordinatorCPUMs = "coordinator_cpu_ms"
        case coordinatorIOCPUMs = "coordinator_io_cpu_ms"
        case bytesPerStep = "bytes_per_step"
        case megabytesPerSec = "mb_per_sec"
        case slicesAnswered = "slices_answered"
    }
}

public enum CoordinatorBenchmark {
    /// Runs the benchmark; `log` gets the coordinator's messages (joins, drops).
    public static func run(
        _ settings: CoordinatorBenchSettings,
        log: @escaping (String) -> Void = { _ in }
    ) throws -> CoordinatorBenchResult {
        let config = try trainingConfig(settings)
        let data = syntheticData(samples: settings.batch * 4, sampleSize: try inputSize(settings.model))
        let context = ZMQContext()
        defer { context.terminate() }
        let threadsBefore = ThreadCPU.taskIDs()
        let directory = try settings.sharedMemory ? PrivateSocketDirectory.make() : nil
        defer { directory?.remove() }
        let transport: any ListeningTransport =
            try directory.map {
                // Rings sized for the model, as `convoy coordinator` sizes them.
                let limits = try CoordinatorLimits.forRun(model: settings.model, workers: settings.workers)
                return try SharedMemoryCoordinatorTransport(bind: $0.sharedMemoryEndpoint, limits: limits)
            }
            ?? ZMQCoordinatorTransport(context: context, bind: "tcp://127.0.0.1:*")
        defer { transport.close() }
        // Threads libzmq started for the coordinator's context: its I/O thread does the
        // coordinator's socket work. (They name themselves once running: filtered later.)
        let zmqThreads = ThreadCPU.taskIDs().subtracting(threadsBefore)
        var options = ClusterOptions(workers: settings.workers)
        options.joinTimeout = 60
        // Generous: a loaded machine must slow the benchmark, not drop its workers.
        options.stepTimeout = 60
        options.headAhead = settings.headAhead
        let runner = try ClusterStepRunner(transport: transport, options: options, log: log)
        let session = try TrainingSession(
            config: config, train: data, test: data.prefix(settings.batch),
            runner: runner)
        let workers = SyntheticWorkers(
            endpoint: transport.endpoint, count: settings.workers, gradientEncoding: settings.gradientEncoding)
        let timed: Timed
        let stats: ClusterStats
        do {
            try session.startRunner()
            try trainSteps(session, from: 0, count: settings.warmupSteps)
            _ = runner.takeEpochStats()
            let ioThreads = zmqThreads.filter { ThreadCPU.name($0).hasPrefix("ZMQbg/IO") }
            timed = try Timed.measure(ioThreads: ioThreads) {
                try trainSteps(session, from: settings.warmupSteps, count: settings.steps)
            }
            stats = runner.takeEpochStats()
            try runner.finish()
        } catch {
            workers.stop()
            // A synthetic worker's failure is the cause of whatever the coordinator saw.
            _ = try workers.join()
            throw error
        }
        let answered = try workers.join()
        return result(
            settings, stats: stats, timed: timed, slicesAnswered: answered,
            dropped: settings.workers - stats.workers)
    }

    private static func result(
        _ settings: CoordinatorBenchSettings, stats: ClusterStats, timed: Timed,
        slicesAnswered: [Int], dropped: Int
    ) -> CoordinatorBenchResult {
        let steps = Double(settings.steps)
        let units = (settings.batch + settings.microBatch - 1) / settings.microBatch
        let stepsPerSec = steps / timed.wall
        return CoordinatorBenchResult(
            workers: settings.workers, slices: min(settings.workers, settings.deterministic ? units : settings.batch),
            batch: settings.batch, deterministic: settings.deterministic, steps: settings.steps,
            stepsPerSec: stepsPerSec, samplesPerSec: stepsPerSec * Double(settings.batch),
            stepMs: timed.wall / steps * 1000, coordinatorMs: stats.coordinatorMs,
            coordinatorCPUMs: timed.threadCPU / steps * 1000, coordinatorIOCPUMs: timed.ioCPU / steps * 1000,
            bytesPerStep: stats.bytesPerStep, megabytesPerSec: stats.bytesPerStep * stepsPerSec / 1e6,
            dropped: dropped, slicesAnswered: slicesAnswered)
    }

    private static func trainingConfig(_ settings: CoordinatorBenchSettings) throws -> TrainingConfig {
        if let problem = ClusterOptions(workers: settings.workers).problem { throw problem }
        var config = TrainingConfig()
        config.model = settings.model
        config.batchSize = settings.batch
        config.deterministic = settings.deterministic
        config.microBatch = settings.microBatch
        config.schedule = .constant
        try config.validate()
        return config
    }

    private static func inputSize(_ model: String) throws -> Int {
        try Architecture(try ModelZoo.spec(named: model)).inputShape.count
    }

    /// Random MNIST-shaped samples: the coordinator's cost does not depend on their values.
    static func syntheticData(samples: Int, sampleSize: Int) -> Dataset {
        var rng = SeededRandom(seed: 11)
        return Dataset(
            pixels: (0..<(samples * sampleSize)).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
            labels: (0..<samples).map { _ in UInt8(rng.nextIndex(below: 10)) }, sampleSize: sampleSize)
    }

    private static func trainSteps(_ session: TrainingSession, from first: Int, count: Int) throws {
        let order = session.plan.order(epoch: 0)
        for step in first..<(first + count) {
            let batch = session.plan.batchRange(step: step % session.plan.stepsPerEpoch)
            try session.trainStep(step: step, samples: order[batch])
        }
    }
}

/// Wall and CPU seconds of a block.
struct Timed {
    var wall = 0.0, threadCPU = 0.0, ioCPU = 0.0

    static func measure(ioThreads: Set<Int>, _ body: () throws -> Void) throws -> Timed {
        let io = { ioThreads.reduce(0.0) { $0 + ThreadCPU.seconds(task: $1) } }
        let (wall, cpu, ioStart) = (ContinuousClock.now, ThreadCPU.current(), io())
        try body()
        return Timed(
            wall: (ContinuousClock.now - wall).inSeconds, threadCPU: ThreadCPU.current() - cpu, ioCPU: io() - ioStart)
    }
}
