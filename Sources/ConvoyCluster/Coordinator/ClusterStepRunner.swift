import ConvoyEngine
import Foundation

/// How the coordinator waits for its workers.
public struct ClusterOptions: Sendable {
    /// Workers to wait for before the first step.
    public var workers: Int
    /// Seconds to wait for them; then the run fails naming how many are missing.
    public var joinTimeout: Double = 120
    /// Seconds a worker has for one slice; past that it is dropped and its slice reassigned.
    public var stepTimeout: Double = 5
    /// Fewest live workers to train with: below it the coordinator waits (up to
    /// `joinTimeout`) for workers to join or come back.
    public var minWorkers = 1
    /// Most live workers one CURVE key may have (nil: no cap).
    public var maxWorkersPerKey: Int?
    /// Share of training slices also computed by a second worker and compared bit for bit
    /// (audit mode, Audit.swift); needs the deterministic mode.
    public var audit = 0.0
    /// Deterministic runs without audit: update the head as soon as every slice's head
    /// gradient is in and send it to the workers while they compute the trunk
    /// (HeadAhead.swift).
    public var headAhead = true
    /// Deterministic runs: size the workers' slices so that they finish together
    /// (SliceBalancer.swift); off: as even as the micro-batches allow.
    public var balanceSlices = true
    public init(workers: Int) { self.workers = workers }

    /// Most workers one coordinator admits: the wire protocol's bound.
    public static let maxWorkers = Int(Wire.maxWorkers)

    /// Seconds any timeout of a run may be (the coordinator's and the worker's): at least
    /// 10 ms, so a deadline can be met at all, and at most a week, so every deadline is a
    /// finite date and its milliseconds fit ZeroMQ's `int` poll timeout (6.05e8 < 2^31).
    public static let secondsRange: ClosedRange<Double> = 0.01...604_800
    /// `secondsRange` as the messages print it: "0.01...604800".
    public static var secondsText: String { "\(secondsRange.lowerBound)...\(Int(secondsRange.upperBound))" }

    /// Why these options cannot run, or nil.
    public var problem: ClusterSettingError? {
        if !(1...Self.maxWorkers).contains(workers) { return .workers(workers) }
        if !(1...workers).contains(minWorkers) { return .minWorkers(minWorkers) }
        // `contains` is false for NaN as well as for out-of-range values.
        if !Self.secondsRange.contains(joinTimeout) { return .joinTimeout(joinTimeout) }
        if !Self.secondsRange.contains(stepTimeout) { return .stepTimeout(stepTimeout) }
        if !(0...1).contains(audit) { return .audit(audit) }
        return nil
    }
}

/// A training session's steps computed by worker processes: the coordinator's side of the
/// cluster. Each round cuts the samples into one slice per live worker (whole micro-batches),
/// ships weights and samples, and adds the gradient buckets that come back into the step's
/// sum, in slice order. Workers that miss the step deadline or answer nonsense are dropped and
/// their slices reassigned; workers that join mid-run take part from the next round. None of
/// this changes the result.
public final class ClusterStepRunner: StoppableRunner {
    public let runID: UInt64
    let options: ClusterOptions
    let transport: CoordinatorTransport
    let log: (String) -> Void
    private let stats = ClusterStatsRecorder()
    private var run: (description: RunDescription, pool: WorkerPool, validator: ResultValidator)?
    private var evaluationRounds: UInt64 = 0
    /// Checked while waiting for workers, so a preempted coordinator need not wait out
    /// `joinTimeout` before it stops.
    public var stopRequest: StopRequest?
    private var auditor: Auditor?
    /// The head weights last sent ahead, and the step they are for (HeadAhead.swift).
    var sentAhead: (step: Int, range: Range<Int>)?
    /// The split of deterministic training steps between the workers.
    private(set) var balancer = SliceBalancer()
    /// The timeline's coordinator side (`--trace`); workers send spans only when it is set.
    private var timeline: WorkerTimeline?
    /// Answers `convoy status` and SIGUSR1 from inside the transport (StatusService.swift).
    let status: StatusService

    public init(
        transport: CoordinatorTransport, options: ClusterOptions,
        runID: UInt64 = UInt64.random(in: 1...UInt64.max), log: @escaping (String) -> Void
    ) throws {
        if let problem = options.problem { throw problem }
        status = StatusService(transport, runID: runID)
        self.transport = status
        self.options = options
        self.runID = runID
        self.log = log
    }

    /// Prints the status through `print` at the next poll after `signalled()` turns true
    /// (SIGUSR1); `stepsPerEpoch` lets a report say the epoch.
    public func printStatus(when signalled: @escaping () -> Bool, stepsPerEpoch: Int, print: @escaping (String) -> Void)
    {
        status.signalled = signalled
        status.stepsPerEpoch = stepsPerEpoch
        status.print = print
    }

    public var liveWorkers: Int { run?.pool.liveCount ?? 0 }

    public func trace(to timeline: Timeline) { self.timeline = WorkerTimeline(timeline) }
    /// Mean compute time of one slice this epoch, per worker id.
    public var workerStepMs: [Double] { stats.workerStepMs }
    /// This epoch's cluster figures; the counters start again.
    public func takeEpochStats() -> ClusterStats {
        if let summary = auditor?.takeEpochSummary() { log(summary) }
        return stats.take(liveWorkers: liveWorkers)
    }

    public func start(_ description: RunDescription) throws {
        guard run == nil else { return }
        let config = description.config
        if options.audit > 0 && !config.deterministic { throw ClusterSettingError.auditNeedsDeterministic }
        auditor = Auditor(fraction: options.audit, seed: config.seed, log: log)
        let wantsSpans = timeline != nil
        let welcome = { (id: UInt32) in
            Welcome(
                workerID: id, spec: description.architecture.spec, deterministic: config.deterministic,
                microBatch: config.microBatch, sampleSize: description.sampleSize, wantsSpans: wantsSpans)
        }
        let pool = WorkerPool(
            transport: transport, runID: runID, capacity: ClusterOptions.maxWorkers, stats: stats,
            welcome: welcome, log: log)
        pool.maxWorkersPerKey = options.maxWorkersPerKey
        pool.shouldStop = { [weak self] in self?.stopRequest?.isRequested ?? false }
        stats.stragglers.name = { [unowned pool] id in
            pool.workers.first { $0.id == id }.map { "w\(id)@\(peerText($0.hello.host)):\($0.hello.pid)" } ?? "w\(id)"
        }
        stats.stragglers.log = log
        status.pool = pool
        status.stragglers = stats.stragglers
        status.epochs = config.epochs
        let validator = ResultValidator(
            architecture: description.architecture, mode: description.sumMode, microBatch: config.microBatch)
        run = (description, pool, validator)
        try pool.waitUntilLive(options.workers, timeout: options.joinTimeout)
    }

    private func round(_ work: RoundWork) throws -> (results: [[StepResult]], round: Round) {
        guard let run else { preconditionFailure("ClusterStepRunner used before start") }
        if run.pool.liveCount < options.minWorkers {
            log(
                "\(run.pool.liveCount) live worker(s), fewer than \(options.minWorkers): waiting up to "
                    + "\(formatSeconds(options.joinTimeout)) s for more to join"
            )
            try run.pool.waitUntilLive(options.minWorkers, timeout: options.joinTimeout)
        }
        let round = Round(
            work, pool: run.pool, validator: run.validator, stats: stats, options: options, auditor: auditor, log: log)
        return (try round.run(), round)
    }

    public func train(
        step: Int, samples: StepSamples, weights: FloatBuffer,
        into sum: GradientSum
    ) throws -> GradientComputer.Totals {
        try train(step: step, samples: samples, weights: weights, into: sum, early: nil)
    }

    public func train(
        step: Int, samples: StepSamples, weights: FloatBuffer,
        into sum: GradientSum, early: EarlyUpdate
    ) throws -> GradientComputer.Totals {
        try train(step: step, samples: samples, weights: weights, into: sum, early: Optional(early))
    }

    private func train(
        step: Int, samples: StepSamples, weights: FloatBuffer,
        into sum: GradientSum, early: EarlyUpdate?
    ) throws -> GradientComputer.Totals {
        guard let run else { preconditionFailure("ClusterStepRunner used before start") }
        let started = ContinuousClock.now
        status.stepStarted(UInt64(step))
        defer { status.stepEnded(samples: samples.count) }
        let unit = run.description.config.deterministic ? run.description.config.microBatch : 1
        var work = RoundWork(
            step: UInt64(step), samples: samples, unit: unit, weights: weights.array, evaluate: false)
        let balanced = options.balanceSlices && run.description.config.deterministic
        if balanced {
            let ids = run.pool.live.map { run.pool.workers[$0].id }
            work.shares = balancer.shares(for: ids, total: (samples.count + unit - 1) / unit)
        }
        var counted: Range<Int>?
        if let early, let head = headAheadRange(run) {
            work.sentAhead = sentAhead?.step == step ? sentAhead?.range : nil
            work.headsReady = { [unowned self] heads in
                try self.add(heads, into: sum, step: step)
                counted = head
                try early.update(head)
                self.sendAhead(weights, range: head, step: step + 1, pool: run.pool, slices: heads.count)
            }
        }
        let (results, done) = try round(work)
        let combining = ContinuousClock.now
        if balanced, let times = balancer.observe(done.finishSeconds) { logBalance(times, pool: run.pool) }
        var totals = GradientComputer.Totals()
        // Slice order: fixed in float mode too, so a run repeats with the same workers.
        for buckets in results {
            totals.add(buckets[0].totals)
            // Heads already counted (HeadAhead.swift) are not added twice.
            if counted == nil { sum.addSamples(buckets[0].count) }
            try add(buckets.filter { $0.gradientOffset != counted?.lowerBound }, into: sum, step: step, samples: false)
        }
        timeline?.training(step: step, started: started, round: done, combining: combining)
        stats.addStep(
            seconds: (ContinuousClock.now - started).inSeconds,
            coordinatorSeconds: done.sendSeconds + (ContinuousClock.now - combining).inSeconds)
        return totals
    }

    public func evaluate(_ data: Dataset, weights: FloatBuffer) throws -> GradientComputer.Totals {
        evaluationRounds += 1
        stats.counting = false
        defer { stats.counting = true }
        // Evaluation rounds are numbered apart from training steps (bit 47 set).
        let (results, done) = try round(
            RoundWork(
                step: (1 << 47) | evaluationRounds,
                samples: StepSamples(data: data, indices: Array(0..<Int32(data.count))[...]),
                unit: 1,
                weights: weights.array, evaluate: true))
        timeline?.workers(done.spanReports, round: ("evaluation", .int(Int(evaluationRounds))))
        var totals = GradientComputer.Totals()
        for buckets in results { totals.add(buckets[0].totals) }
        return totals
    }

    public func finish() throws {
        try run?.pool.shutDown()
    }

    /// The run failed: every worker gets a run-scope refusal with the reason, sent once
    /// and not waited on, so a worker started by hand or by a supervisor exits at once with
    /// the coordinator's reason instead of waiting out its idle timeout.
    public func abandon(because reason: String) {
        // Dropped workers too: a run that failed at its step deadlines has dropped them all,
        // and they are still waiting to be let back in.
        guard let pool = run?.pool, !pool.workers.isEmpty else { return }
        log("telling \(pool.workers.count) worker(s) the run failed")
        let refusal = Refusal(.run, "the run failed: \(reason)")
        for w in pool.workers.indices { _ = try? pool.send(Message(runID: runID, payload: .refuse(refusal)), to: w) }
        // The connections stay open a second: a worker's libzmq (ZMQ_IMMEDIATE) discards what
        // it received but was not yet read when its connection drops, so closing at once lost
        // the refusal. Frames arriving meanwhile are read and dropped.
        let until = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < until {
            let left = ContinuousClock.now.duration(to: until)
            _ = try? transport.receive(timeoutMs: Int(left.inSeconds * 1000) + 1)
        }
    }

    /// Tells every live worker why the run ends early, so each exits at once with a line
    /// saying so (and a status its supervisor restarts it on) instead of waiting out its
    /// idle timeout.
    public func finishEarly(reason: String) throws {
        log("telling \(liveWorkers) worker(s) the run stops here")
        try run?.pool.shutDown(.stop(reason))
    }
}

extension StepResult {
    var totals: GradientComputer.Totals { GradientComputer.Totals(count: count, lossSum: lossSum, correct: correct) }
}

extension GradientSum {
    /// Adds a worker's bucket, whose values start at parameter `offset`; false when a
    /// fixed-point element overflowed. The validator has checked that its kind matches this
    /// sum's mode, its range the model's layout and its values their bounds (`SumBounds`):
    /// fixed-point terms of at most `FixedPoint.maxTerms` micro-batches cannot reach 2^63, and
    /// Float32 sums of at most 65,536 samples × 2^18 stay finite. The addition is checked all
    /// the same.
    func addChecked(_ gradient: StepResult.Gradient, at offset: Int) -> Bool {
        switch gradient {
        case .none: return true
        case let .fixedPoint(values):
            return values.withUnsafeBufferPointer {
                addChecked(fixed: $0.baseAddress!, range: offset..<(offset + values.count))
            }
        case let .float(values):
            values.withUnsafeBufferPointer { add(float: $0.baseAddress!, range: offset..<(offset + values.count)) }
            return true
        }
    }
}
