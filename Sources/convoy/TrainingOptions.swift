import ArgumentParser
import ConvoyEngine
import ConvoyInterop

/// The flags that define a training run, shared by `train`, `local` and `coordinator`.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Model: \(ModelZoo.trainable.joined(separator: ", ")).") var model = "lenet5"
    @Option(help: "Number of passes over the training set.") var epochs = 10
    @Option(help: "Global batch size (split across workers).") var batch = 64
    @Option(help: "Optimizer: sgd, momentum, adagrad, adam.") var optimizer = "momentum"
    @Option(help: "Base learning rate (default: 0.05 × √(batch/64), the square-root scaling rule).") var lr: Float?
    @Option(name: .customLong("warmup-epochs"), help: "Epochs of linear learning-rate warm-up (for large batches).")
    var warmupEpochs = 0
    @Option(
        help: ArgumentHelp(
            "Shift training images by up to N pixels, seeded per sample and epoch (same answer at any N workers); "
                + "default: 1 for image models, 0 otherwise."))
    var augment: Int?
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay λ (the gradient gains λ·w).") var weightDecay:
        Float = 0.0005
    @Option(help: "Learning-rate schedule: cosine (decays to 0 over the run) or constant.") var schedule = "cosine"
    @Option(help: "Seed for initial weights and batch order.") var seed: UInt64 = 1
    @Option(help: "Directory with the MNIST IDX files (gzipped or raw).") var data = defaultDataDirectory()
    @Option(name: .customLong("train-samples"), help: "Use only the first N training samples.") var trainSamples: Int?
    @Option(name: .customLong("test-samples"), help: "Use only the first N test samples.") var testSamples: Int?
    @Option(name: .customLong("micro-batch"), help: "Micro-batch size of the deterministic mode.") var microBatch = 8
    @Option(name: .customLong("init"), help: "Initializer: he, xavier, uniform, gaussian:SIGMA (default: the model's).")
    var initializer: String?
    @Option(
        name: .customLong("target-accuracy"),
        help: "Stop once the test accuracy reaches A (a fraction, e.g. 0.99) and report the time to it.")
    var targetAccuracy: Double?
    @Option(
        name: .customLong("eval-every"),
        help: "With --target-accuracy, also evaluate every K steps (0: at epoch ends only).")
    var evalEvery = 0
    @Flag(
        inversion: .prefixedNo,
        help: "Exact fixed-point gradient sums: bit-identical weights for any number of workers.")
    var deterministic = true
    @Option(
        help: ArgumentHelp(
            "Write TensorBoard scalars (loss, accuracy, samples/s, learning rate) per epoch to an event file in DIR.",
            valueName: "dir"))
    var tensorboard: String?
    @OptionGroup var metrics: MetricsOptions
    @Option(
        help: ArgumentHelp(
            "Write a timeline of every step (Chrome trace JSON for Perfetto or chrome://tracing) to FILE.",
            valueName: "file"))
    var trace: String?

    func config() throws -> TrainingConfig {
        var config = TrainingConfig()
        config.model = model.lowercased()
        config.epochs = epochs
        config.batchSize = batch
        guard let kind = OptimizerKind(rawValue: optimizer.lowercased()) else {
            throw FlagError(
                "--optimizer \(optimizer) is unknown; use one of "
                    + "\(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        config.optimizer = kind
        // The default rate grows with the batch, so a larger global batch (more workers, each
        // with enough work) still learns: the square-root rule, 0.05 · √(batch/64). Measured
        // for LeNet-5, batch 256, 1 warm-up epoch, 10 epochs, seed 1: lr 0.1 (this rule)
        // 99.08%, 0.15 99.21%, 0.2 (the linear rule) 98.59%, 0.3 98.80% (docs/SPEC.md §7.5).
        config.learningRate = lr ?? 0.05 * (Float(batch) / 64).squareRoot()
        config.warmupEpochs = warmupEpochs
        config.weightDecay = weightDecay
        // The default recipe (measured, 10 epochs: 99.49%, 99.36%, 99.44% for seeds 1, 2, 3,
        // against 99.28%, 99.01%, 99.28% without shifts and decay): one-pixel shifts for
        // models that take images, weight decay 5e-4.
        let takesImages = (try? ModelZoo.spec(named: config.model))?.inputShape.rank == 3
        config.augmentShift = augment ?? (takesImages ? 1 : 0)
        guard let schedule = LearningRateSchedule(rawValue: schedule.lowercased()) else {
            throw FlagError("--schedule \(self.schedule) is unknown; use cosine or constant")
        }
        config.schedule = schedule
        config.seed = seed
        config.trainSamples = trainSamples
        config.testSamples = testSamples
        config.deterministic = deterministic
        config.microBatch = microBatch
        if let initializer {
            guard let parsed = Initializer(argument: initializer) else {
                throw FlagError("--init \(initializer) is unknown; use he, xavier, uniform or gaussian:SIGMA")
            }
            config.initializer = parsed
        }
        try config.validate()
        return config
    }

    /// ArgumentParser calls this before `run`: impossible flags fail before any work.
    func validate() throws {
        do { _ = try config() } catch { throw ValidationError(ErrorWording.line(for: error)) }
        // Written so that NaN fails too.
        if let target = targetAccuracy, !(target > 0 && target <= 1) {
            throw ValidationError("--target-accuracy \(target): must be in (0, 1]")
        }
        try checkFlag("eval-every", evalEvery, in: FlagRange.everySteps)
    }

    /// When to stop early, if --target-accuracy was given.
    var stopRule: StopRule? { targetAccuracy.map { StopRule(targetAccuracy: $0, evaluateEvery: evalEvery) } }

    func loadData(_ config: TrainingConfig) throws -> (train: Dataset, test: Dataset) {
        (
            try MNIST.load(directory: data, split: .train, limit: config.trainSamples),
            try MNIST.load(directory: data, split: .test, limit: config.testSamples)
        )
    }
}

/// Fails before any training if the model could not be saved to `path` later.
func checkOutputPath(_ path: String, flag: String = "out") throws {
    // FilePaths, not NSString: deletingLastPathComponent traps on a one-letter path on Linux.
    let dir = FilePaths.directory(of: path)
    var isDirectory: ObjCBool = false
    guard !path.isEmpty else { throw FlagError("--\(flag): the path is empty") }
    if path.hasSuffix("/")
        || FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            && isDirectory.boolValue
    {
        throw FlagError("--\(flag) \(path): names a directory, not a file")
    }
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw FlagError("--\(flag) \(path): directory \(dir) does not exist")
    }
    guard FileManager.default.isWritableFile(atPath: dir) else {
        throw FlagError("--\(flag) \(path): directory \(dir) is not writable")
    }
}

/// `data/mnist` of the checkout the binary was built in, else `./data/mnist`.
func defaultDataDirectory() -> String {
    let fromBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent()
    var dir = fromBinary
    for _ in 0..<5 {
        let candidate = dir.appendingPathComponent("data/mnist")
        if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("train-labels-idx1-ubyte.gz").path) {
            return candidate.path
        }
        dir = dir.deletingLastPathComponent()
    }
    return "data/mnist"
}

import Foundation
