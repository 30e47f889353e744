import ConvoyEngine

/// What a running coordinator says about itself to `convoy status` (a `status` message, type
/// 9) and on SIGUSR1: the run's position, how long the current round has waited and for whom,
/// and every worker it knows. docs/PROTOCOL.md, "status payload", fixes the bytes.
public struct StatusReport: Encodable, Equatable, Sendable {
    /// What the coordinator is doing.
    public enum Phase: UInt8, Encodable, Sendable, CaseIterable {
        /// Before the first step, or with fewer than `--min-workers` live workers.
        case waitingForWorkers = 1
        /// Waiting for the slices of a training step.
        case training = 2
        /// Waiting for the slices of an evaluation round.
        case evaluating = 3
        /// Between rounds: adding the sums, the optimizer step, a checkpoint.
        case betweenRounds = 4
    }

    /// One worker record of the coordinator.
    public struct WorkerStatus: Encodable, Equatable, Sendable {
        public enum State: UInt8, Encodable, Sendable, CaseIterable {
            /// Holds a slice of the current round that has not come back yet.
            case computing = 1
            /// Live, with nothing outstanding.
            case idle = 2
            /// Dropped; it may come back.
            case dropped = 3
        }
        public var id: UInt32
        public var host: String
        public var pid: Int32
        public var state: State
        /// The step of the last slice it was sent (2^47 | n: evaluation round n); nil before its first.
        public var step: UInt64?
        /// Computing: seconds the coordinator has waited for it this round; dropped: since the drop.
        public var seconds: Double
        /// Median time of its recent training slices, milliseconds (nil before its first).
        public var sliceMs: Double?

        public init(
            id: UInt32, host: String, pid: Int32, state: State, step: UInt64?, seconds: Double, sliceMs: Double?
        ) {
            self.id = id
            self.host = host
            self.pid = pid
            self.state = state
            self.step = step
            self.seconds = seconds
            self.sliceMs = sliceMs
        }

        /// `w<id>@host:pid`, the name every coordinator line gives a worker process.
        public var name: String { "w\(id)@\(peerText(host)):\(pid)" }

        enum CodingKeys: String, CodingKey {
            case id, host, pid, state, step, seconds
            case sliceMs = "slice_ms"
        }
    }

    public var phase: Phase
    /// The current (or last) training step, 0-based over the run.
    public var step: UInt64
    /// 1-based epoch of `step`, and the run's epochs (0 when the coordinator does not know).
    public var epoch: UInt32
    public var epochs: UInt32
    /// Training samples per second over the last steps (0 before two steps).
    public var samplesPerSecond: Double
    /// Seconds the current round has been waiting (0 between rounds).
    public var waitingSeconds: Double
    public var uptimeSeconds: Double
    public var workers: [WorkerStatus]
    /// Worker records past the `maxListed` that the reply lists.
    public var omitted: UInt32

    public init(
        phase: Phase, step: UInt64, epoch: UInt32, epochs: UInt32, samplesPerSecond: Double,
        waitingSeconds: Double, uptimeSeconds: Double, workers: [WorkerStatus], omitted: UInt32 = 0
    ) {
        self.phase = phase
        self.step = step
        self.epoch = epoch
        self.epochs = epochs
        self.samplesPerSecond = samplesPerSecond
        self.waitingSeconds = waitingSeconds
        self.uptimeSeconds = uptimeSeconds
        self.workers = workers
        self.omitted = omitted
    }

    /// The workers the coordinator is waiting on in this round.
    public var waitingOn: [WorkerStatus] { workers.filter { $0.state == .computing } }

    /// Most worker records in one reply: with host names cut at `maxHostBytes` a reply stays
    /// under 300 KB, inside `Wire.maxControlBytes`.
    public static let maxListed = 1024
    /// A POSIX host name is at most 255 bytes.
    public static let maxHostBytes = 255

    enum CodingKeys: String, CodingKey {
        case phase, step, epoch, epochs, workers, omitted
        case samplesPerSecond = "samples_per_second"
        case waitingSeconds = "waiting_seconds"
        case uptimeSeconds = "uptime_seconds"
    }
}

extension StatusReport {
    /// phase u8, step u64, epoch u32, epochs u32, samples/s f64, waiting f64, uptime f64,
    /// omitted u32, count u16, then per worker: id u32, host string, pid i32, state u8,
    /// has-step u8, step u64, seconds f64, slice ms f64 (negative: none).
    func write(to writer: inout ByteWriter) {
        writer.append(phase.rawValue)
        writer.append(step)
        writer.append(epoch)
        writer.append(epochs)
        writer.append(Self.figure(samplesPerSecond))
        writer.append(Self.figure(waitingSeconds))
        writer.append(Self.figure(uptimeSeconds))
        let listed = workers.prefix(Self.maxListed)
        writer.append(omitted &+ UInt32(workers.count - listed.count))
        writer.append(listed.count, as: UInt16.self)
        for worker in listed {
            writer.append(worker.id)
            writer.append(string: String(decoding: Array(worker.host.utf8.prefix(Self.maxHostBytes)), as: UTF8.self))
            writer.append(worker.pid)
            writer.append(worker.state.rawValue)
            writer.append(worker.step != nil)
            writer.append(worker.step ?? 0)
            writer.append(Self.figure(worker.seconds))
            writer.append(worker.sliceMs.map(Self.figure) ?? -1)
        }
    }

    init(reading reader: inout ByteReader) throws {
        let rawPhase = try reader.read(UInt8.self, "phase")
        guard let phase = Phase(rawValue: rawPhase) else { throw reader.error("phase", "unknown phase \(rawPhase)") }
        let step = try reader.read(UInt64.self, "step")
        let epoch = try reader.read(UInt32.self, "epoch")
        let epochs = try reader.read(UInt32.self, "epochs")
        let rate = try Self.readSeconds(&reader, "samples per second")
        let waiting = try Self.readSeconds(&reader, "waiting seconds")
        let uptime = try Self.readSeconds(&reader, "uptime seconds")
        let omitted = try reader.read(UInt32.self, "omitted")
        let count = try reader.read(UInt16.self, "worker count", in: 0...Self.maxListed)
        var workers: [WorkerStatus] = []
        for _ in 0..<count { workers.append(try WorkerStatus(reading: &reader)) }
        self.init(
            phase: phase, step: step, epoch: epoch, epochs: epochs, samplesPerSecond: rate, waitingSeconds: waiting,
            uptimeSeconds: uptime, workers: workers, omitted: omitted)
    }

    /// Figures go out finite and non-negative, as the reader insists.
    private static func figure(_ value: Double) -> Double { value.isFinite && value >= 0 ? value : 0 }

    /// A finite, non-negative figure.
    fileprivate static func readSeconds(_ reader: inout ByteReader, _ field: String) throws -> Double {
        let value = try reader.readDouble(field)
        guard value >= 0 else { throw reader.error(field, "\(value) is negative") }
        return value
    }
}

extension StatusReport.WorkerStatus {
    init(reading reader: inout ByteReader) throws {
        let id = try reader.read(UInt32.self, "worker id", in: 0...Int(Wire.maxWorkers - 1))
        let host = try reader.readString("host", maxBytes: StatusReport.maxHostBytes)
        let pid = try reader.read(Int32.self, "pid")
        let rawState = try reader.read(UInt8.self, "state")
        guard let state = State(rawValue: rawState) else { throw reader.error("state", "unknown state \(rawState)") }
        let hasStep = try reader.readBool("has step")
        let step = try reader.read(UInt64.self, "step")
        guard hasStep || step == 0 else { throw reader.error("step", "\(step) without its flag") }
        let seconds = try StatusReport.readSeconds(&reader, "seconds")
        let sliceMs = try reader.readDouble("slice ms")
        guard sliceMs >= 0 || sliceMs == -1 else { throw reader.error("slice ms", "\(sliceMs) is negative") }
        self.init(
            id: UInt32(id), host: host, pid: pid, state: state, step: hasStep ? step : nil, seconds: seconds,
            sliceMs: sliceMs >= 0 ? sliceMs : nil)
    }
}
