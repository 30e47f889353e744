import Foundation

/// Where and how often a session writes checkpoints.
public struct CheckpointPolicy: Sendable, Equatable {
    public var directory: String
    /// Also every this many steps (0: only at epoch ends).
    public var every = 0
    /// How many of the newest checkpoints to keep.
    public var keep = 3
    public init(directory: String, every: Int = 0, keep: Int = 3) {
        self.directory = directory
        self.every = every
        self.keep = keep
    }
}

/// Where a session is after a step, for progress displays.
public struct StepProgress: Sendable {
    public let epoch: Int
    public let step: Int
    public let stepsPerEpoch: Int
    /// Mean loss of the epoch's steps so far.
    public let runningLoss: Double
}

/// One training run, whoever computes its steps: the epoch loop, the optimizer step, the
/// reports, checkpoints and resume. `convoy train` runs it with a `LocalStepRunner`, the
/// cluster's coordinator with a `ClusterStepRunner`; the same config gives the same weights
/// with either (bit for bit in deterministic mode).
public final class TrainingSession {
    public let config: TrainingConfig
    public let architecture: Architecture
    public let train: Dataset
    public let test: Dataset
    public let plan: BatchPlan
    public let server: ParameterServer
    public let runner: any StepRunner
    public var checkpoints: CheckpointPolicy?
    public var stopRule: StopRule?
    /// The resolved training flags the model file records (ModelFile.recipe).
    public var recipe: [String: String] = [:]
    /// Asked between steps whether to stop early (preemption); nil: never.
    public var stopRequest: StopRequest?
    /// Where each step's spans go (`--trace`); set before the run starts.
    public var timeline: Timeline?
    /// The step of the newest checkpoint this process wrote: a stop does not write it twice.
    var savedStep: Int?
    /// Seconds from this process's first step until the test accuracy reached the stop rule's
    /// target, evaluations included; nil until then.
    public private(set) var timeToTarget: Double?
    private var runStarted = ContinuousClock.now
    /// The reports of the epochs finished so far, including those before a resume.
    public private(set) var reports: [EpochReport] = []
    private let sum: GradientSum
    private var started = false
    /// Where `run` starts: (0, 0) for a new run, else what `resume` restored.
    private var start = (epoch: 0, step: 0)
    private var resumedTotals = GradientComputer.Totals()
    private let log: (String) -> Void

    public init(
        config: TrainingConfig, train: Dataset, test: Dataset, runner: any StepRunner,
        checkpoints: CheckpointPolicy? = nil, log: @escaping (String) -> Void = { _ in }
    ) throws {
        try config.validate()
        let architecture = try Architecture(try ModelZoo.spec(named: config.model))
        for (data, name) in [(train, "training"), (test, "test")] where architecture.inputShape.count != data.sampleSize
        {
            throw DataError(
                "model \(config.model) takes \(architecture.inputShape.count) inputs per sample; the \(name) data has "
                    + "\(data.sampleSize)"
            )
        }
        if config.augmentShift > 0 && architecture.inputShape.rank != 3 {
            throw SettingError(
                setting: .augmentShift, value: "\(config.augmentShift)",
                rule: "shifts images; model \(config.model) takes \(architecture.inputShape) inputs")
        }
        self.config = config
        self.architecture = architecture
        self.train = train
        self.test = test
        self.runner = runner
        self.checkpoints = checkpoints
        self.log = log
        plan = BatchPlan(sampleCount: train.count, batchSize: config.batchSize, seed: config.seed)
        server = ParameterServer(
            parameters: architecture.initialParameters(seed: config.seed, initializer: config.initializer),
            config: config, totalSteps: plan.stepsPerEpoch * config.epochs,
            warmupSteps: plan.stepsPerEpoch * config.warmupEpochs)
        sum = GradientSum(mode: SumMode(deterministic: config.deterministic), count: architecture.parameterCount)
    }

    /// Continues from `checkpoint` instead of the start. Its configuration must be this run's
    /// in everything that shapes the result.
    public func resume(from checkpoint: Checkpoint) throws {
        let saved = checkpoint.header.config
        var comparable = saved
        comparable.testSamples = config.testSamples  // evaluation only: may change
        guard comparable == config else { throw ResumeError.differentRun(saved: saved) }
        guard checkpoint.parameters.count == server.parameterCount else {
            throw ResumeError.parameterCount(checkpoint: checkpoint.parameters.count, model: server.parameterCount)
        }
        // A checkpoint is hostile input too: its position must be one this run can reach.
        let header = checkpoint.header
        guard header.epoch <= config.epochs, header.stepInEpoch < plan.stepsPerEpoch,
            header.step == header.epoch * plan.stepsPerEpoch + header.stepInEpoch
        else {
            throw ResumeError.position(epoch: header.epoch, stepInEpoch: header.stepInEpoch, step: header.step)
        }
        guard checkpoint.optimizerState.count == server.optimizer.state.count else {
            throw ResumeError.optimizerState(
                checkpoint: checkpoint.optimizerState.count,
                expected: server.optimizer.state.count)
        }
        server.parameters.load(checkpoint.parameters)
        server.restore(step: checkpoint.header.step, optimizerState: checkpoint.optimizerState)
        start = (checkpoint.header.epoch, checkpoint.header.stepInEpoch)
        resumedTotals = checkpoint.header.epochTotals
        reports = checkpoint.header.reports
        log(
            "resuming at epoch \(start.epoch + 1), step \(start.step) of \(plan.stepsPerEpoch) (step \(server.step) "
                + "of the run)"
        )
    }

    /// Hands the run to the runner (a cluster waits for its workers); `run` does it too.
    public func startRunner() throws {
        guard !started else { return }
        if let timeline { runner.trace(to: timeline) }
        try runner.start(RunDescription(config: config, architecture: architecture, sampleSize: train.sampleSize))
        started = true
    }

    /// Trains every epoch left, then ends the runner. A stop request ends the run at the next
    /// step boundary instead, with a checkpoint of exactly that position (`.stopped`).
    @discardableResult
    public func run(
        progress: (StepProgress) -> Void = { _ in }, epochDone: (EpochReport) throws -> Void
    ) throws -> RunOutcome {
        do { try startRunner() } catch is StopRequested {  // while workers joined: where it started
            return try stopEarly(at: StoppedAt(epoch: start.epoch, stepInEpoch: start.step, totals: resumedTotals))
        } catch {
            runner.abandon(because: String(describing: error))
            throw error
        }
        do {
            runStarted = ContinuousClock.now
            for epoch in start.epoch..<config.epochs {
                let report = try runEpoch(epoch, progress: progress)
                reports.append(report)
                // A run stopped at its target mid-epoch saved its position already.
                if timeToTarget == nil || report.epoch * plan.stepsPerEpoch == server.step {
                    try saveCheckpoint(epoch: epoch + 1, stepInEpoch: 0, totals: GradientComputer.Totals())
                }
                try epochDone(report)
                if timeToTarget != nil { break }
            }
        } catch let position as StoppedAt {
            return try stopEarly(at: position)
        } catch is StopRequested {
            return try stopEarly(at: nil)
        } catch {
            runner.abandon(because: String(describing: error))
            throw error
        }
        try runner.finish()
        return .finished
    }

    private func runEpoch(_ epoch: Int, progress: (StepProgress) -> Void) throws -> EpochReport {
        let clock = ContinuousClock.now
        let order = plan.order(epoch: epoch)
        let rate = server.rate(at: epoch * plan.stepsPerEpoch)
        let first = epoch == start.epoch ? start.step : 0
        var totals = epoch == start.epoch ? resumedTotals : GradientComputer.Totals()
        var trained = 0
        var evaluationSeconds = 0.0
        /// The epoch's report, at its end or where the stop rule's target was reached.
        func report(_ evaluation: GradientComputer.Totals) -> EpochReport {
            let seconds = secondsSince(clock) - evaluationSeconds
            return EpochReport(
                epoch: epoch + 1, loss: totals.lossSum / Double(max(totals.count, 1)),
                trainAccuracy: Double(totals.correct) / Double(max(totals.count, 1)),
                testAccuracy: Double(evaluation.correct) / Double(max(evaluation.count, 1)),
                testLoss: evaluation.lossSum / Double(max(evaluation.count, 1)),
                seconds: seconds, samplesPerSec: Double(trained) / max(seconds, 1e-9),
                learningRate: Double(rate))
        }
        for index in first..<plan.stepsPerEpoch {
            let here = StoppedAt(epoch: epoch, stepInEpoch: index, totals: totals)
            if stopRequest?.isRequested == true { throw here }
            let stepTotals: GradientComputer.Totals
            do {
                stepTotals = try trainStep(
                    step: epoch * plan.stepsPerEpoch + index, samples: order[plan.batchRange(step: index)])
            } catch is StopRequested { throw here }  // the step did not happen: its sum is never applied
            totals.add(stepTotals)
            trained += stepTotals.count
            progress(
                StepProgress(
                    epoch: epoch, step: index + 1, stepsPerEpoch: plan.stepsPerEpoch,
                    runningLoss: totals.lossSum / Double(max(totals.count, 1))))
            if let every = checkpoints?.every, every > 0, server.step % every == 0, index + 1 < plan.stepsPerEpoch {
                try saveCheckpoint(epoch: epoch, stepInEpoch: index + 1, totals: totals)
            }
            if let every = stopRule?.evaluateEvery, every > 0, server.step % every == 0, index + 1 < plan.stepsPerEpoch
            {
                let evaluationClock = ContinuousClock.now
                let evaluation = try evaluate(test)
                evaluationSeconds += secondsSince(evaluationClock)
                if reachedTarget(evaluation) {
                    try saveCheckpoint(epoch: epoch, stepInEpoch: index + 1, totals: totals)
                    return report(evaluation)
                }
            }
        }
        let evaluation = try evaluate(test)
        _ = reachedTarget(evaluation)
        return report(evaluation)
    }

    /// Whether `evaluation` meets the stop rule's target (the first time: records the time).
    private func reachedTarget(_ evaluation: GradientComputer.Totals) -> Bool {
        guard let target = stopRule?.targetAccuracy, timeToTarget == nil else { return false }
        let accuracy = Double(evaluation.correct) / Double(max(evaluation.count, 1))
        guard accuracy >= target else { return false }
        timeToTarget = secondsSince(runStarted)
        log(
            "test accuracy \(accuracy) reached the target \(target) after step \(server.step), \(timeToTarget!) s "
                + "from the first step"
        )
        return true
    }

    /// One optimizer step on the training samples at `samples` (indices into `train`).
    @discardableResult
    public func trainStep(step: Int, samples: ArraySlice<Int32>) throws -> GradientComputer.Totals {
        // Before the runner starts: a coordinator with non-finite weights stops without
        // waiting for workers it could never use.
        let weights = server.parameters
        try NonFiniteWeightsError.check(weights.pointer, count: weights.count, step: step, after: false)
        try startRunner()
        let stepStarted = ContinuousClock.now
        sum.reset()
        let totals: GradientComputer.Totals
        do {
            totals = try runner.train(
                step: step,
                samples: StepSamples(
                    data: train, indices: samples,
                    augmentation: augmentation(step: step)),
                weights: server.parameters, into: sum,
                early: EarlyUpdate { [server, sum] range in
                    server.applyEarly(sum, range: range)
                    try NonFiniteWeightsError.check(
                        weights.pointer, count: range.upperBound, step: step, after: true, from: range.lowerBound)
                })
        } catch {
            // A step stopped halfway (preempted while waiting for workers) did not happen: a
            // checkpoint of this position must hold the weights from before it.
            server.discardEarly()
            throw error
        }
        let optimizing = ContinuousClock.now
        server.apply(sum)
        timeline?.stepDone(step, started: stepStarted, optimizing: optimizing)
        try NonFiniteWeightsError.check(weights.pointer, count: weights.count, step: step, after: true)
        return totals
    }

    /// The shifts of step `step`'s samples, when the config asks for them.
    private func augmentation(step: Int) -> ShiftAugmentation? {
        guard config.augmentShift > 0 else { return nil }
        return ShiftAugmentation(
            maxShift: config.augmentShift, seed: config.seed, epoch: step / plan.stepsPerEpoch,
            imageShape: architecture.inputShape)
    }

    /// Loss and hits of the current parameters on `data`.
    public func evaluate(_ data: Dataset) throws -> GradientComputer.Totals {
        try startRunner()
        let started = ContinuousClock.now
        defer { timeline?.span("evaluate", from: started, to: .now) }
        return try runner.evaluate(data, weights: server.parameters)
    }
}
