import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

extension Process {
    /// Children started from some test runners inherit a blocked signal mask and would then
    /// ignore SIGTERM; a process that is ended by PID must be able to receive it.
    static func clearInheritedSignalMask() {
        var set = sigset_t()
        sigemptyset(&set)
        pthread_sigmask(SIG_SETMASK, &set, nil)
    }
}

/// Progress output: a redrawn bar on a terminal, plain lines otherwise, or one JSON object
/// per epoch with `--json`. Every line is flushed so a parent process sees it at once.
struct ProgressPrinter {
    let json: Bool
    let isTerminal = isatty(STDOUT_FILENO) == 1
    /// Samples per step (the global batch), for the bar's samples/s.
    let batch: Int
    /// The resolved training flags, added to the first epoch object (`config`) so a run's
    /// JSON lines say what was trained; nil once written.
    private var recipe: [String: String]?
    private var lastBarUpdate: ContinuousClock.Instant?
    /// Where the bar's epoch began: its first step seen (a resumed epoch starts midway) and when.
    private var epochStart: (epoch: Int, step: Int, at: ContinuousClock.Instant)?

    init(json: Bool, batch: Int = 0, recipe: [String: String]? = nil) {
        self.json = json
        self.batch = batch
        self.recipe = recipe
    }

    static func line(_ text: String) {
        print(text)
        fflush(nil)
    }

    /// A line on stderr that starts with its own prefix (`report: …`): through the log, so
    /// it is a JSON object with `--log-format json` (`Log.prefixed`).
    static func error(_ text: String) { Log.prefixed(text) }

    mutating func step(_ progress: StepProgress, epochs: Int, extra: String = "") {
        step(
            epoch: progress.epoch, epochs: epochs, step: progress.step, steps: progress.stepsPerEpoch,
            loss: progress.runningLoss, extra: extra)
    }

    mutating func step(epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, extra: String = "") {
        guard isTerminal, !json else { return }
        let now = ContinuousClock.now
        if epochStart?.epoch != epoch { epochStart = (epoch, step, now) }
        guard step == steps || lastBarUpdate.map({ $0.duration(to: now) > .milliseconds(100) }) ?? true else { return }
        lastBarUpdate = now
        var rate: Double?
        var eta: Double?
        if let start = epochStart, step > start.step {
            let elapsed = start.at.duration(to: now).inSeconds
            rate = Double((step - start.step) * batch) / elapsed
            eta = elapsed / Double(step - start.step) * Double(steps - step)
        }
        let bar = Self.barLine(
            epoch: epoch, epochs: epochs, step: step, steps: steps, loss: loss, samplesPerSecond: rate, eta: eta)
        print("\r\u{1B}[2K" + bar + extra, terminator: "")
        fflush(nil)
    }

    /// The bar's text: `epoch 2/10 ███░░ 120/938 loss 0.1234  21,345 samples/s  ETA 0:38`.
    /// Rate and ETA are of the epoch in progress; nil (before a second step) prints none and `ETA --:--`.
    static func barLine(
        epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, samplesPerSecond: Double?, eta: Double?
    ) -> String {
        let width = 30
        let filled = steps > 0 ? width * min(max(step, 0), steps) / steps : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let rate = samplesPerSecond.flatMap {
            $0.isFinite && $0 >= 0 ? "  \(grouped(Int($0.rounded()))) samples/s" : nil
        }
        return "epoch \(epoch + 1)/\(epochs) \(bar) \(step)/\(steps) loss \(format(loss, 4))\(rate ?? "")  "
            + "ETA \(etaText(eta))"
    }

    /// Seconds as `M:SS`, or `H:MM:SS` from an hour; `--:--` when unknown or not a time.
    static func etaText(_ seconds: Double?) -> String {
        // Below a year: anything longer is no estimate, and Int conversion must not trap.
        guard let seconds, seconds.isFinite, seconds >= 0, seconds < 365 * 86_400 else { return "--:--" }
        let total = Int(seconds.rounded())
        let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
        let two = { (value: Int) in value < 10 ? "0\(value)" : "\(value)" }
        return hours > 0 ? "\(hours):\(two(minutes)):\(two(secs))" : "\(minutes):\(two(secs))"
    }

    /// An epoch's line: its report, a cluster's figures, and once the stop rule's target is
    /// reached, the time to it (`time_to_target_seconds` in JSON).
    mutating func epoch(
        _ report: EpochReport, epochs: Int, cluster: ClusterStats? = nil, timeToTarget: Double? = nil
    ) {
        if json {
            let line = EpochLine(report: report, cluster: cluster, timeToTarget: timeToTarget, recipe: recipe)
            recipe = nil
            Self.line(Self.jsonLine(line))
            return
        }
        if isTerminal { print("\r\u{1B}[2K", terminator: "") }
        Self.line(
            "epoch \(report.epoch)/\(epochs)  loss \(format(report.loss, 4))  train \(percent(report.trainAccuracy))  "
                + "test \(percent(report.testAccuracy))  \(format(report.seconds, 1)) s  "
                + "\(Int(report.samplesPerSec.rounded())) samples/s  lr \(format(report.learningRate, 5))"
        )
        if let stats = cluster {
            Self.line(
                "  \(stats.workers) workers: step \(format(stats.stepMs, 2)) ms, coordinator "
                    + "\(format(stats.coordinatorMs, 2)) ms, worker compute "
                    + stats.workerStepMs.map { format($0, 2) }.joined(separator: "/")
                    + " ms, waiting \(percent(stats.workerWaitFraction)), \(Int(stats.bytesPerStep / 1024)) KiB/step")
        }
        if let timeToTarget {
            Self.line(
                "reached the target test accuracy after \(format(timeToTarget, 1)) s of training (evaluations included)"
            )
        }
    }

    /// One JSON object on one line. Never traps: peers' numbers are bounded before they are
    /// used, but a non-finite value that still got here is written as the string "inf",
    /// "-inf" or "nan" (JSON has no such numbers) instead of killing the process.
    static func jsonLine<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            return "{\"error\":\"cannot encode this line as JSON\"}"
        }
    }
}

func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
func percent(_ fraction: Double) -> String { String(format: "%.2f%%", fraction * 100) }

/// Logs `message` as an error (one line on stderr naming this process, `coordinator@host:pid:
/// error: …`) and exits non-zero: the CLI's way out for bad input and failed runs.
func fail(_ message: String) -> Never {
    Log.error(message)
    exit(1)
}

/// Runs `body`, turning the engine's errors into a one-line message and exit status 1.
func reportingErrors<T>(_ body: () throws -> T) -> T {
    do { return try body() } catch let error as ExitCode { Foundation.exit(error.rawValue) } catch {
        fail(ErrorWording.line(for: error))
    }
}

/// One JSON object per epoch: the report's keys, the cluster's, the time to target, and on a
/// run's first line the resolved training flags (`config`).
struct EpochLine: Encodable {
    let report: EpochReport
    let cluster: ClusterStats?
    let timeToTarget: Double?
    var recipe: [String: String]? = nil

    enum Keys: String, CodingKey {
        case timeToTarget = "time_to_target_seconds"
        case recipe = "config"
    }

    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        try cluster?.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(timeToTarget, forKey: .timeToTarget)
        try container.encodeIfPresent(recipe, forKey: .recipe)
    }
}
