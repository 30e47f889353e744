@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// A coordinator played by a script, on a virtual clock: each receive advances time by its
/// timeout unless the script answers, so back-off and silences are exact and instant.
final class ScriptedWorkerTransport: WorkerTransport {
    let start = ContinuousClock.now
    lazy var time = start
    /// What the worker sent, with the virtual time of each send.
    var sent: [(time: Double, message: Message)] = []
    /// Called at each receive with the virtual seconds since the start; a frame to deliver, or nil.
    var script: (ScriptedWorkerTransport, Double) -> [UInt8]? = { _, _ in nil }

    var seconds: Double { start.duration(to: time).inSeconds }
    var hellos: [Double] { sent.filter { if case .hello = $0.message.payload { true } else { false } }.map(\.time) }

    func send(_ frame: [UInt8], dontWait: Bool) throws -> Bool {
        sent.append((seconds, try Message(decoding: frame)))
        return true
    }

    func receive(timeoutMs: Int) throws -> [[UInt8]]? {
        if let frame = script(self, seconds) { return [frame] }
        time = time.advanced(by: .milliseconds(timeoutMs))
        return nil
    }
}

@Suite struct WorkerLoopTests {
    static func loop(_ transport: ScriptedWorkerTransport) -> WorkerLoop {
        var loop = WorkerLoop(endpoint: "tcp://test:1", log: { _ in })
        loop.timing.connectTimeout = 30
        loop.timing.idleTimeout = 20
        loop.now = { transport.time }
        return loop
    }

    static func welcome(run: UInt64) -> [UInt8] {
        Message(
            runID: run, workerID: 0,
            payload: .welcome(
                Welcome(
                    workerID: 0, spec: ModelZoo.lenet5, deterministic: true,
                    microBatch: 8, sampleSize: 784))
        ).encoded()
    }

    /// With nobody answering, hellos back off 0.1, 0.2, 0.4 … up to 5 s apart, and the worker
    /// gives up after its connect timeout with the endpoint named.
    @Test func helloBacksOffUntilTheConnectTimeout() throws {
        let transport = ScriptedWorkerTransport()
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        #expect(throws: ClusterError.noCoordinator(endpoint: "tcp://test:1", seconds: 30, curve: false)) {
            try Self.loop(transport).run(core, over: transport)
        }
        let gaps = zip(transport.hellos.dropFirst(), transport.hellos).map { $0 - $1 }
        // Each gap is the interval rounded up to the 200 ms poll.
        #expect(gaps.prefix(6).map { ($0 * 10).rounded() / 10 } == [0.2, 0.2, 0.4, 0.8, 1.6, 3.2])
        #expect(gaps.dropFirst(6).allSatisfy { abs($0 - 5) < 0.21 }, "\(gaps)")
        #expect(transport.hellos.last! > 29 && transport.hellos.last! < 31.5)
    }

    /// A joined worker whose coordinator goes quiet says hello again every 2 s; a restarted
    /// coordinator (a new run) welcomes it, and its shutdown ends the loop, acknowledged.
    @Test func aQuietCoordinatorGetsHelloAgainAndARestartedOneTakesTheWorkerBack() throws {
        let transport = ScriptedWorkerTransport()
        var delivered = Set<String>()
        transport.script = { transport, now in
            let due: [(String, Double, [UInt8])] = [
                ("first welcome", 0.1, Self.welcome(run: 7)),
                ("second welcome", 9, Self.welcome(run: 8)),
                ("shutdown", 10, Message(runID: 8, payload: .shutdown).encoded()),
            ]
            guard let next = due.first(where: { !delivered.contains($0.0) }), now >= next.1 else { return nil }
            delivered.insert(next.0)
            return next.2
        }
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        try Self.loop(transport).run(core, over: transport)
        #expect(core.runID == 8)
        let rehellos = transport.hellos.filter { $0 > 1 }
        // Silent from 0.2 s: hellos at ~2.2 s, then every 2 s until the new run's welcome at 9 s.
        #expect(rehellos.count == 4, "\(transport.hellos)")
        #expect(zip(rehellos.dropFirst(), rehellos).allSatisfy { abs($0 - $1 - 2) < 0.21 })
        guard case .shutdown = transport.sent.last?.message.payload else {
            Issue.record("the shutdown was not acknowledged: \(transport.sent.map(\.message.payload.type))")
            return
        }
    }

    /// A joined worker gives up after its idle timeout of silence, naming the coordinator.
    @Test func aSilentCoordinatorEndsTheWorkerAfterTheIdleTimeout() throws {
        let transport = ScriptedWorkerTransport()
        var welcomed = false
        transport.script = { _, _ in
            if welcomed { return nil }
            welcomed = true
            return Self.welcome(run: 3)
        }
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        #expect(throws: ClusterError.coordinatorSilent(endpoint: "tcp://test:1", seconds: 20)) {
            try Self.loop(transport).run(core, over: transport)
        }
        #expect(transport.seconds > 20 && transport.seconds < 20.5)
    }

    /// A coordinator's refusal ends the worker with the reason.
    @Test func aRefusalEndsTheWorkerWithTheReason() throws {
        let transport = ScriptedWorkerTransport()
        transport.script = { _, _ in
            Message(runID: 0, payload: .refuse(Refusal(.worker, "the cluster is full"))).encoded()
        }
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        #expect(throws: ClusterError.runRefused(reason: "refused by the coordinator: the cluster is full")) {
            try Self.loop(transport).run(core, over: transport)
        }
    }
}
