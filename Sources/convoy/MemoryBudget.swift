import ConvoyEngine
import Foundation

/// How many bytes a command may plan to allocate, and what its networks will take: sizes that
/// flags or files choose (`bench --infer-batch`, `--batch`, a model file's layers) are checked
/// here before anything is allocated, so a too-large request is one line instead of an abort
/// in `malloc` or a host pushed into swap.
enum MemoryBudget {
    /// Half of the memory this process can have: the host's RAM, or less where a cgroup or an
    /// address-space limit (`ulimit -v`) says so. Half, because the estimates below count the
    /// large buffers only, and other processes live on the host too.
    static var bytes: Double {
        var limits = [meminfo("MemTotal")].compactMap { $0 }
        if let text = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
            let value = Double(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            limits.append(value)
        }
        if let limit = addressSpaceLimit() { limits.append(limit) }
        return (limits.min() ?? Double(ProcessInfo.processInfo.physicalMemory)) / 2
    }

    /// Throws one line naming `what` when `needed` bytes are more than the budget.
    static func check(_ needed: Double, for what: String, budget: Double = bytes) throws {
        guard needed <= budget else {
            throw FlagError(
                "\(what) needs about \(gibibytes(needed)) GiB of memory, more than this process may use "
                    + "(\(gibibytes(budget)) GiB: half of the RAM or memory limit); use a smaller size")
        }
    }

    /// Bytes of a `Network` for `maxBatch` samples, as `Network.init` allocates them: the
    /// parameters and their gradient, the input, every layer's output, two deltas and a
    /// boundary of the widest shape, the largest layer scratch, the logits' gradient, and
    /// (an upper bound) one byte of pooling index per output value. In `Double`, so no
    /// product can overflow.
    static func networkBytes(_ architecture: Architecture, maxBatch: Int) -> Double {
        let batch = Double(maxBatch)
        let shapes = [architecture.inputShape] + architecture.layers.map(\.outputShape)
        let counts = shapes.map { $0.dims.map(Double.init).reduce(1, *) }
        let outputs = counts.dropFirst().reduce(0, +)
        let floats =
            2 * Double(architecture.parameterCount) + batch * counts[0] + batch * outputs
            + 3 * batch * (counts.max() ?? 0) + Double(architecture.layers.map(\.scratchCount).max() ?? 0)
            + batch * (counts.last ?? 0)
        return 4 * floats + batch * outputs
    }

    /// Bytes of training state beside the network: weights, the optimizer's state (Adam keeps
    /// two values per weight), the gradient sum (8-byte fixed point) and its buckets.
    static func trainingStateBytes(_ architecture: Architecture) -> Double {
        Double(architecture.parameterCount) * (4 * 4 + 8 * 2)
    }

    /// MNIST's two splits as bytes, read once and copied once (`Dataset.prefix`).
    static let mnistBytes = 2.0 * 70_000 * 785

    /// The network of one compute thread: batches of the micro-batch in the deterministic
    /// mode, of the whole batch otherwise, and at least 256 for evaluation (`StepRunner`,
    /// `WorkerCore`).
    static func computeBytes(_ config: TrainingConfig) throws -> (network: Double, state: Double) {
        let architecture = try Architecture(try ModelZoo.spec(named: config.model))
        let maxBatch = max(config.deterministic ? config.microBatch : config.batchSize, 256)
        return (networkBytes(architecture, maxBatch: maxBatch), trainingStateBytes(architecture))
    }

    /// `convoy train`: one network, the training state and the data.
    static func trainingBytes(_ config: TrainingConfig) throws -> Double {
        let compute = try computeBytes(config)
        return compute.network + compute.state + mnistBytes
    }

    static func gibibytes(_ bytes: Double) -> String { format(bytes / Double(1 << 30), 1) }

    private static func meminfo(_ key: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kilobytes = Double(fields[1]) { return kilobytes * 1024 }
        }
        return nil
    }

    /// The soft address-space limit from /proc/self/limits, or nil when unlimited.
    private static func addressSpaceLimit() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/limits", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Max address space") {
            let fields = line.dropFirst("Max address space".count).split(separator: " ")
            return fields.first.flatMap { Double($0) }
        }
        return nil
    }
}
