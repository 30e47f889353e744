import ConvoyEngine
import Foundation

/// A worker's logic without sockets: frames from the coordinator in, replies out. It holds
/// the model built from the coordinator's `welcome` and computes each step's gradient sum.
public final class WorkerCore {
    public private(set) var runID: UInt64?
    public private(set) var workerID: UInt32?
    public private(set) var isFinished = false
    /// Set when the coordinator refused this worker; the process exits non-zero.
    public private(set) var refusal: String?
    /// Set when the coordinator stopped the run before its end (`stop`), with its reason.
    public private(set) var stopReason: String?
    public let hello: Hello
    private var welcome: Welcome?
    /// Compute threads of this process (`--slots`), and the CPU each is pinned to.
    public let slotCount: Int
    private let cpus: [Int]?
    private var slots: ComputeSlots?
    private var weights = HeldWeights()
    /// The step's phases, while the welcome asks for them (`--trace` on the coordinator).
    private var spans: WorkerSpans?
    /// The most memory a run may take (`--max-memory`), and the largest message the
    /// connection accepts (its ZMQ_MAXMSGSIZE).
    public let memory: MemoryBound
    public let messageLimit: Int
    /// What the current run costs, as estimated from its welcome.
    public private(set) var footprint: WorkerFootprint?
    /// The largest frame handled now: a control message before a welcome, the run's largest
    /// step after it. A larger one is refused before it is decoded.
    public var frameLimit: Int { footprint?.stepFrameBytes ?? WorkerFootprint.controlFrameBytes }

    public init(
        hello: Hello, slots: Int = 1, cpus: [Int]? = nil, memory: MemoryBound = .hostDefault(),
        messageLimit: Int? = nil
    ) {
        precondition(slots >= 1)
        self.hello = hello
        self.slotCount = slots
        self.cpus = cpus
        self.memory = memory
        self.messageLimit = messageLimit ?? memory.connectionMessageLimit
    }

    public var helloMessage: Message { Message(runID: runID ?? 0, payload: .hello(hello)) }

    /// Handles one frame; returns the messages to send back and a line to log, if any.
    public func handle(_ frame: [UInt8]) -> (replies: [Message], log: String?) {
        var replies: [Message] = []
        let line = handle(frame) { replies.append($0) }
        return (replies, line)
    }

    /// Handles one frame, sending replies through `send` as soon as each is ready (a
    /// training step sends its head gradient before it computes the trunk's); returns a
    /// line to log, if any.
    public func handle(_ frame: [UInt8], send: (Message) throws -> Void) -> String? {
        spans?.frameArrived()
        let (replies, line) = process(frame, send: send)
        do { for reply in replies { try send(reply) } } catch { return "cannot reply: \(error)" }
        spans?.sent()
        return line
    }

    private func process(_ frame: [UInt8], send: (Message) throws -> Void) -> (replies: [Message], log: String?) {
        if frame.count > frameLimit { return refuseOversized(frame) }
        let message: Message
        do { message = try Message(decoding: frame) } catch {
            let problem = peerText("\(error)", limit: 1024)
            // A welcome this worker cannot read is a run it cannot join: say so, like a model it cannot build.
            guard let header = FrameHeader(frame) else { return ([], "refused a message: \(problem)") }
            if header.type == .welcome { return refuseRun(header.runID, 0, problem) }
            // A step of this run it cannot read: the coordinator learns at once, not at its deadline.
            guard header.type == .step, let runID, header.runID == runID else {
                return ([], "refused a message: \(problem)")
            }
            // Run scope when every worker would refuse it (non-finite weights), else this worker's.
            let scope: Refusal.Scope = (error as? ProtocolError)?.runScope == true ? .run : .worker
            let reason = "step \(header.step) does not decode: \(problem)"
            let refusal = Refusal(scope, reason)
            return (
                [Message(runID: runID, step: header.step, workerID: workerID ?? 0, payload: .refuse(refusal))], reason
            )
        }
        switch message.payload {
        case let .welcome(welcome):
            return accept(welcome, runID: message.runID)
        case let .step(work):
            guard let runID, message.runID == runID, let slots, let welcome else {
                return (
                    [],
                    "refused a step of run \(hex(message.runID)): "
                        + "\(self.runID.map { "this worker is in run \(hex($0))" } ?? "not welcomed yet")"
                )
            }
            return (perform(work, step: message.step, runID: runID, slots: slots, welcome: welcome, send: send), nil)
        case .shutdown:
            guard message.runID == runID else { return ([], "ignored a shutdown for run \(hex(message.runID))") }
            isFinished = true
            // Acknowledged, so the coordinator knows this worker heard it.
            return (
                [Message(runID: message.runID, workerID: workerID ?? 0, payload: .shutdown)],
                "coordinator finished the run"
            )
        case let .stop(reason):
            guard message.runID == runID else { return ([], "ignored a stop for run \(hex(message.runID))") }
            isFinished = true
            stopReason = reason
            return ([Message(runID: message.runID, workerID: workerID ?? 0, payload: .shutdown)], nil)
        case let .refuse(refused):
            isFinished = true
            refusal = "refused by the coordinator: \(peerText(refused.reason))"
            return ([], refusal)
        case let .weights(update):
            guard let runID, message.runID == runID, let slots else {
                return ([], "ignored weights of run \(hex(message.runID))")
            }
            let count = slots.computers[0].network.parameters.count
            return ([], weights.receive(update, step: message.step, parameterCount: count))
        case .hello, .result, .statusRequest, .status:
            return ([], "ignored a \(message.payload.type) message, which is not for workers")
        }
    }

    private func accept(_ welcome: Welcome, runID: UInt64) -> (replies: [Message], log: String?) {
        // A repeated welcome (the answer to a repeated hello) changes nothing.
        if self.runID == runID && self.welcome == welcome { return ([], nil) }
        do {
            // Every value checked, and the memory estimated, before anything is allocated.
            try welcome.checkValues()
            let architecture = try Architecture(welcome.spec)
            guard architecture.inputShape.count == welcome.sampleSize else {
                throw DataError(
                    "the model takes \(architecture.inputShape.count) inputs per sample, the run sends "
                        + "\(welcome.sampleSize)"
                )
            }
            let maxBatch = max(welcome.microBatch, 256)
            let footprint = try WorkerFootprint.plan(
                welcome, architecture: architecture, slots: slotCount, maxBatch: maxBatch, bound: memory,
                messageLimit: messageLimit)
            slots = nil  // the previous run's buffers go before the new ones come
            slots = ComputeSlots(
                architecture: architecture, slots: slotCount, maxBatch: maxBatch,
                mode: SumMode(deterministic: welcome.deterministic), cpus: cpus)
            weights.reset()
            spans = welcome.wantsSpans ? WorkerSpans(buckets: architecture.gradientBuckets.count) : nil
            self.footprint = footprint
            self.runID = runID
            self.workerID = welcome.workerID
            self.welcome = welcome
            return (
                [],
                "joined run \(hex(runID)) as worker \(welcome.workerID): \(peerText(welcome.spec.name)), "
                    + "\(architecture.parameterCount) parameters"
                    + (welcome.deterministic ? ", deterministic micro-batches of \(welcome.microBatch)" : "")
                    + "; memory about \(mebibytes(footprint.totalBytes)) with steps of up to "
                    + "\(footprint.stepSamples) samples, bound \(memory)"
            )
        } catch {
            return refuseRun(runID, welcome.workerID, "\(error)")
        }
    }

    /// Refuses the run a welcome offered: a refuse to the coordinator, a line, and the worker ends.
    private func refuseRun(_ runID: UInt64, _ workerID: UInt32, _ problem: String) -> (replies: [Message], log: String?)
    {
        isFinished = true
        let reason = "cannot build the model: \(problem)"
        refusal = reason
        return ([Message(runID: runID, workerID: workerID, payload: .refuse(Refusal(.worker, reason)))], reason)
    }

    /// A frame over `frameLimit`, never decoded: a step of this run is refused (the
    /// coordinator learns at once instead of at its deadline), anything else only logged.
    private func refuseOversized(_ frame: [UInt8]) -> (replies: [Message], log: String?) {
        let problem =
            "a message of \(frame.count) bytes is larger than the \(frameLimit) bytes "
            + (footprint.map { "of this run's largest step (\($0.stepSamples) samples)" } ?? "of a welcome")
        guard let header = FrameHeader(frame), header.type == .step, let runID, header.runID == runID else {
            return ([], "refused \(problem)")
        }
        // This worker's own limit (its --max-memory), so the worker's problem alone.
        let reason = "step \(header.step): \(problem)"
        let refusal = Refusal(.worker, reason)
        return ([Message(runID: runID, step: header.step, workerID: workerID ?? 0, payload: .refuse(refusal))], reason)
    }

    /// Loads a step's weights and checks its samples; the refusal to send, or nil. What the
    /// coordinator sends to every worker alike (weights, sizes, labels) is refused for the
    /// whole run; missing weights are this worker's own problem (it rejoined in mid-step).
    private func accept(_ work: StepWork, step: UInt64, slots: ComputeSlots, welcome: Welcome) -> Refusal? {
        let network = slots.computers[0].network
        if let refusal = weights.load(work, step: step, into: slots) { return refusal }
        guard work.sampleSize == welcome.sampleSize else {
            return Refusal(
                .run, "step \(step) samples have \(work.sampleSize) values, the run said \(welcome.sampleSize)")
        }
        if let bad = work.labels.firstIndex(where: { Int($0) >= network.classes }) {
            return Refusal(.run, "step \(step) label \(work.labels[bad]) at \(bad) is outside 0..<\(network.classes)")
        }
        return nil
    }

    // Over 60 lines: a step's whole life on a worker (weights, evaluation or training, each
    // bucket's result, the timeline's spans, the refusal on failure) reads top to bottom.
    private func perform(
        _ work: StepWork, step: UInt64, runID: UInt64, slots: ComputeSlots, welcome: Welcome,
        send: (Message) throws -> Void
    ) -> [Message] {
        let id = workerID ?? 0
        func refuse(_ refusal: Refusal) -> [Message] {
            [Message(runID: runID, step: step, workerID: id, payload: .refuse(refusal))]
        }
        if let problem = accept(work, step: step, slots: slots, welcome: welcome) { return refuse(problem) }
        // Monotonic: a wall-clock step must not make an honest worker report negative time.
        let started = ContinuousClock.now
        spans?.computing()
        /// One bucket of the slice's gradient sums, as a result message; throws when the
        /// values show that the training diverged (the coordinator would drop this worker for
        /// them, and every other worker would compute the same).
        func result(_ totals: GradientComputer.Totals, _ parameters: Range<Int>) throws -> Message {
            let gradient = StepResult.Gradient(slots.total, parameters)
            try Self.checkDiverged(totals, gradient, samples: work.count)
            return Message(
                runID: runID, step: step, workerID: id,
                payload: .result(
                    StepResult(
                        slice: work.slice, count: totals.count, correct: totals.correct, lossSum: totals.lossSum,
                        computeSeconds: started.duration(to: .now) / .seconds(1),
                        gradientOffset: parameters.lowerBound, gradient: gradient,
                        spans: spans?.bucketReady(forwardDone: slots.computers[0].forwardDone))))
        }
        do {
            return try work.pixels.withUnsafeBufferPointer { pixels in
                try work.labels.withUnsafeBufferPointer { labels in
                    if work.evaluate {
                        let totals = slots.evaluate(
                            pixels: pixels.baseAddress!, labels: labels.baseAddress!, count: work.count)
                        try Self.checkDiverged(totals, .none, samples: work.count)
                        return [
                            Message(
                                runID: runID, step: step, workerID: id,
                                payload: .result(
                                    StepResult(
                                        slice: work.slice, count: totals.count, correct: totals.correct,
                                        lossSum: totals.lossSum,
                                        computeSeconds: started.duration(to: .now) / .seconds(1),
                                        gradient: .none, spans: spans?.evaluated())))
                        ]
                    }
                    // Each bucket leaves as soon as it is final: the head's while the trunk
                    // is computed (Architecture.gradientBuckets).
                    try slots.compute(
                        pixels: pixels.baseAddress!, labels: labels.baseAddress!, count: work.count,
                        microBatch: welcome.microBatch, unit: welcome.deterministic ? welcome.microBatch : 1,
                        bucketReady: { bucket, totals in
                            try send(result(totals, bucket))
                            spans?.sent()
                        })
                    return []
                }
            }
        } catch {
            // A diverged gradient (fixed-point overflow, a non-finite loss or sum) is the
            // run's problem; anything else (a send failed) is this worker's.
            let scope: Refusal.Scope =
                error is FixedPoint.OverflowError || error is DivergedResult ? .run : .worker
            return refuse(Refusal(scope, "step \(step): \(error)"))
        }
    }
}

func hex(_ value: UInt64) -> String { String(value, radix: 16) }

extension StepResult.Gradient {
    /// The values of `sum` over `range`, in the sum's mode.
    init(_ sum: GradientSum, _ range: Range<Int>) {
        switch sum.mode {
        case .fixedPoint:
            self = .fixedPoint(Array(UnsafeBufferPointer(start: sum.fixed + range.lowerBound, count: range.count)))
        case .float: self = .float(Array(UnsafeBufferPointer(start: sum.float + range.lowerBound, count: range.count)))
        }
    }
}
