/// What a session writes: checkpoints of its position and the trained model.
extension TrainingSession {
    func saveCheckpoint(epoch: Int, stepInEpoch: Int, totals: GradientComputer.Totals) throws {
        guard let checkpoints else { return }
        // Wall-clock times are not training state: written as 0, so identical runs write
        // byte-identical checkpoints (docs/FORMATS.md §5).
        let timeless = reports.map { report in
            var report = report
            (report.seconds, report.samplesPerSec) = (0, 0)
            return report
        }
        let header = Checkpoint.Header(
            config: config, epoch: epoch, stepInEpoch: stepInEpoch, step: server.step,
            epochTotals: totals, reports: timeless)
        try Checkpoint(header: header, parameters: server.parameters.array, optimizerState: server.optimizer.state)
            .save(in: checkpoints.directory, keep: checkpoints.keep)
        savedStep = server.step
    }

    public var modelFile: ModelFile {
        ModelFile(spec: architecture.spec, config: config, parameters: server.parameters.array, recipe: recipe)
    }
}
