/// A checkpoint is hostile input: a crafted file (its CRC recomputed) must not reach the
/// optimizer's loops with a state of the wrong length, nor the epoch loop with a position it
/// cannot reach. These are the checks that need no data set; `TrainingSession.resume` adds
/// those that do (steps per epoch, the run's own configuration).
extension Checkpoint {
    /// Values in the optimizer's state for `parameters` parameters (`Optimizer.state`):
    /// nothing for SGD, the velocity for momentum, h for AdaGrad, m, v and the step for Adam.
    public static func optimizerStateCount(_ kind: OptimizerKind, parameters: Int) -> Int {
        switch kind {
        case .sgd: 0
        case .momentum, .adagrad: parameters
        case .adam: 2 * parameters + 1
        }
    }

    /// Throws one `DataError` naming `name`, the field and the problem for the first claim of
    /// this checkpoint that cannot be true. `load` runs it on every file; the decoder alone
    /// checks only the layout (the golden-bytes tests decode records of no real model).
    public func validate(name: String) throws {
        func fail(_ field: String, _ problem: String) -> DataError { DataError("\(name): \(field): \(problem)") }
        let config = header.config
        // The name is the file's text: checked before any message could quote it unescaped.
        guard ModelZoo.trainable.contains(config.model.lowercased()) else {
            throw fail("config model", "\(peerText(config.model)) is not a trainable model")
        }
        do { try config.validate() } catch { throw fail("config", "\(error)") }
        let expected: Int
        do { expected = try Architecture(try ModelZoo.spec(named: config.model)).parameterCount } catch {
            throw fail("config model", "\(error)")
        }
        guard parameters.count == expected else {
            throw fail("parameters", "\(parameters.count) stored, model \(config.model) has \(expected)")
        }
        if let bad = parameters.firstIndex(where: { !$0.isFinite }) {
            throw fail("parameters", "value \(bad) is \(parameters[bad]), not finite")
        }
        try validateOptimizerState(fail)
        try validatePosition(fail)
    }

    /// The state's length and values must be what the named optimizer keeps: an SGD file
    /// relabelled momentum, half a velocity, or Adam's state offered as a velocity are refused.
    private func validateOptimizerState(_ fail: (String, String) -> DataError) throws {
        let kind = header.config.optimizer
        let count = Self.optimizerStateCount(kind, parameters: parameters.count)
        guard optimizerState.count == count else {
            throw fail(
                "optimizer state",
                "\(optimizerState.count) values stored, \(kind.rawValue) keeps \(count) for \(parameters.count) "
                    + "parameters")
        }
        if let bad = optimizerState.firstIndex(where: { !$0.isFinite }) {
            throw fail("optimizer state", "value \(bad) is \(optimizerState[bad]), not finite")
        }
        let n = parameters.count
        // Sums of squares (AdaGrad's h, Adam's v) are never negative.
        let squares = kind == .adagrad ? 0..<n : kind == .adam ? n..<(2 * n) : 0..<0
        if let bad = optimizerState[squares].firstIndex(where: { $0 < 0 }) {
            throw fail("optimizer state", "value \(bad) is \(optimizerState[bad]), a sum of squares below 0")
        }
        // Adam counts its own steps: one per optimizer step of the run.
        if kind == .adam, optimizerState[2 * n] != Float(header.step) {
            throw fail("optimizer state", "Adam's step count \(optimizerState[2 * n]) is not the run's \(header.step)")
        }
    }

    /// The position must be one a run of this configuration passes through: the finished
    /// epochs' reports, in order, and a step count that steps per epoch can produce.
    private func validatePosition(_ fail: (String, String) -> DataError) throws {
        let (config, epoch, inEpoch, step) = (header.config, header.epoch, header.stepInEpoch, header.step)
        guard epoch <= config.epochs, epoch < config.epochs || inEpoch == 0 else {
            throw fail("epoch", "epoch \(epoch) step \(inEpoch) is past the run's \(config.epochs) epochs")
        }
        guard step >= inEpoch, epoch > 0 || step == inEpoch else {
            throw fail("step", "step \(step) of the run cannot be step \(inEpoch) of epoch \(epoch + 1)")
        }
        if epoch > 0 {
            let perEpoch = (step - inEpoch) / epoch
            guard perEpoch * epoch == step - inEpoch, perEpoch > inEpoch else {
                throw fail(
                    "step", "step \(step) is no whole number of epochs before step \(inEpoch) of epoch \(epoch + 1)")
            }
        }
        let totals = header.epochTotals
        guard totals.lossSum >= 0, totals.count <= inEpoch * config.batchSize else {
            throw fail("epoch totals", "\(totals.count) samples and loss \(totals.lossSum) after \(inEpoch) steps")
        }
        guard header.reports.count == epoch else {
            throw fail("reports", "\(header.reports.count) epoch reports for \(epoch) finished epochs")
        }
        for (index, report) in header.reports.enumerated() {
            let fractions = [report.trainAccuracy, report.testAccuracy]
            let amounts = [report.loss, report.testLoss, report.seconds, report.samplesPerSec, report.learningRate]
            guard report.epoch == index + 1, fractions.allSatisfy({ (0...1).contains($0) }),
                amounts.allSatisfy({ $0 >= 0 })
            else { throw fail("report \(index + 1)", "epoch \(report.epoch) holds impossible values") }
        }
    }
}
