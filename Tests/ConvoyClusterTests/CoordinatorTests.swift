@testable import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let mnistDirectory = repositoryRoot.appendingPathComponent("data/mnist").path

/// Coordinator and workers wired together in memory: every message still goes through the
/// codec, but no socket is involved. A worker can be told to go silent after some steps.
final class InMemoryCluster: CoordinatorTransport {
    final class Node {
        let peer: PeerID
        let core: WorkerCore
        var silentAfterSteps: Int?
        var stepsAnswered = 0
        /// Rewrites this worker's replies (a broken or hostile worker); nil: honest.
        var tamper: ((Message) -> [UInt8]?)?
        init(peer: PeerID, core: WorkerCore) {
            self.peer = peer
            self.core = core
        }
    }
    var nodes: [Node] = []
    var inbox: [(PeerID, [UInt8])] = []
    var log: [String] = []
    /// Simulates a coordinator crash: the send of this many step messages throws.
    var crashAtStepMessage: Int?
    var stepMessages = 0
    struct Crash: Error {}

    func addWorker(silentAfterSteps: Int? = nil, slots: Int = 1) {
        let node = Node(
            peer: [UInt8(nodes.count + 1)],
            core: WorkerCore(hello: Hello(host: "mem", pid: Int32(nodes.count), threads: 1), slots: slots))
        node.silentAfterSteps = silentAfterSteps
        nodes.append(node)
        inbox.append((node.peer, node.core.helloMessage.encoded()))
    }

    func send(_ message: Message, to peer: PeerID) throws -> Int {
        let frame = message.encoded()
        guard let node = nodes.first(where: { $0.peer == peer }) else { return 0 }
        if case .step = message.payload {
            stepMessages += 1
            if stepMessages == crashAtStepMessage { throw Crash() }
        }
        if case .step = message.payload, let limit = node.silentAfterSteps, node.stepsAnswered >= limit {
            return frame.count
        }
        var replies: [Message] = []
        if let line = node.core.handle(frame, send: { replies.append($0) }) { log.append(line) }
        if case .step = message.payload { node.stepsAnswered += 1 }
        inbox += replies.map { reply in (peer, node.tamper?(reply) ?? reply.encoded()) }
        return frame.count
    }

    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
        if inbox.isEmpty {
            usleep(UInt32(min(timeoutMs, 20)) * 1000)
            return nil
        }
        return inbox.removeFirst()
    }
}

@Suite(.serialized) struct CoordinatorTests {
    static let train = try! MNIST.load(directory: mnistDirectory, split: .train, limit: 200)
    static let test = try! MNIST.load(directory: mnistDirectory, split: .test, limit: 50)

    static var config: TrainingConfig {
        var config = TrainingConfig()
        config.epochs = 2
        config.batchSize = 48
        return config
    }

    /// A training session whose steps go to `cluster`'s in-memory workers.
    static func clusterSession(
        _ cluster: InMemoryCluster, options: ClusterOptions, config: TrainingConfig = Self.config,
        checkpoints: CheckpointPolicy? = nil, runID: UInt64,
        log: @escaping (String) -> Void = { _ in }
    ) throws -> TrainingSession {
        let runner = try ClusterStepRunner(transport: cluster, options: options, runID: runID, log: log)
        return try TrainingSession(
            config: config, train: Self.train, test: Self.test, runner: runner,
            checkpoints: checkpoints, log: log)
    }

    func clusterWeights(
        workers: Int, silentAfter: [Int: Int] = [:], config: TrainingConfig = Self.config,
        prepare: (InMemoryCluster) -> Void = { _ in }
    ) throws -> ([Float], [String]) {
        let cluster = InMemoryCluster()
        for w in 0..<workers { cluster.addWorker(silentAfterSteps: silentAfter[w]) }
        prepare(cluster)
        var options = ClusterOptions(workers: workers)
        options.stepTimeout = 0.3
        options.joinTimeout = 2
        var messages: [String] = []
        let session = try Self.clusterSession(
            cluster, options: options, config: config, runID: 99,
            log: { messages.append($0) })
        var reports: [EpochReport] = []
        try session.run(epochDone: { reports.append($0) })
        #expect(reports.count == config.epochs)
        return (session.server.parameters.array, messages)
    }

    func trainerWeights(_ config: TrainingConfig = Self.config) throws -> [Float] {
        let session = try TrainingSession(config: config, train: Self.train, test: Self.test, runner: LocalStepRunner())
        try session.run(epochDone: { _ in })
        return session.server.parameters.array
    }

    @Test func anyNumberOfWorkersGivesTheSingleProcessWeightsBitForBit() throws {
        let reference = try trainerWeights()
        for n in 1...3 {
            let (weights, _) = try clusterWeights(workers: n)
            #expect(weights == reference, "\(n) workers")
        }
    }

    /// Per-host aggregation: workers with several compute slots pre-sum their exact
    /// gradients, and the weights are still those of one process, bit for bit.
    @Test func workersWithSeveralSlotsGiveTheSingleProcessWeightsBitForBit() throws {
        let reference = try trainerWeights()
        for (workers, slots) in [(1, 2), (1, 3), (2, 2)] {
            let cluster = InMemoryCluster()
            for _ in 0..<workers { cluster.addWorker(slots: slots) }
            var options = ClusterOptions(workers: workers)
            options.joinTimeout = 2
            let session = try Self.clusterSession(cluster, options: options, runID: 12)
            try session.run(epochDone: { _ in })
            #expect(session.server.parameters.array == reference, "\(workers) workers × \(slots) slots")
        }
    }

    /// Augmented samples are shifted by the coordinator as it gathers them, per (seed, epoch,
    /// sample): the weights do not depend on the number of workers.
    @Test func augmentedRunsGiveTheSameWeightsAtAnyN() throws {
        var config = Self.config
        config.augmentShift = 2
        let reference = try trainerWeights(config)
        #expect(reference != (try trainerWeights()), "the shifts change the training")
        for n in [1, 3] {
            #expect(try clusterWeights(workers: n, config: config).0 == reference, "\(n) workers")
        }
    }

    @Test func aWorkerThatGoesSilentIsDroppedAndTheResultIsUnchanged() throws {
        let reference = try trainerWeights()
        let (weights, log) = try clusterWeights(workers: 3, silentAfter: [1: 2])
        #expect(weights == reference)
        #expect(log.contains { $0.contains("dropped w1@") && $0.contains("deadline") }, "\(log)")
    }

    /// A worker whose results break a validation rule (or do not decode) is dropped and its
    /// slice goes to another: the weights are those of an honest run.
    @Test(arguments: ["sample count", "bucket layout", "gradient kind", "garbage"])
    func aWorkerWithBadResultsIsDroppedAndItsSliceReassigned(fault: String) throws {
        let reference = try trainerWeights()
        let (weights, log) = try clusterWeights(
            workers: 3,
            prepare: { cluster in
                var results = 0
                cluster.nodes[1].tamper = { message in
                    guard case var .result(result) = message.payload, result.gradient != .none else { return nil }
                    results += 1
                    guard results >= 3 else { return nil }  // honest for its first step (two buckets)
                    var bad = message
                    switch fault {
                    case "sample count": result.count += 1
                    case "bucket layout": result.gradientOffset += 1
                    case "gradient kind": result.gradient = .float(Array(repeating: 0, count: result.gradient.count))
                    default: return Array(repeating: 0xAB, count: 64)
                    }
                    bad.payload = .result(result)
                    return bad.encoded()
                }
            })
        #expect(weights == reference, "\(fault)")
        let reason = fault == "garbage" ? "sent an invalid message" : "sent a bad result"
        #expect(log.contains { $0.contains("dropped w1@") && $0.contains(reason) }, "\(log)")
    }

    @Test func fastModeWithOneWorkerMatchesTheSingleProcessTrainer() throws {
        var config = Self.config
        config.deterministic = false
        let (weights, _) = try clusterWeights(workers: 1, config: config)
        #expect(weights == (try trainerWeights(config)))
    }

    /// A coordinator that dies mid-run and is restarted with its checkpoint directory ends
    /// with the weights of an uninterrupted run; a corrupt newest checkpoint is skipped.
    @Test(arguments: [false, true])
    func aRunResumedFromItsCheckpointEndsWithTheSameWeights(corruptNewest: Bool) throws {
        let reference = try trainerWeights()
        let directory = NSTemporaryDirectory() + "convoy-ckpt-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = ClusterOptions(workers: 2)
        let policy = CheckpointPolicy(directory: directory, every: 2, keep: 2)

        // 200 samples, batch 48: 5 steps an epoch, 2 step messages a step, 2 more to evaluate.
        // The 17th step message is the third step of the second epoch.
        let first = InMemoryCluster()
        first.addWorker()
        first.addWorker()
        first.crashAtStepMessage = 17
        let crashing = try Self.clusterSession(first, options: options, checkpoints: policy, runID: 1)
        #expect(throws: InMemoryCluster.Crash.self) { try crashing.run(epochDone: { _ in }) }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files == ["checkpoint-0000000005.convoy-ckpt", "checkpoint-0000000006.convoy-ckpt"])
        if corruptNewest {
            let path = directory + "/" + files.last!
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: path))
        }

        let second = InMemoryCluster()
        second.addWorker()
        second.addWorker()
        var messages: [String] = []
        let checkpoint = try Checkpoint.newest(in: directory, log: { messages.append($0) })
        #expect(checkpoint.header.step == (corruptNewest ? 5 : 6))
        #expect(messages.count == (corruptNewest ? 1 : 0), "\(messages)")
        let resumed = try Self.clusterSession(second, options: options, checkpoints: policy, runID: 2)
        try resumed.resume(from: checkpoint)
        var reports: [EpochReport] = []
        try resumed.run(epochDone: { reports.append($0) })
        #expect(resumed.server.parameters.array == reference)
        #expect(reports.map(\.epoch) == [2])
        #expect(resumed.reports.map(\.epoch) == [1, 2])
    }

    @Test func aCheckpointOfAnotherRunIsRefused() throws {
        var other = Self.config
        other.seed = 99
        let header = Checkpoint.Header(
            config: other, epoch: 0, stepInEpoch: 1, step: 1, epochTotals: .init(), reports: [])
        let checkpoint = Checkpoint(header: header, parameters: [], optimizerState: [])
        let session = try Self.clusterSession(InMemoryCluster(), options: ClusterOptions(workers: 1), runID: 3)
        #expect(throws: ResumeError.self) { try session.resume(from: checkpoint) }
    }

    /// A checkpoint of this run whose position or optimizer state cannot be this run's is
    /// refused with a reason, never trusted (a hostile file must not crash the resume).
    @Test func aCheckpointWithAnImpossiblePositionOrStateIsRefused() throws {
        let session = try Self.clusterSession(InMemoryCluster(), options: ClusterOptions(workers: 1), runID: 6)
        let parameters = session.server.parameters.array
        let state = session.server.optimizer.state
        func checkpoint(epoch: Int, stepInEpoch: Int, step: Int, state: [Float]) -> Checkpoint {
            let header = Checkpoint.Header(
                config: Self.config, epoch: epoch, stepInEpoch: stepInEpoch, step: step,
                epochTotals: .init(), reports: [])
            return Checkpoint(header: header, parameters: parameters, optimizerState: state)
        }
        let steps = session.plan.stepsPerEpoch
        #expect(throws: ResumeError.position(epoch: 9, stepInEpoch: 0, step: 9 * steps)) {
            try session.resume(from: checkpoint(epoch: 9, stepInEpoch: 0, step: 9 * steps, state: state))
        }
        #expect(throws: ResumeError.position(epoch: 1, stepInEpoch: 1, step: 3)) {
            try session.resume(from: checkpoint(epoch: 1, stepInEpoch: 1, step: 3, state: state))
        }
        #expect(throws: ResumeError.optimizerState(checkpoint: 3, expected: state.count)) {
            try session.resume(from: checkpoint(epoch: 1, stepInEpoch: 0, step: steps, state: [1, 2, 3]))
        }
        try session.resume(from: checkpoint(epoch: 1, stepInEpoch: 0, step: steps, state: state))
    }

    /// With --min-workers 2, losing one of two workers makes the coordinator wait, say so,
    /// and fail clearly when nobody comes back in time.
    @Test func belowMinWorkersTheCoordinatorWaitsAndSaysSo() throws {
        let cluster = InMemoryCluster()
        cluster.addWorker()
        cluster.addWorker(silentAfterSteps: 1)
        var options = ClusterOptions(workers: 2)
        options.minWorkers = 2
        options.stepTimeout = 0.2
        options.joinTimeout = 0.5
        var messages: [String] = []
        let session = try Self.clusterSession(cluster, options: options, runID: 4, log: { messages.append($0) })
        do {
            try session.run(epochDone: { _ in })
            Issue.record("trained with fewer than --min-workers")
        } catch let error as ClusterError {
            #expect(error == .tooFewWorkers(live: 1, needed: 2, seconds: 0, joined: "w0@mem:0"), "\(error)")
        }
        #expect(messages.contains { $0.contains("1 live worker(s), fewer than 2: waiting") }, "\(messages)")
    }

    @Test func curveKeysRoundTripThroughKeyFiles() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.count == 40 && pair.secretKey.count == 40)
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        let dir = NSTemporaryDirectory() + "convoy-keys-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "# comment\n\n\(pair.publicKey)\n".write(toFile: dir + "/ok", atomically: true, encoding: .utf8)
        #expect(try CurveKeyPair.readAuthorizedKeys(path: dir + "/ok") == [pair.publicKey])
        try "\(pair.publicKey)\nnot-a-key\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
        do {
            _ = try CurveKeyPair.readAuthorizedKeys(path: dir + "/bad")
            Issue.record("accepted a malformed key")
        } catch let error as CurveKeyError {
            #expect(error.description.contains("line 2"), "\(error)")
        }
    }

    @Test func missingWorkersAreNamedInTheTimeoutError() throws {
        let cluster = InMemoryCluster()
        cluster.addWorker()
        var options = ClusterOptions(workers: 3)
        options.joinTimeout = 0.3
        let session = try Self.clusterSession(cluster, options: options, runID: 5)
        do {
            try session.startRunner()
            Issue.record("no error with 1 of 3 workers")
        } catch let error as ClusterError {
            #expect(error.description.contains("only 1 of 3 workers live"), "\(error)")
            #expect(error.description.contains("2 missing"), "\(error)")
        }
    }

    @Test func workerRefusesStepsOfAnotherRun() throws {
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        _ = core.handle(
            Message(
                runID: 1,
                payload: .welcome(
                    Welcome(workerID: 0, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784))
            ).encoded())
        let step = Message(
            runID: 2, step: 0,
            payload: .step(
                StepWork(
                    slice: 0, evaluate: true, weights: nil, sampleSize: 784,
                    pixels: [UInt8](repeating: 0, count: 784), labels: [1])))
        let (replies, line) = core.handle(step.encoded())
        #expect(replies.isEmpty)
        #expect(line?.contains("refused a step of run 2") == true, "\(line ?? "")")
    }
}
