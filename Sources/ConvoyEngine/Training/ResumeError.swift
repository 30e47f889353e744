/// Why a checkpoint cannot continue this run.
public enum ResumeError: Error, CustomStringConvertible, Equatable {
    case differentRun(saved: TrainingConfig)
    case parameterCount(checkpoint: Int, model: Int)
    case position(epoch: Int, stepInEpoch: Int, step: Int)
    case optimizerState(checkpoint: Int, expected: Int)

    public var description: String {
        switch self {
        case let .differentRun(saved):
            "the checkpoint was made by a different run (\(saved.model), batch \(saved.batchSize), seed "
                + "\(saved.seed), \(saved.epochs) epochs, lr \(saved.learningRate), \(saved.optimizer.rawValue), "
                + "\(saved.deterministic ? "deterministic" : "fast")): resume it with the same training settings"
        case let .position(epoch, stepInEpoch, step):
            "the checkpoint's position (epoch \(epoch), step \(stepInEpoch) of it, step \(step) of the run) "
                + "does not fit this run"
        case let .optimizerState(checkpoint, expected):
            "the checkpoint holds \(checkpoint) optimizer state values, this optimizer keeps \(expected)"
        case let .parameterCount(checkpoint, model):
            "the checkpoint holds \(checkpoint) parameters, the model has \(model)"
        }
    }
}
