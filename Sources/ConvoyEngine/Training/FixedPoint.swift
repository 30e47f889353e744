/// Exact, order-independent gradient sums: each micro-batch's Float gradient is rounded to
/// 64-bit fixed point with 32 fractional bits and added as integers. Integer addition is
/// associative, so the total is the same bits whichever worker computed which micro-batch
/// and in whatever order the sums arrive; that is what makes N workers agree with one.
public enum FixedPoint {
    public static let fractionBits = 32
    static let scale = Double(1 << fractionBits)
    /// One micro-batch's value must stay below 2^30 in magnitude, so even thousands of such
    /// terms cannot wrap an Int64 unnoticed (every addition is checked too).
    static let limit = Double(1 << 30) * scale

    public struct OverflowError: Error, CustomStringConvertible {
        public let index: Int
        public let value: Double
        public var description: String {
            value.isFinite
                ? "gradient element \(index) = \(value) is outside the fixed-point range (±2^30): the training has diverged; lower --lr"
                : "gradient element \(index) is \(value): the training has diverged; lower --lr"
        }
    }

    /// `sums[i] += round(values[i] · 2^32)`; throws on NaN, Inf or a value out of range.
    public static func accumulate(_ values: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Int64>, count: Int) throws {
        var bad = -1
        for i in 0..<count {
            let scaled = (Double(values[i]) * scale).rounded()
            // `!(|x| < limit)` is also true for NaN.
            if !(Swift.abs(scaled) < limit) { bad = i; break }
            let (total, overflow) = sums[i].addingReportingOverflow(Int64(scaled))
            if overflow { bad = i; break }
            sums[i] = total
        }
        if bad >= 0 { throw OverflowError(index: bad, value: Double(values[bad])) }
    }

    /// `sums[i] += other[i]` with overflow checked.
    public static func add(_ other: UnsafePointer<Int64>, into sums: UnsafeMutablePointer<Int64>, count: Int) throws {
        for i in 0..<count {
            let (total, overflow) = sums[i].addingReportingOverflow(other[i])
            if overflow { throw OverflowError(index: i, value: Double(sums[i]) / scale + Double(other[i]) / scale) }
            sums[i] = total
        }
    }

    /// `out[i] = sums[i] / 2^32 / divisor`, the mean gradient.
    public static func mean(_ sums: UnsafePointer<Int64>, count: Int, divisor: Int, into out: UnsafeMutablePointer<Float>) {
        let factor = 1 / (scale * Double(divisor))
        for i in 0..<count { out[i] = Float(Double(sums[i]) * factor) }
    }
}
