import ConvoyEngine
import ConvoyInterop

extension TrainingOptions {
    /// The event file of --tensorboard, made before the data is read so a bad DIR fails
    /// before any work; nil without the flag.
    func tensorBoardWriter() throws -> TensorBoardWriter? {
        guard let tensorboard else { return nil }
        do { return try TensorBoardWriter(directory: tensorboard) } catch {
            throw FlagError("--tensorboard: \(error)")
        }
    }
}
