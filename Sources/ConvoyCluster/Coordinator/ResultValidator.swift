import ConvoyEngine

/// The rules a worker's result bucket must meet before it counts. A slice's gradient arrives
/// as the buckets of `Architecture.gradientBuckets`, in that order, each repeating the
/// slice's totals; an evaluation slice's result has no gradient. Every number is checked
/// against what an honest worker can produce (`SumBounds`) before it is used: anything else
/// means the worker is broken or hostile, and it is dropped.
struct ResultValidator {
    /// The parameter ranges of the buckets, in the order workers send them.
    let buckets: [Range<Int>]
    let mode: SumMode
    /// Samples per micro-batch: a fixed-point slice of n samples holds ⌈n/microBatch⌉ terms.
    let microBatch: Int

    init(architecture: Architecture, mode: SumMode, microBatch: Int) {
        buckets = architecture.gradientBuckets.map(\.parameters)
        self.mode = mode
        self.microBatch = max(microBatch, 1)
    }

    /// Why `result` cannot be the next bucket of a slice of `expected` samples whose earlier
    /// buckets are `earlier`, or nil when it can. `maxSeconds`: the most compute time the
    /// worker can honestly report (the time since the round began, with slack).
    func problem(
        with result: StepResult, expected: Int, evaluate: Bool, earlier: [StepResult], maxSeconds: Double
    ) -> String? {
        if let problem = totalsProblem(result, expected: expected, maxSeconds: maxSeconds) { return problem }
        if let first = earlier.first, first.correct != result.correct || first.lossSum != result.lossSum {
            return "buckets of one slice disagree on its totals"
        }
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
        return valuesProblem(result.gradient, samples: expected)
    }

    /// The slice's counts, loss and time.
    private func totalsProblem(_ result: StepResult, expected: Int, maxSeconds: Double) -> String? {
        guard result.count == expected else { return "\(result.count) samples, the slice has \(expected)" }
        guard result.correct >= 0 && result.correct <= result.count else {
            return "\(result.correct) correct of \(result.count) samples"
        }
        guard SumBounds.lossIsPossible(result.lossSum, samples: result.count) else {
            return "loss sum \(result.lossSum) for \(result.count) samples (at most \(SumBounds.maxSampleLoss) each)"
        }
        let seconds = result.computeSeconds
        guard seconds.isFinite && seconds >= 0 && seconds <= maxSeconds else {
            return "compute time \(seconds) s in a round of \(Int(maxSeconds.rounded(.up))) s"
        }
        return nil
    }

    /// The gradient's values against their bound (`SumBounds`).
    private func valuesProblem(_ gradient: StepResult.Gradient, samples: Int) -> String? {
        switch gradient {
        case .none:
            return nil
        case let .fixedPoint(values):
            let fine = values.withUnsafeBufferPointer {
                SumBounds.fixedPointIsPossible($0, samples: samples, microBatch: microBatch)
            }
            let terms = (samples + microBatch - 1) / microBatch
            return fine ? nil : "a fixed-point sum beyond \(terms) micro-batches × 2^50"
        case let .float(values):
            let fine = values.withUnsafeBufferPointer { SumBounds.floatIsPossible($0, samples: samples) }
            return fine ? nil : "a Float32 sum that is not finite or beyond \(samples) samples × 2^18"
        }
    }

    /// Whether a slice's buckets are all in.
    func isComplete(_ received: [StepResult], evaluate: Bool) -> Bool {
        received.count == (evaluate ? 1 : buckets.count)
    }
}
