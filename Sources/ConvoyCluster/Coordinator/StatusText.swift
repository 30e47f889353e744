import ConvoyEngine
import Foundation

extension StatusReport {
    /// The report as `convoy status` and SIGUSR1 print it: the run's position, whom the round
    /// waits on, then one line per worker. Peer-supplied host names go through `peerText`.
    public func text(runID: UInt64) -> String {
        var position = "step \(step)"
        if epoch > 0 { position += ", epoch \(epoch)" + (epochs > 0 ? " of \(epochs)" : "") }
        var lines = [
            "run \(String(runID, radix: 16)): \(position), \(phase.text), \(Self.figure(samplesPerSecond, 1)) "
                + "samples/s, up \(Self.figure(uptimeSeconds, 1)) s"
        ]
        let waiting = waitingOn
        if phase == .training || phase == .evaluating {
            let whom = waiting.isEmpty ? "nobody" : waiting.map(\.name).joined(separator: ", ")
            lines.append("waiting \(Self.figure(waitingSeconds, 1)) s for this round, on \(whom)")
        }
        let live = workers.count { $0.state != .dropped }
        lines.append("\(live) live worker(s) of \(workers.count + Int(omitted)) known:")
        for worker in workers {
            var line = "  \(worker.name)  \(worker.state.text.padding(toLength: 9, withPad: " ", startingAt: 0))"
            if let step = worker.step { line += "  \(Self.stepText(step))" }
            if worker.state == .computing { line += " for \(Self.figure(worker.seconds, 1)) s" }
            if worker.state == .dropped { line += " \(Self.figure(worker.seconds, 0)) s ago" }
            if let ms = worker.sliceMs { line += "  slice \(Self.figure(ms, 1)) ms" }
            lines.append(line)
        }
        if omitted > 0 { lines.append("  (\(omitted) more not listed)") }
        return lines.joined(separator: "\n")
    }

    /// A step number as a person reads it: evaluation rounds have bit 47 set.
    static func stepText(_ step: UInt64) -> String {
        step & (1 << 47) != 0 ? "evaluation \(step & ~(1 << 47))" : "step \(step)"
    }

    static func figure(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
}

/// JSON (`convoy status --json`) names phases and states with the words the text uses.
extension StatusReport.Phase {
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text.replacingOccurrences(of: " ", with: "_"))
    }

    var text: String {
        switch self {
        case .waitingForWorkers: "waiting for workers"
        case .training: "training"
        case .evaluating: "evaluating"
        case .betweenRounds: "between rounds"
        }
    }
}

extension StatusReport.WorkerStatus.State {
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    var text: String {
        switch self {
        case .computing: "computing"
        case .idle: "idle"
        case .dropped: "dropped"
        }
    }
}
