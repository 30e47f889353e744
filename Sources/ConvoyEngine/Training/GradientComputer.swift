/// Forward + backward over a slice of a batch: the work a worker does each step, and what
/// `convoy train` does for its whole batch. Adds the slice's gradient into a `GradientSum`:
/// per micro-batch in fixed point (deterministic mode), or as one Float sum.
public final class GradientComputer {
    public let network: Network
    public var parameterCount: Int { network.architecture.parameterCount }
    /// When the last `compute` finished its forward pass (nil when it interleaved forward and
    /// backward chunk by chunk): one clock read a slice, for the timeline (`--trace`).
    public private(set) var forwardDone: ContinuousClock.Instant?

    public init(network: Network) {
        self.network = network
    }

    /// Loss sum, hits and sample count of some samples.
    public struct Totals: Equatable, Sendable, Codable {
        public var count = 0
        public var lossSum = 0.0
        public var correct = 0
        public init() {}
        public init(count: Int, lossSum: Double, correct: Int) {
            self.count = count
            self.lossSum = lossSum
            self.correct = correct
        }
        public mutating func add(_ other: Totals) {
            count += other.count
            lossSum += other.lossSum
            correct += other.correct
        }
        mutating func add(_ result: SoftmaxCrossEntropy.Result, samples: Int) {
            count += samples
            lossSum += result.lossSum
            correct += result.correct
        }
    }

    /// Adds the gradient sum of `count` samples (`pixels`: `count × inputSize` bytes,
    /// `labels`: `count` bytes) into `sum`, and their count to its samples. In fixed-point
    /// mode the slice is cut into micro-batches of `microBatch` samples (the slice must start
    /// on a micro-batch boundary of the global batch), each one's Float gradient computed
    /// alone and rounded into the sum; in float mode it is computed in chunks as large as the
    /// network's buffers.
    ///
    /// Every chunk is forwarded first; then the buckets of `Architecture.gradientBuckets` are
    /// back-propagated one after the other, head first, and `bucketReady(range, totals)` is
    /// called as soon as one's sums are final: the caller ships the head's bucket while the
    /// trunk is computed. Each micro-batch still sees exactly the arithmetic it would alone.
    /// A slice larger than the network's buffers is computed chunk by chunk, and its buckets
    /// are announced at the end.
    @discardableResult
    public func compute(
        pixels: UnsafePointer<UInt8>, labels: UnsafePointer<UInt8>, count: Int, microBatch: Int,
        into sum: GradientSum,
        bucketReady: ((Range<Int>, Totals) throws -> Void)? = nil
    ) throws -> Totals {
        precondition(sum.count == parameterCount)
        let architecture = network.architecture
        let inputSize = architecture.inputShape.count
        let chunkSize = sum.mode == .fixedPoint ? min(microBatch, network.maxBatch) : network.maxBatch
        let chunks = stride(from: 0, to: count, by: chunkSize).map { $0..<min($0 + chunkSize, count) }
        let buckets = architecture.gradientBuckets
        network.gradient.zero()
        var totals = Totals()

        /// Moves the network's gradient over `range` into the sum and clears it.
        func settle(_ range: Range<Int>) throws {
            try sum.accumulate(network.gradient.pointer + range.lowerBound, range: range)
            (network.gradient.pointer + range.lowerBound).update(repeating: 0, count: range.count)
        }

        forwardDone = nil
        guard count <= network.maxBatch else {
            // Too large to hold every chunk's activations: one full pass per chunk.
            for range in chunks {
                network.loadPixels(pixels + range.lowerBound * inputSize, batch: range.count)
                totals.add(
                    network.accumulateGradient(labels: labels + range.lowerBound, batch: range.count),
                    samples: range.count)
                try settle(0..<parameterCount)
            }
            sum.addSamples(totals.count)
            for bucket in buckets { try bucketReady?(bucket.parameters, totals) }
            return totals
        }
        for range in chunks {
            network.loadPixels(pixels + range.lowerBound * inputSize, batch: range.count, at: range.lowerBound)
            network.forward(batch: range.count, at: range.lowerBound)
            totals.add(
                network.lossGradient(labels: labels + range.lowerBound, batch: range.count, at: range.lowerBound),
                samples: range.count)
        }
        forwardDone = .now
        sum.addSamples(totals.count)
        for bucket in buckets {
            for range in chunks {
                network.backward(batch: range.count, at: range.lowerBound, layers: bucket.layers)
                try settle(bucket.parameters)
            }
            try bucketReady?(bucket.parameters, totals)
        }
        return totals
    }

    /// Loss and hits over a slice, no gradient.
    public func evaluate(pixels: UnsafePointer<UInt8>, labels: UnsafePointer<UInt8>, count: Int) -> Totals {
        let inputSize = network.architecture.inputShape.count
        var totals = Totals()
        var start = 0
        while start < count {
            let n = min(network.maxBatch, count - start)
            network.loadPixels(pixels + start * inputSize, batch: n)
            totals.add(network.evaluate(labels: labels + start, batch: n), samples: n)
            start += n
        }
        return totals
    }
}
