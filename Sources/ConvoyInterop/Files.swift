#if canImport(Glibc)
    import Glibc
#endif

/// A file that could not be read or written; the message names the path and the reason.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// File access for hostile paths and contents: plain POSIX calls with every size bounded,
/// so `--model-file /dev/zero` or a 100 GB file is one clear line, not a hang or an OOM kill.
public enum Files {
    /// What `fstat` says about an open file, as much as the callers need.
    public struct Status: Sendable {
        public let size: Int
        public let mode: UInt32
        public let owner: UInt32
        public let isRegular: Bool
    }

    /// The whole of the regular file at `path`, refused (naming `what` and the path) when it
    /// is not a regular file or holds more than `maxBytes`. `check` sees the open file's
    /// status before a byte is read (the same file that is then read: no race with a rename).
    public static func read(
        _ path: String, what: String, maxBytes: Int, check: (Status) throws -> Void = { _ in }
    ) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileError("\(what) \(path): cannot read (\(errnoDescription()))") }
        defer { close(fd) }
        let status = try self.status(fd, path: path, what: what)
        guard status.isRegular else { throw FileError("\(what) \(path): not a regular file") }
        guard status.size <= maxBytes else {
            throw FileError("\(what) \(path): \(status.size) bytes, more than the \(maxBytes) such a file can hold")
        }
        try check(status)
        // Read one byte past the size: a file that grows while it is read is refused too.
        var bytes = [UInt8](repeating: 0, count: status.size + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw FileError("\(what) \(path): read failed (\(errnoDescription()))") }
            if n == 0 { break }
            filled += n
        }
        guard filled == status.size else { throw FileError("\(what) \(path): changed while it was read") }
        bytes.removeLast()
        return bytes
    }

    static func status(_ fd: Int32, path: String, what: String) throws -> Status {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError("\(what) \(path): cannot stat (\(errnoDescription()))") }
        return Status(
            size: Int(info.st_size), mode: UInt32(info.st_mode & 0o7777), owner: UInt32(info.st_uid),
            isRegular: (info.st_mode & S_IFMT) == S_IFREG)
    }

    /// The current user's id (key files must be theirs, as ssh requires).
    public static var currentUser: UInt32 { UInt32(getuid()) }
}
