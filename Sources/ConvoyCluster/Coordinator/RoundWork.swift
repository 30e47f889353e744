import ConvoyEngine

/// What one round asks of the workers: train (gradients) or evaluate (totals only) on some
/// samples of a dataset, at some weights.
struct RoundWork {
    let step: UInt64
    let samples: StepSamples
    /// Slices are cut only at multiples of this (the micro-batch in deterministic mode).
    let unit: Int
    let weights: [Float]
    let evaluate: Bool
    /// Deterministic training rounds without audit: once every slice's head bucket is in, the
    /// head's sum is final; `headsReady` gets those buckets (in slice order) and may update
    /// the head and send it ahead of the next step (ClusterStepRunner).
    var headsReady: (([StepResult]) throws -> Void)? = nil
    /// The weights sent ahead for this step (`Payload.weights`) to the workers whose
    /// `aheadStep` is this step: their step messages carry only the rest.
    var sentAhead: Range<Int>? = nil
    /// Units per live worker, in the pool's order (SliceBalancer); nil: as even as possible.
    var shares: [Int]? = nil
}

func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
}
