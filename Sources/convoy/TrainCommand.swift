import ArgumentParser
import ConvoyEngine
import ConvoyInterop
import Foundation

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on MNIST in this process.",
        discussion:
            "The defaults train LeNet-5 to about 99.4% test accuracy in 10 epochs. With --checkpoint-dir a run killed "
            + "at any point continues with --resume to the same weights."
    )

    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var training: TrainingOptions
    @OptionGroup var checkpoints: CheckpointOptions
    @OptionGroup var logs: LogOptions
    @Option(help: "Where to save the trained model.") var out = "lenet5.convoy"
    @Option(help: "OpenBLAS threads for this process.") var threads = 1
    @Flag(help: "Print one JSON object per epoch instead of text.") var json = false
    @Option(name: .customLong("report"), help: "Write a self-contained HTML run report to this file.")
    var reportFile: String?

    func validate() throws {
        try checkFlag("threads", threads, in: FlagRange.threads)
        // The training network and state, before the data is read or anything allocated.
        // An invalid training flag is TrainingOptions.validate's to report.
        if let config = try? training.config() {
            try MemoryBudget.check(try MemoryBudget.trainingBytes(config), for: "training \(config.model)")
        }
    }

    func run() throws {
        reportingErrors {
            let config = try training.config()
            try checkOutputPath(out)
            try reportFile.map { try checkOutputPath($0, flag: "report") }
            let runReport = RunReportWriter(
                path: reportFile, title: "convoy train: \(config.model)", recipe: training.recipe)
            BLAS.setThreads(threads)
            let log: @Sendable (String) -> Void = Log.line
            let metrics = try training.metrics.start(log: log)
            let signals = StopOnSignals(log: log)
            let checkpoint = try checkpoints.checkpoint(log: log)
            let board = try training.tensorBoardWriter()
            let timeline = try training.timeline(role: "train", log: log)
            defer { timeline?.finish() }
            let (train, test) = try training.loadData(config)
            let session = try TrainingSession(
                config: config, train: train, test: test, runner: LocalStepRunner(),
                checkpoints: checkpoints.policy, log: log)
            training.prepare(session)
            session.stopRequest = signals.request
            session.timeline = timeline
            if let checkpoint { try session.resume(from: checkpoint) }
            if !json {
                ProgressPrinter.line(
                    "training \(config.model) (\(session.architecture.parameterCount) parameters) on \(train.count) "
                        + "samples, testing on \(test.count); batch \(config.batchSize), \(config.optimizer.rawValue) "
                        + "lr \(config.learningRate) \(config.schedule.rawValue), seed "
                        + "\(config.seed)\(config.deterministic ? ", deterministic" : "")"
                )
            }
            var printer = ProgressPrinter(json: json, batch: config.batchSize, recipe: training.recipe)
            let outcome = try session.run(
                progress: {
                    printer.step($0, epochs: config.epochs)
                    metrics?.step($0, plan: session.plan)
                },
                epochDone: { report in
                    printer.epoch(report, epochs: config.epochs, timeToTarget: session.timeToTarget)
                    metrics?.epoch(report)
                    try board?.add(report, step: session.server.step)
                    try runReport?.epoch(EpochLine(report: report, cluster: nil, timeToTarget: session.timeToTarget))
                    // Saved after every epoch so an interrupted run still leaves a usable model.
                    try session.modelFile.save(to: out)
                })
            try runReport?.finish(model: session.modelFile, test: test, name: out)
            try exitIfStopped(outcome, checkpoints: checkpoints, log: log)
            // Also when a resumed run had no epoch left to train.
            try session.modelFile.save(to: out)
            if !json {
                ProgressPrinter.line(
                    "saved \(out) (parameter checksum \(String(format: "%08x", session.modelFile.parameterChecksum)))")
            }
        }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy and confusion matrix of a saved model on the MNIST test set.")

    @Option(name: .customLong("model-file"), help: "A model saved by train, local or coordinator.") var modelFile:
        String
    @Option(help: "Directory with the MNIST IDX files.") var data = defaultDataDirectory()
    @Option(name: .customLong("test-samples"), help: "Use only the first N test samples.") var testSamples: Int?
    @Flag(help: "Print one JSON object.") var json = false

    struct Result: Encodable {
        let model: String
        let samples: Int
        let accuracy: Double
        let loss: Double
        let parameterChecksum: String
        let confusion: [[Int]]
        /// The training flags the model file recorded (format version 4), by long name.
        var config: [String: String]? = nil
        enum CodingKeys: String, CodingKey {
            case model, samples, accuracy, loss, confusion, config
            case parameterChecksum = "parameter_checksum"
        }
    }

    /// Test samples per forward pass.
    static let batch = 500

    func validate() throws {
        if let n = testSamples { try checkFlag("test-samples", n, in: FlagRange.samples) }
    }

    func run() throws {
        reportingErrors {
            BLAS.setThreads(1)
            let file = try ModelFile.load(path: modelFile)
            let test = try MNIST.load(directory: data, split: .test, limit: testSamples)
            let result = try Result(evaluating: file, on: test, name: modelFile)
            if json {
                ProgressPrinter.line(ProgressPrinter.jsonLine(result))
                return
            }
            ProgressPrinter.line(
                "\(modelFile): \(result.model), \(test.count) test samples, accuracy \(percent(result.accuracy)), "
                    + "loss \(format(result.loss, 4))"
            )
            if !file.recipe.isEmpty { ProgressPrinter.line("trained with: \(file.recipeText)") }
            ProgressPrinter.line("confusion matrix (rows: true label, columns: predicted)")
            ProgressPrinter.line(
                "     " + (0..<(result.confusion.first?.count ?? 0)).map { pad(String($0), 6) }.joined())
            for (label, row) in result.confusion.enumerated() {
                ProgressPrinter.line(pad(String(label), 3) + "  " + row.map { pad(String($0), 6) }.joined())
            }
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

func padRight(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

func grouped(_ value: Int) -> String {
    let digits = String(value)
    var out = ""
    for (i, c) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return String(out.reversed())
}
