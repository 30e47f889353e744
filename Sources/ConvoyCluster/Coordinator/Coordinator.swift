import ConvoyEngine
import Foundation

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

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
    /// Where checkpoints go (none when nil): every `checkpointEvery` steps (0: only at
    /// epoch ends) and at each epoch's end, the newest `keepCheckpoints` kept.
    public var checkpointDirectory: String?
    public var checkpointEvery = 0
    public var keepCheckpoints = 3
    public init(workers: Int) { self.workers = workers }
}

/// Cluster figures of an epoch, added to its report.
public struct ClusterStats: Codable, Equatable, Sendable {
    public var workers: Int
    /// Mean compute time of one slice, per worker id.
    public var workerStepMs: [Double]
    /// Mean wall time of a training step.
    public var stepMs: Double
    /// Mean time per step the coordinator spent combining, updating and sending.
    public var coordinatorMs: Double
    /// Bytes sent plus received per training step, all workers together.
    public var bytesPerStep: Double
    /// Fraction of step time workers spent not computing (waiting for the step's weights).
    public var workerWaitFraction: Double

    enum CodingKeys: String, CodingKey {
        case workers
        case workerStepMs = "worker_step_ms", stepMs = "step_ms", coordinatorMs = "coordinator_ms"
        case bytesPerStep = "bytes_per_step", workerWaitFraction = "worker_wait_fraction"
    }
}

/// The coordinator's logic, over any `CoordinatorTransport`: admit workers, cut each global
/// batch into contiguous slices (whole micro-batches), ship weights and samples, combine the
/// gradient sums, step the optimizer, evaluate at each epoch's end. Workers that miss the
/// step deadline or answer nonsense are dropped and their slices reassigned; workers that
/// join mid-run take part from the next step. None of this changes the result.
public final class Coordinator {
    struct Worker {
        let peer: PeerID
        let id: UInt32
        let hello: Hello
        var alive = true
        var computeSeconds = 0.0
        var slices = 0
        var name: String { "worker \(id) (\(hello.host) pid \(hello.pid))" }
    }

    public let config: TrainingConfig
    public let runID: UInt64
    let options: ClusterOptions
    let transport: CoordinatorTransport
    let train: Dataset, test: Dataset
    let architecture: Architecture
    public let plan: BatchPlan
    public let server: ParameterServer
    let log: (String) -> Void
    private var workers: [Worker] = []
    private var evaluationRounds: UInt64 = 0
    /// Where `run` starts: (0, 0) for a new run, else what `resume` restored.
    private var start = (epoch: 0, step: 0)
    private var resumedTotals = GradientComputer.Totals()
    private var reports: [EpochReport] = []
    // Per-epoch counters for ClusterStats.
    private var coordinatorSeconds = 0.0
    private var stepSeconds = 0.0
    private var stepBytes = 0
    private var stepsTimed = 0

    public init(config: TrainingConfig, train: Dataset, test: Dataset, transport: CoordinatorTransport,
                options: ClusterOptions, runID: UInt64 = UInt64.random(in: 1...UInt64.max), log: @escaping (String) -> Void) throws {
        try config.validate()
        guard options.workers >= 1 && options.workers <= Int(Wire.maxWorkers) else {
            throw ConfigError("--workers must be in 1...\(Wire.maxWorkers) (got \(options.workers))")
        }
        self.config = config
        self.train = train
        self.test = test
        self.transport = transport
        self.options = options
        self.runID = runID
        self.log = log
        architecture = try Architecture(try ModelZoo.spec(named: config.model))
        guard architecture.inputShape.count == train.sampleSize else {
            throw ConfigError("model \(config.model) takes \(architecture.inputShape.count) inputs per sample; the data has \(train.sampleSize)")
        }
        plan = BatchPlan(sampleCount: train.count, batchSize: config.batchSize, seed: config.seed)
        server = ParameterServer(parameters: architecture.initialParameters(seed: config.seed, initializer: config.initializer),
                                 config: config, totalSteps: plan.stepsPerEpoch * config.epochs)
    }

    public var aliveWorkers: Int { workers.filter(\.alive).count }

    /// Waits until `options.workers` workers have joined.
    public func waitForWorkers() throws {
        let deadline = Date().addingTimeInterval(options.joinTimeout)
        while aliveWorkers < options.workers {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                let joined = workers.filter(\.alive).map(\.name).joined(separator: ", ")
                throw ClusterError("only \(aliveWorkers) of \(options.workers) workers joined within \(Int(options.joinTimeout)) s (joined: \(joined.isEmpty ? "none" : joined)); \(options.workers - aliveWorkers) missing")
            }
            if let (peer, frame) = try transport.receive(timeoutMs: Int(min(left, 1) * 1000)) {
                try handleUnexpected(peer: peer, frame: frame)
            }
        }
    }

    /// Continues from `checkpoint` instead of the start. Its configuration must be this run's
    /// in everything that shapes the result.
    public func resume(from checkpoint: Checkpoint) throws {
        let saved = checkpoint.header.config
        var comparable = saved
        comparable.testSamples = config.testSamples   // evaluation only: may change
        guard comparable == config else {
            throw ConfigError("the checkpoint was made by a different run (\(saved.model), batch \(saved.batchSize), seed \(saved.seed), \(saved.epochs) epochs, lr \(saved.learningRate), \(saved.optimizer.rawValue), \(saved.deterministic ? "deterministic" : "fast")): resume it with the same training flags")
        }
        guard checkpoint.parameters.count == server.parameterCount else {
            throw ConfigError("the checkpoint holds \(checkpoint.parameters.count) parameters, the model has \(server.parameterCount)")
        }
        server.parameters.load(checkpoint.parameters)
        server.restore(step: checkpoint.header.step, optimizerState: checkpoint.optimizerState)
        start = (checkpoint.header.epoch, checkpoint.header.stepInEpoch)
        resumedTotals = checkpoint.header.epochTotals
        reports = checkpoint.header.reports
        log("resuming at epoch \(start.epoch + 1), step \(start.step) of \(plan.stepsPerEpoch) (step \(server.step) of the run)")
    }

    /// The reports of the epochs finished so far, including those before a resume.
    public var epochReports: [EpochReport] { reports }

    private func saveCheckpoint(epoch: Int, stepInEpoch: Int, totals: GradientComputer.Totals) throws {
        guard let directory = options.checkpointDirectory else { return }
        let header = Checkpoint.Header(config: config, epoch: epoch, stepInEpoch: stepInEpoch, step: server.step,
                                       epochTotals: totals, reports: reports)
        try Checkpoint(header: header, parameters: server.parameters.array, optimizerState: server.optimizer.state)
            .save(in: directory, keep: options.keepCheckpoints)
    }

    /// Trains every epoch. `progress(epoch, step, steps, runningLoss, workerStepMs)`.
    public func run(progress: (Int, Int, Int, Double, [Double]) -> Void,
                    epochDone: (EpochReport, ClusterStats) throws -> Void) throws {
        try waitForWorkers()
        for epoch in start.epoch..<config.epochs {
            let started = Date()
            coordinatorSeconds = 0; stepSeconds = 0; stepBytes = 0; stepsTimed = 0
            for w in workers.indices { workers[w].computeSeconds = 0; workers[w].slices = 0 }
            let order = plan.order(epoch: epoch)
            let rate = config.schedule.rate(base: config.learningRate, step: epoch * plan.stepsPerEpoch, totalSteps: server.totalSteps)
            let first = epoch == start.epoch ? start.step : 0
            var totals = epoch == start.epoch ? resumedTotals : GradientComputer.Totals()
            var trained = 0
            for index in first..<plan.stepsPerEpoch {
                let step = UInt64(epoch * plan.stepsPerEpoch + index)
                let indices = order[plan.batchRange(step: index)]
                let stepTotals = try trainingStep(step: step, indices: indices)
                totals.add(stepTotals)
                trained += stepTotals.count
                progress(epoch, index + 1, plan.stepsPerEpoch, totals.lossSum / Double(max(totals.count, 1)), workerStepMs)
                if options.checkpointEvery > 0 && server.step % options.checkpointEvery == 0 && index + 1 < plan.stepsPerEpoch {
                    try saveCheckpoint(epoch: epoch, stepInEpoch: index + 1, totals: totals)
                }
            }
            let seconds = Date().timeIntervalSince(started)
            let evaluation = try evaluate(epoch: epoch)
            let report = EpochReport(epoch: epoch + 1, loss: totals.lossSum / Double(totals.count),
                                     trainAccuracy: Double(totals.correct) / Double(totals.count),
                                     testAccuracy: Double(evaluation.correct) / Double(max(evaluation.count, 1)),
                                     testLoss: evaluation.lossSum / Double(max(evaluation.count, 1)),
                                     seconds: seconds, samplesPerSec: Double(trained) / seconds, learningRate: Double(rate))
            reports.append(report)
            try saveCheckpoint(epoch: epoch + 1, stepInEpoch: 0, totals: GradientComputer.Totals())
            try epochDone(report, stats)
        }
        try shutDownWorkers()
    }

    /// Ends the run for every live worker: a shutdown, acknowledged by a shutdown back, sent
    /// again every half second for up to three seconds. (A message queued just before the
    /// coordinator exits can be lost; the handshake makes sure each worker heard it.)
    func shutDownWorkers() throws {
        var waiting = Set(workers.indices.filter { workers[$0].alive })
        let deadline = Date().addingTimeInterval(3)
        while !waiting.isEmpty && Date() < deadline {
            for w in waiting {
                if try !transport.send(Message(runID: runID, workerID: workers[w].id, payload: .shutdown), to: workers[w].peer) {
                    waiting.remove(w)
                }
            }
            let resend = Date().addingTimeInterval(0.5)
            while !waiting.isEmpty, resend.timeIntervalSinceNow > 0,
                  let (peer, frame) = try transport.receive(timeoutMs: Int(resend.timeIntervalSinceNow * 1000) + 1) {
                guard let w = workers.firstIndex(where: { $0.peer == peer }),
                      let message = try? Message(decoding: frame), case .shutdown = message.payload else { continue }
                waiting.remove(w)
            }
        }
        for w in waiting { log("\(workers[w].name) did not acknowledge the end of the run") }
    }

    public var modelFile: ModelFile {
        ModelFile(spec: architecture.spec, config: config, parameters: server.parameters.array)
    }

    var workerStepMs: [Double] {
        workers.map { $0.slices > 0 ? $0.computeSeconds / Double($0.slices) * 1000 : 0 }
    }

    var stats: ClusterStats {
        let steps = Double(max(stepsTimed, 1))
        let busy = workers.filter { $0.slices > 0 }
        let meanCompute = busy.isEmpty ? 0 : busy.map(\.computeSeconds).reduce(0, +) / Double(busy.count)
        return ClusterStats(workers: aliveWorkers, workerStepMs: workerStepMs, stepMs: stepSeconds / steps * 1000,
                            coordinatorMs: coordinatorSeconds / steps * 1000, bytesPerStep: Double(stepBytes) / steps,
                            workerWaitFraction: stepSeconds > 0 ? max(0, 1 - meanCompute / stepSeconds) : 0)
    }

    // MARK: - Steps

    private func trainingStep(step: UInt64, indices: ArraySlice<Int32>) throws -> GradientComputer.Totals {
        let started = Date()
        let unit = config.deterministic ? config.microBatch : 1
        server.beginStep()
        let weights = server.parameters.array
        var sendSeconds = 0.0
        let results = try runRound(step: step, data: train, indices: indices, unit: unit, weights: weights, evaluate: false,
                                   sendSeconds: &sendSeconds)
        let combineStarted = Date()
        var totals = GradientComputer.Totals()
        // Slice order: fixed in fast mode too, so a run repeats with the same workers.
        for buckets in results {
            let first = buckets[0]
            totals.count += first.count; totals.lossSum += first.lossSum; totals.correct += first.correct
            server.addSamples(first.count)
            for bucket in buckets {
                let parameters = bucket.gradientOffset..<(bucket.gradientOffset + bucket.gradient.count)
                switch bucket.gradient {
                case let .fixedPoint(sums): sums.withUnsafeBufferPointer { server.add(fixedSums: $0.baseAddress!, parameters: parameters) }
                case let .float(sums): sums.withUnsafeBufferPointer { server.add(floatSums: $0.baseAddress!, parameters: parameters) }
                case .none: break
                }
            }
        }
        server.finishStep()
        coordinatorSeconds += sendSeconds + Date().timeIntervalSince(combineStarted)
        stepSeconds += Date().timeIntervalSince(started)
        stepsTimed += 1
        return totals
    }

    private func evaluate(epoch: Int) throws -> GradientComputer.Totals {
        evaluationRounds += 1
        var ignored = 0.0
        let results = try runRound(step: (1 << 47) | evaluationRounds, data: test, indices: Array(0..<Int32(test.count))[...], unit: 1,
                                   weights: server.parameters.array, evaluate: true, sendSeconds: &ignored)
        var totals = GradientComputer.Totals()
        for buckets in results { totals.count += buckets[0].count; totals.lossSum += buckets[0].lossSum; totals.correct += buckets[0].correct }
        return totals
    }

    /// Sends every slice of one round and collects the answers, reassigning the slices of
    /// workers that fail. Returns each slice's result buckets (one, or the head's then the
    /// trunk's), in slice order. A slice's buckets count only once all of them arrived from
    /// one worker: the buckets of a worker dropped halfway are discarded with it.
    private func runRound(step: UInt64, data: Dataset, indices: ArraySlice<Int32>, unit: Int, weights: [Float],
                          evaluate: Bool, sendSeconds: inout Double) throws -> [[StepResult]] {
        if aliveWorkers < max(options.minWorkers, 1) { try waitForReplacement() }
        let live = workers.indices.filter { workers[$0].alive }
        let ranges = BatchPlan.slices(count: indices.count, parts: live.count, unit: unit).filter { !$0.isEmpty }
        var results = [[StepResult]](repeating: [], count: ranges.count)
        var owner: [Int: Int] = [:]   // slice → worker index, until all its buckets are in
        var partial: [Int: [StepResult]] = [:]   // buckets of unfinished slices
        func work(_ slice: Int) -> Message {
            let range = ranges[slice]
            let sliceIndices = indices[(indices.startIndex + range.lowerBound)..<(indices.startIndex + range.upperBound)]
            var pixels = [UInt8](repeating: 0, count: range.count * data.sampleSize)
            var labels = [UInt8](repeating: 0, count: range.count)
            pixels.withUnsafeMutableBufferPointer { p in
                labels.withUnsafeMutableBufferPointer { l in data.gather(sliceIndices, pixels: p.baseAddress!, labels: l.baseAddress!) }
            }
            return Message(runID: runID, step: step, payload: .step(StepWork(
                slice: UInt32(slice), evaluate: evaluate, weights: weights, sampleSize: data.sampleSize, pixels: pixels, labels: labels)))
        }
        func assign(_ slice: Int, to w: Int) throws {
            var message = work(slice)
            message.workerID = workers[w].id
            let frame = message.encoded().count
            let sent = Date()
            if try transport.send(message, to: workers[w].peer) {
                owner[slice] = w
                stepBytes += frame
            } else {
                drop(w, because: "is unreachable")
                try assign(slice, to: try nextLiveWorker(after: w))
            }
            sendSeconds += Date().timeIntervalSince(sent)
        }
        /// Gives the slices of dropped workers to live ones.
        func reassignOrphans() throws {
            let orphans = owner.filter { !workers[$0.value].alive }.sorted { $0.key < $1.key }
            for (slice, w) in orphans {
                owner[slice] = nil
                partial[slice] = nil
                try assign(slice, to: try nextLiveWorker(after: w))
            }
        }
        for (slice, w) in zip(ranges.indices, live) { try assign(slice, to: w) }
        var deadline = Date().addingTimeInterval(options.stepTimeout)
        while !owner.isEmpty {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 {
                for w in Set(owner.values) { drop(w, because: "missed the \(Int(options.stepTimeout)) s step deadline") }
                try reassignOrphans()
                deadline = Date().addingTimeInterval(options.stepTimeout)
                continue
            }
            guard let (peer, frame) = try transport.receive(timeoutMs: Int(min(left, 1) * 1000) + 1) else { continue }
            guard let w = workers.firstIndex(where: { $0.peer == peer && $0.alive }) else {
                try handleUnexpected(peer: peer, frame: frame)
                continue
            }
            let message: Message
            do { message = try Message(decoding: frame) } catch {
                drop(w, because: "sent an invalid message (\(error))")
                try reassignOrphans()
                continue
            }
            stepBytes += frame.count
            switch message.payload {
            case let .result(result):
                guard message.runID == runID, message.step == step else {
                    log("ignored a result of step \(message.step) run \(hex(message.runID)) from \(workers[w].name) (now step \(step))")
                    continue
                }
                let slice = Int(result.slice)
                guard owner[slice] == w else {
                    log("ignored a result for slice \(slice) that \(workers[w].name) does not hold")
                    continue
                }
                var buckets = partial[slice] ?? []
                if let problem = validate(result, expected: ranges[slice].count, evaluate: evaluate, after: buckets) {
                    drop(w, because: "sent a bad result (\(problem))")
                    try reassignOrphans()
                    continue
                }
                buckets.append(result)
                guard evaluate || buckets.reduce(0, { $0 + $1.gradient.count }) == server.parameterCount else {
                    partial[slice] = buckets
                    continue
                }
                results[slice] = buckets.sorted { $0.gradientOffset < $1.gradientOffset }
                partial[slice] = nil
                owner[slice] = nil
                workers[w].computeSeconds += result.computeSeconds
                workers[w].slices += 1
            case let .refuse(reason):
                // Workers refuse only what they cannot compute (a diverged gradient, a model
                // they cannot build): every other worker would fail the same way.
                throw ClusterError("\(workers[w].name) refused step \(step): \(reason)")
            case .hello:
                try handleUnexpected(peer: peer, frame: frame)
            default:
                log("ignored a \(message.payload.type) message from \(workers[w].name)")
            }
        }
        return results
    }

    /// Why a result bucket cannot be used, or nil. Buckets must be the whole gradient or one
    /// of the two halves at the network's head/trunk split, each at most once, with the same
    /// totals.
    private func validate(_ result: StepResult, expected count: Int, evaluate: Bool, after earlier: [StepResult]) -> String? {
        guard result.count == count else { return "\(result.count) samples, slice has \(count)" }
        if let first = earlier.first, first.correct != result.correct || first.lossSum != result.lossSum {
            return "buckets of one slice disagree on its totals"
        }
        switch (evaluate, result.gradient, config.deterministic) {
        case (true, .none, _): return nil
        case (false, .fixedPoint, true), (false, .float, false): break
        default: return "wrong kind of gradient for this round"
        }
        let bucket = result.gradientOffset..<(result.gradientOffset + result.gradient.count)
        guard allowedBuckets.contains(bucket) else { return "gradient bucket \(bucket) does not match the model's layout" }
        guard !earlier.contains(where: { $0.gradientOffset..<($0.gradientOffset + $0.gradient.count) == bucket || bucket.count == server.parameterCount }) else {
            return "gradient bucket \(bucket) sent twice"
        }
        return nil
    }

    /// The whole parameter range, and the trunk and head ranges when the model has a head.
    private var allowedBuckets: [Range<Int>] {
        let p = server.parameterCount
        guard let split = architecture.headStart else { return [0..<p] }
        let h = architecture.parameterOffsets[split]
        return [0..<p, 0..<h, h..<p]
    }

    private func nextLiveWorker(after w: Int) throws -> Int {
        if aliveWorkers == 0 { try waitForReplacement() }
        let count = workers.count
        for offset in 1...count {
            let candidate = (w + offset) % count
            if workers[candidate].alive { return candidate }
        }
        throw ClusterError("no live workers")
    }

    private func drop(_ w: Int, because reason: String) {
        guard workers[w].alive else { return }
        workers[w].alive = false
        log("dropped \(workers[w].name): it \(reason); its work goes to the \(aliveWorkers) remaining")
    }

    /// Waits for workers to join until at least `minWorkers` (and one) are live.
    private func waitForReplacement() throws {
        let needed = max(options.minWorkers, 1)
        log("\(aliveWorkers) live worker(s), fewer than \(needed): waiting up to \(Int(options.joinTimeout)) s for more to join")
        let deadline = Date().addingTimeInterval(options.joinTimeout)
        while aliveWorkers < needed {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw ClusterError("only \(aliveWorkers) live worker(s), fewer than \(needed), and none joined within \(Int(options.joinTimeout)) s") }
            if let (peer, frame) = try transport.receive(timeoutMs: Int(min(left, 1) * 1000) + 1) {
                try handleUnexpected(peer: peer, frame: frame)
            }
        }
    }

    /// A frame outside a step's expected results: a hello admits a worker (it takes part from
    /// the next round); anything else is logged and dropped.
    private func handleUnexpected(peer: PeerID, frame: [UInt8]) throws {
        let message: Message
        do { message = try Message(decoding: frame) } catch {
            log("refused a message from an unknown peer: \(error)")
            return
        }
        guard case let .hello(hello) = message.payload else {
            if message.runID != runID {
                log("refused a \(message.payload.type) message of run \(hex(message.runID)) (this run is \(hex(runID)))")
            } else {
                log("ignored a stray \(message.payload.type) message")
            }
            return
        }
        let index: Int
        if let known = workers.firstIndex(where: { $0.peer == peer }) {
            index = known
            if !workers[known].alive {
                workers[known].alive = true
                log("\(workers[known].name) is back")
            }
        } else {
            guard workers.count < Int(Wire.maxWorkers) else {
                try transport.send(Message(runID: runID, payload: .refuse("the cluster is full")), to: peer)
                return
            }
            workers.append(Worker(peer: peer, id: UInt32(workers.count), hello: hello))
            index = workers.count - 1
            log("\(workers[index].name) joined (\(aliveWorkers) live)")
        }
        let welcome = Welcome(workerID: workers[index].id, spec: architecture.spec, deterministic: config.deterministic,
                              microBatch: config.microBatch, sampleSize: train.sampleSize)
        try transport.send(Message(runID: runID, workerID: workers[index].id, payload: .welcome(welcome)), to: peer)
    }
}
