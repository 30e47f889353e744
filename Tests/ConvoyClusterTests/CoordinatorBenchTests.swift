@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// `convoy bench-coordinator`: the real coordinator over ZeroMQ against synthetic workers.
/// Outcomes only (steps done, bytes, workers kept); timings are never asserted.
@Suite(.serialized) struct CoordinatorBenchTests {
    static let steps = 5, warmup = 2

    /// The bytes one step must cost by the codec: each slice's step message out, its
    /// result buckets back.
    static func expectedBytesPerStep(workers: Int, batch: Int, deterministic: Bool) throws -> Int {
        let architecture = try Architecture(try ModelZoo.spec(named: "lenet5"))
        let size = architecture.inputShape.count
        let unit = deterministic ? 8 : 1
        let slices = BatchPlan.slices(count: batch, parts: workers, unit: unit).filter { !$0.isEmpty }
        // Deterministic steps send the head ahead (HeadAhead.swift): a `weights` message with
        // the head, and step messages with the trunk only.
        let head = architecture.gradientBuckets[0].parameters
        let ahead = Message(
            runID: 1,
            payload: .weights(
                WeightsUpdate(
                    offset: head.lowerBound,
                    values: [Float](
                        repeating: 0, count: head.count)))
        ).encoded().count
        return slices.reduce(0) { total, range in
            let n = range.count
            let weights = [Float](
                repeating: 0, count: deterministic ? head.lowerBound : architecture.parameterCount)
            let work = StepWork(
                slice: 0, evaluate: false, weights: weights, sampleSize: size,
                pixels: [UInt8](repeating: 0, count: n * size), labels: [UInt8](repeating: 0, count: n))
            let out = Message(runID: 1, payload: .step(work)).encoded().count
            let back = architecture.gradientBuckets.map(\.parameters).reduce(0) { sum, bucket in
                let gradient = SyntheticReplies.gradient(bucket, deterministic: deterministic)
                let result = StepResult(
                    slice: 0, count: n, correct: 0, lossSum: 0, computeSeconds: 0,
                    gradientOffset: bucket.lowerBound, gradient: gradient)
                // The synthetic workers write gradients as the benchmark's settings say (packed).
                let encoding = CoordinatorBenchSettings(workers: workers).gradientEncoding
                return sum + Message(runID: 1, payload: .result(result)).encoded(gradients: encoding).count
            }
            return total + out + back + (deterministic ? ahead : 0)
        }
    }

    @Test(arguments: [(1, true, false), (3, true, false), (3, false, false), (1, true, true), (3, true, true)])
    func everyStepCompletesWithTheCodecsBytesAndNoWorkerDropped(
        workers: Int, deterministic: Bool, sharedMemory: Bool
    ) throws {
        var settings = CoordinatorBenchSettings(workers: workers)
        settings.steps = Self.steps
        settings.warmupSteps = Self.warmup
        settings.deterministic = deterministic
        settings.sharedMemory = sharedMemory
        var log: [String] = []
        let result = try CoordinatorBenchmark.run(settings, log: { log.append($0) })
        #expect(result.steps == Self.steps)
        #expect(result.dropped == 0, "\(log)")
        #expect(!log.contains { $0.contains("dropped") }, "\(log)")
        #expect(result.workers == workers && result.slices == workers)
        // Every worker had a slice of every step, warm-up included.
        #expect(result.slicesAnswered == [Int](repeating: Self.steps + Self.warmup, count: workers))
        let expected = try Self.expectedBytesPerStep(workers: workers, batch: 64, deterministic: deterministic)
        #expect(result.bytesPerStep == Double(expected))
        #expect(result.stepsPerSec.isFinite && result.stepsPerSec > 0)
        #expect(result.coordinatorCPUMs >= 0 && result.coordinatorIOCPUMs >= 0)
        if sharedMemory { #expect(result.coordinatorIOCPUMs == 0, "shared memory has no I/O thread") }
    }

    /// With more workers than micro-batches, only as many as there are micro-batches work;
    /// the idle ones stay connected (none dropped).
    @Test func workersBeyondTheMicroBatchCountIdleWithoutBeingDropped() throws {
        var settings = CoordinatorBenchSettings(workers: 10)
        settings.steps = 3
        // One warm-up step: the timed ones send the head ahead, as `expectedBytesPerStep` counts.
        settings.warmupSteps = 1
        let result = try CoordinatorBenchmark.run(settings)
        #expect(result.slices == 8 && result.dropped == 0)
        #expect(result.slicesAnswered.reduce(0, +) == 8 * 4)
        let expected = try Self.expectedBytesPerStep(workers: 10, batch: 64, deterministic: true)
        #expect(result.bytesPerStep == Double(expected))
    }

    /// The synthetic worker's shortcuts (reading step fields in place, patching encoded
    /// replies) give exactly what the codec and the coordinator's validator expect.
    @Test func syntheticRepliesAreResultsTheValidatorAccepts() throws {
        let spec = try ModelZoo.spec(named: "lenet5")
        let architecture = try Architecture(spec)
        let work = StepWork(
            slice: 2, evaluate: false, weights: [0, 1], sampleSize: 1, pixels: [1, 2, 3],
            labels: [1, 2, 3])
        let step = Message(runID: 9, step: 5, workerID: 1, payload: .step(work))
        #expect(StepPeek(step.encoded()) == StepPeek(step, work: work))
        for deterministic in [true, false] {
            let welcome = Welcome(workerID: 1, spec: spec, deterministic: deterministic, microBatch: 8, sampleSize: 784)
            let replies = try SyntheticReplies(welcome: welcome, runID: 9, encoding: .packed)
            _ = replies.frames(count: 24, step: 1, slice: 0)
            let validator = ResultValidator(
                architecture: architecture, mode: SumMode(deterministic: deterministic), microBatch: 8)
            var earlier: [StepResult] = []
            for frame in replies.frames(count: 24, step: 5, slice: 2) {  // patched in place
                let message = try Message(decoding: frame)
                guard case let .result(result) = message.payload else {
                    Issue.record("not a result")
                    return
                }
                #expect(message.runID == 9 && message.step == 5 && result.slice == 2)
                #expect(
                    validator.problem(with: result, expected: 24, evaluate: false, earlier: earlier, maxSeconds: 10)
                        == nil)
                earlier.append(result)
            }
            #expect(validator.isComplete(earlier, evaluate: false))
        }
    }

    @Test func theCommandPrintsOneJSONObjectPerWorkerCount() throws {
        let run = try runConvoy(
            [
                "bench-coordinator", "--workers", "1,3", "--steps", "3", "--warmup", "1",
                "--per-worker-batch", "16", "--json",
            ], timeout: 120)
        #expect(run.status == 0, "\(run.stderr)")
        let objects = run.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(objects.map { $0["workers"] as? Int } == [1, 3])
        #expect(objects.map { $0["batch"] as? Int } == [16, 48])
        #expect(objects.allSatisfy { $0["dropped"] as? Int == 0 && ($0["mb_per_sec"] as? Double ?? 0) > 0 })
    }
}
