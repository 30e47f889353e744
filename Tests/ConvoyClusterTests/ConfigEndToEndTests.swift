import ConvoyEngine
import Foundation
import Testing

/// `convoy train --config FILE` as a user runs it: the file and a flag combine, and the model
/// file, the --json lines and `convoy evaluate` carry the resolved configuration.
@Suite(.serialized) struct ConfigEndToEndTests {
    @Test func trainWithAConfigFileRecordsTheResolvedRecipe() throws {
        let directory = NSTemporaryDirectory() + "convoy-config-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/run.yaml"
        let yaml = """
            # a short run
            epochs: 3
            batch: 32
            train-samples: 128
            test-samples: 64
            optimizer: adam
            lr: 0.002
            data: \(mnistDirectory)

            """
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: config))
        let model = directory + "/m.convoy"
        // The flag wins over the file's `epochs: 3`.
        let result = try runConvoy(
            ["train", "--config", config, "--epochs", "1", "--out", model, "--json"], timeout: 180)
        #expect(result.status == 0, "\(result.stderr)")
        let file = try ModelFile.load(path: model)
        #expect(file.config?.epochs == 1 && file.config?.batchSize == 32 && file.config?.optimizer == .adam)
        #expect(file.recipe["epochs"] == "1" && file.recipe["batch"] == "32" && file.recipe["optimizer"] == "adam")
        #expect(file.recipe["lr"] == "0.002" && file.recipe["train-samples"] == "128")
        #expect(file.recipe["data"] == nil, "paths are not part of the recipe")
        // The first JSON line carries the same configuration.
        let first = try #require(result.stdout.split(separator: "\n").first)
        let object = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any]
        #expect(object?["config"] as? [String: String] == file.recipe)
        // The same file drives `local` (its keys include local's own --workers): the same
        // recipe, so the same bytes as train's file.
        try Data((yaml + "workers: 2\n").utf8).write(to: URL(fileURLWithPath: config))
        let local = directory + "/local.convoy"
        let cluster = try runConvoy(["local", "--config", config, "--epochs", "1", "--out", local], timeout: 180)
        #expect(cluster.status == 0, "\(cluster.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: local)) == Data(contentsOf: URL(fileURLWithPath: model)))
        // evaluate shows it.
        let evaluation = try runConvoy([
            "evaluate", "--model-file", model, "--test-samples", "64", "--data", mnistDirectory,
        ])
        #expect(evaluation.status == 0, "\(evaluation.stderr)")
        #expect(evaluation.stdout.contains("trained with: --augment 1 --batch 32 --deterministic true --epochs 1"))
    }

    @Test func aBadConfigFileIsOneLineAndExitOne() throws {
        let directory = NSTemporaryDirectory() + "convoy-config-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases = [
            ("epochz: 3\n", "run.yaml: epochz: not a flag of this command"),
            ("epochs: 0\n", "run.yaml: epochs: --epochs 0: must be in 1...1048576"),
            ("workers: two\n", "run.yaml: workers: "),
        ]
        for (text, message) in cases {
            let path = directory + "/run.yaml"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let command = text.hasPrefix("workers") ? "local" : "train"
            let result = try runConvoy([command, "--config", path], timeout: 60)
            #expect(result.status == 1, "\(text): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && result.stderr.contains(message), "\(text): \(result.stderr)")
        }
        // Nesting to libyaml's limit under a 1 MiB main stack (where parsing on the main
        // thread crashed): the parser's own thread has room, so it is one line, not SIGSEGV.
        let deep = directory + "/deep.yaml"
        try Data((String(repeating: "- ", count: 30_000) + "x\n").utf8).write(to: URL(fileURLWithPath: deep))
        let shell = try runShell("ulimit -s 1024 && exec \"$0\" train --config \"$1\"", [convoyBinary, deep])
        #expect(shell.status == 1, "\(shell.stderr)")
        #expect(shell.stderr.split(separator: "\n").count == 1 && shell.stderr.contains("Maximum nesting level"))
    }
}

/// `sh -c SCRIPT ARGS…` with a time limit, for limits only a shell sets (`ulimit`).
func runShell(_ script: String, _ arguments: [String], timeout: Double = 60) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script] + arguments
    let err = Pipe()
    process.standardError = err
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return RunResult(status: process.terminationStatus, stdout: "", stderr: stderr)
}
