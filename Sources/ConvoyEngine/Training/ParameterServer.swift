/// The parameters and the optimizer: what a step's gradient sum turns into. The training
/// session owns one, in `convoy train` and in a cluster's coordinator alike; its state is
/// what a checkpoint saves.
public final class ParameterServer {
    public let parameters: FloatBuffer
    public private(set) var optimizer: any Optimizer
    public let config: TrainingConfig
    public let totalSteps: Int
    /// Optimizer steps taken since the start of the run.
    public private(set) var step = 0
    private let meanGradient: FloatBuffer

    /// Steps of linear learning-rate warm-up.
    public let warmupSteps: Int

    public init(parameters initial: [Float], config: TrainingConfig, totalSteps: Int, warmupSteps: Int = 0) {
        parameters = FloatBuffer(initial)
        optimizer = makeOptimizer(config.optimizer, parameterCount: initial.count)
        self.config = config
        self.totalSteps = totalSteps
        self.warmupSteps = warmupSteps
        meanGradient = FloatBuffer(count: initial.count)
    }

    public var parameterCount: Int { parameters.count }

    /// The learning rate of the next step (docs/SPEC.md §7.5).
    public var learningRate: Float {
        rate(at: step)
    }

    /// The learning rate of step `step` of the run.
    public func rate(at step: Int) -> Float {
        config.schedule.rate(base: config.learningRate, step: step, totalSteps: totalSteps, warmupSteps: warmupSteps)
    }

    /// Parameter ranges of the current step already updated by `applyEarly`.
    private var appliedEarly: [Range<Int>] = []
    /// The parameters and optimizer state from before the step's first `applyEarly`, so a
    /// step that does not finish (stopped while no worker was left) leaves no trace.
    private var beforeEarly: (parameters: [Float], optimizerState: [Float])?

    /// Updates `range` now with the mean of `sum` there, which must be final (all of the
    /// step's samples counted): the coordinator does this for the head while the workers
    /// still compute the trunk. `apply` then updates the rest. The same bits as one `apply`.
    public func applyEarly(_ sum: GradientSum, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= parameterCount)
        precondition(!appliedEarly.contains { $0.overlaps(range) }, "range \(range) updated twice in one step")
        guard sum.samples > 0 else { return }
        // ~0.5 MB copied for LeNet-5 with momentum, while the workers compute the trunk.
        if beforeEarly == nil { beforeEarly = (parameters.array, optimizer.state) }
        update(range, with: sum)
        appliedEarly.append(range)
    }

    /// Undoes this step's `applyEarly` updates: the step did not happen.
    public func discardEarly() {
        defer { (appliedEarly, beforeEarly) = ([], nil) }
        guard let before = beforeEarly else { return }
        parameters.pointer.update(from: before.parameters, count: parameterCount)
        optimizer.state = before.optimizerState
    }

    /// One optimizer step with the mean of `sum` (over the parameters `applyEarly` has not
    /// updated); a sum of no samples changes nothing.
    public func apply(_ sum: GradientSum) {
        precondition(
            sum.count == parameterCount, "gradient sum of \(sum.count) values for \(parameterCount) parameters")
        defer { (appliedEarly, beforeEarly) = ([], nil) }
        guard sum.samples > 0 else { return }
        var start = 0
        for done in appliedEarly.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if start < done.lowerBound { update(start..<done.lowerBound, with: sum) }
            start = done.upperBound
        }
        if start < parameterCount { update(start..<parameterCount, with: sum) }
        step += 1
    }

    /// The update rule on `range` (docs/SPEC.md §7, §8.2): mean gradient, L2 decay, optimizer.
    private func update(_ range: Range<Int>, with sum: GradientSum) {
        sum.mean(into: meanGradient.pointer, range: range)
        if config.weightDecay > 0 {
            // L2 decay as PyTorch's SGD does it: g += λ·w, biases included.
            let g = meanGradient.pointer
            let w = parameters.pointer
            let decay = config.weightDecay
            for i in range { g[i] += decay * w[i] }
        }
        optimizer.update(
            range, parameters: parameters.buffer, gradient: UnsafeBufferPointer(meanGradient.buffer),
            learningRate: learningRate, step: step + 1)
    }

    /// Restores a resumed run's position.
    public func restore(step: Int, optimizerState: [Float]) {
        self.step = step
        optimizer.state = optimizerState
    }
}
