@testable import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real `convoy worker` process against a hostile "coordinator": a raw ROUTER socket in
/// this test that answers the worker's hello with absurd welcomes (issue 14, row 5). Each
/// worker must refuse with a line and end by itself, never by a signal, with a peak
/// resident size (the kernel's `VmHWM`) under 512 MiB.
@Suite(.serialized) struct HostileCoordinatorTests {
    /// A child process started with posix_spawn and reaped with `wait4`. Its peak memory is
    /// sampled from /proc/PID/status (`VmHWM`) from its start to its end, once it runs convoy:
    /// `ru_maxrss` would not do, since a vfork-style spawn carries this test process's
    /// high-water mark into the child, and so does the status of the child before its exec.
    struct Child {
        let pid: pid_t
        let logPath: String
        let sampler: PeakSampler
    }

    final class PeakSampler: @unchecked Sendable {
        private let lock = NSLock()
        private var highest = 0
        private let finished = DispatchSemaphore(value: 0)

        init(pid: pid_t) {
            Thread.detachNewThread { [self] in
                // Until the process is gone or a zombie (no VmHWM any more).
                while let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
                    let lines = status.split(separator: "\n")
                    guard let line = lines.first(where: { $0.hasPrefix("VmHWM:") }) else { break }
                    if lines.contains("Name:\tconvoy"),
                        let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
                    {
                        lock.withLock { highest = max(highest, kib) }
                    }
                    usleep(1_000)
                }
                finished.signal()
            }
        }

        var peakKiB: Int { lock.withLock { highest } }
        /// After the child is reaped.
        func finish() -> Int {
            finished.wait()
            return peakKiB
        }
    }

    struct SpawnError: Error { let code: Int32 }

    struct Ending {
        let status: Int32?
        let signal: Int32?
        let peakKiB: Int
        let log: String
    }

    static func spawnWorker(endpoint: String, logPath: String, extra: [String] = []) throws -> Child {
        let arguments =
            [
                convoyBinary, "worker", "--connect", endpoint, "--connect-timeout", "60", "--idle-timeout", "60",
                "--max-memory", "256M",
            ] + extra
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, convoyBinary, &actions, nil, &argv, environ)
        guard rc == 0 else { throw SpawnError(code: rc) }
        return Child(pid: pid, logPath: logPath, sampler: PeakSampler(pid: pid))
    }

    /// Waits for the child to end by itself within `timeout` s (else kills it by PID and
    /// records a failure); its exit status or signal and peak resident KiB.
    static func wait(_ child: Child, timeout: Double = 60) -> Ending {
        var status: Int32 = 0
        var usage = rusage()
        let deadline = ContinuousClock.now.advanced(by: .seconds(timeout))
        while wait4(child.pid, &status, WNOHANG, &usage) == 0 {
            if ContinuousClock.now > deadline {
                Issue.record("worker \(child.pid) still running after \(timeout) s")
                kill(child.pid, SIGKILL)
                _ = wait4(child.pid, &status, 0, &usage)
                break
            }
            usleep(2_000)
        }
        let log = (try? String(contentsOfFile: child.logPath, encoding: .utf8)) ?? ""
        let signaled = status & 0x7f != 0 && status & 0x7f != 0x7f
        return Ending(
            status: signaled ? nil : (status >> 8) & 0xff, signal: signaled ? status & 0x7f : nil,
            peakKiB: child.sampler.finish(), log: log)
    }

    /// The next message on the ROUTER within `timeout` s: the peer and the decoded message.
    static func receive(_ router: ZMQSocket, timeout: Int = 60_000) throws -> ([UInt8], Message)? {
        guard let frames = try router.receive(timeoutMs: timeout), frames.count == 2 else { return nil }
        return (frames[0], try Message(decoding: frames[1]))
    }

    static func welcomeFrame(_ layers: [LayerSpec], input: Shape = Shape(1, 28, 28), microBatch: Int = 8) -> [UInt8] {
        let spec = NetworkSpec(name: "hostile", inputShape: input, layers: layers)
        let welcome = Welcome(
            workerID: 0, spec: spec, deterministic: true, microBatch: microBatch,
            sampleSize: min(input.checkedCount ?? 784, Wire.maxSampleSize))
        return Message(runID: 77, payload: .welcome(welcome)).encoded()
    }

    /// Every absurd welcome: the decoder's bounds, impossible shapes, and models past the memory bound.
    static let hostileWelcomes: [(String, [UInt8], String)] = [
        ("micro-batch 0", welcomeFrame([.flatten, .dense(outputs: 10)], microBatch: 0), "micro-batch"),
        (
            "micro-batch 2^32-1", welcomeFrame([.flatten, .dense(outputs: 10)], microBatch: Int(UInt32.max)),
            "micro-batch"
        ),
        ("Dense of 2^32-1 outputs", welcomeFrame([.flatten, .dense(outputs: Int(UInt32.max))]), "outputs"),
        ("1e9 channels", welcomeFrame([.conv2d(1_000_000_000, kernel: 5)]), "output channels"),
        ("input of 2^72 values", welcomeFrame([.flatten], input: Shape(1 << 24, 1 << 24, 1 << 24)), "input shape"),
        ("stride 0", welcomeFrame([.conv2d(6, kernel: 5, stride: 0)]), "stride"),
        ("kernel larger than the input", welcomeFrame([.conv2d(6, kernel: 29)]), "larger than the padded input"),
        (
            "Dense of 2^36 weights", welcomeFrame([.flatten, .dense(outputs: 1 << 20)], input: Shape(1, 256, 256)),
            "more than this worker's bound"
        ),
        (
            "micro-batches of 2^36 inputs", welcomeFrame([.flatten], input: Shape(1, 1024, 1024), microBatch: 65_536),
            "more than this worker's bound"
        ),
        (
            "2^20 channels of 256x256 kernels",
            welcomeFrame([.conv2d(1 << 20, kernel: 256)], input: Shape(1, 256, 256)),
            "more than this worker's bound"
        ),
        ("a truncated welcome", Array(welcomeFrame([.flatten, .dense(outputs: 10)]).dropLast(3)), "payload length"),
    ]

    /// A temporary directory for the workers' logs and a ROUTER bound on loopback, both gone
    /// after `body`.
    static func withRouter(_ body: (String, ZMQSocket) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "convoy-hostile-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let context = ZMQContext()
        let router = try ZMQSocket(context: context, kind: .router)
        defer {
            router.close()
            context.terminate()
        }
        try router.bind("tcp://127.0.0.1:*")
        try body(dir, router)
    }

    /// The reason of the next `refuse` the worker sends; other messages (later hellos, sent
    /// before the welcome arrived) are skipped. Nil after 30 s without one.
    static func nextRefusal(_ router: ZMQSocket) throws -> String? {
        while let (_, reply) = try receive(router, timeout: 30_000) {
            if case let .refuse(refusal) = reply.payload { return refusal.reason }
        }
        return nil
    }

    @Test func aWorkerRefusesEveryAbsurdWelcomeWithoutDyingOrGrowing() throws {
        try Self.withRouter { dir, router in try refuseEveryAbsurdWelcome(dir: dir, router: router) }
    }

    private func refuseEveryAbsurdWelcome(dir: String, router: ZMQSocket) throws {
        for (index, (name, frame, words)) in Self.hostileWelcomes.enumerated() {
            let child = try Self.spawnWorker(endpoint: router.lastEndpoint, logPath: "\(dir)/\(index).log")
            var refusal: String?
            if let (peer, hello) = try Self.receive(router), case .hello = hello.payload {
                try router.send([peer, frame])
                refusal = try Self.nextRefusal(router)
            } else {
                Issue.record("\(name): no hello from the worker")
            }
            let ending = Self.wait(child)
            #expect(refusal?.contains(words) == true, "\(name): refusal \(refusal ?? "none"); log: \(ending.log)")
            #expect(ending.signal == nil, "\(name): the worker died by signal \(ending.signal ?? 0): \(ending.log)")
            #expect(ending.status == 1, "\(name): exit status \(String(describing: ending.status))")
            #expect(ending.peakKiB > 0 && ending.peakKiB < 512 * 1024, "\(name): peak \(ending.peakKiB) KiB")
            let lines = ending.log.split(separator: "\n").filter { $0.contains("cannot build the model") }
            #expect(lines.count == 1 && lines.allSatisfy { $0.utf8.count < 8192 }, "\(name): \(ending.log)")
        }
    }

    /// A real run's welcome, then a step larger than that run can legitimately send: refused
    /// unread, the worker goes on and leaves cleanly at shutdown, still under 512 MiB.
    @Test func anOversizedStepIsRefusedAndTheWorkerStays() throws {
        try Self.withRouter { dir, router in try refuseAnOversizedStep(dir: dir, router: router) }
    }

    private func refuseAnOversizedStep(dir: String, router: ZMQSocket) throws {
        let child = try Self.spawnWorker(endpoint: router.lastEndpoint, logPath: "\(dir)/worker.log")
        let lenet = Welcome(workerID: 0, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
        guard let (peer, _) = try Self.receive(router) else {
            Issue.record("no hello")
            kill(child.pid, SIGKILL)
            _ = Self.wait(child)
            return
        }
        try router.send([peer, Message(runID: 5, payload: .welcome(lenet)).encoded()])
        // Weights and 65,537 samples: one more than any step may carry (51.7 MB, within the
        // connection's 64 MiB limit, past the run's largest step).
        let samples = Wire.maxSamples + 1
        var oversized = ByteWriter(capacity: 40 + 20 + 4 * 61_706 + samples * 785)
        oversized.append(bytes: Message(runID: 5, step: 1, payload: .shutdown).encoded())
        oversized.patch(UInt32(Wire.version) | UInt32(MessageType.step.rawValue) << 16, at: 4)
        for value in [0, 2, samples, 784, 61_706] { oversized.append(UInt32(value)) }
        oversized.append(bytes: [UInt8](repeating: 0, count: 4 * 61_706 + samples * 785))
        oversized.patch(UInt32(oversized.bytes.count - 40), at: 28)
        try router.send([peer, oversized.bytes])
        let reason = try Self.nextRefusal(router)
        #expect(reason?.contains("larger than") == true, "\(String(describing: reason))")
        // Past the refusal, the peak is behind us: read it while the worker still waits.
        let peak = child.sampler.peakKiB
        try router.send([peer, Message(runID: 5, payload: .shutdown).encoded()])
        let ending = Self.wait(child)
        #expect(ending.signal == nil && ending.status == 0, "\(ending.log)")
        #expect(peak > 0 && max(peak, ending.peakKiB) < 512 * 1024, "peak \(peak) KiB")
        // The kernel's peak of a process of its own stays within the estimate the worker logged.
        let estimate = ending.log.split(separator: "memory about ").dropFirst().first?.split(separator: " ").first
        let estimateMiB = try #require(estimate.flatMap { Double($0) }, "\(ending.log)")
        #expect(
            Double(max(peak, ending.peakKiB)) / 1024 <= estimateMiB, "peak \(peak) KiB, estimated \(estimateMiB) MiB")
        #expect(ending.log.contains("joined run 5") && ending.log.contains("larger than"), "\(ending.log)")
    }

    /// `--max-memory` values that are not sizes, or too small for a worker, get one line.
    @Test func badMemoryBoundsAreOneLine() throws {
        for (value, words) in [("12X", "not a size"), ("nan", "not a size"), ("0", "not a size"), ("1M", "below")] {
            let result = try runConvoy(
                ["worker", "--connect", "tcp://127.0.0.1:9", "--max-memory", value], timeout: 30)
            let lines = result.stderr.split(separator: "\n")
            #expect(result.status != 0 && lines.count == 1, "\(value): \(result.stderr)")
            #expect(lines.first?.contains("--max-memory") == true && result.stderr.contains(words), "\(result.stderr)")
        }
    }
}
