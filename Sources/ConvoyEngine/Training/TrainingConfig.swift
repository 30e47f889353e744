/// Everything that fixes a training run's result. The same config gives the same weights in
/// `convoy train` and in a cluster of any size (with `deterministic`).
public struct TrainingConfig: Equatable, Sendable {
    public var model: String = "lenet5"
    public var epochs: Int = 10
    public var batchSize: Int = 64
    public var optimizer: OptimizerKind = .momentum
    public var learningRate: Float = 0.05
    public var schedule: LearningRateSchedule = .cosine
    public var seed: UInt64 = 1
    /// Exact fixed-point gradient sums over micro-batches of `microBatch` samples, so any
    /// number of workers gives bit-identical weights.
    public var deterministic: Bool = true
    public var microBatch: Int = 8
    /// Overrides the model's initializer when set.
    public var initializer: Initializer? = nil
    public var trainSamples: Int? = nil
    public var testSamples: Int? = nil

    public init() {}

    /// One line per impossible value, naming the flag.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ConfigError(message) } }
        _ = try ModelZoo.spec(named: model)
        try check(ModelZoo.trainable.contains(model.lowercased()),
                  "--model \(model) is for summaries only; trainable models: \(ModelZoo.trainable.joined(separator: ", "))")
        try check(epochs >= 1, "--epochs must be at least 1 (got \(epochs))")
        try check(batchSize >= 1 && batchSize <= 65536, "--batch must be in 1...65536 (got \(batchSize))")
        try check(learningRate.isFinite && learningRate > 0, "--lr must be a positive number (got \(learningRate))")
        try check(microBatch >= 1 && microBatch <= 65536, "--micro-batch must be in 1...65536 (got \(microBatch))")
        try check((batchSize + microBatch - 1) / microBatch <= FixedPoint.maxTerms,
                  "--batch \(batchSize) / --micro-batch \(microBatch) gives more than \(FixedPoint.maxTerms) micro-batches per step")
        if let n = trainSamples { try check(n >= 1, "--train-samples must be at least 1 (got \(n))") }
        if let n = testSamples { try check(n >= 1, "--test-samples must be at least 1 (got \(n))") }
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What one epoch produced; `--json` prints exactly these keys.
public struct EpochReport: Codable, Equatable, Sendable {
    public var epoch: Int
    public var loss: Double
    public var trainAccuracy: Double
    public var testAccuracy: Double
    public var testLoss: Double
    public var seconds: Double
    public var samplesPerSec: Double
    public var learningRate: Double

    enum CodingKeys: String, CodingKey {
        case epoch, loss, seconds
        case trainAccuracy = "train_accuracy", testAccuracy = "test_accuracy", testLoss = "test_loss"
        case samplesPerSec = "samples_per_sec", learningRate = "learning_rate"
    }

    public init(epoch: Int, loss: Double, trainAccuracy: Double, testAccuracy: Double, testLoss: Double,
                seconds: Double, samplesPerSec: Double, learningRate: Double) {
        self.epoch = epoch; self.loss = loss; self.trainAccuracy = trainAccuracy; self.testAccuracy = testAccuracy
        self.testLoss = testLoss; self.seconds = seconds; self.samplesPerSec = samplesPerSec; self.learningRate = learningRate
    }
}
