import ConvoyEngine
import Foundation
import Testing

/// The built `convoy` binary, run as a user would. It sits next to the test bundle.
let convoyBinary: String = {
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundleDirectory, bundleDirectory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("convoy").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return repositoryRoot.appendingPathComponent(".build/release/convoy").path
}()

struct RunResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs convoy with a time limit; a run past it is killed by PID and fails the test.
func runConvoy(_ arguments: [String], timeout: Double = 240, directory: String? = nil) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: convoyBinary)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain both pipes while waiting, so a chatty child never blocks on a full pipe.
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        outData = out.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        Issue.record("convoy \(arguments.joined(separator: " ")) ran past \(timeout) s")
    }
    process.waitUntilExit()
    group.wait()
    return RunResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// Starts convoy in the background with its stderr in `log` (none: discarded) and `environment`
/// added to the test's; the caller ends it by PID.
func startConvoy(_ arguments: [String], log: String? = nil, environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: convoyBinary)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let log {
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    } else {
        process.standardError = FileHandle.nullDevice
    }
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return process
}

@Suite(.serialized) struct EndToEndTests {
    static let quick = [
        "--epochs", "2", "--train-samples", "640", "--test-samples", "200", "--seed", "3", "--data", mnistDirectory,
    ]

    func checksum(_ path: String) throws -> String {
        let result = try runConvoy([
            "evaluate", "--model-file", path, "--test-samples", "200", "--data", mnistDirectory, "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return json?["parameter_checksum"] as? String ?? "missing"
    }

    /// The reproducibility promise (README): `convoy train`, `convoy local` with 1, 2 and 3
    /// worker processes, and one worker with two
    /// compute slots end with bit-identical weights, over either transport.
    @Test func trainAndLocalClustersSaveBitIdenticalModels() throws {
        let dir = NSTemporaryDirectory() + "convoy-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let single = try runConvoy(["train", "--out", dir + "/train.convoy", "--json"] + Self.quick)
        #expect(single.status == 0, "\(single.stderr)")
        let reference = try checksum(dir + "/train.convoy")
        let referenceBytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/train.convoy"))
        // N worker processes, and one process with two compute slots (per-host aggregation),
        // over shared memory (local's default) and once over ZeroMQ.
        for (n, slots, transport) in [(1, 1, "shm"), (2, 1, "shm"), (3, 1, "shm"), (1, 2, "shm"), (2, 1, "zmq")] {
            let path = dir + "/local\(n)x\(slots)-\(transport).convoy"
            let result = try runConvoy(
                ["local", "--workers", String(n), "--slots", String(slots), "--transport", transport, "--out", path]
                    + ["--json"] + Self.quick)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n")
            #expect(lines.count == 2, "one JSON object per epoch: \(result.stdout)")
            #expect(try checksum(path) == reference, "\(n) workers × \(slots) slots over \(transport)")
            // Reproducible files, not only weights: the same bytes (sha256sum agrees).
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: path)) == referenceBytes,
                "model file bytes differ: \(n) workers × \(slots) slots over \(transport)")
        }
        // And the files load as models with sensible accuracy.
        let evaluation = try runConvoy([
            "evaluate", "--model-file", dir + "/local2x1-shm.convoy", "--test-samples", "200", "--data", mnistDirectory,
        ])
        #expect(evaluation.stdout.contains("confusion matrix"))
    }

    @Test(arguments: [
        (["train", "--epochs", "0"], "--epochs 0: must be in 1...1048576"),
        (["train", "--batch", "0"], "--batch 0: must be in 1...65536"),
        (["train", "--checkpoint-every=-1"], "--checkpoint-every -1: must be in 0..."),
        (["train", "--resume", "/nonexistent-ckpt"], "no such checkpoint directory"),
        (["local", "--workers", "5000"], "--workers must be in 1...4096"),
        (["train", "--no-such-flag"], "Unknown option"),
        (["train", "--optimizer", "rmsprop"], "--optimizer rmsprop is unknown"),
        (["train", "--data", "/nonexistent-dir"], "not found"),
        (["evaluate", "--model-file", "/nonexistent.convoy"], "model file /nonexistent.convoy: cannot read"),
        (["summary", "resnet"], "unknown model 'resnet'"),
        (["summary", "--layers", "relu"], "--layers needs --input"),
        (["summary", "--input", "3x8x8", "--layers", "conv2d(6, 9)"], "kernel 9 is larger than the padded input 8"),
        (["train", "--out", "/nonexistent-dir/m.convoy"], "directory /nonexistent-dir does not exist"),
        (["coordinator", "--workers", "1", "--resume", "/nonexistent-ckpt"], "no such checkpoint directory"),
        (
            ["coordinator", "--workers", "1", "--bind", "tcp://0.0.0.0:5555"],
            "refusing to bind tcp://0.0.0.0:5555 without CURVE"
        ),
        (
            ["coordinator", "--workers", "1", "--curve-key", "/nonexistent.key"],
            "--curve-key and --authorized-keys go together"
        ),
        (["coordinator", "--workers", "2", "--min-workers", "3"], "--min-workers must be in"),
        (["worker", "--connect", "tcp://127.0.0.1:1", "--key", "/x.key"], "--server-key and --key go together"),
        (["worker", "--connect", "localhost:5555"], "is not a tcp://, ipc:// or shm:// endpoint"),
        (["status", "shm:///tmp/c", "--server-key", "/x.pub", "--key", "/x.key"], "takes no CURVE keys"),
        (["worker", "--connect", "shm:///tmp/c", "--server-key", "/x.pub", "--key", "/x.key"], "takes no CURVE keys"),
        (["coordinator", "--workers", "0", "--bind", "tcp://127.0.0.1:*"], "--workers must be in"),
    ])
    func badInputIsOneClearLineAndNonZeroExit(arguments: [String], message: String) throws {
        let result = try runConvoy(arguments, timeout: 60)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    /// The worked examples of docs/MODELS.md, one layer each.
    @Test(arguments: [
        ("3x144x144", "conv2d(6, 3)", "168"), ("24x60x60", "conv2d(48, 3)", "10,416"),
        ("10x20x20", "conv2d(20, 3, stride=2)", "1,820"),
    ])
    func summaryOfOneLayer(input: String, layers: String, parameters: String) throws {
        let result = try runConvoy(["summary", "--input", input, "--layers", layers])
        #expect(result.status == 0)
        #expect(result.stdout.contains("total parameters: \(parameters)"), "\(result.stdout)")
    }

    /// `--target-accuracy` stops `convoy local` early and the last JSON object says when.
    @Test func targetAccuracyStopsTheRunAndReportsTheTime() throws {
        let dir = NSTemporaryDirectory() + "convoy-target-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try runConvoy([
            "local", "--workers", "2", "--epochs", "5", "--train-samples", "3200", "--test-samples", "200",
            "--target-accuracy", "0.6", "--eval-every", "5", "--data", mnistDirectory,
            "--out", dir + "/m.convoy", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count < 5, "stopped before the last epoch: \(result.stdout)")
        let last = try JSONSerialization.jsonObject(with: Data((lines.last ?? "").utf8)) as? [String: Any]
        #expect((last?["time_to_target_seconds"] as? Double ?? -1) > 0, "\(result.stdout)")
        #expect((last?["test_accuracy"] as? Double ?? 0) >= 0.6)
        #expect(FileManager.default.fileExists(atPath: dir + "/m.convoy"))
    }

    @Test func summaryTotals() throws {
        for (model, total) in [("lenet5", "61,706"), ("vgg16", "138,357,544"), ("alexnet", "61,100,840")] {
            let result = try runConvoy(["summary", model])
            #expect(result.stdout.contains("total parameters: \(total)"), "\(result.stdout)")
        }
    }
}
