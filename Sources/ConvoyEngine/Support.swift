import ConvoyInterop

/// Writes `bytes` to `path` atomically through a fresh, unpredictably named temporary file
/// (`Files.writeAtomically`): a crash leaves the old file or the new one, never half, and no
/// file planted in the directory can receive the bytes. Without `replace`, an existing file
/// is never overwritten.
public func writeAtomically(_ bytes: [UInt8], to path: String, mode: UInt32 = 0o644, replace: Bool = true) throws {
    do { try Files.writeAtomically(bytes, to: path, mode: mode, replace: replace) } catch let error as FileError {
        throw DataError(error.description)
    }
}
