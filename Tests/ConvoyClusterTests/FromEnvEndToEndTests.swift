import Foundation
import Testing

/// `convoy coordinator|worker --from-env` through the built binary: a Slurm placement trains
/// (the worker count and the endpoint come from the environment, an explicit --bind wins), and
/// a missing or contradictory placement is one line and exit status 1.
@Suite(.serialized) struct FromEnvEndToEndTests {
    /// Starts convoy with exactly `environment` (plus PATH and HOME), so the test host's own
    /// variables never leak in.
    func start(_ arguments: [String], environment: [String: String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: convoyBinary)
        process.arguments = arguments
        var base = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": "/tmp"]
        base.merge(environment) { $1 }
        process.environment = base
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, err)
    }

    func finish(_ process: Process, _ err: Pipe, timeout: Double = 120) -> (Int32, String) {
        let data = err.fileHandleForReading.readDataToEndOfFile()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("convoy \(process.arguments ?? []) ran past \(timeout) s")
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func run(_ arguments: [String], environment: [String: String]) throws -> (Int32, String) {
        let (process, err) = try start(arguments, environment: environment)
        return finish(process, err)
    }

    static let slurm = [
        "SLURM_JOB_ID": "77", "SLURM_NTASKS": "2", "SLURM_STEP_NODELIST": "localhost",
        "SLURM_JOB_NODELIST": "localhost",
    ]

    @Test func aSlurmPlacementTrainsWithTheCountAndEndpointFromTheEnvironment() throws {
        let port = 20000 + Int.random(in: 0..<20000)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fromenv-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var environment = Self.slurm
        environment["CONVOY_PORT"] = String(port)
        environment["SLURM_PROCID"] = "0"
        // --from-env would bind tcp://0.0.0.0:PORT; the explicit --bind keeps the test on loopback.
        let coordinator = try start(
            [
                "coordinator", "--from-env", "--bind", "tcp://127.0.0.1:\(port)", "--epochs", "1",
                "--train-samples", "256", "--test-samples", "100", "--data", mnistDirectory,
                "--out", directory + "/m.convoy", "--join-timeout", "60",
            ], environment: environment)
        environment["SLURM_PROCID"] = "1"
        let (workerStatus, workerErr) = try run(
            ["worker", "--from-env", "--connect-timeout", "60"], environment: environment)
        let (status, err) = finish(coordinator.0, coordinator.1)
        #expect(status == 0, "\(err)")
        #expect(workerStatus == 0, "\(workerErr)")
        #expect(err.contains("waiting for 1 worker(s)"), "\(err)")
        #expect(err.contains("listening on tcp://127.0.0.1:\(port)"), "\(err)")
        #expect(FileManager.default.fileExists(atPath: directory + "/m.convoy"))
    }

    @Test(arguments: [
        (["worker", "--from-env"], [String: String](), "no scheduler placement in the environment"),
        (["worker", "--from-env"], ["SLURM_PROCID": "0"], "Slurm placed the coordinator here (SLURM_PROCID=0)"),
        (
            ["coordinator", "--from-env"], ["SLURM_PROCID": "1"],
            "Slurm placed a worker here (worker 0, SLURM_PROCID=1)"
        ),
        (
            ["worker", "--from-env"], ["SLURM_PROCID": "1", "SLURM_NTASKS": "two"],
            "SLURM_NTASKS=\"two\" is not a whole"
        ),
        (
            ["worker", "--from-env"], ["SLURM_PROCID": "1", "SLURM_STEP_NODELIST": "n[1-"],
            "SLURM_STEP_NODELIST=\"n[1-\""
        ),
        (["coordinator"], [:], "--workers is missing"),
        (["worker"], [:], "--connect is missing"),
    ])
    func badPlacementsAreOneLine(arguments: [String], changes: [String: String], line: String) throws {
        var environment = changes.isEmpty && arguments.count == 2 ? [:] : Self.slurm
        environment.merge(changes) { $1 }
        let (status, err) = try run(arguments, environment: environment)
        #expect(status == 1)
        #expect(err.contains(line), "\(err)")
        #expect(err.split(separator: "\n").count == 1, "\(err)")
    }
}
