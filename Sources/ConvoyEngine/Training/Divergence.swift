/// The weights hold a value that is not a finite number: the run cannot go on. `train` and a
/// coordinator check their own weights before and after every optimizer step, so non-finite
/// weights (from `--init gaussian:1e300`, a crafted checkpoint or a diverged step) stop the
/// run with this reason instead of being sent to workers, saved or checkpointed.
public struct NonFiniteWeightsError: Error, CustomStringConvertible, Equatable {
    public let index: Int
    public let value: Float
    /// The optimizer step the weights were about to take (or had just taken, `after`).
    public let step: Int
    public let after: Bool

    public init(index: Int, value: Float, step: Int, after: Bool) {
        self.index = index
        self.value = value
        self.step = step
        self.after = after
    }

    public var description: String {
        after
            ? "weight \(index) is \(value) after step \(step): the training has diverged (a lower learning rate may "
                + "help)"
            : "weight \(index) is \(value) before step \(step): the initial or resumed weights are not finite"
    }

    /// Throws when one of the values `weights[start..<count]` is NaN or infinite.
    public static func check(
        _ weights: UnsafePointer<Float>, count: Int, step: Int, after: Bool, from start: Int = 0
    ) throws {
        let part = UnsafeBufferPointer(start: weights + start, count: count - start)
        guard let bad = FloatChecks.firstNonFinite(part).map({ start + $0 }) else { return }
        throw NonFiniteWeightsError(index: bad, value: weights[bad], step: step, after: after)
    }
}
