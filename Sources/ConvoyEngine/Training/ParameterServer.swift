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

    /// One optimizer step with the mean of `sum`; a sum of no samples changes nothing.
    public func apply(_ sum: GradientSum) {
        precondition(
            sum.count == parameterCount, "gradient sum of \(sum.count) values for \(parameterCount) parameters")
        guard sum.samples > 0 else { return }
        sum.mean(into: meanGradient.pointer)
        if config.weightDecay > 0 {
            // L2 decay as PyTorch's SGD does it: g += λ·w, biases included.
            let g = meanGradient.pointer
            let w = parameters.pointer
            let decay = config.weightDecay
            for i in 0..<parameterCount { g[i] += decay * w[i] }
        }
        optimizer.update(
            parameters: parameters.buffer, gradient: UnsafeBufferPointer(meanGradient.buffer),
            learningRate: learningRate)
        step += 1
    }

    /// Restores a resumed run's position.
    public func restore(step: Int, optimizerState: [Float]) {
        self.step = step
        optimizer.state = optimizerState
    }
}
