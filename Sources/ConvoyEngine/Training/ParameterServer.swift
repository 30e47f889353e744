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

    public init(parameters initial: [Float], config: TrainingConfig, totalSteps: Int) {
        parameters = FloatBuffer(initial)
        optimizer = makeOptimizer(config.optimizer, parameterCount: initial.count)
        self.config = config
        self.totalSteps = totalSteps
        meanGradient = FloatBuffer(count: initial.count)
    }

    public var parameterCount: Int { parameters.count }

    /// The learning rate of the next step (docs/SPEC.md, "Learning-rate schedules").
    public var learningRate: Float {
        config.schedule.rate(base: config.learningRate, step: step, totalSteps: totalSteps)
    }

    /// One optimizer step with the mean of `sum`; a sum of no samples changes nothing.
    public func apply(_ sum: GradientSum) {
        precondition(sum.count == parameterCount, "gradient sum of \(sum.count) values for \(parameterCount) parameters")
        guard sum.samples > 0 else { return }
        sum.mean(into: meanGradient.pointer)
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
