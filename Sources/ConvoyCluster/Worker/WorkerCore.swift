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
    private var hasWeights = false

    public init(hello: Hello, slots: Int = 1, cpus: [Int]? = nil) {
        precondition(slots >= 1)
        self.hello = hello
        self.slotCount = slots
        self.cpus = cpus
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
        let (replies, line) = process(frame, send: send)
        do { for reply in replies { try send(reply) } } catch { return "cannot reply: \(error)" }
        return line
    }

    private func process(_ frame: [UInt8], send: (Message) throws -> Void) -> (replies: [Message], log: String?) {
        let message: Message
        do { message = try Message(decoding: frame) } catch {
            return ([], "refused a message: \(error)")
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
        case let .refuse(reason):
            isFinished = true
            refusal = "refused by the coordinator: \(reason)"
            return ([], refusal)
        case .hello, .result:
            return ([], "ignored a \(message.payload.type) message, which only workers send")
        }
    }

    private func accept(_ welcome: Welcome, runID: UInt64) -> (replies: [Message], log: String?) {
        do {
            let architecture = try Architecture(welcome.spec)
            guard architecture.inputShape.count == welcome.sampleSize else {
                throw DataError(
                    "the model takes \(architecture.inputShape.count) inputs per sample, the run sends "
                        + "\(welcome.sampleSize)"
                )
            }
            // A repeated welcome (the answer to a repeated hello) changes nothing.
            if self.runID == runID && self.welcome == welcome { return ([], nil) }
            if self.runID != runID || self.welcome != welcome {
                slots = ComputeSlots(
                    architecture: architecture, slots: slotCount, maxBatch: max(welcome.microBatch, 256),
                    mode: SumMode(deterministic: welcome.deterministic), cpus: cpus)
                hasWeights = false
            }
            self.runID = runID
            self.workerID = welcome.workerID
            self.welcome = welcome
            return (
                [],
                "joined run \(hex(runID)) as worker \(welcome.workerID): \(welcome.spec.name), "
                    + "\(architecture.parameterCount) parameters"
                    + (welcome.deterministic ? ", deterministic micro-batches of \(welcome.microBatch)" : "")
            )
        } catch {
            isFinished = true
            refusal = "cannot build the model: \(error)"
            return ([Message(runID: runID, workerID: welcome.workerID, payload: .refuse(refusal!))], refusal)
        }
    }

    /// Loads a step's weights and checks its samples; the reason to refuse it, or nil.
    private func accept(_ work: StepWork, step: UInt64, slots: ComputeSlots, welcome: Welcome) -> String? {
        let network = slots.computers[0].network
        if let weights = work.weights {
            guard weights.count == network.parameters.count else {
                return "step \(step) carries \(weights.count) weights, the model has \(network.parameters.count)"
            }
            weights.withUnsafeBufferPointer { slots.load(weights: $0) }
            hasWeights = true
        }
        guard hasWeights else { return "step \(step) carries no weights and this worker holds none" }
        guard work.sampleSize == welcome.sampleSize else {
            return "step \(step) samples have \(work.sampleSize) values, the run said \(welcome.sampleSize)"
        }
        if let bad = work.labels.firstIndex(where: { Int($0) >= network.classes }) {
            return "step \(step) label \(work.labels[bad]) at \(bad) is outside 0..<\(network.classes)"
        }
        return nil
    }

    private func perform(
        _ work: StepWork, step: UInt64, runID: UInt64, slots: ComputeSlots, welcome: Welcome,
        send: (Message) throws -> Void
    ) -> [Message] {
        let id = workerID ?? 0
        func refuse(_ reason: String) -> [Message] {
            [Message(runID: runID, step: step, workerID: id, payload: .refuse(reason))]
        }
        if let problem = accept(work, step: step, slots: slots, welcome: welcome) { return refuse(problem) }
        let started = Date()
        /// One bucket of the slice's gradient sums, as a result message.
        func result(_ totals: GradientComputer.Totals, _ parameters: Range<Int>) -> Message {
            Message(
                runID: runID, step: step, workerID: id,
                payload: .result(
                    StepResult(
                        slice: work.slice, count: totals.count, correct: totals.correct, lossSum: totals.lossSum,
                        computeSeconds: Date().timeIntervalSince(started), gradientOffset: parameters.lowerBound,
                        gradient: StepResult.Gradient(slots.total, parameters))))
        }
        do {
            return try work.pixels.withUnsafeBufferPointer { pixels in
                try work.labels.withUnsafeBufferPointer { labels in
                    if work.evaluate {
                        let totals = slots.evaluate(
                            pixels: pixels.baseAddress!, labels: labels.baseAddress!, count: work.count)
                        return [
                            Message(
                                runID: runID, step: step, workerID: id,
                                payload: .result(
                                    StepResult(
                                        slice: work.slice, count: totals.count, correct: totals.correct,
                                        lossSum: totals.lossSum,
                                        computeSeconds: Date().timeIntervalSince(started), gradient: .none)))
                        ]
                    }
                    // Each bucket leaves as soon as it is final: the head's while the trunk
                    // is computed (Architecture.gradientBuckets).
                    try slots.compute(
                        pixels: pixels.baseAddress!, labels: labels.baseAddress!, count: work.count,
                        microBatch: welcome.microBatch, unit: welcome.deterministic ? welcome.microBatch : 1,
                        bucketReady: { bucket, totals in try send(result(totals, bucket)) })
                    return []
                }
            }
        } catch {
            return refuse("step \(step): \(error)")
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
