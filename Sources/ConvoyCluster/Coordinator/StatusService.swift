import ConvoyEngine
import Foundation

/// The round the coordinator is waiting on, as a status report shows it (set by `Round.run`).
struct RoundView {
    let step: UInt64
    let evaluate: Bool
    let started: ContinuousClock.Instant
    /// Places in `WorkerPool.workers` of the workers holding a slice that has not come back.
    let waitingOn: () -> [Int]
}

/// Answers `convoy status` and SIGUSR1 from inside the coordinator's transport, so neither
/// adds a line to the rounds' loops: every `receive` first prints the status when SIGUSR1 came
/// in (the signal only set a flag), and a `statusRequest` frame is answered here and never
/// reaches the round. An answer is one non-blocking send of at most `StatusReport.maxListed`
/// workers (under 300 KB), at most one per peer per `perPeerInterval` and
/// `maxRepliesPerSecond` in all, so asking cannot slow training down.
final class StatusService: CoordinatorTransport {
    let inner: CoordinatorTransport
    let runID: UInt64
    weak var pool: WorkerPool?
    var stragglers: StragglerWatch?
    /// The run's epochs and steps per epoch, for the epoch a report shows (0: unknown).
    var epochs = 0
    var stepsPerEpoch = 0
    /// True once per SIGUSR1; `print` then gets the status text.
    var signalled: () -> Bool = { false }
    var print: (String) -> Void = { _ in }
    var now: () -> ContinuousClock.Instant = { .now }
    /// A peer is answered at most this often; faster requests go unanswered.
    static let perPeerInterval = 0.2
    /// All peers together: building a report of 4,096 workers takes about a millisecond.
    static let maxRepliesPerSecond = 50
    private let started = ContinuousClock.now
    private var step: UInt64 = 0
    /// The last step sent to each connection (a worker's record names its connection).
    private var lastStep: [PeerID: UInt64] = [:]
    /// (when, training samples so far) at the end of recent steps, for samples/s.
    private var progress: [(ContinuousClock.Instant, Int)] = []
    private var samples = 0
    private var replied: [PeerID: ContinuousClock.Instant] = [:]
    private var second: (start: ContinuousClock.Instant, replies: Int)?

    init(_ inner: CoordinatorTransport, runID: UInt64) {
        self.inner = inner
        self.runID = runID
    }

    /// A training step begins.
    func stepStarted(_ step: UInt64) { self.step = step }

    /// A training step of `count` samples ended.
    func stepEnded(samples count: Int) {
        samples += count
        progress.append((now(), samples))
        if progress.count > 20 { progress.removeFirst() }
    }

    func send(_ message: Message, to peer: PeerID) throws -> Int {
        if case .step = message.payload {
            // Bounded: only the coordinator's own step messages add entries, to admitted workers.
            if lastStep.count >= 2 * Int(Wire.maxWorkers) { lastStep = [:] }
            lastStep[peer] = message.step
        }
        return try inner.send(message, to: peer)
    }

    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
        let deadline = now() + .milliseconds(timeoutMs)
        while true {
            if signalled() { print(report().text(runID: runID)) }
            let left = Int(((deadline - now()).inSeconds * 1000).rounded(.up))
            guard let (peer, frame) = try inner.receive(timeoutMs: max(left, 0)) else { return nil }
            guard Self.isStatusRequest(frame) else { return (peer, frame) }
            answer(peer)
            if now() >= deadline { return nil }
        }
    }

    func key(of peer: PeerID) -> String? { inner.key(of: peer) }

    static func isStatusRequest(_ frame: [UInt8]) -> Bool {
        guard frame.count == Wire.headerSize, frame[6] == UInt8(MessageType.statusRequest.rawValue), frame[7] == 0,
            let message = try? Message(decoding: frame)
        else { return false }
        return message.payload == .statusRequest
    }

    private func answer(_ peer: PeerID) {
        let time = now()
        if let last = replied[peer], (time - last).inSeconds < Self.perPeerInterval { return }
        if let window = second, (time - window.start).inSeconds < 1 {
            guard window.replies < Self.maxRepliesPerSecond else { return }
            second = (window.start, window.replies + 1)
        } else {
            second = (time, 1)
        }
        if replied.count >= 4096 { replied = replied.filter { (time - $0.value).inSeconds < Self.perPeerInterval } }
        replied[peer] = time
        let status = report()
        let reply = Message(runID: runID, step: status.step, payload: .status(status))
        // A full queue or a vanished peer just loses the answer: it is never waited on.
        _ = try? inner.send(reply, to: peer)
    }

    /// The coordinator's state now.
    func report() -> StatusReport {
        let time = now()
        let rate: Double
        if let first = progress.first, let last = progress.last, last.0 > first.0 {
            rate = Double(last.1 - first.1) / (last.0 - first.0).inSeconds
        } else {
            rate = 0
        }
        let epoch = stepsPerEpoch > 0 ? UInt32(clamping: step / UInt64(stepsPerEpoch) + 1) : 0
        var report = StatusReport(
            phase: .waitingForWorkers, step: step, epoch: epoch, epochs: UInt32(clamping: epochs),
            samplesPerSecond: rate, waitingSeconds: 0, uptimeSeconds: (time - started).inSeconds, workers: [])
        guard let pool else { return report }
        let view = pool.roundView
        let waitingOn = Set(view?.waitingOn() ?? [])
        if !pool.waitingForWorkers, let view {
            report.phase = view.evaluate ? .evaluating : .training
            report.waitingSeconds = (time - view.started).inSeconds
        } else if !pool.waitingForWorkers {
            report.phase = .betweenRounds
        }
        report.workers = pool.workers.indices.map { w in
            let worker = pool.workers[w]
            let state: StatusReport.WorkerStatus.State =
                !worker.alive ? .dropped : waitingOn.contains(w) ? .computing : .idle
            let since = state == .computing ? view?.started : state == .dropped ? worker.dropped : nil
            return StatusReport.WorkerStatus(
                id: worker.id, host: worker.hello.host, pid: worker.hello.pid, state: state,
                step: lastStep[worker.peer], seconds: since.map { (time - $0).inSeconds } ?? 0,
                sliceMs: stragglers?.medianMs(of: worker.id))
        }
        return report
    }
}
