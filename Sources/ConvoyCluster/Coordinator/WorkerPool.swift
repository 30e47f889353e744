import ConvoyEngine
import Foundation

/// The coordinator's workers: who joined, who is live, admission (a hello answered with a
/// welcome), dropping, waiting for enough of them, and the end-of-run handshake. Workers are
/// numbered in the order they joined, and a worker that comes back keeps its number.
final class WorkerPool {
    struct Worker {
        let peer: PeerID
        let id: UInt32
        let hello: Hello
        var alive = true
        var name: String { "worker \(id) (\(hello.host) pid \(hello.pid))" }
    }

    private(set) var workers: [Worker] = []
    let transport: CoordinatorTransport
    let runID: UInt64
    let capacity: Int
    /// The welcome of worker `id`.
    let welcome: (UInt32) -> Welcome
    let stats: ClusterStatsRecorder
    let log: (String) -> Void
    /// New workers that said hello during a round: admitted when it ends, so a round's
    /// members are fixed while its slices are sent and reassigned.
    private var waitingRoom: [(peer: PeerID, hello: Hello)] = []
    var inRound = false {
        didSet { if !inRound { admitWaiting() } }
    }

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

    func drop(_ w: Int, because reason: String) {
        guard workers[w].alive else { return }
        workers[w].alive = false
        log("dropped \(workers[w].name): it \(reason); its work goes to the \(liveCount) remaining")
    }

    /// Sends a message to worker `w`; false (and the worker dropped) when it is unreachable.
    func send(_ message: Message, to w: Int) throws -> Bool {
        var message = message
        message.workerID = workers[w].id
        let bytes = try transport.send(message, to: workers[w].peer)
        guard bytes > 0 else {
            drop(w, because: "is unreachable")
            return false
        }
        stats.countBytes(bytes)
        return true
    }

    /// Waits until `needed` workers are live, handling hellos; fails after `timeout` seconds
    /// with who joined and how many are missing.
    func waitUntilLive(_ needed: Int, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while liveCount < needed {
            let left = deadline.timeIntervalSinceNow
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

    /// A frame outside a round's expected results: a hello admits a worker (after the round,
    /// if one is running); anything else is logged and dropped.
    func handleUnexpected(peer: PeerID, frame: [UInt8]) throws {
        let message: Message
        do { message = try Message(decoding: frame) } catch {
            log("refused a message from an unknown peer: \(error)")
            return
        }
        guard case let .hello(hello) = message.payload else {
            if message.runID != runID {
                log(
                    "refused a \(message.payload.type) message of run \(hex(message.runID)) (this run is \(hex(runID)))"
                )
            } else {
                log("ignored a stray \(message.payload.type) message")
            }
            return
        }
        if let known = workers.firstIndex(where: { $0.peer == peer }), workers[known].alive {
            try greet(known)  // a repeated hello: the worker may have missed its welcome
        } else if inRound {
            if !waitingRoom.contains(where: { $0.peer == peer }) { waitingRoom.append((peer, hello)) }
        } else {
            try admit(peer: peer, hello: hello)
        }
    }

    private func admitWaiting() {
        let waiting = waitingRoom
        waitingRoom = []
        for (peer, hello) in waiting {
            do { try admit(peer: peer, hello: hello) } catch { log("could not admit a worker: \(error)") }
        }
    }

    private func admit(peer: PeerID, hello: Hello) throws {
        if let known = workers.firstIndex(where: { $0.peer == peer }) {
            if !workers[known].alive {
                workers[known].alive = true
                log("\(workers[known].name) is back")
            }
            try greet(known)
            return
        }
        guard workers.count < capacity else {
            try transport.send(
                Message(runID: runID, payload: .refuse(Refusal(.worker, "the cluster is full"))), to: peer)
            return
        }
        workers.append(Worker(peer: peer, id: UInt32(workers.count), hello: hello))
        log("\(workers[workers.count - 1].name) joined (\(liveCount) live)")
        try greet(workers.count - 1)
    }

    private func greet(_ w: Int) throws {
        let id = workers[w].id
        _ = try send(Message(runID: runID, workerID: id, payload: .welcome(welcome(id))), to: w)
    }

    /// Ends the run for every live worker: a shutdown, acknowledged by a shutdown back, sent
    /// again every half second for up to three seconds. (A message queued just before the
    /// coordinator exits can be lost; the handshake makes sure each worker heard it.)
    func shutDown() throws {
        var waiting = Set(live)
        let deadline = Date().addingTimeInterval(3)
        while !waiting.isEmpty && Date() < deadline {
            for w in waiting where try !send(Message(runID: runID, payload: .shutdown), to: w) {
                waiting.remove(w)
            }
            let resend = Date().addingTimeInterval(0.5)
            while !waiting.isEmpty, resend.timeIntervalSinceNow > 0,
                let (peer, frame) = try transport.receive(timeoutMs: Int(resend.timeIntervalSinceNow * 1000) + 1)
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
