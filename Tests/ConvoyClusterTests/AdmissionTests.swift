@testable import ConvoyCluster
import ConvoyEngine
import Testing

/// A transport that records what the pool sends; a peer in `full` does not read (its sends
/// fail with `queueFull`).
final class RecordingTransport: CoordinatorTransport {
    var sent: [(peer: PeerID, message: Message)] = []
    var full: Set<PeerID> = []

    func send(_ message: Message, to peer: PeerID) throws -> Int {
        if full.contains(peer) { throw CoordinatorSendError.queueFull }
        sent.append((peer, message))
        return message.encoded().count
    }

    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? { nil }

    func welcomes(to peer: PeerID) -> Int {
        sent.count { sent in
            guard sent.peer == peer, case .welcome = sent.message.payload else { return false }
            return true
        }
    }
}

/// The clock of a pool under test, moved by hand.
final class ManualClock {
    var now = ContinuousClock.now
    func advance(_ seconds: Double) { now += .seconds(seconds) }
}

/// Admission as a state machine (issue 14 rows 1, 11, 12; issue 10's worker table): driven
/// with hellos and drops in memory, on a clock moved by hand.
@Suite struct AdmissionTests {
    let transport = RecordingTransport()
    let clock = ManualClock()
    final class Lines { var all: [String] = [] }
    let lines = Lines()

    func makePool() throws -> WorkerPool {
        let spec = try ModelZoo.spec(named: "lenet5")
        let lines = lines
        let pool = WorkerPool(
            transport: transport, runID: 7, capacity: ClusterOptions.maxWorkers, stats: ClusterStatsRecorder(),
            welcome: { Welcome(workerID: $0, spec: spec, deterministic: true, microBatch: 8, sampleSize: 784) },
            log: { lines.all.append($0) })
        let clock = clock
        pool.now = { clock.now }
        return pool
    }

    func hello(_ pool: WorkerPool, peer: PeerID, host: String = "h", pid: Int32) throws {
        let frame = Message(runID: 0, payload: .hello(Hello(host: host, pid: pid, threads: 1))).encoded()
        try pool.handleUnexpected(peer: peer, frame: frame)
    }

    /// Issue 10's bar: a worker that joins and drops more than 4,096 times (a new process
    /// each time) never exhausts admission, and ids stay bounded by the live workers.
    @Test func aWorkerFlappingFiveThousandTimesLeavesRoomForANewOne() throws {
        let pool = try makePool()
        try hello(pool, peer: [0], pid: 1)  // a steady worker
        for i in 0..<5000 {
            let peer = withUnsafeBytes(of: UInt32(i + 1).littleEndian, Array.init)
            try hello(pool, peer: peer, pid: Int32(i + 2))
            let w = try #require(pool.liveIndex(of: peer))
            #expect(pool.workers[w].id == 1)
            pool.drop(w, because: "test")
            clock.advance(0.01)
        }
        #expect(pool.workers.count == 2)
        try hello(pool, peer: [9, 9, 9, 9, 9], pid: 99_999)
        let newcomer = try #require(pool.liveIndex(of: [9, 9, 9, 9, 9]))
        #expect(pool.workers[newcomer].id == 1)
        #expect(pool.liveCount == 2)
        #expect(pool.workers[try #require(pool.liveIndex(of: [0]))].id == 0)
    }

    /// Issue 14 row 12: a dropped worker is held back 1 s, then 2 s, 4 s…, its hellos
    /// meanwhile ignored and unlogged; each drop logs one line with its back-off.
    @Test func aDroppedWorkerIsHeldBackWithAGrowingBackOff() throws {
        let pool = try makePool()
        try hello(pool, peer: [1], pid: 10)
        for (round, backOff) in [1.0, 2, 4, 8].enumerated() {
            let w = try #require(pool.liveIndex(of: [1]))
            pool.drop(w, because: "missed a deadline")
            let logged = lines.all.count
            for _ in 0..<100 { try hello(pool, peer: [1], pid: 10) }  // at once: held back
            clock.advance(backOff - 0.1)
            try hello(pool, peer: [1], pid: 10)
            #expect(pool.liveIndex(of: [1]) == nil, "round \(round): still held back")
            #expect(lines.all.count == logged, "hellos while held back are not logged")
            clock.advance(0.2)
            try hello(pool, peer: [1], pid: 10)
            #expect(pool.liveIndex(of: [1]) != nil, "round \(round): admitted after \(backOff) s")
        }
        #expect(lines.all.filter { $0.contains("dropped") }.count == 4)
        #expect(lines.all.contains { $0.contains("may rejoin in 8 s") })
        // The same process on a new connection (a new routing id) is held back too.
        pool.drop(try #require(pool.liveIndex(of: [1])), because: "missed a deadline")
        try hello(pool, peer: [2], pid: 10)
        #expect(pool.liveCount == 0)
    }

    /// A worker back on a new connection (same host and pid) keeps its number; a new worker
    /// takes the record dropped longest ago, so a recently dropped one can still come back.
    @Test func aReturningWorkerKeepsItsNumberAndNewOnesTakeTheOldestFreeRecord() throws {
        let pool = try makePool()
        for i in 0..<3 { try hello(pool, peer: [UInt8(i)], pid: Int32(i)) }
        pool.drop(try #require(pool.liveIndex(of: [0])), because: "was killed")
        clock.advance(0.5)
        pool.drop(try #require(pool.liveIndex(of: [1])), because: "was stopped")
        try hello(pool, peer: [9], pid: 9)  // a new worker: takes worker 0's record
        #expect(pool.workers[try #require(pool.liveIndex(of: [9]))].id == 0)
        clock.advance(1.5)
        try hello(pool, peer: [11], pid: 1)  // worker 1 again, on a new connection
        #expect(pool.workers[try #require(pool.liveIndex(of: [11]))].id == 1)
        #expect(lines.all.last?.hasSuffix("w1@h:1 is back") == true, "\(lines.all)")
        #expect(pool.workers.count == 3)
    }

    /// Issue 14 row 1: thousands of hellos from one peer earn one welcome per second.
    @Test func repeatedHellosEarnOneWelcomePerInterval() throws {
        let pool = try makePool()
        for _ in 0..<5000 { try hello(pool, peer: [3], pid: 3) }
        #expect(transport.welcomes(to: [3]) == 1)
        clock.advance(1.01)
        for _ in 0..<5000 { try hello(pool, peer: [3], pid: 3) }
        #expect(transport.welcomes(to: [3]) == 2)
        #expect(pool.workers.count == 1)
    }

    /// A peer that does not read is dropped the moment its queue is full, not waited on.
    @Test func aPeerWhoseQueueIsFullIsDropped() throws {
        let pool = try makePool()
        try hello(pool, peer: [4], pid: 4)
        transport.full = [[4]]
        let w = try #require(pool.liveIndex(of: [4]))
        #expect(try !pool.send(Message(runID: 7, payload: .shutdown), to: w))
        #expect(pool.liveCount == 0)
        #expect(lines.all.last?.contains("does not read: its send queue is full") == true, "\(lines.all)")
    }

    /// Issue 14 row 11: a host name with newlines and ANSI escapes is logged escaped, on one
    /// line, and a long one is cut.
    @Test func peerStringsAreEscapedAndCutInTheLog() throws {
        let pool = try makePool()
        let host = "evil\ncoordinator: run finished\u{1b}[2J" + String(repeating: "x", count: 900)
        try hello(pool, peer: [5], host: host, pid: 5)
        let line = try #require(lines.all.first { $0.contains("joined") })
        #expect(!line.contains("\n") && !line.contains("\u{1b}"))
        #expect(line.contains("evil\\u{a}coordinator: run finished\\u{1b}[2J"))
        #expect(line.utf8.count < 400)
    }

    /// Garbage from strangers is logged the 1st, 10th, 100th… time, not each time.
    @Test func repeatedGarbageIsLoggedSparingly() throws {
        let pool = try makePool()
        for i in 0..<1000 { try pool.handleUnexpected(peer: [UInt8(i % 256)], frame: [1, 2, 3]) }
        #expect(lines.all.count == 4, "\(lines.all)")
        #expect(lines.all.last?.hasSuffix("(1000 times)") == true)
    }

    /// The socket's bounds for LeNet-5: its largest result is under 1 MB.
    @Test func limitsOfALeNetRunAreUnderOneMegabyte() throws {
        let parameters = try Architecture(try ModelZoo.spec(named: "lenet5")).parameterCount
        let limits = CoordinatorLimits.forRun(parameters: parameters, workers: 2)
        #expect(limits.maxMessageBytes == Int64(parameters * 10 + 80 + SpanCoding.capacity))
        #expect(limits.maxMessageBytes < 1_000_000)
        #expect(limits.sendQueueMessages == 10)
        #expect(CoordinatorLimits.forRun(parameters: Int.max, workers: 1).maxMessageBytes == Wire.maxMessageBytes)
        #expect(CoordinatorLimits.forRun(parameters: 10, workers: 1).maxMessageBytes == 64 << 10)
    }
}

/// A transport whose peers authenticated with CURVE keys (their ZAP user ids).
final class KeyedTransport: CoordinatorTransport {
    let inner = RecordingTransport()
    var keys: [PeerID: String] = [:]
    func send(_ message: Message, to peer: PeerID) throws -> Int { try inner.send(message, to: peer) }
    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? { nil }
    func key(of peer: PeerID) -> String? { keys[peer] }
}

@Suite struct KeyCapTests {
    /// `--max-workers-per-key 1`: a second live worker with a key already in use is refused
    /// with the reason; another key, or the same key once its worker is gone, is admitted.
    @Test func aKeyHasAtMostItsCapOfLiveWorkers() throws {
        let transport = KeyedTransport()
        transport.keys = [[1]: "keyA", [2]: "keyA", [3]: "keyB"]
        let spec = try ModelZoo.spec(named: "lenet5")
        let pool = WorkerPool(
            transport: transport, runID: 7, capacity: ClusterOptions.maxWorkers, stats: ClusterStatsRecorder(),
            welcome: { Welcome(workerID: $0, spec: spec, deterministic: true, microBatch: 8, sampleSize: 784) },
            log: { _ in })
        pool.maxWorkersPerKey = 1
        func hello(_ peer: PeerID, pid: Int32) throws {
            let frame = Message(runID: 0, payload: .hello(Hello(host: "h", pid: pid, threads: 1))).encoded()
            try pool.handleUnexpected(peer: peer, frame: frame)
        }
        try hello([1], pid: 1)
        try hello([2], pid: 2)
        try hello([3], pid: 3)
        #expect(pool.liveIndex(of: [1]) != nil && pool.liveIndex(of: [3]) != nil)
        #expect(pool.liveIndex(of: [2]) == nil)
        let refusal = transport.inner.sent.last { $0.peer == [2] }?.message.payload
        #expect(refusal == .refuse(Refusal(.worker, "key keyA has 1 live worker(s) already")))
        pool.drop(try #require(pool.liveIndex(of: [1])), because: "test")
        try hello([2], pid: 2)
        #expect(pool.liveIndex(of: [2]) != nil)
        #expect(pool.workers[try #require(pool.liveIndex(of: [2]))].key == "keyA")
    }
}
