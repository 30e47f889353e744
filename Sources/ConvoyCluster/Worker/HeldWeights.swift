import ConvoyEngine

/// Which weights a worker holds: those of the last step it loaded, and part of a coming
/// step's that the coordinator sent ahead (`weights` message: the head, updated while this
/// worker still computed the trunk). The part sent ahead is kept apart until its step
/// arrives, so a step in between (an evaluation, a slice reassigned from a dropped worker)
/// loads its own weights without spoiling it.
struct HeldWeights {
    /// A whole set of weights is loaded (a step without weights may use them).
    private(set) var loaded = false
    private var ahead: (step: UInt64, update: WeightsUpdate)?

    /// Forgets everything: a new run (or a new worker id) starts without weights.
    mutating func reset() {
        loaded = false
        ahead = nil
    }

    /// Keeps a `weights` message for its step; a line to log when it cannot be used.
    mutating func receive(_ update: WeightsUpdate, step: UInt64, parameterCount: Int) -> String? {
        guard update.range.upperBound <= parameterCount else {
            return "ignored weights \(update.range) of step \(step): the model has \(parameterCount) parameters"
        }
        ahead = (step, update)
        return nil
    }

    /// Loads the weights of step `step` (all of them, or the rest of those sent ahead);
    /// the refusal to send when it cannot. What every worker would refuse is refused for the
    /// run; missing weights are this worker's own problem (it rejoined in mid-step, or lost
    /// the message sent ahead).
    mutating func load(_ work: StepWork, step: UInt64, into slots: ComputeSlots) -> Refusal? {
        let total = slots.computers[0].network.parameters.count
        guard let weights = work.weights else {
            return loaded ? nil : Refusal(.worker, "step \(step) carries no weights and this worker holds none")
        }
        let range = work.weightsOffset..<(work.weightsOffset + weights.count)
        guard range.upperBound <= total else {
            return Refusal(
                .run, "step \(step) carries weights \(range.lowerBound)..<\(range.upperBound), the model has \(total)")
        }
        if let bad = FloatChecks.firstNonFinite(weights) {
            return Refusal(.run, "step \(step) weight \(range.lowerBound + bad) is \(weights[bad])")
        }
        if range.count < total {
            guard let ahead, ahead.step == step, Self.complement(range, ahead.update.range, total: total) else {
                return Refusal(
                    .worker,
                    "step \(step) carries weights \(range.lowerBound)..<\(range.upperBound) and this worker holds "
                        + "no others for it")
            }
            ahead.update.values.withUnsafeBufferPointer { slots.load(weights: $0, at: ahead.update.offset) }
            self.ahead = nil
        }
        weights.withUnsafeBufferPointer { slots.load(weights: $0, at: range.lowerBound) }
        loaded = true
        return nil
    }

    /// Whether two disjoint ranges together cover `0..<total`.
    static func complement(_ a: Range<Int>, _ b: Range<Int>, total: Int) -> Bool {
        let (first, second) = a.lowerBound <= b.lowerBound ? (a, b) : (b, a)
        return first.lowerBound == 0 && first.upperBound == second.lowerBound && second.upperBound == total
    }
}
