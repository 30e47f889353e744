/// How the gradient sums of a step are kept. The one place the deterministic/fast switch
/// turns into arithmetic: everything else asks a `GradientSum` to add.
public enum SumMode: Sendable, Equatable {
    /// Exact 64-bit fixed point per micro-batch (docs/SPEC.md §8.1): the same bits at any N.
    case fixedPoint
    /// Float32 sums in a fixed order: faster, the same bits only with the same layout.
    case float

    public init(deterministic: Bool) { self = deterministic ? .fixedPoint : .float }
}

/// A step's gradient sum over a model's whole parameter layout, and how many samples it
/// covers. A gradient computer adds micro-batches into one, a coordinator adds the workers'
/// buckets into one, and `ParameterServer.apply` turns one into an optimizer step. Buffers
/// are allocated once; nothing here allocates per step.
public final class GradientSum {
    public let mode: SumMode
    public let count: Int
    /// The fixed-point sums (`count` values; only in `.fixedPoint` mode, else empty).
    public let fixed: UnsafeMutablePointer<Int64>
    /// The Float sums (`count` values; only in `.float` mode, else empty).
    public let float: UnsafeMutablePointer<Float>
    /// Samples whose gradients were added: the mean divides by them.
    public private(set) var samples = 0

    public init(mode: SumMode, count: Int) {
        precondition(count >= 0)
        self.mode = mode
        self.count = count
        let fixedCount = mode == .fixedPoint ? max(count, 1) : 1
        let floatCount = mode == .float ? max(count, 1) : 1
        fixed = .allocate(capacity: fixedCount)
        fixed.initialize(repeating: 0, count: fixedCount)
        float = .allocate(capacity: floatCount)
        float.initialize(repeating: 0, count: floatCount)
    }

    deinit {
        fixed.deallocate()
        float.deallocate()
    }

    /// Back to zero samples and zero sums.
    public func reset() {
        samples = 0
        switch mode {
        case .fixedPoint: fixed.update(repeating: 0, count: count)
        case .float: float.update(repeating: 0, count: count)
        }
    }

    public func addSamples(_ n: Int) { samples += n }

    /// Adds one micro-batch's Float gradient over `range` (`gradient` points at the range's
    /// first value): rounded to fixed point, or added as it is. Throws when a value does not
    /// fit the fixed-point range (the training has diverged).
    public func accumulate(_ gradient: UnsafePointer<Float>, range: Range<Int>) throws {
        switch mode {
        case .fixedPoint:
            precondition(range.lowerBound >= 0 && range.upperBound <= count)
            try FixedPoint.accumulate(gradient, into: fixed + range.lowerBound, count: range.count)
        case .float:
            add(float: gradient, range: range)
        }
    }

    /// Adds fixed-point partial sums over `range` (a worker's bucket); fixed-point mode only.
    public func add(fixed values: UnsafePointer<Int64>, range: Range<Int>) {
        precondition(mode == .fixedPoint && range.lowerBound >= 0 && range.upperBound <= count)
        FixedPoint.add(values, into: fixed + range.lowerBound, count: range.count)
    }

    /// Adds fixed-point partial sums over `range` with overflow detected; false when an
    /// element wrapped (the sum is then unusable). For sums that came from a peer.
    public func addChecked(fixed values: UnsafePointer<Int64>, range: Range<Int>) -> Bool {
        precondition(mode == .fixedPoint && range.lowerBound >= 0 && range.upperBound <= count)
        return FixedPoint.addChecked(values, into: fixed + range.lowerBound, count: range.count)
    }

    /// Adds Float partial sums over `range`; float mode only. The order of calls matters.
    public func add(float values: UnsafePointer<Float>, range: Range<Int>) {
        precondition(mode == .float && range.lowerBound >= 0 && range.upperBound <= count)
        let sums = float + range.lowerBound
        for i in 0..<range.count { sums[i] += values[i] }
    }

    /// Adds another sum's values over `range` (not its samples).
    public func add(_ other: GradientSum, range: Range<Int>) {
        precondition(other.mode == mode && other.count == count)
        switch mode {
        case .fixedPoint: add(fixed: other.fixed + range.lowerBound, range: range)
        case .float: add(float: other.float + range.lowerBound, range: range)
        }
    }

    /// Adds another sum of the same layout, samples included.
    public func add(_ other: GradientSum) {
        add(other, range: 0..<count)
        samples += other.samples
    }

    /// `out = sum / samples`, the mean gradient of the step (docs/SPEC.md §8.1, §8.2), over
    /// `range` (`out` has the whole layout; elementwise, so any split gives the same bits).
    public func mean(into out: UnsafeMutablePointer<Float>, range: Range<Int>? = nil) {
        let range = range ?? 0..<count
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        let divisor = max(samples, 1)
        switch mode {
        case .fixedPoint:
            FixedPoint.mean(
                fixed + range.lowerBound, count: range.count, divisor: divisor, into: out + range.lowerBound)
        case .float:
            let scale = 1 / Float(divisor)
            for i in range { out[i] = float[i] * scale }
        }
    }
}

/// What an honest slice's totals and sums can hold, so that a peer's can be checked before
/// they are used (docs/SECURITY.md, "Worker results and refusals").
public enum SumBounds {
    /// The largest loss one sample can have. SoftmaxCrossEntropy computes, in Float32,
    /// `L_n = log Σ_j e^(z_j − z_max) − (z_ℓ − z_max)` (docs/SPEC.md §5). The first term is in
    /// [0, log C] (the sum holds e^0 = 1 and C terms ≤ 1), the second is ≥ 0; their Float32
    /// result, when finite, is at most Float.greatestFiniteMagnitude (≈ 3.4e38), and a worker
    /// refuses a non-finite loss instead of sending it. The Double sum of n such values is at
    /// most n·that: n·(2^24 − 1)·2^104 is exact in a Double for n ≤ 2^29 and rounding is
    /// monotone, so no order of additions exceeds it. (A finite Float32 logit pair can still
    /// give L_n up to that bound, so nothing tighter is honest.)
    public static let maxSampleLoss = Double(Float.greatestFiniteMagnitude)

    /// The largest magnitude of a Float32 gradient-sum element per sample: the fixed-point
    /// mode's divergence limit (2^18 per micro-batch, `FixedPoint.limit`) applied per sample.
    /// A slice of n samples beyond n·2^18 has diverged; a whole step (≤ 65,536 samples) stays
    /// below 2^34, so the coordinator's Float32 total cannot overflow.
    public static let maxFloatPerSample: Float = 262_144

    /// Whether `lossSum` can be the loss sum of `samples` samples.
    public static func lossIsPossible(_ lossSum: Double, samples: Int) -> Bool {
        lossSum.isFinite && lossSum >= 0 && lossSum <= Double(max(samples, 0)) * maxSampleLoss
    }

    /// Whether every value of a Float32 gradient sum over `samples` samples is finite and
    /// within `samples`·2^18.
    public static func floatIsPossible(_ values: UnsafeBufferPointer<Float>, samples: Int) -> Bool {
        let bound = Float(max(samples, 0)) * maxFloatPerSample
        var inside = true
        // `abs(NaN) <= bound` is false, so NaN and ±Inf both fail.
        for value in values { inside = inside && Swift.abs(value) <= bound }
        return inside
    }

    /// Whether every value of a fixed-point sum of `samples` samples cut into micro-batches
    /// of `microBatch` is within its micro-batches × 2^50.
    public static func fixedPointIsPossible(_ values: UnsafeBufferPointer<Int64>, samples: Int, microBatch: Int)
        -> Bool
    {
        let terms = (max(samples, 0) + max(microBatch, 1) - 1) / max(microBatch, 1)
        return FixedPoint.withinBound(values, terms: terms)
    }
}
