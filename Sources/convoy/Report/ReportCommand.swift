import ArgumentParser
import ConvoyEngine
import ConvoyInterop
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Draw a run's --json epoch lines as one self-contained HTML page.",
        discussion:
            "Loss, accuracy and throughput per epoch, per-worker slice times, workers joining and dropped, and with "
            + "--model-file the confusion matrix on the test set. No scripts, fonts or network: inline SVG only."
    )

    @Argument(help: "JSON lines printed by train, local or coordinator with --json.") var runFile: String
    @Option(name: .customLong("model-file"), help: "A saved model: adds its confusion matrix on the test set.")
    var modelFile: String?
    @Option(help: "Directory with the MNIST IDX files (with --model-file).") var data = defaultDataDirectory()
    @Option(name: .customLong("test-samples"), help: "Use only the first N test samples.") var testSamples: Int?
    @Option(name: [.customShort("o"), .customLong("output")], help: "The HTML file to write.") var output =
        "report.html"

    func validate() throws {
        if let n = testSamples { try checkFlag("test-samples", n, in: FlagRange.samples) }
    }

    func run() throws {
        reportingErrors {
            try checkOutputPath(output, flag: "output")
            let epochs = try RunRecords.load(path: runFile)
            var evaluation: Evaluate.Result?
            if let modelFile {
                BLAS.setThreads(1)
                let file = try ModelFile.load(path: modelFile)
                let test = try MNIST.load(directory: data, split: .test, limit: testSamples)
                evaluation = try Evaluate.Result(evaluating: file, on: test, name: modelFile)
            }
            let report = RunReport(title: "convoy run: \(peerText(runFile))", epochs: epochs, evaluation: evaluation)
            try RunReportWriter.write(report, to: output)
            ProgressPrinter.error("report: wrote \(output)")
        }
    }
}

/// `--report FILE` on a run: the epoch objects it prints with `--json`, kept whether or not
/// `--json` is on, and the page rewritten from them after each epoch (so a killed run still
/// leaves one) and at the end with the saved model's confusion matrix.
final class RunReportWriter {
    let path: String
    let title: String
    private var lines: [String] = []
    /// The resolved training flags, recorded with the first epoch (as `--json` prints them).
    private var recipe: [String: String]?

    init?(path: String?, title: String, recipe: [String: String]? = nil) {
        guard let path else { return nil }
        self.path = path
        self.title = title
        self.recipe = recipe
    }

    /// Records an epoch as its JSON line (the same bytes `--json` prints) and rewrites the page.
    func epoch(_ line: EpochLine) throws {
        var line = line
        if line.recipe == nil { line.recipe = recipe }
        recipe = nil
        lines.append(ProgressPrinter.jsonLine(line))
        try write(evaluation: nil)
    }

    /// The page with the model's confusion matrix on `test` (the run's test set).
    func finish(model: ModelFile, test: Dataset, name: String) throws {
        try write(evaluation: try Evaluate.Result(evaluating: model, on: test, name: name))
    }

    private func write(evaluation: Evaluate.Result?) throws {
        guard !lines.isEmpty else { return }
        let epochs = try RunRecords.parse(lines.joined(separator: "\n"), name: "--report")
        try Self.write(RunReport(title: title, epochs: epochs, evaluation: evaluation), to: path)
    }

    static func write(_ report: RunReport, to path: String) throws {
        do { try writeAtomically(Array(report.render().utf8), to: path) } catch {
            throw FlagError("\(path): cannot write the report (\(error.localizedDescription))")
        }
    }
}
