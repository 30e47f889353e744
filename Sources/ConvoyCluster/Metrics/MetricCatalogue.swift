/// Every live metric of a run: its Prometheus name (`convoy_` prefix, unit in the name) and
/// the HELP text the exposition gives it. Recording goes through swift-metrics, whose
/// factory API has no place for help texts, so the /metrics endpoint adds them from here
/// (`MetricCatalogue.addingHelp`); one table keeps names and texts from drifting apart.
public enum MetricCatalogue {
    public static let steps = "convoy_steps_total"
    public static let samples = "convoy_samples_total"
    public static let samplesPerSecond = "convoy_samples_per_second"
    public static let trainLoss = "convoy_train_loss"
    public static let testAccuracy = "convoy_test_accuracy_ratio"
    public static let epoch = "convoy_epoch"
    public static let liveWorkers = "convoy_live_workers"
    public static let joins = "convoy_worker_joins_total"
    public static let drops = "convoy_worker_drops_total"
    public static let sentBytes = "convoy_sent_bytes_total"
    public static let receivedBytes = "convoy_received_bytes_total"
    public static let sliceSeconds = "convoy_worker_slice_seconds"
    public static let stepSeconds = "convoy_step_seconds"

    public static let help: [String: String] = [
        steps: "Training steps done by this process since it started.",
        samples: "Training samples whose gradients were applied since this process started.",
        samplesPerSecond:
            "Training samples per second over the last second or more of steps, or of the last epoch if shorter.",
        trainLoss: "Mean training loss of the current epoch's steps so far (at an epoch's end: that epoch's).",
        testAccuracy: "Test-set accuracy (0 to 1) of the last evaluation.",
        epoch: "The epoch being trained, counted from 1.",
        liveWorkers: "Workers taking part in the run now.",
        joins: "Workers that joined or came back after a drop.",
        drops: "Workers dropped from the run, by reason.",
        sentBytes: "Bytes the coordinator sent to workers.",
        receivedBytes: "Bytes the coordinator received from workers and other peers.",
        sliceSeconds: "Compute time of one training slice, as the worker reported it, per worker.",
        stepSeconds: "Wall time of one training step at the coordinator (send, wait for workers, sum).",
    ]

    /// Bucket bounds in seconds of the two histograms: a LeNet slice takes about a
    /// millisecond, a large model's step seconds; the step deadline defaults to 5 s.
    public static let secondsBuckets: [Double] = [
        0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    /// Prometheus text exposition with a `# HELP` line before each family's `# TYPE` line
    /// whose name this catalogue knows and that has none yet.
    public static func addingHelp(to exposition: String) -> String {
        var lines: [Substring] = []
        var lastHelp: Substring?
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# HELP ") { lastHelp = line.dropFirst(7).prefix { $0 != " " } }
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).prefix { $0 != " " }
                if lastHelp != name, let text = help[String(name)] { lines.append("# HELP \(name) \(text)") }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// A drop's reason (a sentence naming the step or the deadline) as one of a few label
    /// values, so the number of series stays bounded.
    public static func dropReason(_ reason: String) -> String {
        let kinds: [(prefix: String, label: String)] = [
            ("missed", "deadline"), ("sent an invalid message", "invalid_message"),
            ("sent a bad result", "bad_result"), ("refused", "refused"), ("does not read", "send_queue_full"),
            ("is unreachable", "unreachable"),
            ("computed slice", "audit"),
        ]
        return kinds.first { reason.hasPrefix($0.prefix) }?.label ?? "other"
    }
}
