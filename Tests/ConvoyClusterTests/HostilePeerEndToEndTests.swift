import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

/// A convoy process started in the background, its stderr in a file; ended by PID.
final class BackgroundConvoy {
    let process = Process()
    let stderrPath: String

    init(_ arguments: [String], stderrPath: String) throws {
        self.stderrPath = stderrPath
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: convoyBinary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits up to `seconds` for `text` in its stderr; the line holding it, or nil.
    func waitFor(_ text: String, seconds: Double) -> String? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let line = stderr.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            usleep(50_000)
        }
        return nil
    }

    /// Waits up to `seconds` for it to exit; kills it (by PID) past that.
    func wait(seconds: Double) -> Int32? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while process.isRunning && ContinuousClock.now < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Issue 14 rows 1 and 11 against the built binary: a peer that floods a coordinator with
/// hellos and never reads, its host name full of newlines and ANSI escapes.
@Suite(.serialized) struct HostilePeerEndToEndTests {
    static let flags = [
        "--epochs", "1", "--train-samples", "3200", "--test-samples", "200", "--seed", "11", "--data", mnistDirectory,
    ]

    func checksum(_ path: String) throws -> String {
        let result = try runConvoy([
            "evaluate", "--model-file", path, "--test-samples", "200", "--data", mnistDirectory, "--json",
        ])
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return json?["parameter_checksum"] as? String ?? "missing: \(result.stderr)"
    }

    @Test func aHelloFloodThatNeverReadsLeavesTheRunAndItsResultAlone() throws {
        let dir = NSTemporaryDirectory() + "convoy-flood-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reference = try runConvoy(["train", "--out", dir + "/train.convoy", "--json"] + Self.flags)
        #expect(reference.status == 0, "\(reference.stderr)")

        let coordinator = try BackgroundConvoy(
            [
                "coordinator", "--bind", "tcp://127.0.0.1:*", "--workers", "2", "--step-timeout", "3",
                "--join-timeout", "60", "--out", dir + "/flood.convoy",
            ] + Self.flags, stderrPath: dir + "/coordinator.log")
        var processes = [coordinator]
        defer { for process in processes { process.stop() } }
        let listening = try #require(coordinator.waitFor("listening on ", seconds: 60))
        let endpoint = String(listening.split(separator: " ").last ?? "")
        for i in 0..<2 {
            processes.append(
                try BackgroundConvoy(
                    ["worker", "--connect", endpoint, "--idle-timeout", "60"], stderrPath: dir + "/worker\(i).log"))
        }
        #expect(coordinator.waitFor("joined (2 live)", seconds: 60) != nil)

        // The flood: hellos as fast as they go, for the whole run, from a peer that never
        // reads (before the fix every hello was answered with a blocking send of a welcome:
        // the coordinator froze once the peer's queue was full).
        let context = ZMQContext()
        let flood = try ZMQSocket(context: context, kind: .dealer)
        try flood.setOption(24 /* ZMQ_RCVHWM */, int32: 1)
        try flood.setOption(12 /* ZMQ_RCVBUF */, int32: 4096)
        try flood.connect(endpoint)
        defer {
            flood.close()
            context.terminate()
        }
        let host = "flood\ncoordinator: run finished\u{1b}[31m"
        let hello = Message(runID: 0, payload: .hello(Hello(host: host, pid: 4242, threads: 1))).encoded()
        var hellos = 0
        let deadline = ContinuousClock.now + .seconds(180)
        while coordinator.process.isRunning && ContinuousClock.now < deadline {
            for _ in 0..<100 where try flood.send([hello], dontWait: true) { hellos += 1 }
            usleep(10_000)
        }
        #expect(hellos > 5000)
        let status = coordinator.wait(seconds: 1)
        #expect(status == 0, "\(coordinator.stderr)")
        #expect(try checksum(dir + "/flood.convoy") == checksum(dir + "/train.convoy"))
        let log = coordinator.stderr
        // The flood was admitted as a worker and dropped, each time with a longer back-off.
        let drops = log.split(separator: "\n").filter { $0.contains("dropped w") && $0.contains(":4242: it ") }
        #expect(!drops.isEmpty && drops.count <= 6, "\(drops)")
        #expect(log.contains("flood\\u{a}coordinator: run finished\\u{1b}[31m"), "\(log)")
        #expect(!log.contains("\u{1b}"))
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("coordinator: run finished") })
        #expect(log.split(separator: "\n").allSatisfy { $0.utf8.count <= 8192 })
    }
}
