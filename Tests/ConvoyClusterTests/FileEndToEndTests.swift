import ConvoyEngine
import Foundation
import Testing

/// Output paths as users type them: odd but legal names work, impossible ones fail with one
/// line (exit 1); none ends in a signal. `convoy train --out m` used to die with SIGILL in
/// Foundation's `deletingLastPathComponent`.
@Suite(.serialized) struct OddPathTests {
    static let quick = [
        "--epochs", "1", "--train-samples", "64", "--test-samples", "32", "--batch", "32", "--data", mnistDirectory,
    ]

    @Test func oddButLegalOutputNamesWork() throws {
        let directory = NSTemporaryDirectory() + "convoy-names-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let names = ["m", "a b", "ü", "-m", "./n", "sub//o", String(repeating: "x", count: 240)]
        for name in names {
            let result = try runConvoy(["train", "--out=\(name)"] + Self.quick, timeout: 180, directory: directory)
            #expect(result.status == 0, "--out \(name): \(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: directory + "/" + name), "--out \(name)")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".tmp") }
        #expect(left.isEmpty, "temporary files left: \(left)")
    }

    @Test func impossibleOutputNamesFailWithOneLine() throws {
        let directory = NSTemporaryDirectory() + "convoy-names-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/d", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases = [
            ("m/", "names a directory"), (".", "names a directory"), ("..", "names a directory"),
            ("", "Missing value"), ("d", "names a directory"), ("nothere/m", "does not exist"),
        ]
        for (name, problem) in cases {
            let result = try runConvoy(["train", "--out=\(name)"] + Self.quick, timeout: 120, directory: directory)
            #expect(result.status == 1, "--out \(name): \(result.stderr)")
            let errorLines = result.stderr.split(separator: "\n").filter { $0.contains("--out") }
            #expect(errorLines.count == 1 && errorLines[0].contains(problem), "--out \(name): \(result.stderr)")
        }
    }
}

/// Identical training state, identical bytes: two runs of `convoy train` with the same flags
/// write the same checkpoints (wall-clock times are not stored) and the same model file.
@Suite(.serialized) struct ReproducibleFilesTests {
    @Test func identicalRunsWriteByteIdenticalCheckpoints() throws {
        let directory = NSTemporaryDirectory() + "convoy-repro-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for run in ["a", "b"] {
            let result = try runConvoy(
                [
                    "train", "--out", "\(directory)/\(run).convoy", "--checkpoint-dir", "\(directory)/\(run)",
                    "--checkpoint-every", "3", "--keep-checkpoints", "10",
                ] + OddPathTests.quick + ["--epochs", "2"],
                timeout: 180)
            #expect(result.status == 0, "\(result.stderr)")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory + "/a").sorted()
        #expect(names.count >= 3, "\(names)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/b").sorted() == names)
        for name in names + ["../a.convoy"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/a/\(name)"))
            let b = try Data(
                contentsOf: URL(fileURLWithPath: "\(directory)/b/\(name == "../a.convoy" ? "../b.convoy" : name)"))
            #expect(a == b, "\(name) differs between identical runs")
        }
    }
}

/// Every path flag fed odd but legal names and impossible ones: each run ends with exit 0 or
/// 1 and one line naming the flag's path, never a signal.
@Suite(.serialized) struct OddPathFlagTests {
    @Test func everyPathFlagTakesOddNamesWithoutASignal() throws {
        let directory = NSTemporaryDirectory() + "convoy-flags-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let names = ["m", "-", " ", "ü", ".", "..", "a/", "/", "//", String(repeating: "y", count: 300), "\u{1b}[2J"]
        let flags: [(String, [String])] = [
            ("--model-file", ["evaluate", "--data", mnistDirectory]),
            ("--data", ["evaluate", "--model-file", "/nonexistent.convoy"]),
            ("--resume", ["train", "--data", mnistDirectory]),
            (
                "--curve-key",
                ["coordinator", "--workers", "1", "--authorized-keys", "/nonexistent", "--data", mnistDirectory]
            ),
            (
                "--authorized-keys",
                ["coordinator", "--workers", "1", "--curve-key", "/nonexistent", "--data", mnistDirectory]
            ),
            ("--key", ["worker", "--connect", "tcp://127.0.0.1:1", "--server-key", "/nonexistent"]),
        ]
        for (flag, rest) in flags {
            for name in names {
                let result = try runConvoy(rest + ["\(flag)=\(name)"], timeout: 60, directory: directory)
                #expect(result.status == 0 || result.status == 1, "\(flag) \(name): exit \(result.status)")
                #expect(!result.stderr.contains("Fatal error"), "\(flag) \(name): \(result.stderr)")
            }
        }
    }
}

/// `convoy evaluate` on a crafted 8 MB model file whose activations would take terabytes at
/// batch 500 (a 1×1 convolution to 2^20 channels): one line, exit 1, nothing allocated.
@Suite struct HostileModelFileTests {
    @Test func evaluateRefusesAModelWhoseActivationsDoNotFit() throws {
        let path = NSTemporaryDirectory() + "convoy-wide-" + UUID().uuidString + ".convoy"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let spec = NetworkSpec(
            name: "wide", inputShape: Shape(1, 28, 28), layers: [.conv2d(1 << 20, kernel: 1), .flatten])
        let parameters = [Float](repeating: 0.5, count: try Architecture(spec).parameterCount)
        try ModelFile(spec: spec, parameters: parameters).save(to: path)
        let result = try runConvoy(
            ["evaluate", "--model-file", path, "--test-samples", "10", "--data", mnistDirectory], timeout: 120)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("\(path): evaluating one sample of this model needs"), "\(result.stderr)")
    }
}
