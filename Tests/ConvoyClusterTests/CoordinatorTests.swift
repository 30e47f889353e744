@testable import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let mnistDirectory = repositoryRoot.appendingPathComponent("data/mnist").path

/// Coordinator and workers wired together in memory: every message still goes through the
/// codec, but no socket is involved. A worker can be told to go silent after some steps.
final class InMemoryCluster: CoordinatorTransport {
    final class Node {
        let peer: PeerID
        let core: WorkerCore
        var silentAfterSteps: Int?
        var stepsAnswered = 0
        init(peer: PeerID, core: WorkerCore) { self.peer = peer; self.core = core }
    }
    var nodes: [Node] = []
    var inbox: [(PeerID, [UInt8])] = []
    var log: [String] = []
    /// Simulates a coordinator crash: the send of this many step messages throws.
    var crashAtStepMessage: Int?
    var stepMessages = 0
    struct Crash: Error {}

    func addWorker(silentAfterSteps: Int? = nil) {
        let node = Node(peer: [UInt8(nodes.count + 1)], core: WorkerCore(hello: Hello(host: "mem", pid: Int32(nodes.count), threads: 1)))
        node.silentAfterSteps = silentAfterSteps
        nodes.append(node)
        inbox.append((node.peer, node.core.helloMessage.encoded()))
    }

    func send(_ message: Message, to peer: PeerID) throws -> Bool {
        guard let node = nodes.first(where: { $0.peer == peer }) else { return false }
        if case .step = message.payload {
            stepMessages += 1
            if stepMessages == crashAtStepMessage { throw Crash() }
        }
        if case .step = message.payload, let limit = node.silentAfterSteps, node.stepsAnswered >= limit { return true }
        let (replies, line) = node.core.handle(message.encoded())
        if let line { log.append(line) }
        if case .step = message.payload { node.stepsAnswered += 1 }
        inbox += replies.map { (peer, $0.encoded()) }
        return true
    }

    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
        if inbox.isEmpty { usleep(UInt32(min(timeoutMs, 20)) * 1000); return nil }
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

    func clusterWeights(workers: Int, silentAfter: [Int: Int] = [:], config: TrainingConfig = Self.config) throws -> ([Float], [String]) {
        let cluster = InMemoryCluster()
        for w in 0..<workers { cluster.addWorker(silentAfterSteps: silentAfter[w]) }
        var options = ClusterOptions(workers: workers)
        options.stepTimeout = 0.3
        options.joinTimeout = 2
        var messages: [String] = []
        let coordinator = try Coordinator(config: config, train: Self.train, test: Self.test, transport: cluster, options: options,
                                          runID: 99, log: { messages.append($0) })
        var reports: [EpochReport] = []
        try coordinator.run(progress: { _, _, _, _, _ in }, epochDone: { report, _ in reports.append(report) })
        #expect(reports.count == config.epochs)
        return (coordinator.server.parameters.array, messages)
    }

    func trainerWeights(_ config: TrainingConfig = Self.config) throws -> [Float] {
        let trainer = try Trainer(config: config, train: Self.train, test: Self.test)
        try trainer.run { _ in }
        return trainer.server.parameters.array
    }

    @Test func anyNumberOfWorkersGivesTheSingleProcessWeightsBitForBit() throws {
        let reference = try trainerWeights()
        for n in 1...3 {
            let (weights, _) = try clusterWeights(workers: n)
            #expect(weights == reference, "\(n) workers")
        }
    }

    @Test func aWorkerThatGoesSilentIsDroppedAndTheResultIsUnchanged() throws {
        let reference = try trainerWeights()
        let (weights, log) = try clusterWeights(workers: 3, silentAfter: [1: 2])
        #expect(weights == reference)
        #expect(log.contains { $0.contains("dropped worker 1") && $0.contains("deadline") }, "\(log)")
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
        var options = ClusterOptions(workers: 2)
        options.checkpointDirectory = directory
        options.checkpointEvery = 2
        options.keepCheckpoints = 2

        // 200 samples, batch 48: 5 steps an epoch, 2 step messages a step, 2 more to evaluate.
        // The 17th step message is the third step of the second epoch.
        let first = InMemoryCluster()
        first.addWorker(); first.addWorker()
        first.crashAtStepMessage = 17
        let crashing = try Coordinator(config: Self.config, train: Self.train, test: Self.test, transport: first,
                                       options: options, runID: 1, log: { _ in })
        #expect(throws: InMemoryCluster.Crash.self) { try crashing.run(progress: { _, _, _, _, _ in }, epochDone: { _, _ in }) }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files == ["checkpoint-0000000005.convoy-ckpt", "checkpoint-0000000006.convoy-ckpt"])
        if corruptNewest {
            let path = directory + "/" + files.last!
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: path))
        }

        let second = InMemoryCluster()
        second.addWorker(); second.addWorker()
        var messages: [String] = []
        let checkpoint = try Checkpoint.newest(in: directory, log: { messages.append($0) })
        #expect(checkpoint.header.step == (corruptNewest ? 5 : 6))
        #expect(messages.count == (corruptNewest ? 1 : 0), "\(messages)")
        let resumed = try Coordinator(config: Self.config, train: Self.train, test: Self.test, transport: second,
                                      options: options, runID: 2, log: { _ in })
        try resumed.resume(from: checkpoint)
        var reports: [EpochReport] = []
        try resumed.run(progress: { _, _, _, _, _ in }, epochDone: { report, _ in reports.append(report) })
        #expect(resumed.server.parameters.array == reference)
        #expect(reports.map(\.epoch) == [2])
        #expect(resumed.epochReports.map(\.epoch) == [1, 2])
    }

    @Test func aCheckpointOfAnotherRunIsRefused() throws {
        var other = Self.config
        other.seed = 99
        let header = Checkpoint.Header(config: other, epoch: 0, stepInEpoch: 1, step: 1, epochTotals: .init(), reports: [])
        let checkpoint = Checkpoint(header: header, parameters: [], optimizerState: [])
        let coordinator = try Coordinator(config: Self.config, train: Self.train, test: Self.test, transport: InMemoryCluster(),
                                          options: ClusterOptions(workers: 1), runID: 3, log: { _ in })
        #expect(throws: ConfigError.self) { try coordinator.resume(from: checkpoint) }
    }

    /// With --min-workers 2, losing one of two workers makes the coordinator wait, say so,
    /// and fail clearly when nobody comes back in time.
    @Test func belowMinWorkersTheCoordinatorWaitsAndSaysSo() throws {
        let cluster = InMemoryCluster()
        cluster.addWorker(); cluster.addWorker(silentAfterSteps: 1)
        var options = ClusterOptions(workers: 2)
        options.minWorkers = 2
        options.stepTimeout = 0.2
        options.joinTimeout = 0.5
        var messages: [String] = []
        let coordinator = try Coordinator(config: Self.config, train: Self.train, test: Self.test, transport: cluster,
                                          options: options, runID: 4, log: { messages.append($0) })
        do {
            try coordinator.run(progress: { _, _, _, _, _ in }, epochDone: { _, _ in })
            Issue.record("trained with fewer than --min-workers")
        } catch let error as ClusterError {
            #expect(error.description.contains("fewer than 2"), "\(error)")
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
        let coordinator = try Coordinator(config: Self.config, train: Self.train, test: Self.test, transport: cluster, options: options,
                                          runID: 5, log: { _ in })
        do {
            try coordinator.waitForWorkers()
            Issue.record("no error with 1 of 3 workers")
        } catch let error as ClusterError {
            #expect(error.description.contains("only 1 of 3 workers joined"), "\(error)")
            #expect(error.description.contains("2 missing"), "\(error)")
        }
    }

    @Test func workerRefusesStepsOfAnotherRun() throws {
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        _ = core.handle(Message(runID: 1, payload: .welcome(Welcome(workerID: 0, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784))).encoded())
        let step = Message(runID: 2, step: 0, payload: .step(StepWork(slice: 0, evaluate: true, weights: nil, sampleSize: 784,
                                                                       pixels: [UInt8](repeating: 0, count: 784), labels: [1])))
        let (replies, line) = core.handle(step.encoded())
        #expect(replies.isEmpty)
        #expect(line?.contains("refused a step of run 2") == true, "\(line ?? "")")
    }
}
