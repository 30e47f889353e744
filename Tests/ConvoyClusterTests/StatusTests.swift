@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// `convoy status`'s messages (golden bytes, refusals), the coordinator's answers during a run
/// (who it waits on, rate limits), and live straggler naming.
@Suite(.serialized) struct StatusTests {
    static let report = StatusReport(
        phase: .training, step: 5, epoch: 2, epochs: 3, samplesPerSecond: 2, waitingSeconds: 0.5, uptimeSeconds: 1,
        workers: [
            .init(id: 1, host: "h", pid: 42, state: .computing, step: 5, seconds: 0.5, sliceMs: 2),
            .init(id: 2, host: "", pid: 7, state: .dropped, step: nil, seconds: 1, sliceMs: nil),
        ])

    func check(_ message: Message, _ golden: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(hexString(message.encoded()) == hexString(hexBytes(golden)), sourceLocation: sourceLocation)
        #expect(try Message(decoding: hexBytes(golden)) == message, sourceLocation: sourceLocation)
    }

    @Test func statusRequestGoldenBytes() throws {
        try check(
            Message(runID: 0, payload: .statusRequest),
            """
            434e5659 0500 0800 0000000000000000 0000000000000000 00000000 00000000 0000000000000000
            """)
        var extra = Message(runID: 0, payload: .statusRequest).encoded() + [0]
        extra[28] = 1
        #expect(throws: ProtocolError("1 unexpected bytes after the statusRequest payload")) {
            try Message(decoding: extra)
        }
    }

    @Test func statusGoldenBytes() throws {
        try check(
            Message(runID: 7, step: 5, payload: .status(Self.report)),
            """
            434e5659 0500 0900 0700000000000000 0500000000000000 00000000 78000000 0000000000000000
            02 0500000000000000 02000000 03000000 0000000000000040 000000000000e03f 000000000000f03f 00000000 0200
            01000000 0100 68 2a000000 01 01 0500000000000000 000000000000e03f 0000000000000040
            02000000 0000 07000000 03 00 0000000000000000 000000000000f03f 000000000000f0bf
            """)
    }

    /// Every field is checked on receipt; the reason names it.
    @Test func badStatusFieldsAreRefusedByName() {
        let frame = Message(runID: 7, step: 5, payload: .status(Self.report)).encoded()
        // Offsets: 40 phase, 65 waiting seconds, 73 uptime, 85 worker count, 87 the first worker (its state
        // at 98), 124 the second (step flag 135, step 136).
        let cases: [(Int, UInt8, String)] = [
            (40, 9, "status: message: phase: unknown phase 9"),
            (72, 0x7f, "status: message: waiting seconds: inf is not finite"),
            (86, 0x10, "status: message: worker count: 4098 is outside 0...1024"),
            (98, 4, "status: message: state: unknown state 4"),
            (135, 2, "status: message: has step: 2 is not a boolean (0 or 1)"),
        ]
        for (offset, value, reason) in cases {
            var bad = frame
            bad[offset] = value
            if offset == 72 { bad[71] = 0xf0 }  // +infinity
            #expect(throws: ProtocolError(reason)) { try Message(decoding: bad) }
        }
        var negative = frame
        negative[80] = 0xbf  // uptime −1.0
        #expect(throws: ProtocolError("status: message: uptime seconds: -1.0 is negative")) {
            try Message(decoding: negative)
        }
        var stray = frame
        stray[136] = 1  // the dropped worker's step without its flag
        #expect(throws: ProtocolError("status: message: step: 1 without its flag")) { try Message(decoding: stray) }
    }

    /// A reply lists at most `maxListed` workers and counts the rest; host names are cut to 255 bytes.
    @Test func aReplyIsBounded() throws {
        let long = String(repeating: "h", count: 2000)
        let workers = (0..<1100).map {
            StatusReport.WorkerStatus(
                id: UInt32($0 % 4096), host: long, pid: 1, state: .idle, step: 1, seconds: 0, sliceMs: 1)
        }
        var report = Self.report
        report.workers = workers
        let frame = Message(runID: 7, payload: .status(report)).encoded()
        #expect(frame.count < 300_000)
        guard case let .status(back) = try Message(decoding: frame).payload else {
            Issue.record("not a status")
            return
        }
        #expect(back.workers.count == StatusReport.maxListed)
        #expect(back.omitted == 76)
        #expect(back.workers[0].host.utf8.count == StatusReport.maxHostBytes)
    }

    @Test func theTextNamesWhomTheRoundWaitsOn() {
        let text = Self.report.text(runID: 0xab)
        #expect(text.contains("run ab: step 5, epoch 2 of 3, training"), "\(text)")
        #expect(text.contains("waiting 0.5 s for this round, on w1@h:42"), "\(text)")
        #expect(text.contains("w2@:7  dropped"), "\(text)")
        #expect(text.contains("1 live worker(s) of 2 known"), "\(text)")
    }
}

/// An in-memory cluster with a status client: `asks` requests (from `askers` peers) are
/// delivered once the step message `askAt` has gone out and the workers' answers were read.
final class StatusProbe: CoordinatorTransport {
    let cluster: InMemoryCluster
    var askAt: Int
    var askers: [PeerID] = [[200]]
    var replies: [(PeerID, Message)] = []
    private var pending: [PeerID] = []
    private var stepMessages = 0

    init(_ cluster: InMemoryCluster, askAt: Int) {
        self.cluster = cluster
        self.askAt = askAt
    }

    func send(_ message: Message, to peer: PeerID) throws -> Int {
        if askers.contains(peer) {
            replies.append((peer, message))
            return message.encoded().count
        }
        if case .step = message.payload {
            stepMessages += 1
            if stepMessages == askAt { pending = askers + askers }
        }
        return try cluster.send(message, to: peer)
    }

    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
        if !pending.isEmpty && cluster.inbox.isEmpty {
            return (pending.removeFirst(), Message(runID: 0, payload: .statusRequest).encoded())
        }
        return try cluster.receive(timeoutMs: timeoutMs)
    }
}

@Suite(.serialized) struct CoordinatorStatusTests {
    func run(_ probe: StatusProbe, workers: Int, log: @escaping (String) -> Void = { _ in }) throws -> ClusterStats {
        var options = ClusterOptions(workers: workers)
        options.stepTimeout = 0.3
        options.joinTimeout = 2
        let runner = try ClusterStepRunner(transport: probe, options: options, runID: 77, log: log)
        let session = try TrainingSession(
            config: CoordinatorTests.config, train: CoordinatorTests.train, test: CoordinatorTests.test,
            runner: runner, log: log)
        var events: [WorkerEvent] = []
        try session.run(epochDone: { _ in events += runner.takeEpochStats().events })
        var stats = runner.takeEpochStats()
        stats.events = events
        return stats
    }

    /// Worker 1 goes silent at step 2: a request then names it as the one the round waits on,
    /// worker 0 as done with the step, and is answered without disturbing the run (the silent
    /// worker is dropped at the deadline as usual). Each asker gets one answer of its two requests.
    @Test func aRequestDuringAHangNamesTheWorkerTheRoundWaitsOn() throws {
        let cluster = InMemoryCluster()
        cluster.addWorker()
        cluster.addWorker(silentAfterSteps: 2)
        let probe = StatusProbe(cluster, askAt: 6)  // step 2's second slice
        probe.askers = [[200], [201]]
        var log: [String] = []
        _ = try run(probe, workers: 2, log: { log.append($0) })
        #expect(probe.replies.map(\.0) == [[200], [201]], "one answer per peer of two requests")
        guard case let .status(report) = probe.replies.first?.1.payload else {
            Issue.record("no status reply: \(probe.replies)")
            return
        }
        #expect(probe.replies[0].1.runID == 77)
        #expect(report.phase == .training)
        #expect(report.step == 2)
        #expect(report.waitingOn.map(\.name) == ["w1@mem:1"], "\(report)")
        #expect(report.workers.map(\.state) == [.idle, .computing])
        #expect(report.workers.map(\.step) == [2, 2])
        #expect(report.workers[0].sliceMs != nil)
        #expect(log.contains { $0.contains("dropped w1@") && $0.contains("deadline") }, "\(log)")
        #expect(!log.contains { $0.contains("statusRequest") }, "a request never reaches the rounds: \(log)")
    }

    /// A worker whose slices take 50 ms against the others' few is named live, once (the
    /// report interval is longer than the run), and the epoch's events record it.
    @Test func aSlowWorkerIsNamedAStragglerLive() throws {
        let cluster = InMemoryCluster()
        for _ in 0..<3 { cluster.addWorker() }
        cluster.nodes[2].tamper = { message in
            guard case var .result(result) = message.payload else { return nil }
            result.computeSeconds = 0.05
            var slow = message
            slow.payload = .result(result)
            return slow.encoded()
        }
        var log: [String] = []
        let stats = try run(StatusProbe(cluster, askAt: 0), workers: 3, log: { log.append($0) })
        let lines = log.filter { $0.contains("straggler") }
        #expect(lines.count == 1, "\(log)")
        #expect(lines.first?.hasPrefix("w2@mem:2 is a straggler: slice time 50.0 ms, median of others ") == true)
        let events = stats.events.filter { $0.event == "straggler" }
        #expect(events.map(\.worker) == [2])
        #expect(events.first?.reason?.hasPrefix("slice time 50.0 ms") == true)
    }
}

@Suite struct StragglerWatchTests {
    @Test func namesAWorkerFarAboveTheOthersMedianAtMostOncePerInterval() {
        let watch = StragglerWatch()
        var time = ContinuousClock.now
        watch.now = { time }
        var lines: [String] = []
        watch.log = { lines.append($0) }
        watch.name = { "w\($0)@h:1" }
        for _ in 0..<3 {
            watch.record(worker: 0, ms: 10)
            watch.record(worker: 1, ms: 12)
            watch.record(worker: 2, ms: 30)
        }
        #expect(lines == ["w2@h:1 is a straggler: slice time 30.0 ms, median of others 11.0 ms (2.7×)"])
        watch.record(worker: 2, ms: 30)
        #expect(lines.count == 1, "rate-limited")
        time += .seconds(StragglerWatch.reportInterval)
        #expect(watch.record(worker: 2, ms: 30) != nil)
        #expect(lines.count == 2)
    }

    @Test func smallOrRareDifferencesAreNotStragglers() {
        let watch = StragglerWatch()
        // 2.5× but only 3 ms over: jitter of tiny slices.
        for _ in 0..<5 {
            #expect(watch.record(worker: 0, ms: 2) == nil)
            #expect(watch.record(worker: 1, ms: 5) == nil)
        }
        // One slow slice among fast ones does not move a median of nine.
        let other = StragglerWatch()
        for i in 0..<9 {
            #expect(other.record(worker: 0, ms: 10) == nil)
            #expect(other.record(worker: 1, ms: i == 4 ? 500 : 10) == nil)
        }
        // A new process under the same number starts afresh.
        other.forget(1)
        #expect(other.medianMs(of: 1) == nil)
        #expect(other.medianMs(of: 0) == 10)
    }
}

@Suite struct SlowFaultTests {
    @Test func slowParsesWithinItsRange() {
        #expect(FaultInjection(spec: "slow:40")?.trigger == .slow(milliseconds: 40))
        for bad in ["slow:0", "slow:60001", "slow:-1", "slow:x", "slow"] { #expect(FaultInjection(spec: bad) == nil) }
    }

    /// The first bucket of a slice waits and says so in its compute time; the next bucket of
    /// the same slice (measured from the step's arrival, so already including the wait) does not.
    @Test func aSliceIsDelayedOnce() {
        let fault = FaultInjection(.slow(milliseconds: 30))
        func bucket(_ seconds: Double) -> Message {
            Message(
                runID: 1, step: 4,
                payload: .result(
                    StepResult(
                        slice: 0, count: 1, correct: 0, lossSum: 0, computeSeconds: seconds,
                        gradient: .fixedPoint([1]))))
        }
        let started = ContinuousClock.now
        let first = fault.apply(bucket(0.01), log: { _ in })
        #expect((ContinuousClock.now - started) >= .milliseconds(30))
        guard case let .result(head) = first.payload else {
            Issue.record("not a result")
            return
        }
        #expect(abs(head.computeSeconds - 0.04) < 1e-9)
        #expect(fault.apply(bucket(0.05), log: { _ in }) == bucket(0.05))
    }
}

/// The service alone, over a scripted transport: limits and the SIGUSR1 flag.
@Suite struct StatusServiceTests {
    final class Scripted: CoordinatorTransport {
        var incoming: [(PeerID, [UInt8])] = []
        var sent: [(PeerID, Message)] = []
        func send(_ message: Message, to peer: PeerID) throws -> Int {
            sent.append((peer, message))
            return 1
        }
        func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
            incoming.isEmpty ? nil : incoming.removeFirst()
        }
    }

    /// 60 peers asking within one second get 50 answers; a second later, answers resume.
    /// Other frames pass through untouched.
    @Test func answersAreCappedPerSecondAndOtherFramesPassThrough() throws {
        let inner = Scripted()
        let service = StatusService(inner, runID: 9)
        var time = ContinuousClock.now
        service.now = { time }
        let request = Message(runID: 0, payload: .statusRequest).encoded()
        inner.incoming = (0..<60).map { ([UInt8($0)], request) }
        let hello = Message(runID: 0, payload: .hello(Hello(host: "h", pid: 1, threads: 1))).encoded()
        inner.incoming.append(([99], hello))
        let passed = try service.receive(timeoutMs: 10)
        #expect(passed?.peer == [99] && passed?.frame == hello)
        #expect(inner.sent.count == StatusService.maxRepliesPerSecond)
        #expect(inner.sent.allSatisfy { $0.1.runID == 9 })
        time += .seconds(1)
        inner.incoming = [([0], request)]
        #expect(try service.receive(timeoutMs: 10) == nil)
        #expect(inner.sent.count == StatusService.maxRepliesPerSecond + 1)
    }

    @Test func theSignalFlagPrintsTheStatusAtTheNextPoll() throws {
        let service = StatusService(Scripted(), runID: 0x1f)
        var raised = true
        var printed: [String] = []
        service.signalled = {
            defer { raised = false }
            return raised
        }
        service.print = { printed.append($0) }
        _ = try service.receive(timeoutMs: 1)
        _ = try service.receive(timeoutMs: 1)
        #expect(printed.count == 1)
        #expect(printed.first?.hasPrefix("run 1f: step 0, waiting for workers") == true, "\(printed)")
    }
}
