#if canImport(Glibc)
    import Glibc
#endif
import ConvoyInterop
import Foundation

/// Appends one event per epoch to `DIR/events.out.tfevents.<secs>.<host>.convoy`, written
/// straight to the file (no buffer) so a live TensorBoard sees each epoch as it ends. Wall
/// times come from the system clock: the file is a log, not a reproducible artifact, and
/// TensorBoard plots by them.
public final class TensorBoardWriter {
    public let path: String
    private let fd: Int32

    /// Creates `directory` (0755) if missing and a new event file in it, holding the version
    /// event. A name taken already (another run in the same second) is an error, not a merge.
    public init(directory: String, now: Double = Date().timeIntervalSince1970) throws {
        try Self.makeDirectory(directory)
        let name = "events.out.tfevents.\(Int(now)).\(Self.hostName()).convoy"
        path = FilePaths.join(directory, name)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError("\(path): cannot create: \(String(cString: strerror(errno)))") }
        // A failure from here on closes the file in deinit (self is fully initialized).
        try append(TensorBoardEvents.versionEvent(wallTime: now))
    }

    deinit { close(fd) }

    /// The epoch's scalars at `step` (the global step at the epoch's end).
    public func add(_ report: EpochReport, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try append(
            TensorBoardEvents.scalarEvent(
                wallTime: wallTime, step: step, scalars: TensorBoardEvents.scalars(report)))
    }

    private func append(_ event: [UInt8]) throws {
        let record = TensorBoardEvents.record(event)
        try record.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FileError("\(path): cannot write: \(String(cString: strerror(errno)))") }
                offset += n
            }
        }
    }

    private static func makeDirectory(_ directory: String) throws {
        guard !directory.isEmpty else { throw FileError("TensorBoard directory: the path is empty") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw FileError("\(directory): exists and is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw FileError("\(directory): cannot create the directory (\(error.localizedDescription))")
        }
    }

    /// The host name for the file name, with anything but [A-Za-z0-9.-] as "_" so it stays
    /// one path component.
    static func hostName() -> String {
        let name = localHostName().map {
            $0.isASCII && ($0.isLetter || $0.isNumber || "-.".contains($0)) ? $0 : "_"
        }
        return name.isEmpty ? "localhost" : String(name)
    }
}
