@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// Preemption: a stop request ends a run at a step boundary with a checkpoint of exactly that
/// position, the workers are told why (and leave at once), and the same run started again
/// with `--resume-if-present`'s policy ends with the uninterrupted run's weights.
@Suite(.serialized) struct PreemptionTests {
    static func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "convoy-preempt-" + UUID().uuidString
    }

    /// 200 samples, batch 48: 5 steps an epoch, 10 in all. Stopped before step 7 (in the
    /// second epoch), resumed by a new coordinator with new workers: the same weights.
    @Test func aStoppedClusterRunCheckpointsItsStepTellsTheWorkersAndResumesToTheSameWeights() throws {
        let reference = try CoordinatorTests().trainerWeights()
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let policy = CheckpointPolicy(directory: directory, every: 0, keep: 3)
        let options = ClusterOptions(workers: 2)

        let first = InMemoryCluster()
        first.addWorker()
        first.addWorker()
        let stopped = try CoordinatorTests.clusterSession(first, options: options, checkpoints: policy, runID: 11)
        let request = StopRequest()
        stopped.stopRequest = request
        let outcome = try stopped.run(
            progress: { if $0.epoch * $0.stepsPerEpoch + $0.step == 7 { request.request(code: 15) } },
            epochDone: { _ in })
        #expect(outcome == .stopped(step: 7, checkpointStep: 7))
        #expect(FileManager.default.fileExists(atPath: directory + "/checkpoint-0000000007.convoy-ckpt"))
        for node in first.nodes {
            #expect(node.core.isFinished)
            #expect(node.core.stopReason?.contains("stopped after step 7 of 10") == true, "\(first.log)")
        }

        let second = InMemoryCluster()
        second.addWorker()
        second.addWorker()
        let checkpoint = try #require(try Checkpoint.newestIfPresent(in: directory, log: { _ in }))
        #expect(checkpoint.header.step == 7 && checkpoint.header.epoch == 1 && checkpoint.header.stepInEpoch == 2)
        let resumed = try CoordinatorTests.clusterSession(second, options: options, checkpoints: policy, runID: 12)
        try resumed.resume(from: checkpoint)
        #expect(try resumed.run(epochDone: { _ in }) == .finished)
        #expect(resumed.server.parameters.array == reference)
        #expect(resumed.reports.map(\.epoch) == [1, 2])
    }

    /// The same in one process (`convoy train`), stopped before the first step of an epoch:
    /// the epoch-end checkpoint is that position, so it is not written twice.
    @Test func aStoppedLocalRunResumesToTheSameWeights() throws {
        let reference = try CoordinatorTests().trainerWeights()
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let policy = CheckpointPolicy(directory: directory, every: 0, keep: 3)
        let config = CoordinatorTests.config
        let stopped = try TrainingSession(
            config: config, train: CoordinatorTests.train, test: CoordinatorTests.test, runner: LocalStepRunner(),
            checkpoints: policy)
        let request = StopRequest()
        stopped.stopRequest = request
        let outcome = try stopped.run(epochDone: { _ in request.request(code: 2) })
        #expect(outcome == .stopped(step: 5, checkpointStep: 5))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["checkpoint-0000000005.convoy-ckpt"])

        let resumed = try TrainingSession(
            config: config, train: CoordinatorTests.train, test: CoordinatorTests.test, runner: LocalStepRunner(),
            checkpoints: policy)
        try resumed.resume(from: try #require(try Checkpoint.newestIfPresent(in: directory, log: { _ in })))
        #expect(try resumed.run(epochDone: { _ in }) == .finished)
        #expect(resumed.server.parameters.array == reference)
    }

    /// A coordinator asked to stop while it waits for workers stops within a second, not
    /// after its join timeout, checkpoints where it would have started, and tells the worker
    /// that did join.
    @Test func aStopWhileWaitingForWorkersEndsTheWaitAtOnce() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = InMemoryCluster()
        cluster.addWorker()
        var options = ClusterOptions(workers: 2)
        options.joinTimeout = 60
        let session = try CoordinatorTests.clusterSession(
            cluster, options: options, checkpoints: CheckpointPolicy(directory: directory), runID: 13)
        let request = StopRequest()
        session.stopRequest = request
        (session.runner as! ClusterStepRunner).stopRequest = request
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { request.request(code: 15) }
        let clock = ContinuousClock.now
        #expect(try session.run(epochDone: { _ in }) == .stopped(step: 0, checkpointStep: 0))
        #expect(try Checkpoint.newestIfPresent(in: directory, log: { _ in })?.header.step == 0)
        #expect(ContinuousClock.now - clock < .seconds(10))
        #expect(cluster.nodes[0].core.stopReason != nil)
    }

    /// `--resume-if-present`: a missing or empty directory starts a new run; a directory whose
    /// only checkpoint is corrupt fails loudly instead of starting again from step 0.
    @Test func resumeIfPresentStartsFreshOnlyWhereThereIsNoCheckpoint() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var lines: [String] = []
        #expect(try Checkpoint.newestIfPresent(in: directory, log: { lines.append($0) }) == nil)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: directory + "/notes.txt"))
        #expect(try Checkpoint.newestIfPresent(in: directory, log: { lines.append($0) }) == nil)
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains("starting a new run") }, "\(lines)")
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: directory + "/checkpoint-0000000003.convoy-ckpt"))
        #expect(throws: DataError.self) { try Checkpoint.newestIfPresent(in: directory, log: { _ in }) }
    }

    /// A worker told to stop acknowledges, leaves at once with the reason (not after its idle
    /// timeout), and ignores a stop of another run.
    @Test func aWorkerToldToStopLeavesAtOnceWithTheReason() throws {
        let transport = ScriptedWorkerTransport()
        var delivered = 0
        transport.script = { _, now in
            let due: [(Double, [UInt8])] = [
                (0.1, WorkerLoopTests.welcome(run: 4)),
                (0.5, Message(runID: 5, payload: .stop("not yours")).encoded()),
                (1.0, Message(runID: 4, payload: .stop("stopped after step 3 of 9")).encoded()),
            ]
            guard delivered < due.count, now >= due[delivered].0 else { return nil }
            delivered += 1
            return due[delivered - 1].1
        }
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        #expect(throws: ClusterError.coordinatorStopped(reason: "stopped after step 3 of 9")) {
            try WorkerLoopTests.loop(transport).run(core, over: transport)
        }
        #expect(transport.seconds < 2)
        guard case .shutdown = transport.sent.last?.message.payload, transport.sent.last?.message.runID == 4 else {
            Issue.record("the stop was not acknowledged: \(transport.sent.map(\.message.payload.type))")
            return
        }
    }

    /// The flag's bad input: one line, exit 1, before any training.
    @Test func resumeIfPresentRefusesBadInputInOneLine() throws {
        let file = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let quick = ["train", "--epochs", "1", "--train-samples", "64", "--data", mnistDirectory, "--out", file + ".m"]
        for (extra, words) in [
            (["--resume", "a", "--resume-if-present", "b"], "--resume and --resume-if-present exclude each other"),
            (["--resume-if-present", file], "--resume-if-present \(file): not a directory"),
        ] {
            let result = try runConvoy(quick + extra, timeout: 60)
            #expect(result.status == 1)
            let lines = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("convoy: kernels") }
            #expect(lines.count == 1 && lines[0].contains(words), "\(result.stderr)")
        }
    }
}
