import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// Issue 14, rows 7 and 13: numeric flags at their edges and sizes past memory are one clear
/// line and a non-zero exit, never a trap, an abort or a hang. scripts/flag-edges-test.sh
/// runs every numeric flag of every command at every edge; these are the cases the issue
/// found, kept here so the Swift suite alone catches them coming back.
@Suite(.serialized) struct FlagEdgeTests {
    /// Was: an overflow trap, a trap when a worker was dropped, an abort in malloc, a wait
    /// for the join timeout, a worker retrying forever, a coordinator dropping and re-admitting
    /// forever, a crash on an empty timing list, a benchmark running for years.
    @Test(arguments: [
        (["train", "--epochs", "9223372036854775807"], "--epochs 9223372036854775807: must be in 1...1048576"),
        (["local", "--epochs=2147483648"], "--epochs 2147483648: must be in 1...1048576"),
        (["train", "--lr", "2147483648"], "--lr 2.1474836e+09: must be a number in (0, 1000]"),
        (["train", "--train-samples", "9223372036854775807"], "--train-samples 9223372036854775807: must be in"),
        (["coordinator", "--workers", "1", "--join-timeout", "inf"], "--join-timeout inf: must be in 0.01...604800"),
        (["coordinator", "--workers", "1", "--step-timeout", "1e-300"], "--step-timeout 1e-300: must be in 0.01"),
        (["coordinator", "--workers", "1", "--step-timeout", "nan"], "--step-timeout nan: must be in 0.01"),
        (["bench", "--infer-batch", "2147483648"], "--infer-batch 2147483648: must be in 1...65536"),
        (["bench", "--steps", "2147483648"], "--steps 2147483648: must be in 1...100000"),
        (["bench", "--threads", "2147483648"], "--threads 2147483648: must be in 1...256"),
        (["local", "--threads", "0"], "--threads 0: must be in 1...256"),
        (["worker", "--connect", "tcp://127.0.0.1:1", "--connect-timeout", "nan"], "--connect-timeout nan: must be"),
        (["worker", "--connect", "tcp://127.0.0.1:1", "--idle-timeout", "1e300"], "--idle-timeout 1e+300: must be"),
        (["worker", "--connect", "tcp://127.0.0.1:1", "--cpu", "2147483648"], "--cpu 2147483648: must be in 0...8191"),
        (["bench-transport", "--rounds", "0"], "--rounds 0: must be in 1...1000000"),
        (["bench-transport", "--request=-1"], "--request -1: must be in 0...268435456"),
        (["bench-coordinator", "--per-worker-batch", "2147483648"], "--per-worker-batch 2147483648: K × 1 workers"),
        (["bench-coordinator", "--workers", "2147483648"], "--workers 2147483648: give a count in 1...4096"),
        (["bench-coordinator", "--warmup", "9223372036854775807"], "--warmup 9223372036854775807: must be in"),
        (["train", "--eval-every=-1"], "--eval-every -1: must be in 0...281474976710656"),
        (["train", "--keep-checkpoints", "0"], "--keep-checkpoints 0: must be in 1...1000000"),
        (["evaluate", "--model-file", "x.convoy", "--test-samples", "0"], "--test-samples 0: must be in 1..."),
        (
            ["summary", "--input", "2147483648x2147483648x2147483648", "--layers", "relu"],
            "--layers (on --input 2147483648x2147483648x2147483648): "
        ),
        (
            ["summary", "--input", "1x28x28", "--layers", "dense(9223372036854775807)"],
            "--layers (on --input 1x28x28): "
        ),
        (["summary", "--input", "0x28x28", "--layers", "relu"], "--input 0x28x28: "),
    ])
    func edgeValueIsOneLineNamingTheFlag(arguments: [String], message: String) throws {
        let started = Date()
        let result = try runConvoy(arguments, timeout: 30)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 30)
    }

    /// Runs convoy with its address space limited to `kilobytes` (`ulimit -v`), the way a
    /// small host or container would bound it.
    func runLimited(_ arguments: [String], kilobytes: Int) throws -> RunResult {
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -v \(kilobytes) && exec '\(convoyBinary)' \(quoted)"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("convoy \(quoted) ran past 120 s")
        }
        process.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return RunResult(status: process.terminationStatus, stdout: "", stderr: stderr)
    }

    /// Row 13: sizes are bounded by memory. Under a 3 GiB address space (a budget of half
    /// of it), a batch whose networks need ~9 GiB is one line before any allocation, where
    /// it used to abort in malloc; the benchmark's usual sizes still run under the same limit.
    @Test func benchSizesAreBoundedByMemory() throws {
        let limit = 3 << 20
        let tooLarge = try runLimited(
            ["bench", "--batch", "65536", "--no-deterministic", "--steps", "1"], kilobytes: limit)
        #expect(tooLarge.status == 1, "\(tooLarge.stderr)")
        #expect(tooLarge.stderr.split(separator: "\n").count == 1, "\(tooLarge.stderr)")
        #expect(tooLarge.stderr.contains("more than this process may use (1.5 GiB"), "\(tooLarge.stderr)")
        let usual = try runLimited(["bench", "--steps", "2", "--infer-batch", "1000"], kilobytes: limit)
        #expect(usual.status == 0, "\(usual.stderr)")
    }

    /// The ranges themselves, at and just past each end.
    @Test func rangesEndWhereTheDocsSay() throws {
        var options = ClusterOptions(workers: 1)
        for seconds in [0.01, 604_800] {
            options.joinTimeout = seconds
            options.stepTimeout = seconds
            #expect(options.problem == nil)
        }
        for seconds in [0.009, 604_801, .infinity, -.infinity, .nan, 1e-300, 0] {
            options.joinTimeout = seconds
            #expect(options.problem != nil, "join timeout \(seconds)")
            options.joinTimeout = 1
            options.stepTimeout = seconds
            #expect(options.problem != nil, "step timeout \(seconds)")
            options.stepTimeout = 1
        }
        var config = TrainingConfig()
        config.epochs = 1 << 20
        config.learningRate = 1000
        config.trainSamples = 1 << 40
        #expect(throws: Never.self) { try config.validate() }
        for change in [
            { (c: inout TrainingConfig) in c.epochs = (1 << 20) + 1 }, { $0.learningRate = 1000.5 },
            { $0.trainSamples = (1 << 40) + 1 }, { $0.testSamples = Int.max }, { $0.learningRate = .nan },
        ] {
            var bad = config
            change(&bad)
            #expect(throws: SettingError.self) { try bad.validate() }
        }
    }
}
