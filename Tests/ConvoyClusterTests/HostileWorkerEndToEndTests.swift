@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// A convoy process whose stderr is read as it runs; killed by PID if still running when
/// dropped (a test that fails never leaves a child behind).
final class RunningConvoy: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var errorText = ""
    private var outputText = ""

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: convoyBinary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            self?.lock.withLock { self?.outputText += text }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            self?.lock.withLock { self?.errorText += text }
        }
        try process.run()
    }

    deinit { stop() }

    /// Ends the process by its PID, if it still runs.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var stderr: String { lock.withLock { errorText } }
    var stdout: String { lock.withLock { outputText } }

    /// The text after `prefix` on the first stderr line holding it, waiting up to `timeout`.
    func line(after prefix: String, timeout: Double) -> String? {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            for line in stderr.split(separator: "\n") {
                if let range = line.range(of: prefix) { return String(line[range.upperBound...]) }
            }
            usleep(20_000)
        }
        return nil
    }

    /// Waits up to `timeout` for the exit; killed by PID past it (and nil returned).
    func wait(timeout: Double) -> (status: Int32, signalled: Bool)? {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        usleep(100_000)  // the last pipe reads
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }
}

/// A real ZeroMQ transport whose result frames are rewritten after the first `honest` ones:
/// an authorized worker that computes honestly but sends well-formed, impossible numbers.
final class TamperingTransport: WorkerTransport, @unchecked Sendable {
    let inner: ZMQWorkerTransport
    let honest: Int
    let corrupt: (inout StepResult) -> Void
    private var results = 0

    init(endpoint: String, honest: Int, corrupt: @escaping (inout StepResult) -> Void) throws {
        inner = try ZMQWorkerTransport(endpoint: endpoint, curve: nil)
        self.honest = honest
        self.corrupt = corrupt
    }

    func send(_ frame: [UInt8], dontWait: Bool) throws -> Bool {
        guard var message = try? Message(decoding: frame), case var .result(result) = message.payload,
            result.gradient != .none
        else { return try inner.send(frame, dontWait: dontWait) }
        results += 1
        if results > honest {
            corrupt(&result)
            message.payload = .result(result)
        }
        return try inner.send(message.encoded(), dontWait: dontWait)
    }

    func receive(timeoutMs: Int) throws -> [[UInt8]]? { try inner.receive(timeoutMs: timeoutMs) }
}

@Suite(.serialized) struct HostileWorkerEndToEndTests {
    static let quick = EndToEndTests.quick

    func checksum(_ path: String) throws -> String { try EndToEndTests().checksum(path) }

    /// A coordinator (the real binary), one honest `convoy worker` and one hostile worker in
    /// this process, over real ZeroMQ: the hostile one is dropped by name each time it sends
    /// an impossible result, and the run ends with the undisturbed run's checksum, exit 0,
    /// no signal — with `--json` too (a loss sum of 1.7e308 used to overflow to Inf and trap
    /// in the JSON encoder).
    @Test(arguments: [("loss sum", true), ("fixed-point sum", false), ("compute seconds", true)])
    func aHostileWorkerIsDroppedByNameAndTheRunEndsWithTheUndisturbedChecksum(kind: String, json: Bool) throws {
        let dir = NSTemporaryDirectory() + "convoy-hostile-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let train = try runConvoy(["train", "--out", dir + "/train.convoy"] + Self.quick)
        #expect(train.status == 0, "\(train.stderr)")
        let reference = try checksum(dir + "/train.convoy")

        let coordinator = try RunningConvoy(
            [
                "coordinator", "--bind", "tcp://127.0.0.1:*", "--workers", "2", "--step-timeout", "30",
                "--out", dir + "/cluster.convoy",
            ] + (json ? ["--json"] : []) + Self.quick)
        let endpoint = try #require(coordinator.line(after: "listening on ", timeout: 60), "\(coordinator.stderr)")
        let worker = try RunningConvoy(["worker", "--connect", endpoint, "--idle-timeout", "30"])
        // Never honest: the test process's BLAS need not be the worker binary's, so any
        // result of it that counted could change the last bits.
        let transport = try TamperingTransport(endpoint: endpoint, honest: 0) { result in
            switch kind {
            case "loss sum": result.lossSum = 1.7e308
            case "compute seconds": result.computeSeconds = 1.7e308
            default:
                guard case var .fixedPoint(values) = result.gradient else { return }
                values[0] = 1 << 60
                result.gradient = .fixedPoint(values)
            }
        }
        let hostileDone = DispatchSemaphore(value: 0)
        let hostileThread = Thread {
            let core = WorkerCore(hello: Hello(host: "hostile", pid: 4242, threads: 1))
            var loop = WorkerLoop(endpoint: endpoint, log: { _ in })
            loop.timing.idleTimeout = 10
            loop.timing.connectTimeout = 60
            try? loop.run(core, over: transport)
            hostileDone.signal()
        }
        hostileThread.start()
        let ended = coordinator.wait(timeout: 300)
        _ = worker.wait(timeout: 30)
        _ = hostileDone.wait(timeout: .now() + 30)
        transport.inner.close()

        let status = try #require(ended, "the coordinator ran past 300 s: \(coordinator.stderr)")
        #expect(status.status == 0 && !status.signalled, "\(coordinator.stderr)")
        #expect(
            coordinator.stderr.contains("dropped w") && coordinator.stderr.contains("@hostile:4242: it ")
                && coordinator.stderr.contains("sent a bad result"), "\(coordinator.stderr)")
        if json {
            let lines = coordinator.stdout.split(separator: "\n")
            #expect(lines.count == 2, "\(coordinator.stdout)")
            for line in lines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect((object?["loss"] as? Double)?.isFinite == true, "\(line)")
            }
        }
        let cluster = try checksum(dir + "/cluster.convoy")
        #expect(cluster == reference, "\(kind): \(cluster) vs \(reference): \(coordinator.stderr)")
    }

    /// `--init gaussian:1e300` gives infinite weights: `local` ends with the reason before its
    /// first step deadline, never cycling drop → re-admit.
    @Test func infiniteInitialWeightsEndALocalRunWithTheReason() throws {
        let started = ContinuousClock.now
        let result = try runConvoy(
            ["local", "--workers", "2", "--init", "gaussian:1e300"] + Self.quick, timeout: 120)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("weight 0 is") && result.stderr.contains("before step 0"), "\(result.stderr)")
        #expect(started.duration(to: .now) < .seconds(60))
    }

    /// A step deadline no slice can meet stops the run with the reason after a few deadlines
    /// instead of dropping and re-admitting the workers forever; an absurd one is refused.
    @Test func anImpossibleStepDeadlineStopsTheRun() throws {
        // Slices of 1,024 samples: far more than the shortest deadline (10 ms) allows.
        let coordinatorFlags =
            ["coordinator", "--bind", "tcp://127.0.0.1:*", "--workers", "2"] + Self.quick
            + ["--batch", "2048", "--train-samples", "4096"]
        let refused = try runConvoy(coordinatorFlags + ["--step-timeout", "1e-300"], timeout: 60)
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains("--step-timeout 1e-300: must be in \(ClusterOptions.secondsText) seconds"),
            "\(refused.stderr)")

        let coordinator = try RunningConvoy(coordinatorFlags + ["--step-timeout", "0.01"])
        let endpoint = try #require(coordinator.line(after: "listening on ", timeout: 60), "\(coordinator.stderr)")
        let workers = try (0..<2).map { _ in
            try RunningConvoy(["worker", "--connect", endpoint, "--idle-timeout", "30"])
        }
        let ended = coordinator.wait(timeout: 120)
        // The coordinator stopped with an error and told its workers why: they end at once
        // with its reason, well before their 30 s idle timeout.
        for worker in workers {
            let exit = worker.wait(timeout: 15)
            worker.stop()
            #expect(exit?.status == 1 && exit?.signalled == false, "\(worker.stderr)")
            #expect(worker.stderr.contains("the run failed: no worker finished a slice"), "\(worker.stderr)")
        }
        let status = try #require(ended, "the coordinator cycled past 120 s: \(coordinator.stderr)")
        #expect(status.status == 1 && !status.signalled, "\(coordinator.stderr)")
        #expect(
            coordinator.stderr.contains("no worker finished a slice of step 0 within the 0.01 s step deadline"),
            "\(coordinator.stderr)")
    }
}
