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

extension TrainingOptions {
    /// The timeline of --trace, its file made before the data is read so a bad FILE fails
    /// before any work; nil without the flag. `role` names this process in the trace.
    func timeline(role: String, log: @escaping (String) -> Void) throws -> Timeline? {
        guard let trace else { return nil }
        do { return try Timeline(path: trace, role: role, log: log) } catch { throw FlagError("--trace: \(error)") }
    }
}
