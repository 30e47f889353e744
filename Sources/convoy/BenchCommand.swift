import ArgumentParser
import ConvoyEngine
import ConvoyInterop
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training and inference throughput of one process, after a warm-up.")

    @Option(help: "Model to benchmark.") var model = "lenet5"
    @Option(help: "Training batch size.") var batch = 64
    @Option(help: "OpenBLAS threads.") var threads = 1
    @Option(help: "Timed training steps.") var steps = 300
    @Option(name: .customLong("infer-batch"), help: "Inference batch size.") var inferBatch = 1000
    @Option(name: .customLong("micro-batch"), help: "Micro-batch size when --deterministic.") var microBatch = 8
    @Flag(inversion: .prefixedNo, help: "Time the deterministic (fixed-point micro-batch) gradient path.") var deterministic = false
    @Flag(help: "Print one JSON object.") var json = false

    struct Result: Encodable {
        let model: String, batch: Int, threads: Int, deterministic: Bool
        let trainSamplesPerSec: Double, inferSamplesPerSec: Double, stepMilliseconds: Double
        let blasCore: String
        enum CodingKeys: String, CodingKey {
            case model, batch, threads, deterministic
            case trainSamplesPerSec = "train_samples_per_sec", inferSamplesPerSec = "infer_samples_per_sec"
            case stepMilliseconds = "step_ms", blasCore = "blas_core"
        }
    }

    func run() throws {
        reportingErrors {
            guard batch >= 1, steps >= 1, inferBatch >= 1, threads >= 1 else {
                throw FlagError("--batch, --steps, --infer-batch and --threads must be at least 1")
            }
            BLAS.setThreads(threads)
            var config = TrainingConfig()
            config.model = model
            config.batchSize = batch
            config.deterministic = deterministic
            config.microBatch = microBatch
            try config.validate()
            let architecture = try Architecture(try ModelZoo.spec(named: model))
            // Synthetic MNIST-shaped data: speed does not depend on pixel values.
            var rng = SeededRandom(seed: 7)
            let sampleCount = 4096
            let size = architecture.inputShape.count
            let data = Dataset(pixels: (0..<(sampleCount * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                               labels: (0..<sampleCount).map { _ in UInt8(rng.nextIndex(below: 10)) }, sampleSize: size)
            let session = try TrainingSession(config: config, train: data, test: data.prefix(inferBatch),
                                              runner: LocalStepRunner())
            let order = session.plan.order(epoch: 0)
            func trainSteps(_ count: Int) throws {
                for step in 0..<count {
                    try session.trainStep(step: step, samples: order[session.plan.batchRange(step: step % session.plan.stepsPerEpoch)])
                }
            }
            try trainSteps(20)
            var started = Date()
            try trainSteps(steps)
            let trainSeconds = Date().timeIntervalSince(started)
            let inference = Network(architecture, maxBatch: inferBatch, parameters: session.server.parameters.array)
            let inferData = data.prefix(inferBatch)
            func infer(_ times: Int) {
                inferData.pixels.withUnsafeBufferPointer { p in
                    inferData.labels.withUnsafeBufferPointer { l in
                        for _ in 0..<times {
                            inference.loadPixels(p.baseAddress!, batch: inferData.count)
                            _ = inference.evaluate(labels: l.baseAddress!, batch: inferData.count)
                        }
                    }
                }
            }
            infer(2)
            started = Date()
            let rounds = 10
            infer(rounds)
            let inferSeconds = Date().timeIntervalSince(started)
            let result = Result(model: model, batch: batch, threads: threads, deterministic: deterministic,
                                trainSamplesPerSec: Double(steps * batch) / trainSeconds,
                                inferSamplesPerSec: Double(rounds * inferData.count) / inferSeconds,
                                stepMilliseconds: trainSeconds / Double(steps) * 1000, blasCore: BLAS.coreName)
            if json { ProgressPrinter.line(ProgressPrinter.jsonLine(result)); return }
            ProgressPrinter.line("\(model) batch \(batch), \(threads) thread(s)\(deterministic ? ", deterministic" : ""): train \(Int(result.trainSamplesPerSec)) samples/s (\(format(result.stepMilliseconds, 3)) ms/step), inference \(Int(result.inferSamplesPerSec)) samples/s at batch \(inferData.count) [OpenBLAS \(result.blasCore)]")
        }
    }
}
