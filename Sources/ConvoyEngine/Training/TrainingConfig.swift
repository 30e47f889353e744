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
    /// Epochs of linear learning-rate warm-up before the schedule (docs/SPEC.md §7.5).
    public var warmupEpochs: Int = 0
    /// L2 weight decay λ: the mean gradient gains λ·w before the update (docs/SPEC.md §7).
    public var weightDecay: Float = 0
    /// Shift training images by up to this many pixels, seeded per (seed, epoch, sample);
    /// 0: off (docs/SPEC.md §8).
    public var augmentShift: Int = 0
    public var trainSamples: Int? = nil
    public var testSamples: Int? = nil

    public init() {}

    /// The largest `--lr` a run accepts.
    public static let maxLearningRate: Float = 1000

    /// Throws a `SettingError` for the first impossible value.
    public func validate() throws {
        func check(_ ok: Bool, _ setting: TrainingSetting, _ value: Any, _ rule: String) throws {
            if !ok { throw SettingError(setting: setting, value: "\(value)", rule: rule) }
        }
        _ = try ModelZoo.spec(named: model)
        try check(
            ModelZoo.trainable.contains(model.lowercased()), .model, model,
            "is for summaries only; trainable models: \(ModelZoo.trainable.joined(separator: ", "))")
        // The ranges are what the training records can hold (docs/FORMATS.md §3.1): a run that
        // could not be checkpointed or saved is refused before it starts.
        try check(
            (1...RecordBounds.maxEpochs).contains(epochs), .epochs, epochs, "must be in 1...\(RecordBounds.maxEpochs)")
        try check((1...RecordBounds.maxBatch).contains(batchSize), .batchSize, batchSize, "must be in 1...65536")
        // Above 1000 every model here diverges in its first step; Float32 takes nothing above ~3.4e38.
        try check(
            learningRate.isFinite && learningRate > 0 && learningRate <= Self.maxLearningRate, .learningRate,
            learningRate, "must be a number in (0, \(Int(Self.maxLearningRate))]")
        try check((1...RecordBounds.maxBatch).contains(microBatch), .microBatch, microBatch, "must be in 1...65536")
        try check(
            (batchSize + microBatch - 1) / microBatch <= FixedPoint.maxTerms, .microBatch, microBatch,
            "gives more than \(FixedPoint.maxTerms) micro-batches in a batch of \(batchSize)")
        try check(
            warmupEpochs >= 0 && warmupEpochs < epochs, .warmupEpochs, warmupEpochs,
            "must be in 0..<epochs (\(epochs))")
        try check(
            weightDecay.isFinite && weightDecay >= 0 && weightDecay < 1, .weightDecay, weightDecay,
            "must be in [0, 1)")
        try check(augmentShift >= 0 && augmentShift <= 8, .augmentShift, augmentShift, "must be in 0...8")
        let samples = 1...RecordBounds.maxSamples
        if let n = trainSamples {
            try check(samples.contains(n), .trainSamples, n, "must be in 1...\(samples.upperBound)")
        }
        if let n = testSamples {
            try check(samples.contains(n), .testSamples, n, "must be in 1...\(samples.upperBound)")
        }
    }
}

/// The settings of a training run, by name; the CLI knows each one's flag.
public enum TrainingSetting: String, Sendable, CaseIterable {
    case model, epochs, batchSize, optimizer, learningRate, schedule, seed, microBatch, initializer
    case trainSamples, testSamples, warmupEpochs, weightDecay, augmentShift
}

/// A setting whose value cannot work, and the rule it breaks.
public struct SettingError: Error, CustomStringConvertible, Equatable {
    public let setting: TrainingSetting
    public let value: String
    public let rule: String
    public init(setting: TrainingSetting, value: String, rule: String) {
        self.setting = setting
        self.value = value
        self.rule = rule
    }
    public var description: String { "\(setting.rawValue) \(value): \(rule)" }
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
        case trainAccuracy = "train_accuracy"
        case testAccuracy = "test_accuracy"
        case testLoss = "test_loss"
        case samplesPerSec = "samples_per_sec"
        case learningRate = "learning_rate"
    }

    public init(
        epoch: Int, loss: Double, trainAccuracy: Double, testAccuracy: Double, testLoss: Double,
        seconds: Double, samplesPerSec: Double, learningRate: Double
    ) {
        self.epoch = epoch
        self.loss = loss
        self.trainAccuracy = trainAccuracy
        self.testAccuracy = testAccuracy
        self.testLoss = testLoss
        self.seconds = seconds
        self.samplesPerSec = samplesPerSec
        self.learningRate = learningRate
    }
}
