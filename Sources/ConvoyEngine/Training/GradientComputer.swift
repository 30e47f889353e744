/// Forward + backward over a slice of a batch: the work a worker does each step, and what
/// `convoy train` does for its whole batch. Produces the gradient *sum* of the slice, either
/// as Float (fast mode) or as exact fixed-point sums of micro-batches (deterministic mode).
public final class GradientComputer {
    public let network: Network
    /// Fixed-point sums of the last `compute` in deterministic mode.
    public let fixedSums: UnsafeMutablePointer<Int64>
    public var parameterCount: Int { network.architecture.parameterCount }

    public init(network: Network) {
        self.network = network
        fixedSums = .allocate(capacity: max(network.architecture.parameterCount, 1))
        fixedSums.initialize(repeating: 0, count: max(network.architecture.parameterCount, 1))
    }

    deinit { fixedSums.deallocate() }

    public struct Totals: Equatable, Sendable, Codable {
        public var count = 0
        public var lossSum = 0.0
        public var correct = 0
        public init() {}
        public mutating func add(_ other: Totals) {
            count += other.count; lossSum += other.lossSum; correct += other.correct
        }
    }

    /// `pixels`: `count × inputSize` bytes, `labels`: `count` bytes. In deterministic mode the
    /// slice is cut into micro-batches of `microBatch` samples (the slice must start on a
    /// micro-batch boundary of the global batch), each one's Float gradient computed alone and
    /// added to `fixedSums`; otherwise the Float sum is left in `network.gradient`.
    ///
    /// When the slice fits the network's buffers, every micro-batch is forwarded first, then
    /// the head of the network (`Architecture.headStart`) is back-propagated for all of them,
    /// `headReady(parameterRange, totals)` is called once the head's sums are final, and only then the
    /// trunk: the caller ships the bulk of the gradient while the trunk is computed. Each
    /// micro-batch still sees exactly the same arithmetic as when run alone.
    public func compute(pixels: UnsafePointer<UInt8>, labels: UnsafePointer<UInt8>, count: Int,
                        deterministic: Bool, microBatch: Int,
                        headReady: ((Range<Int>, Totals) throws -> Void)? = nil) throws -> Totals {
        let architecture = network.architecture
        let inputSize = architecture.inputShape.count
        var totals = Totals()
        network.gradient.zero()
        if deterministic { fixedSums.update(repeating: 0, count: parameterCount) }
        let chunk = deterministic ? min(microBatch, network.maxBatch) : network.maxBatch
        let chunks = stride(from: 0, to: count, by: chunk).map { $0..<min($0 + chunk, count) }

        /// Moves one micro-batch's gradient over `parameters` into the fixed-point sums.
        func settle(_ parameters: Range<Int>) throws {
            guard deterministic else { return }
            try FixedPoint.accumulate(network.gradient.pointer + parameters.lowerBound,
                                      into: fixedSums + parameters.lowerBound, count: parameters.count)
            (network.gradient.pointer + parameters.lowerBound).update(repeating: 0, count: parameters.count)
        }

        guard count <= network.maxBatch, let split = architecture.headStart else {
            // One pass per micro-batch, one final gradient.
            for range in chunks {
                network.loadPixels(pixels + range.lowerBound * inputSize, batch: range.count)
                let result = network.accumulateGradient(labels: labels + range.lowerBound, batch: range.count)
                totals.count += range.count; totals.lossSum += result.lossSum; totals.correct += result.correct
                try settle(0..<parameterCount)
            }
            return totals
        }
        let layerCount = architecture.layers.count
        let headParameters = architecture.parameterOffsets[split]..<parameterCount
        let trunkParameters = 0..<architecture.parameterOffsets[split]
        for range in chunks {
            network.loadPixels(pixels + range.lowerBound * inputSize, batch: range.count, at: range.lowerBound)
            network.forward(batch: range.count, at: range.lowerBound)
            let result = network.lossGradient(labels: labels + range.lowerBound, batch: range.count, at: range.lowerBound)
            totals.count += range.count; totals.lossSum += result.lossSum; totals.correct += result.correct
        }
        for range in chunks {
            network.backward(batch: range.count, at: range.lowerBound, layers: split..<layerCount)
            try settle(headParameters)
        }
        try headReady?(headParameters, totals)
        for range in chunks {
            network.backward(batch: range.count, at: range.lowerBound, layers: 0..<split)
            try settle(trunkParameters)
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
            let result = network.evaluate(labels: labels + start, batch: n)
            totals.count += n; totals.lossSum += result.lossSum; totals.correct += result.correct
            start += n
        }
        return totals
    }
}

/// The parameters and the optimizer: combines the gradient sums of a step, divides by the
/// step's sample count and applies the update. The coordinator owns one; so does `train`.
public final class ParameterServer {
    public let parameters: FloatBuffer
    public private(set) var optimizer: any Optimizer
    public let config: TrainingConfig
    public let totalSteps: Int
    public private(set) var step = 0
    private let meanGradient: FloatBuffer
    private let fixedTotal: UnsafeMutablePointer<Int64>
    private var pendingCount = 0

    public init(parameters initial: [Float], config: TrainingConfig, totalSteps: Int) {
        parameters = FloatBuffer(initial)
        optimizer = makeOptimizer(config.optimizer, parameterCount: initial.count)
        self.config = config
        self.totalSteps = totalSteps
        meanGradient = FloatBuffer(count: initial.count)
        fixedTotal = .allocate(capacity: max(initial.count, 1))
        fixedTotal.initialize(repeating: 0, count: max(initial.count, 1))
    }

    deinit { fixedTotal.deallocate() }

    public var parameterCount: Int { parameters.count }
    public var learningRate: Float {
        config.schedule.rate(base: config.learningRate, step: step, totalSteps: totalSteps)
    }

    /// Starts a step's accumulation.
    public func beginStep() {
        pendingCount = 0
        meanGradient.zero()
        fixedTotal.update(repeating: 0, count: parameterCount)
    }

    /// Adds fixed-point gradient sums over `parameters` (deterministic mode); `sums` points
    /// at the first of them.
    public func add(fixedSums sums: UnsafePointer<Int64>, parameters: Range<Int>) {
        FixedPoint.add(sums, into: fixedTotal + parameters.lowerBound, count: parameters.count)
    }

    /// Adds Float gradient sums over `parameters` (fast mode; the order of calls matters).
    public func add(floatSums sums: UnsafePointer<Float>, parameters: Range<Int>) {
        let g = meanGradient.pointer + parameters.lowerBound
        for i in 0..<parameters.count { g[i] += sums[i] }
    }

    /// Counts the samples whose gradients were added: the step's mean divides by them.
    public func addSamples(_ count: Int) { pendingCount += count }

    /// Averages what was added and applies the optimizer with this step's learning rate.
    public func finishStep() {
        guard pendingCount > 0 else { return }
        if config.deterministic {
            FixedPoint.mean(fixedTotal, count: parameterCount, divisor: pendingCount, into: meanGradient.pointer)
        } else {
            let scale = 1 / Float(pendingCount)
            let g = meanGradient.pointer
            for i in 0..<parameterCount { g[i] *= scale }
        }
        optimizer.update(parameters: parameters.buffer, gradient: UnsafeBufferPointer(meanGradient.buffer),
                         learningRate: learningRate)
        step += 1
    }

    /// Restores a resumed run's position.
    public func restore(step: Int, optimizerState: [Float]) {
        self.step = step
        optimizer.state = optimizerState
    }
}
