import ConvoyEngine
import Foundation

/// The wire format (docs/PROTOCOL.md): every message is one ZeroMQ frame holding a 40-byte
/// little-endian header and a payload whose layout the message type fixes.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `CNVY` |
/// | 4 | 2 | protocol version (4) |
/// | 6 | 2 | message type |
/// | 8 | 8 | run id (0 in `hello`) |
/// | 16 | 8 | step (training step, or evaluation round) |
/// | 24 | 4 | worker id |
/// | 28 | 4 | payload length in bytes |
/// | 32 | 8 | reserved, zero |
public enum Wire {
    public static let magic: [UInt8] = Array("CNVY".utf8)
    public static let version: UInt16 = 5
    public static let headerSize = 40
    /// Bounds on decoded fields. Anything larger is refused before any allocation.
    public static let maxSamples = 65_536
    public static let maxSampleSize = 1 << 20
    public static let maxParameters = 1 << 28
    public static let maxControlBytes = 1 << 20
    public static let maxWorkers: UInt32 = 4096
    /// ZMQ_MAXMSGSIZE for every socket: a step message of the largest allowed size fits.
    public static let maxMessageBytes: Int64 = 1 << 30
}

public enum MessageType: UInt16, Sendable, CaseIterable {
    case hello = 1
    case welcome = 2
    case step = 3
    case result = 4
    case shutdown = 5
    case refuse = 6
    case stop = 7
    case statusRequest = 8
    case status = 9
    case weights = 10
}

/// Why a frame was refused; the receiver logs it and drops the frame (or the peer).
public struct ProtocolError: Error, CustomStringConvertible, Equatable {
    public let description: String
    /// The frame is well formed but its content is one every worker would refuse (non-finite
    /// weights): a worker answers it with a run-scope refusal instead of a worker-scope one.
    public let runScope: Bool
    public init(_ description: String, runScope: Bool = false) {
        self.description = description
        self.runScope = runScope
    }
}

/// A `refuse`: why a peer will not (or cannot) go on, and whom the problem concerns.
public struct Refusal: Equatable, Sendable {
    public enum Scope: UInt8, Sendable, CaseIterable {
        /// Every worker would hit it (a diverged gradient, non-finite weights): the run stops.
        case run = 1
        /// This worker's own problem (cannot allocate, cannot build the model, a different
        /// kernel; or, from the coordinator, "you may not join"): that worker is dropped and
        /// training goes on.
        case worker = 2
    }
    public var scope: Scope
    public var reason: String
    public init(_ scope: Scope, _ reason: String) {
        self.scope = scope
        self.reason = reason
    }
}

/// A worker introduces itself.
public struct Hello: Equatable, Sendable {
    public var host: String
    public var pid: Int32
    public var threads: Int
    public init(host: String, pid: Int32, threads: Int) {
        self.host = host
        self.pid = pid
        self.threads = threads
    }
}

/// The coordinator accepts a worker: its id, the model and how to compute gradients.
public struct Welcome: Equatable, Sendable {
    public var workerID: UInt32
    public var spec: NetworkSpec
    public var deterministic: Bool
    public var microBatch: Int
    public var sampleSize: Int
    /// The coordinator writes a timeline (`--trace`): results carry the worker's spans.
    public var wantsSpans: Bool
    public init(
        workerID: UInt32, spec: NetworkSpec, deterministic: Bool, microBatch: Int, sampleSize: Int,
        wantsSpans: Bool = false
    ) {
        self.wantsSpans = wantsSpans
        self.workerID = workerID
        self.spec = spec
        self.deterministic = deterministic
        self.microBatch = microBatch
        self.sampleSize = sampleSize
    }
}

/// Work for one step: train (gradient wanted) or evaluate (loss and hits only).
public struct StepWork: Equatable, Sendable {
    /// Which slice of the step this is; echoed in the result.
    public var slice: UInt32
    public var evaluate: Bool
    /// The current weights; nil when the worker already holds this step's weights. They
    /// start at parameter `weightsOffset`: less than all of them when a `weights` message
    /// of this step carried the rest.
    public var weights: [Float]?
    public var weightsOffset = 0
    public var sampleSize: Int
    public var pixels: [UInt8]
    public var labels: [UInt8]
    public var count: Int { labels.count }
    public init(
        slice: UInt32, evaluate: Bool, weights: [Float]?, weightsOffset: Int = 0, sampleSize: Int, pixels: [UInt8],
        labels: [UInt8]
    ) {
        self.slice = slice
        self.evaluate = evaluate
        self.weights = weights
        self.weightsOffset = weightsOffset
        self.sampleSize = sampleSize
        self.pixels = pixels
        self.labels = labels
    }
}

/// A worker's answer: its slice's totals and the gradient sum over one bucket of
/// parameters, `gradientOffset..<gradientOffset+count`. A slice's gradient may come in
/// several buckets (the network's head first, while the worker computes the trunk); each
/// bucket repeats the slice's totals.
public struct StepResult: Equatable, Sendable {
    public enum Gradient: Equatable, Sendable {
        case none
        case float([Float])
        case fixedPoint([Int64])

        public var count: Int {
            switch self {
            case .none: 0
            case let .float(values): values.count
            case let .fixedPoint(values): values.count
            }
        }
    }
    public var slice: UInt32
    public var count: Int
    public var correct: Int
    public var lossSum: Double
    /// Seconds the worker spent computing, so the coordinator can show stragglers.
    public var computeSeconds: Double
    /// Index of the first parameter the gradient covers.
    public var gradientOffset: Int
    public var gradient: Gradient
    /// The worker's phases of this step (SpanCoding.swift), when the welcome asked for them.
    public var spans: SpanReport?
    public init(
        slice: UInt32, count: Int, correct: Int, lossSum: Double, computeSeconds: Double,
        gradientOffset: Int = 0, gradient: Gradient, spans: SpanReport? = nil
    ) {
        self.spans = spans
        self.gradientOffset = gradientOffset
        self.slice = slice
        self.count = count
        self.correct = correct
        self.lossSum = lossSum
        self.computeSeconds = computeSeconds
        self.gradient = gradient
    }
}

/// New values of some parameters for a step, sent ahead of its `step` message: the head's,
/// updated while the workers still computed the trunk of the step before.
public struct WeightsUpdate: Equatable, Sendable {
    public var offset: Int
    public var values: [Float]
    public var range: Range<Int> { offset..<(offset + values.count) }
    public init(offset: Int, values: [Float]) {
        self.offset = offset
        self.values = values
    }
}

public enum Payload: Equatable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case step(StepWork)
    case result(StepResult)
    case shutdown
    /// The peer refuses (or is refused), with the reason and its scope.
    case refuse(Refusal)
    /// The coordinator stops the run before its end (preempted), with the reason: the worker
    /// acknowledges with a `shutdown` and exits with the requeue status.
    case stop(String)
    /// Anyone the coordinator lets connect asks what the run is doing (`convoy status`).
    case statusRequest
    /// The coordinator's answer to a `statusRequest` (StatusCoding.swift).
    case status(StatusReport)
    /// Some of the next step's weights, ahead of the step (`WeightsUpdate`).
    case weights(WeightsUpdate)

    var type: MessageType {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .step: .step
        case .result: .result
        case .shutdown: .shutdown
        case .refuse: .refuse
        case .stop: .stop
        case .statusRequest: .statusRequest
        case .status: .status
        case .weights: .weights
        }
    }
}

public struct Message: Equatable, Sendable {
    public var runID: UInt64
    public var step: UInt64
    public var workerID: UInt32
    public var payload: Payload

    public init(runID: UInt64, step: UInt64 = 0, workerID: UInt32 = 0, payload: Payload) {
        self.runID = runID
        self.step = step
        self.workerID = workerID
        self.payload = payload
    }
}
