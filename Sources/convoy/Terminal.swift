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
    private var lastBarUpdate: ContinuousClock.Instant?

    init(json: Bool) { self.json = json }

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
        guard step == steps || lastBarUpdate.map({ $0.duration(to: now) > .milliseconds(100) }) ?? true else { return }
        lastBarUpdate = now
        let width = 30
        let filled = steps > 0 ? width * step / steps : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        print(
            "\r\u{1B}[2Kepoch \(epoch + 1)/\(epochs) \(bar) \(step)/\(steps) loss \(format(loss, 4))\(extra)",
            terminator: "")
        fflush(nil)
    }

    /// An epoch's line: its report, a cluster's figures, and once the stop rule's target is
    /// reached, the time to it (`time_to_target_seconds` in JSON).
    func epoch(_ report: EpochReport, epochs: Int, cluster: ClusterStats? = nil, timeToTarget: Double? = nil) {
        if json {
            Self.line(Self.jsonLine(EpochLine(report: report, cluster: cluster, timeToTarget: timeToTarget)))
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

/// One JSON object per epoch: the report's keys, the cluster's, and the time to target.
struct EpochLine: Encodable {
    let report: EpochReport
    let cluster: ClusterStats?
    let timeToTarget: Double?

    enum Keys: String, CodingKey { case timeToTarget = "time_to_target_seconds" }

    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        try cluster?.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(timeToTarget, forKey: .timeToTarget)
    }
}
