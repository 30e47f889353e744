import ConvoyEngine

/// Why a cluster run stopped. Values, not sentences: the CLI words them for its users.
public enum ClusterError: Error, CustomStringConvertible, Equatable {
    /// Fewer than `needed` workers were live after waiting `seconds`.
    case tooFewWorkers(live: Int, needed: Int, seconds: Int, joined: String)
    case noLiveWorkers
    /// A worker refused a step for the whole run (a diverged gradient, non-finite weights),
    /// confirmed by a second worker or by being the last one; every worker would.
    case workerRefused(worker: String, step: UInt64, reason: String)
    /// Step `step`'s gradient total overflowed its fixed-point range: the training diverged.
    case sumOverflow(step: UInt64)
    /// `misses` step deadlines in a row passed with no result from any worker: the deadline is
    /// too short for any slice, or no worker can compute; the run stops instead of cycling.
    case stalled(step: UInt64, deadline: Double, misses: Int)
    /// No coordinator answered a worker within `seconds`; `curve` when CURVE was in use.
    case noCoordinator(endpoint: String, seconds: Int, curve: Bool)
    /// The coordinator went silent for `seconds` after the worker joined.
    case coordinatorSilent(endpoint: String, seconds: Int)
    /// The worker cannot take part: the coordinator refused it, or it cannot build the model.
    case runRefused(reason: String)
    /// The coordinator stopped the run before its end (preempted); it continues when the
    /// coordinator is started again.
    case coordinatorStopped(reason: String)
    /// Audit mode: the workers that computed slice `slice` of `step` disagree and no other
    /// worker is left to break the tie.
    case auditUndecided(step: UInt64, slice: Int, workers: String)

    public var description: String {
        switch self {
        case let .tooFewWorkers(live, needed, seconds, joined):
            "only \(live) of \(needed) workers live within \(seconds) s (joined: \(joined)); \(needed - live) missing"
        case .noLiveWorkers:
            "no live workers"
        case let .workerRefused(worker, step, reason):
            "\(worker) refused step \(step) for the whole run: \(peerText(reason))"
        case let .sumOverflow(step):
            "the gradient sum of step \(step) overflowed the fixed-point range: the training has diverged (a lower "
                + "learning rate may help)"
        case let .stalled(step, deadline, misses):
            "no worker finished a slice of step \(step) within the \(deadline) s step deadline, \(misses) times in a "
                + "row: the deadline is too short or no worker can compute this step"
        case let .noCoordinator(endpoint, seconds, curve):
            "no coordinator answered at \(endpoint) within \(seconds) s"
                + (curve
                    ? " (with CURVE: is the server key the coordinator's, and this worker's public key among its "
                        + "authorized keys?)"
                    : "")
        case let .coordinatorSilent(endpoint, seconds):
            "coordinator at \(endpoint) silent for \(seconds) s"
        case let .runRefused(reason):
            reason
        case let .coordinatorStopped(reason):
            "the coordinator stopped: \(peerText(reason))"
        case let .auditUndecided(step, slice, workers):
            "audit: \(workers) disagree on slice \(slice) of step \(step) and no other worker can tell which is "
                + "right; stopping before a wrong gradient is applied (take the faulty host out or add a worker, "
                + "then --resume)"
        }
    }
}

/// A cluster setting out of its bounds; the CLI names the flag.
public enum ClusterSettingError: Error, CustomStringConvertible, Equatable {
    case workers(Int)
    case minWorkers(Int)
    case joinTimeout(Double)
    case stepTimeout(Double)
    case audit(Double)
    /// Audit compares results bit for bit, which only the deterministic mode makes equal.
    case auditNeedsDeterministic

    public var description: String {
        switch self {
        case let .workers(n): "workers must be in 1...\(ClusterOptions.maxWorkers) (got \(n))"
        case let .minWorkers(n): "minimum workers must be in 1...workers (got \(n))"
        case let .joinTimeout(s): "join timeout must be in \(ClusterOptions.secondsText) s (got \(s))"
        case let .stepTimeout(s): "step timeout must be in \(ClusterOptions.secondsText) s (got \(s))"
        case let .audit(f): "audit fraction must be in [0, 1] (got \(f))"
        case .auditNeedsDeterministic:
            "audit needs the deterministic mode: float sums are not bit-exact across workers, so a recomputed "
                + "slice could not be compared"
        }
    }
}
