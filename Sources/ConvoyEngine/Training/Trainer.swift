import Foundation

/// Single-process training: the same step as a cluster (gather the batch, compute the
/// gradient sum, combine, update), with the whole batch in one `GradientComputer`.
public final class Trainer {
    public let config: TrainingConfig
    public let architecture: Architecture
    public let train: Dataset
    public let test: Dataset
    public let plan: BatchPlan
    public let server: ParameterServer
    let computer: GradientComputer
    private var batchPixels: [UInt8]
    private var batchLabels: [UInt8]

    public init(config: TrainingConfig, train: Dataset, test: Dataset) throws {
        try config.validate()
        self.config = config
        architecture = try Architecture(try ModelZoo.spec(named: config.model))
        guard architecture.inputShape.count == train.sampleSize else {
            throw ConfigError("model \(config.model) takes \(architecture.inputShape.count) inputs per sample; the data has \(train.sampleSize)")
        }
        self.train = train
        self.test = test
        plan = BatchPlan(sampleCount: train.count, batchSize: config.batchSize, seed: config.seed)
        server = ParameterServer(parameters: architecture.initialParameters(seed: config.seed, initializer: config.initializer), config: config,
                                 totalSteps: plan.stepsPerEpoch * config.epochs)
        computer = GradientComputer(network: Network(architecture, maxBatch: Self.networkBatch(config)))
        batchPixels = [UInt8](repeating: 0, count: config.batchSize * train.sampleSize)
        batchLabels = [UInt8](repeating: 0, count: config.batchSize)
    }

    /// Large enough for a whole batch in fast mode and for evaluation chunks.
    static func networkBatch(_ config: TrainingConfig) -> Int {
        max(config.deterministic ? config.microBatch : config.batchSize, 256)
    }

    /// Trains all epochs; `progress(epoch, step, stepsPerEpoch, runningLoss)` after each step.
    public func run(progress: (Int, Int, Int, Double) -> Void = { _, _, _, _ in },
                    epochDone: (EpochReport) throws -> Void) throws {
        for epoch in 0..<config.epochs {
            let report = try runEpoch(epoch, progress: progress)
            try epochDone(report)
        }
    }

    public func runEpoch(_ epoch: Int, progress: (Int, Int, Int, Double) -> Void) throws -> EpochReport {
        let started = Date()
        let order = plan.order(epoch: epoch)
        var totals = GradientComputer.Totals()
        let rate = server.learningRate
        for index in 0..<plan.stepsPerEpoch {
            let range = plan.batchRange(step: index)
            let stepTotals = try batchPixels.withUnsafeMutableBufferPointer { pixels in
                try batchLabels.withUnsafeMutableBufferPointer { labels in
                    train.gather(order[range], pixels: pixels.baseAddress!, labels: labels.baseAddress!)
                    return try step(pixels: pixels.baseAddress!, labels: labels.baseAddress!, count: range.count)
                }
            }
            totals.add(stepTotals)
            progress(epoch, index + 1, plan.stepsPerEpoch, totals.lossSum / Double(max(totals.count, 1)))
        }
        let seconds = Date().timeIntervalSince(started)
        let evaluation = evaluate(test)
        return EpochReport(epoch: epoch + 1, loss: totals.lossSum / Double(totals.count),
                           trainAccuracy: Double(totals.correct) / Double(totals.count),
                           testAccuracy: Double(evaluation.correct) / Double(max(evaluation.count, 1)),
                           testLoss: evaluation.lossSum / Double(max(evaluation.count, 1)),
                           seconds: seconds, samplesPerSec: Double(totals.count) / seconds,
                           learningRate: Double(rate))
    }

    /// One optimizer step on `count` gathered samples.
    @discardableResult
    public func step(pixels: UnsafePointer<UInt8>, labels: UnsafePointer<UInt8>, count: Int) throws -> GradientComputer.Totals {
        server.beginStep()
        // The same hand-over as a worker receiving the step's weights.
        computer.network.parameters.pointer.update(from: server.parameters.pointer, count: server.parameterCount)
        let result = try computer.compute(pixels: pixels, labels: labels, count: count,
                                          deterministic: config.deterministic, microBatch: config.microBatch)
        let all = 0..<server.parameterCount
        if config.deterministic {
            server.add(fixedSums: computer.fixedSums, parameters: all)
        } else {
            server.add(floatSums: computer.network.gradient.pointer, parameters: all)
        }
        server.addSamples(result.count)
        server.finishStep()
        return result
    }

    /// Loss and accuracy of the current parameters on a dataset.
    public func evaluate(_ data: Dataset) -> GradientComputer.Totals {
        let network = computer.network
        network.parameters.pointer.update(from: server.parameters.pointer, count: server.parameterCount)
        return data.pixels.withUnsafeBufferPointer { pixels in
            data.labels.withUnsafeBufferPointer { labels in
                computer.evaluate(pixels: pixels.baseAddress!, labels: labels.baseAddress!, count: data.count)
            }
        }
    }

    public var modelFile: ModelFile {
        ModelFile(spec: architecture.spec, config: config, parameters: server.parameters.array)
    }
}
