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

    /// `out = sum / samples`, the mean gradient of the step (docs/SPEC.md §8.1, §8.2).
    public func mean(into out: UnsafeMutablePointer<Float>) {
        let divisor = max(samples, 1)
        switch mode {
        case .fixedPoint:
            FixedPoint.mean(fixed, count: count, divisor: divisor, into: out)
        case .float:
            let scale = 1 / Float(divisor)
            for i in 0..<count { out[i] = float[i] * scale }
        }
    }
}
