import ConvoyEngine

/// Cluster figures of an epoch, added to its report.
public struct ClusterStats: Codable, Equatable, Sendable {
    public var workers: Int
    /// Mean compute time of one slice, per worker id.
    public var workerStepMs: [Double]
    /// Mean wall time of a training step.
    public var stepMs: Double
    /// Mean time per step the coordinator spent sending work and combining results.
    public var coordinatorMs: Double
    /// Bytes sent plus received per training step, all workers together, as the transport
    /// counted them.
    public var bytesPerStep: Double
    /// Fraction of step time workers spent not computing (waiting for the step's weights).
    public var workerWaitFraction: Double
    /// Workers that joined or were dropped since the previous epoch's figures, in order.
    public var events: [WorkerEvent] = []

    enum CodingKeys: String, CodingKey {
        case workers
        case workerStepMs = "worker_step_ms"
        case stepMs = "step_ms"
        case coordinatorMs = "coordinator_ms"
        case bytesPerStep = "bytes_per_step"
        case workerWaitFraction = "worker_wait_fraction"
        case events
    }
}

/// A worker joining (or coming back) or being dropped, for the run report's time axis.
public struct WorkerEvent: Codable, Equatable, Sendable {
    /// Seconds since the coordinator started.
    public var t: Double
    /// "joined", "dropped" or "straggler" (with the slice times in `reason`).
    public var event: String
    public var worker: UInt32
    /// Why it was dropped, or a straggler's slice times (nil for a join).
    public var reason: String?

    public init(t: Double, event: String, worker: UInt32, reason: String? = nil) {
        self.t = t
        self.event = event
        self.worker = worker
        self.reason = reason
    }
}

/// Collects the figures of `ClusterStats` as an epoch runs.
final class ClusterStatsRecorder {
    private var coordinatorSeconds = 0.0
    private var stepSeconds = 0.0
    private var bytes = 0
    private var steps = 0
    /// Compute seconds and slices per worker id, this epoch.
    private var computeSeconds: [Double] = []
    private var slices: [Int] = []
    /// Bytes of training rounds only: evaluation traffic is not a step's cost.
    var counting = true
    private var events: [WorkerEvent] = []
    /// The time axis of `events`: the coordinator's start.
    private let start = ContinuousClock.now
    /// A run that flaps for days keeps a bounded record: later events of the epoch are counted out.
    static let maxEventsPerEpoch = 1000
    /// The same figures live, for --metrics-port (ClusterMetrics.swift): whole-run counts, all traffic.
    private let metrics = ClusterMetrics()
    /// Names a worker whose slices are far slower than the others', live.
    let stragglers = StragglerWatch()

    func addEvent(_ event: String, worker: UInt32, reason: String? = nil) {
        if event == "joined" { metrics.joined() } else { metrics.dropped(reason: reason ?? "") }
        // A dropped worker is no yardstick; a joining one may be a new process under the same number.
        if event == "joined" || event == "dropped" { stragglers.forget(worker) }
        guard events.count < Self.maxEventsPerEpoch else { return }
        let t = (ContinuousClock.now - start).inSeconds
        events.append(WorkerEvent(t: t, event: event, worker: worker, reason: reason))
    }

    /// Bytes received (`countSentBytes`: sent).
    func countBytes(_ n: Int) {
        metrics.received(bytes: n)
        if counting { bytes += n }
    }

    func countSentBytes(_ n: Int) {
        metrics.sent(bytes: n)
        if counting { bytes += n }
    }

    func addStep(seconds: Double, coordinatorSeconds: Double) {
        metrics.step(seconds: seconds)
        stepSeconds += seconds
        self.coordinatorSeconds += coordinatorSeconds
        steps += 1
    }

    func addSlice(worker id: UInt32, computeSeconds seconds: Double) {
        metrics.slice(worker: id, seconds: seconds)
        let i = Int(id)
        if computeSeconds.count <= i {
            computeSeconds += Array(repeating: 0, count: i + 1 - computeSeconds.count)
            slices += Array(repeating: 0, count: i + 1 - slices.count)
        }
        computeSeconds[i] += seconds
        slices[i] += 1
        if let detail = stragglers.record(worker: id, ms: seconds * 1000) {
            addEvent("straggler", worker: id, reason: detail)
        }
    }

    var workerStepMs: [Double] {
        zip(computeSeconds, slices).map { $1 > 0 ? $0 / Double($1) * 1000 : 0 }
    }

    /// The epoch's figures; the counters start again.
    func take(liveWorkers: Int) -> ClusterStats {
        let n = Double(max(steps, 1))
        let busy = zip(computeSeconds, slices).filter { $1 > 0 }.map(\.0)
        let meanCompute = busy.isEmpty ? 0 : busy.reduce(0, +) / Double(busy.count)
        let stats = ClusterStats(
            workers: liveWorkers, workerStepMs: workerStepMs, stepMs: stepSeconds / n * 1000,
            coordinatorMs: coordinatorSeconds / n * 1000, bytesPerStep: Double(bytes) / n,
            workerWaitFraction: stepSeconds > 0 ? max(0, 1 - meanCompute / stepSeconds) : 0, events: events)
        coordinatorSeconds = 0
        stepSeconds = 0
        bytes = 0
        steps = 0
        computeSeconds = []
        slices = []
        events = []
        return stats
    }
}
