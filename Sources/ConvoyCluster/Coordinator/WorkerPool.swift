import ConvoyEngine

/// The coordinator's workers: who joined, who is live, admission (a hello answered with a
/// welcome), dropping, waiting for enough of them, and the end-of-run handshake. A worker's
/// number is its record's place in `workers`; a new worker takes the place of a dropped one
/// (so numbers are bounded by the most workers live at once, not by the run's history), and
/// a worker that comes back while its place is free keeps its number.
final class WorkerPool {
    struct Worker {
        /// Its connection; a worker that comes back on a new connection gets the new one.
        var peer: PeerID
        let id: UInt32
        let hello: Hello
        /// The CURVE key it authenticated with, when the transport knows it.
        var key: String? = nil
        var alive = true
        /// When it was dropped: the record dropped longest ago is the first one reused.
        var dropped: ContinuousClock.Instant?
        /// When this peer was last sent a welcome (see `Admission.welcomeInterval`).
        var welcomed: ContinuousClock.Instant?
        /// The step whose head weights it was sent ahead (`Payload.weights`), until its step
        /// message uses them.
        var aheadStep: UInt64?
        /// `w3@host:pid`: the name the worker's own log lines give it (the host and pid of its
        /// hello), so a line of the coordinator and one of the worker are matched by eye or grep.
        var name: String { "w\(id)@\(peerText(hello.host)):\(hello.pid)" }
    }

    private(set) var workers: [Worker] = []
    let transport: CoordinatorTransport
    let runID: UInt64
    let capacity: Int
    /// The welcome of worker `id`.
    let welcome: (UInt32) -> Welcome
    let stats: ClusterStatsRecorder
    let log: (String) -> Void
    var admission = Admission()
    /// Most live workers one CURVE key may have (nil: no cap).
    var maxWorkersPerKey: Int?
    /// The clock of every deadline and back-off; tests move it by hand.
    var now: () -> ContinuousClock.Instant = { .now }
    private var throttle = LogThrottle()
    /// New workers that said hello during a round: admitted when it ends, so a round's
    /// members are fixed while its slices are sent and reassigned. At most `capacity`.
    private var waitingRoom: [(peer: PeerID, hello: Hello, key: String?)] = []
    var inRound = false {
        didSet { if !inRound { admitWaiting() } }
    }
    /// The round in progress, for status reports (set by `Round.run`).
    var roundView: RoundView?
    /// True inside `waitUntilLive`, for status reports.
    private(set) var waitingForWorkers = false
    /// Asked while waiting for workers: true ends the wait with `StopRequested` (preemption).
    var shouldStop: () -> Bool = { false }

    init(
        transport: CoordinatorTransport, runID: UInt64, capacity: Int, stats: ClusterStatsRecorder,
        welcome: @escaping (UInt32) -> Welcome, log: @escaping (String) -> Void
    ) {
        self.transport = transport
        self.runID = runID
        self.capacity = capacity
        self.stats = stats
        self.welcome = welcome
        self.log = log
    }

    var liveCount: Int { workers.count { $0.alive } }
    var live: [Int] { workers.indices.filter { workers[$0].alive } }
    func liveIndex(of peer: PeerID) -> Int? { workers.firstIndex { $0.peer == peer && $0.alive } }

    /// Drops worker `w` and holds its process back (logged here, once per back-off).
    func drop(_ w: Int, because reason: String) {
        guard workers[w].alive else { return }
        workers[w].alive = false
        workers[w].dropped = now()
        workers[w].aheadStep = nil
        let delay = admission.recordDrop(of: workers[w].hello, now: now())
        stats.addEvent("dropped", worker: workers[w].id, reason: reason)
        log(
            "dropped \(workers[w].name): it \(reason); its work goes to the \(liveCount) remaining; it may rejoin in "
                + "\(formatSeconds(delay.inSeconds)) s")
    }

    /// Records which step's head weights worker `w` holds, sent ahead (HeadAhead.swift).
    func setAheadStep(_ step: UInt64?, of w: Int) { workers[w].aheadStep = step }

    /// Sends a message to worker `w` without waiting; false (and the worker dropped) when it
    /// is unreachable or its send queue is full (it is not reading).
    func send(_ message: Message, to w: Int) throws -> Bool {
        var message = message
        message.workerID = workers[w].id
        let bytes: Int
        do { bytes = try transport.send(message, to: workers[w].peer) } catch CoordinatorSendError.queueFull {
            drop(w, because: "does not read: its send queue is full")
            return false
        }
        guard bytes > 0 else {
            drop(w, because: "is unreachable")
            return false
        }
        stats.countSentBytes(bytes)
        return true
    }

    /// Sends to a peer that is not a live worker; a full queue or a vanished peer just loses it.
    private func sendToStranger(_ message: Message, to peer: PeerID) throws {
        do { try transport.send(message, to: peer) } catch CoordinatorSendError.queueFull {}
    }

    /// Waits until `needed` workers are live, handling hellos; fails after `timeout` seconds
    /// with who joined and how many are missing.
    func waitUntilLive(_ needed: Int, timeout: Double) throws {
        let deadline = now() + .seconds(clamping: timeout)
        waitingForWorkers = true
        defer { waitingForWorkers = false }
        while liveCount < needed {
            if shouldStop() { throw StopRequested() }
            let left = (deadline - now()).inSeconds
            guard left > 0 else {
                let joined = workers.filter(\.alive).map(\.name).joined(separator: ", ")
                throw ClusterError.tooFewWorkers(
                    live: liveCount, needed: needed, seconds: Int(timeout),
                    joined: joined.isEmpty ? "none" : joined)
            }
            if let (peer, frame) = try transport.receive(timeoutMs: Int(min(left, 1) * 1000) + 1) {
                stats.countBytes(frame.count)
                try handleUnexpected(peer: peer, frame: frame)
            }
        }
    }

    /// Logs a peer's repeated event the 1st, 10th, 100th… time.
    private func logThrottled(_ key: String, _ line: String) {
        let (shouldLog, count) = throttle.shouldLog(key)
        if shouldLog { log(count == 1 ? line : "\(line) (\(count) times)") }
    }

    /// A frame outside a round's expected results: a hello admits a worker (after the round,
    /// if one is running); anything else is logged (throttled) and dropped.
    func handleUnexpected(peer: PeerID, frame: [UInt8]) throws {
        let message: Message
        do { message = try Message(decoding: frame) } catch {
            return logThrottled("undecodable", "refused a message from an unknown peer: \(error)")
        }
        guard case let .hello(hello) = message.payload else {
            if message.runID != runID {
                logThrottled(
                    "run \(message.runID)",
                    "refused a \(message.payload.type) message of run \(hex(message.runID)) (this run is \(hex(runID)))"
                )
            } else {
                logThrottled("stray \(message.payload.type)", "ignored a stray \(message.payload.type) message")
            }
            return
        }
        if let known = workers.firstIndex(where: { $0.peer == peer }), workers[known].alive {
            try greet(known)  // a repeated hello: the worker may have missed its welcome
        } else if inRound {
            if !waitingRoom.contains(where: { $0.peer == peer }) && waitingRoom.count < capacity {
                waitingRoom.append((peer, hello, transport.key(of: peer)))
            }
        } else {
            try admit(peer: peer, hello: hello, key: transport.key(of: peer))
        }
    }

    private func admitWaiting() {
        let waiting = waitingRoom
        waitingRoom = []
        for (peer, hello, key) in waiting {
            do { try admit(peer: peer, hello: hello, key: key) } catch { log("could not admit a worker: \(error)") }
        }
    }

    private func admit(peer: PeerID, hello: Hello, key: String?) throws {
        // A dropped worker's process is held back; its hellos are ignored meanwhile (the drop
        // was logged with the back-off, so a flapping worker costs one line per back-off).
        guard admission.heldBack(hello, now: now()) == nil else { return }
        // The same connection, or the same process (host, pid) on a new one, keeps its record.
        let process = Admission.processKey(hello)
        if let known = workers.firstIndex(where: { $0.peer == peer })
            ?? workers.firstIndex(where: { !$0.alive && Admission.processKey($0.hello) == process })
        {
            if !workers[known].alive {
                workers[known].alive = true
                workers[known].peer = peer
                log("\(workers[known].name) is back")
                stats.addEvent("joined", worker: workers[known].id)
            }
            return try greet(known)
        }
        if let key, let cap = maxWorkersPerKey, workers.count(where: { $0.alive && $0.key == key }) >= cap {
            logThrottled("key \(key)", "refused a worker with key \(key): it has \(cap) live worker(s) already")
            let reason = "key \(key) has \(cap) live worker(s) already"
            return try sendToStranger(Message(runID: runID, payload: .refuse(Refusal(.worker, reason))), to: peer)
        }
        let free = workers.indices.filter { !workers[$0].alive }.min {
            (workers[$0].dropped ?? now()) < (workers[$1].dropped ?? now())
        }
        guard free != nil || workers.count < capacity else {
            let full = Message(runID: runID, payload: .refuse(Refusal(.worker, "the cluster is full")))
            return try sendToStranger(full, to: peer)
        }
        let slot = free ?? workers.count
        let worker = Worker(peer: peer, id: UInt32(slot), hello: hello, key: key)
        if slot == workers.count { workers.append(worker) } else { workers[slot] = worker }
        stats.addEvent("joined", worker: worker.id)
        log("\(worker.name) joined (\(liveCount) live)\(key.map { ", key \($0)" } ?? "")")
        try greet(slot)
    }

    /// Welcomes worker `w`, at most once per `welcomeInterval`.
    private func greet(_ w: Int) throws {
        let time = now()
        if let last = workers[w].welcomed, time - last < admission.welcomeInterval { return }
        workers[w].welcomed = time
        let id = workers[w].id
        _ = try send(Message(runID: runID, workerID: id, payload: .welcome(welcome(id))), to: w)
    }

    /// Ends the run for every live worker: a shutdown (or, for a run stopped before its end, a
    /// `stop` with the reason), acknowledged by a shutdown back, sent again every half second
    /// for up to three seconds. (A message queued just before the coordinator exits can be
    /// lost; the handshake makes sure each worker heard it.)
    func shutDown(_ goodbye: Payload = .shutdown) throws {
        var waiting = Set(live)
        let deadline = now() + .seconds(3)
        while !waiting.isEmpty && now() < deadline {
            for w in waiting where try !send(Message(runID: runID, payload: goodbye), to: w) {
                waiting.remove(w)
            }
            let resend = now() + .milliseconds(500)
            while !waiting.isEmpty, now() < resend,
                let (peer, frame) = try transport.receive(timeoutMs: Int((resend - now()).inSeconds * 1000) + 1)
            {
                guard let w = workers.firstIndex(where: { $0.peer == peer }),
                    let message = try? Message(decoding: frame), case .shutdown = message.payload
                else { continue }
                waiting.remove(w)
            }
        }
        for w in waiting { log("\(workers[w].name) did not acknowledge the end of the run") }
    }
}
