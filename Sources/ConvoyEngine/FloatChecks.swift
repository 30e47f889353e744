/// Finiteness checks over whole weight and gradient arrays, several of which run on every step
/// (a worker's incoming weights, the coordinator's weights around each optimizer step).
public enum FloatChecks {
    /// The index of the first NaN or infinity in `values`, or nil. A branch-free pass over the
    /// exponent bits first, so the common all-finite case vectorizes; the early-exit search
    /// that names the index runs only when something is wrong.
    public static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        // Exponent all ones (NaN or ±Inf) carries into the sign bit when 2^23 is added.
        var flags: UInt32 = 0
        for value in values { flags |= ((value.bitPattern & 0x7F80_0000) &+ 0x0080_0000) & 0x8000_0000 }
        guard flags != 0 else { return nil }
        return values.firstIndex { !$0.isFinite }
    }

    public static func firstNonFinite(_ values: [Float]) -> Int? {
        values.withUnsafeBufferPointer { firstNonFinite($0) }
    }
}
