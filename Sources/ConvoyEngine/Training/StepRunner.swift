/// What a step runner needs to know about the run before its first step.
public struct RunDescription: Sendable {
    public let config: TrainingConfig
    public let architecture: Architecture
    /// Values per sample in the datasets.
    public let sampleSize: Int
    /// The mode of the sums `train` adds into.
    public var sumMode: SumMode { SumMode(deterministic: config.deterministic) }
}

/// Where a training session's steps are computed: in this process (`LocalStepRunner`) or by
/// a cluster of worker processes (`ClusterStepRunner` in ConvoyCluster). The session owns the
/// epoch loop, the optimizer, checkpoints and reports; a runner only turns weights and
/// samples into gradient sums and totals, so both run exactly the same training.
public protocol StepRunner: AnyObject {
    /// Called once before the first step; a cluster waits for its workers here.
    func start(_ run: RunDescription) throws
    /// Adds the gradient sum of `samples`, computed at `weights`, into `sum`, with their count;
    /// returns their loss and hits. `step` numbers the run's steps from 0.
    func train(
        step: Int, samples: StepSamples, weights: FloatBuffer,
        into sum: GradientSum
    ) throws -> GradientComputer.Totals
    /// `train`, with `early`: a runner that learns the final sum of a parameter range before
    /// the step ends (all workers' head buckets are in) may call `early.update(range)` to
    /// have the optimizer update that range of `weights` at once, and ship it while the rest
    /// is computed. Runners that cannot simply train.
    func train(
        step: Int, samples: StepSamples, weights: FloatBuffer,
        into sum: GradientSum, early: EarlyUpdate
    ) throws -> GradientComputer.Totals
    /// Loss and hits of every sample of `data` at `weights`.
    func evaluate(_ data: Dataset, weights: FloatBuffer) throws -> GradientComputer.Totals
    /// Called once after the last step; a cluster tells its workers the run is over.
    func finish() throws
    /// The run failed: whoever computes its steps is told why, without waiting for anyone.
    func abandon(because reason: String)
    /// Records the phases of each step on `timeline` (`--trace`); called before `start`.
    func trace(to timeline: Timeline)
}

extension StepRunner {
    public func abandon(because reason: String) {}
    public func trace(to timeline: Timeline) {}

    public func train(
        step: Int, samples: StepSamples, weights: FloatBuffer,
        into sum: GradientSum, early: EarlyUpdate
    ) throws -> GradientComputer.Totals {
        try train(step: step, samples: samples, weights: weights, into: sum)
    }
}

/// Lets a step runner have part of the parameters updated before the step's end
/// (`StepRunner.train(…, early:)`); the session applies the rest afterwards.
public struct EarlyUpdate {
    /// Updates the range of the weights from the sum, which must be final there; throws when
    /// the new weights are not finite.
    public let update: (Range<Int>) throws -> Void
    public init(update: @escaping (Range<Int>) throws -> Void) { self.update = update }
}

/// Steps computed in this process by one `GradientComputer`: what `convoy train` runs.
public final class LocalStepRunner: StepRunner {
    private var computer: GradientComputer?
    private var microBatch = 1
    private var pixels: [UInt8] = []
    private var labels: [UInt8] = []
    private var timeline: Timeline?

    public init() {}

    public func trace(to timeline: Timeline) { self.timeline = timeline }

    public func start(_ run: RunDescription) throws {
        guard computer == nil else { return }
        let config = run.config
        // Large enough for a whole batch in float mode and for evaluation chunks.
        let maxBatch = max(config.deterministic ? config.microBatch : config.batchSize, 256)
        computer = GradientComputer(network: Network(run.architecture, maxBatch: maxBatch))
        microBatch = config.microBatch
    }

    /// The computer, holding `weights`: the same hand-over as a worker receiving a step's weights.
    private func ready(_ weights: FloatBuffer) -> GradientComputer {
        guard let computer else { preconditionFailure("LocalStepRunner used before start") }
        computer.network.parameters.pointer.update(from: weights.pointer, count: weights.count)
        return computer
    }

    public func train(
        step: Int, samples: StepSamples, weights: FloatBuffer,
        into sum: GradientSum
    ) throws -> GradientComputer.Totals {
        let computer = ready(weights)
        let needed = samples.count * samples.sampleSize
        if pixels.count < needed { pixels = [UInt8](repeating: 0, count: needed) }
        if labels.count < samples.count { labels = [UInt8](repeating: 0, count: samples.count) }
        return try pixels.withUnsafeMutableBufferPointer { pixels in
            try labels.withUnsafeMutableBufferPointer { labels in
                samples.gather(0..<samples.count, pixels: pixels.baseAddress!, labels: labels.baseAddress!)
                let started = ContinuousClock.now
                defer { timeline?.computed(step: step, started: started, forwardDone: computer.forwardDone) }
                return try computer.compute(
                    pixels: pixels.baseAddress!, labels: labels.baseAddress!,
                    count: samples.count, microBatch: microBatch, into: sum)
            }
        }
    }

    public func evaluate(_ data: Dataset, weights: FloatBuffer) throws -> GradientComputer.Totals {
        let computer = ready(weights)
        return data.pixels.withUnsafeBufferPointer { pixels in
            data.labels.withUnsafeBufferPointer { labels in
                computer.evaluate(pixels: pixels.baseAddress!, labels: labels.baseAddress!, count: data.count)
            }
        }
    }

    public func finish() throws {}
}

extension Timeline {
    /// A local step's forward and backward spans (one "forward+backward" span when the batch
    /// was computed chunk by chunk, interleaved).
    func computed(step: Int, started: ContinuousClock.Instant, forwardDone: ContinuousClock.Instant?) {
        let end = ContinuousClock.now
        let args: [(String, TraceValue)] = [("step", .int(step))]
        guard let forwardDone, forwardDone >= started else {
            return span("forward+backward", from: started, to: end, args: args)
        }
        span("forward", from: started, to: forwardDone, args: args)
        span("backward", from: forwardDone, to: end, args: args)
    }
}
