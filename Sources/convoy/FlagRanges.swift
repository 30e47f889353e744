import ArgumentParser
import ConvoyCluster
import ConvoyEngine

/// The ranges of the CLI's own numeric flags, in one place so the checks and the README's
/// table (CLI reference, "Flag ranges") agree. The training settings' ranges are
/// `TrainingConfig.validate`'s (what the training records can hold) and the timeouts'
/// `ClusterOptions.secondsRange`; every range here is far above a real run and far below
/// where a count could overflow, hang a benchmark for days or allocate past memory.
enum FlagRange {
    /// OpenBLAS threads of one process: more than any host here has cores.
    static let threads = 1...256
    /// Compute threads of one worker process (each holds a network: see `MemoryBudget`).
    static let slots = 1...1024
    /// Timed (or untimed) steps of a benchmark: at 1 s a step, about a day.
    static let benchSteps = 1...100_000
    static let warmupSteps = 0...100_000
    /// A batch of any command: the training records' bound (docs/FORMATS.md §3.1).
    static let batch = 1...65_536
    /// Bytes of one benchmark message: 256 MiB, far above a step of any model here.
    static let messageBytes = 0...(256 << 20)
    /// Round trips of `bench-transport`.
    static let rounds = 1...1_000_000
    /// Largest `--cpu`: Linux's CPU numbers stop below 8192 (CONFIG_NR_CPUS), and `--cpu` +
    /// `--slots` stays far from overflow.
    static let maxCPU = 8191
    /// `evaluate --test-samples`: the training records' bound, as for train's (more than the
    /// data means all of it).
    static let samples = 1...(1 << 40)
    /// Checkpoints kept on disk.
    static let keptCheckpoints = 1...1_000_000
    /// Steps between checkpoints or evaluations; 0 is "epoch ends only", and anything above
    /// the run's steps means the same: the bound only keeps the arithmetic far from overflow.
    static let everySteps = 0...(1 << 48)
}

/// Throws the one line that says `--name value` is outside `range`.
func checkFlag<Value: Comparable>(_ name: String, _ value: Value, in range: ClosedRange<Value>) throws {
    guard range.contains(value) else {
        throw ValidationError("--\(name) \(value): must be in \(range.lowerBound)...\(range.upperBound)")
    }
}

/// Seconds flags: finite, within `ClusterOptions.secondsRange` (NaN is in no range).
func checkSeconds(_ name: String, _ value: Double) throws {
    guard ClusterOptions.secondsRange.contains(value) else {
        throw ValidationError("--\(name) \(value): must be in \(ClusterOptions.secondsText) seconds")
    }
}
