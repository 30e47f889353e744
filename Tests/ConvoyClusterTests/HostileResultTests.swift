@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// An authorized worker's numbers are checked against what an honest worker can produce, and
/// refusals are split into the run's problems and one worker's (issue 14 rows 3, 4 and 6,
/// issue 10). Each hostile worker is dropped by name and the weights stay those of an
/// undisturbed run; a run that cannot go on stops with its reason instead of cycling.
@Suite(.serialized) struct HostileResultTests {
    let base = CoordinatorTests()

    /// Worker 1 answers honestly for its first step (two buckets), then with `corrupt` applied
    /// to each training result (or replaced by whatever `corrupt` returns).
    static func hostile(_ corrupt: @escaping (Message, inout StepResult) -> Message?) -> (InMemoryCluster) -> Void {
        { cluster in
            var results = 0
            cluster.nodes[1].tamper = { message in
                guard case var .result(result) = message.payload, result.gradient != .none else { return nil }
                results += 1
                guard results > 2 else { return nil }
                if let replacement = corrupt(message, &result) { return replacement.encoded() }
                var bad = message
                bad.payload = .result(result)
                return bad.encoded()
            }
        }
    }

    static func setFirst(_ result: inout StepResult, fixed value: Int64) {
        guard case var .fixedPoint(values) = result.gradient else { return }
        values[0] = value
        result.gradient = .fixedPoint(values)
    }

    @Test(arguments: [
        "loss sum 1.7e308", "loss sum just past count × FLT_MAX", "more correct than samples",
        "fixed-point 2^60", "fixed-point one past its bound", "fixed-point Int64.min", "compute seconds 1.7e308",
        "compute seconds -1",
    ])
    func anImpossibleResultDropsItsWorkerByNameAndLeavesTheWeightsUnchanged(kind: String) throws {
        let reference = try base.trainerWeights()
        let (weights, log) = try base.clusterWeights(
            workers: 3,
            prepare: Self.hostile { _, result in
                switch kind {
                case "loss sum 1.7e308": result.lossSum = 1.7e308
                case "loss sum just past count × FLT_MAX":
                    result.lossSum = (Double(result.count) * SumBounds.maxSampleLoss).nextUp
                case "more correct than samples": result.correct = result.count + 1
                case "fixed-point 2^60": Self.setFirst(&result, fixed: 1 << 60)
                case "fixed-point one past its bound":
                    // Slices of 16 samples: two micro-batches of 8.
                    Self.setFirst(&result, fixed: 2 * FixedPoint.termBound + 1)
                case "fixed-point Int64.min": Self.setFirst(&result, fixed: .min)
                case "compute seconds 1.7e308": result.computeSeconds = 1.7e308
                default: result.computeSeconds = -1
                }
                return nil
            })
        let same = weights == reference  // not printed: 61,706 values
        #expect(same, "\(kind)")
        #expect(
            log.contains {
                $0.contains("dropped w1@mem:1")
                    && ($0.contains("sent a bad result") || $0.contains("sent an invalid message"))
            }, "\(kind): \(log)")
        #expect(!log.contains { $0.contains("dropped w0@") || $0.contains("dropped w2@") }, "\(log)")
    }

    /// Float32 sums: beyond samples × 2^18, the worker is dropped; the reference is the same
    /// cluster with worker 1 gone silent at the same step (the same slices afterwards).
    @Test func aFloatSumBeyondItsBoundDropsItsWorker() throws {
        var config = CoordinatorTests.config
        config.deterministic = false
        let (reference, _) = try base.clusterWeights(workers: 3, silentAfter: [1: 1], config: config)
        let (weights, log) = try base.clusterWeights(
            workers: 3, config: config,
            prepare: Self.hostile { _, result in
                guard case var .float(values) = result.gradient else { return nil }
                values[0] = 1e30
                result.gradient = .float(values)
                return nil
            })
        let same = weights == reference  // not printed: 61,706 values
        #expect(same)
        let finite = weights.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(log.contains { $0.contains("dropped w1@") && $0.contains("Float32 sum") }, "\(log)")
    }

    /// A worker-scope refusal (its own problem) drops that worker, with the reason escaped,
    /// and training goes on to the undisturbed weights.
    @Test func aWorkerScopeRefusalDropsOnlyThatWorker() throws {
        let reference = try base.trainerWeights()
        let (weights, log) = try base.clusterWeights(
            workers: 3,
            prepare: Self.hostile { message, _ in
                var refusal = message
                refusal.payload = .refuse(Refusal(.worker, "cannot allocate\n\u{1B}[31mcoordinator: run finished"))
                return refusal
            })
        let same = weights == reference  // not printed: 61,706 values
        #expect(same)
        let line = log.first { $0.contains("dropped w1@") }
        #expect(line?.contains("its own problem: cannot allocate\\u{a}\\u{1b}[31m") == true, "\(log)")
    }

    /// One worker cannot stop the run by claiming divergence: its slice is recomputed by
    /// another, which succeeds, so the refuser is dropped and the weights are unchanged.
    @Test func oneRunScopeRefusalIsConfirmedElsewhereBeforeItStopsTheRun() throws {
        let reference = try base.trainerWeights()
        let (weights, log) = try base.clusterWeights(
            workers: 3,
            prepare: Self.hostile { message, _ in
                var refusal = message
                refusal.payload = .refuse(Refusal(.run, "the training has diverged"))
                return refusal
            })
        let same = weights == reference  // not printed: 61,706 values
        #expect(same)
        #expect(log.contains { $0.contains("dropped w1@") && $0.contains("another worker confirms") }, "\(log)")
    }

    /// The only worker refusing for the whole run stops it at once, with its reason.
    @Test func aRunScopeRefusalOfTheLastWorkerStopsTheRun() throws {
        let cluster = InMemoryCluster()
        cluster.addWorker()
        cluster.nodes[0].tamper = { message in
            guard case .result = message.payload, message.step == 2 else { return nil }
            var refusal = message
            refusal.payload = .refuse(Refusal(.run, "gradient element 7 is nan"))
            return refusal.encoded()
        }
        let session = try CoordinatorTests.clusterSession(cluster, options: ClusterOptions(workers: 1), runID: 21)
        #expect(
            throws: ClusterError.workerRefused(
                worker: "w0@mem:0", step: 2, reason: "gradient element 7 is nan")
        ) { try session.run(epochDone: { _ in }) }
    }

    /// A learning rate that makes the training diverge ends the cluster run with the reason
    /// (the workers' run-scope refusals, or the coordinator's own weight check) within a few
    /// steps: nothing loops.
    @Test func aDivergingClusterRunStopsWithTheReason() throws {
        var config = CoordinatorTests.config
        config.learningRate = 1000  // the largest the settings allow; it diverges at once
        let cluster = InMemoryCluster()
        cluster.addWorker()
        cluster.addWorker()
        var options = ClusterOptions(workers: 2)
        options.stepTimeout = 5
        var messages: [String] = []
        let session = try CoordinatorTests.clusterSession(
            cluster, options: options, config: config, runID: 22, log: { messages.append($0) })
        let started = ContinuousClock.now
        do {
            try session.run(epochDone: { _ in })
            Issue.record("a diverging run finished")
        } catch let error as ClusterError {
            guard case .workerRefused(_, _, let reason) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(reason.contains("diverged"), "\(reason)")
        } catch let error as NonFiniteWeightsError {
            #expect(error.after, "\(error)")
        }
        #expect(started.duration(to: .now) < .seconds(5), "stopped before any step deadline")
        #expect(cluster.stepMessages <= 8, "\(cluster.stepMessages) step messages: \(messages)")
    }

    /// Non-finite initial weights (`--init gaussian:1e300`) stop the run before any step is
    /// sent: nothing reaches a worker, nothing loops.
    @Test func nonFiniteInitialWeightsStopTheRunBeforeAnyStep() throws {
        var config = CoordinatorTests.config
        config.initializer = .gaussian(sigma: 1e300)
        let cluster = InMemoryCluster()
        cluster.addWorker()
        cluster.addWorker()
        let session = try CoordinatorTests.clusterSession(
            cluster, options: ClusterOptions(workers: 2), config: config, runID: 23)
        do {
            try session.run(epochDone: { _ in })
            Issue.record("trained with infinite weights")
        } catch let error as NonFiniteWeightsError {
            #expect(!error.after && error.step == 0 && !error.value.isFinite, "\(error)")
        }
        #expect(cluster.stepMessages == 0)
    }
    /// A checkpoint whose weights are not finite (crafted, CRC recomputed) stops the resumed
    /// run before its first step, with the reason.
    @Test func nonFiniteWeightsFromACheckpointStopTheRunBeforeAnyStep() throws {
        let cluster = InMemoryCluster()
        cluster.addWorker()
        let session = try CoordinatorTests.clusterSession(cluster, options: ClusterOptions(workers: 1), runID: 24)
        var parameters = session.server.parameters.array
        parameters[17] = -.infinity
        let steps = session.plan.stepsPerEpoch
        let header = Checkpoint.Header(
            config: CoordinatorTests.config, epoch: 1, stepInEpoch: 0, step: steps, epochTotals: .init(),
            reports: [])
        try session.resume(
            from: Checkpoint(header: header, parameters: parameters, optimizerState: session.server.optimizer.state))
        #expect(throws: NonFiniteWeightsError(index: 17, value: -.infinity, step: steps, after: false)) {
            try session.run(epochDone: { _ in })
        }
        #expect(cluster.stepMessages == 0)
    }

    /// The bounds at their edges: exactly the bound passes, one past it fails.
    @Test func theBoundsHoldAtTheirEdges() {
        let bound = 2 * FixedPoint.termBound  // 16 samples in micro-batches of 8
        for (value, fine) in [(bound, true), (-bound, true), (bound + 1, false), (-bound - 1, false), (.min, false)] {
            let inside = [0, value].withUnsafeBufferPointer {
                SumBounds.fixedPointIsPossible($0, samples: 16, microBatch: 8)
            }
            #expect(inside == fine, "\(value)")
        }
        let floatBound = 16 * SumBounds.maxFloatPerSample
        for (value, fine) in [(floatBound, true), (floatBound.nextUp, false), (.nan, false), (-.infinity, false)] {
            let inside = [value].withUnsafeBufferPointer { SumBounds.floatIsPossible($0, samples: 16) }
            #expect(inside == fine, "\(value)")
        }
        let lossBound = 16 * SumBounds.maxSampleLoss
        #expect(SumBounds.lossIsPossible(lossBound, samples: 16))
        #expect(!SumBounds.lossIsPossible(lossBound.nextUp, samples: 16))
        #expect(!SumBounds.lossIsPossible(-0.5, samples: 16))
        #expect(!SumBounds.lossIsPossible(.nan, samples: 16))
        var sums: [Int64] = [.max, 5]
        let added = [1, -5].withUnsafeBufferPointer { other in
            sums.withUnsafeMutableBufferPointer {
                FixedPoint.addChecked(other.baseAddress!, into: $0.baseAddress!, count: 2)
            }
        }
        #expect(!added, "Int64.max + 1 wraps: detected")
    }

    /// A worker that rejects the weights it was sent says so at once, for the whole run
    /// (every worker got the same weights); one that holds no weights refuses for itself.
    @Test func aWorkerRefusesBadWeightsOutLoud() throws {
        func welcomed() -> WorkerCore {
            let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
            let welcome = Welcome(
                workerID: 2, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
            _ = core.handle(Message(runID: 1, payload: .welcome(welcome)).encoded())
            return core
        }
        func step(_ number: UInt64, _ weights: [Float]?) -> [UInt8] {
            let work = StepWork(
                slice: 0, evaluate: false, weights: weights, sampleSize: 784,
                pixels: [UInt8](repeating: 0, count: 784 * 8), labels: [UInt8](repeating: 0, count: 8))
            return Message(runID: 1, step: number, workerID: 2, payload: .step(work)).encoded()
        }
        func refusal(_ number: UInt64, _ scope: Refusal.Scope, _ reason: String) -> [Message] {
            [Message(runID: 1, step: number, workerID: 2, payload: .refuse(Refusal(scope, reason)))]
        }
        let count = try Architecture(ModelZoo.lenet5).parameterCount
        var weights = [Float](repeating: 0, count: count)
        weights[3] = .infinity
        let core = welcomed()
        #expect(core.handle(step(4, weights)).replies == refusal(4, .run, "step 4 does not decode: weight 3 is inf"))
        #expect(
            core.handle(step(5, [Float](repeating: 0, count: count + 1))).replies
                == refusal(5, .run, "step 5 carries weights 0..<\(count + 1), the model has \(count)"))
        #expect(
            core.handle(step(5, [1, 2, 3])).replies
                == refusal(5, .worker, "step 5 carries weights 0..<3 and this worker holds no others for it"))
        #expect(
            welcomed().handle(step(6, nil)).replies
                == refusal(6, .worker, "step 6 carries no weights and this worker holds none"))
        #expect(!core.isFinished, "a refused step does not end the worker")
    }
}
