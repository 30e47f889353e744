/// Which samples each step uses and how a step is cut between workers. Depends only on the
/// config and the dataset size, never on the number of workers.
public struct BatchPlan: Sendable {
    public let sampleCount: Int
    public let batchSize: Int
    public let seed: UInt64

    public init(sampleCount: Int, batchSize: Int, seed: UInt64) {
        self.sampleCount = sampleCount
        self.batchSize = batchSize
        self.seed = seed
    }

    /// The last batch of an epoch may be short; no sample is dropped.
    public var stepsPerEpoch: Int { (sampleCount + batchSize - 1) / batchSize }

    public func order(epoch: Int) -> [Int32] { epochPermutation(count: sampleCount, seed: seed, epoch: epoch) }

    /// Positions in the epoch's order of step `step` (0-based within the epoch).
    public func batchRange(step: Int) -> Range<Int> {
        let start = step * batchSize
        return start..<min(start + batchSize, sampleCount)
    }

    /// Splits `count` samples into `parts` contiguous slices as even as possible while only
    /// cutting at multiples of `unit` (the micro-batch), so every micro-batch stays whole on one
    /// worker. Slices may be empty when there are more parts than units.
    public static func slices(count: Int, parts: Int, unit: Int) -> [Range<Int>] {
        precondition(parts >= 1 && unit >= 1)
        let units = (count + unit - 1) / unit
        var bounds: [Range<Int>] = []
        var start = 0
        for part in 0..<parts {
            let unitsHere = units / parts + (part < units % parts ? 1 : 0)
            let end = min(count, start + unitsHere * unit)
            bounds.append(start..<end)
            start = end
        }
        return bounds
    }

    /// Splits `count` samples into contiguous slices of `units[i]` units of `unit` samples
    /// each (the last slice ends at `count`): an uneven split, for workers of uneven speed.
    public static func slices(count: Int, units: [Int], unit: Int) -> [Range<Int>] {
        precondition(unit >= 1 && units.allSatisfy { $0 >= 0 })
        precondition(units.reduce(0, +) == (count + unit - 1) / unit, "units \(units) for \(count) samples")
        var start = 0
        return units.map { unitsHere in
            let end = min(count, start + unitsHere * unit)
            defer { start = end }
            return start..<end
        }
    }
}
