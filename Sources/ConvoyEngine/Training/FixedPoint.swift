/// Exact, order-independent gradient sums (docs/SPEC.md §8.1): each micro-batch's Float gradient is rounded to
/// 64-bit fixed point with 32 fractional bits and added as integers. Integer addition is
/// associative, so the total is the same bits whichever worker computed which micro-batch
/// and in whatever order the sums arrive; that is what makes N workers agree with one.
public enum FixedPoint {
    public static let fractionBits = 32
    static let scale = Double(1 << fractionBits)
    /// One micro-batch's gradient element must stay below 2^18 in magnitude (2^50 in fixed
    /// point). Then rounding by the 1.5·2^52 trick is exact, and a step of up to
    /// `maxTerms` micro-batches cannot reach 2^63: overflow is ruled out by these two bounds
    /// (checked here and in `TrainingConfig.validate`), not hoped away.
    static let limit = Double(1 << 18) * scale
    public static let maxTerms = 8192
    /// The largest magnitude one micro-batch's term can have in fixed point: `|x·2^32| <
    /// limit` rounds to at most 2^50. A sum of m terms is within m·2^50; a peer's sum past
    /// that did not come from m honest micro-batches.
    public static let termBound: Int64 = 1 << 50
    private static let roundingMagic = 0x1.8p52

    public struct OverflowError: Error, CustomStringConvertible {
        public let index: Int
        public let value: Double
        public var description: String {
            value.isFinite
                ? "gradient element \(index) = \(value) is outside the fixed-point range (±2^18 per micro-batch): the "
                    + "training has diverged (a lower learning rate may help)"
                : "gradient element \(index) is \(value): the training has diverged (a lower learning rate may help)"
        }
    }

    /// `sums[i] += round(values[i] · 2^32)`; throws on NaN, Inf or a value out of range
    /// (`sums` is then unusable). Branch-free so it vectorizes: it was 0.8 ms of a 64-sample
    /// step as a checked scalar loop.
    public static func accumulate(_ values: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Int64>, count: Int)
        throws
    {
        let magicBits = Int64(bitPattern: roundingMagic.bitPattern)
        var inRange = true
        for i in 0..<count {
            let scaled = Double(values[i]) * scale
            // `|x| < limit` is false for NaN too.
            inRange = inRange && (Swift.abs(scaled) < limit)
            sums[i] &+= Int64(bitPattern: (scaled + roundingMagic).bitPattern) &- magicBits
        }
        if !inRange {
            let bad = (0..<count).first { !(Swift.abs(Double(values[$0]) * scale) < limit) } ?? 0
            throw OverflowError(index: bad, value: Double(values[bad]))
        }
    }

    /// `sums[i] += other[i]`. Both hold sums of in-range micro-batch terms, at most
    /// `maxTerms` in all, so the result fits (see `limit`).
    public static func add(_ other: UnsafePointer<Int64>, into sums: UnsafeMutablePointer<Int64>, count: Int) {
        for i in 0..<count { sums[i] &+= other[i] }
    }

    /// `sums[i] += other[i]` with overflow detected: false when some element wrapped (`sums`
    /// is then unusable). For sums a peer sent: their bounds are checked before they are
    /// added (`termBound`), so this cannot fail for a step of at most `maxTerms`
    /// micro-batches; it is checked all the same, as the last line of defence.
    public static func addChecked(_ other: UnsafePointer<Int64>, into sums: UnsafeMutablePointer<Int64>, count: Int)
        -> Bool
    {
        // Two's-complement overflow shows in the sign bit of (a ^ s) & (b ^ s); or-ing those
        // keeps the loop branch-free so it vectorizes (the `addingReportingOverflow` loop it
        // replaces cost ~4 cycles a value, 0.12 ms of a 2-worker LeNet-5 step).
        var wrapped: Int64 = 0
        for i in 0..<count {
            let a = sums[i]
            let b = other[i]
            let sum = a &+ b
            wrapped |= (a ^ sum) & (b ^ sum)
            sums[i] = sum
        }
        return wrapped >= 0
    }

    /// Whether every one of `values` lies within `terms` micro-batch terms (|v| ≤ terms·2^50).
    public static func withinBound(_ values: UnsafeBufferPointer<Int64>, terms: Int) -> Bool {
        // terms ≤ maxTerms (2^13), so terms·2^50 ≤ 2^63 − 1 is computed with a checked multiply.
        let (bound, wrapped) = termBound.multipliedReportingOverflow(by: Int64(max(terms, 0)))
        let limit = wrapped ? Int64.max : bound
        // `magnitude` of Int64.min is 2^63: larger than any limit, never a trap. A max
        // reduction, not an early exit, so the loop vectorizes (the `&&` form took ~4 cycles a
        // value, 0.15 ms of a 2-worker LeNet-5 step).
        var largest: UInt64 = 0
        for value in values { largest = Swift.max(largest, value.magnitude) }
        return largest <= UInt64(limit)
    }

    /// `out[i] = sums[i] / 2^32 / divisor`, the mean gradient.
    public static func mean(
        _ sums: UnsafePointer<Int64>, count: Int, divisor: Int, into out: UnsafeMutablePointer<Float>
    ) {
        let factor = 1 / (scale * Double(divisor))
        for i in 0..<count { out[i] = Float(Double(sums[i]) * factor) }
    }
}
