import ConvoyEngine

/// The rules a worker's result bucket must meet before it counts. A slice's gradient arrives
/// as the buckets of `Architecture.gradientBuckets`, in that order, each repeating the
/// slice's totals; an evaluation slice's result has no gradient. Anything else means the
/// worker is broken or hostile, and it is dropped.
struct ResultValidator {
    /// The parameter ranges of the buckets, in the order workers send them.
    let buckets: [Range<Int>]
    let mode: SumMode

    init(architecture: Architecture, mode: SumMode) {
        buckets = architecture.gradientBuckets.map(\.parameters)
        self.mode = mode
    }

    /// Why `result` cannot be the next bucket of a slice of `expected` samples whose earlier
    /// buckets are `earlier`, or nil when it can.
    func problem(with result: StepResult, expected: Int, evaluate: Bool, earlier: [StepResult]) -> String? {
        guard result.count == expected else { return "\(result.count) samples, the slice has \(expected)" }
        if let first = earlier.first, first.correct != result.correct || first.lossSum != result.lossSum {
            return "buckets of one slice disagree on its totals"
        }
        guard result.correct >= 0 && result.correct <= result.count else {
            return "\(result.correct) correct of \(result.count) samples"
        }
        guard result.lossSum.isFinite && result.lossSum >= 0 else { return "loss sum \(result.lossSum)" }
        if evaluate {
            guard case .none = result.gradient else { return "a gradient in an evaluation round" }
            return nil
        }
        switch (result.gradient, mode) {
        case (.fixedPoint, .fixedPoint), (.float, .float): break
        default: return "wrong kind of gradient for this run"
        }
        guard earlier.count < buckets.count else { return "more than \(buckets.count) gradient buckets" }
        let bucket = result.gradientOffset..<(result.gradientOffset + result.gradient.count)
        let wanted = buckets[earlier.count]
        guard bucket == wanted else { return "gradient bucket \(bucket) where the model's layout has \(wanted)" }
        return nil
    }

    /// Whether a slice's buckets are all in.
    func isComplete(_ received: [StepResult], evaluate: Bool) -> Bool {
        received.count == (evaluate ? 1 : buckets.count)
    }
}
