import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh directory of mode 0700 holding one `ipc://` socket: the coordinator of `convoy
/// local` binds there, so only this user (and root) can connect, no TCP port is open, and
/// the command lines that `ps` shows every user hold a path, not a secret.
public final class PrivateSocketDirectory: @unchecked Sendable {
    /// Why no directory could be made.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The longest socket path ZeroMQ takes: `sun_path` is 108 bytes with its NUL.
    public static let maxSocketPath = 107

    public let path: String
    public var socketPath: String { path + "/coordinator" }
    public var endpoint: String { "ipc://" + socketPath }
    /// The same socket path for the shared-memory transport.
    public var sharedMemoryEndpoint: String { SharedMemoryCoordinatorTransport.scheme + socketPath }

    /// Made with `mkdtemp` (an unpredictable name, created with mode 0700 in one call) in
    /// the first of `$XDG_RUNTIME_DIR` (per user), `$TMPDIR` and `/tmp` that exists and
    /// leaves the socket's path short enough.
    public static func make(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> PrivateSocketDirectory
    {
        let bases = [environment["XDG_RUNTIME_DIR"], environment["TMPDIR"], "/tmp"].compactMap { $0 }
        for base in bases where isSafeBase(base) {
            let template = (base.hasSuffix("/") ? base : base + "/") + "convoy-XXXXXX"
            guard template.utf8.count + "/coordinator".utf8.count <= maxSocketPath else { continue }
            var bytes = Array(template.utf8CString)
            guard let made = mkdtemp(&bytes) else {
                let reason = String(cString: strerror(errno))
                throw Failure(description: "cannot make a private socket directory in \(base) (\(reason))")
            }
            return PrivateSocketDirectory(path: String(cString: made))
        }
        throw Failure(description: "no directory for a private socket: \(bases.joined(separator: ", "))")
    }

    private init(path: String) { self.path = path }

    /// A directory others cannot write to, or one with the sticky bit (like /tmp): elsewhere
    /// another user could rename our directory away and put one of theirs in its place.
    static func isSafeBase(_ base: String) -> Bool {
        var info = stat()
        guard !base.isEmpty, stat(base, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return false }
        return info.st_mode & 0o022 == 0 || info.st_mode & S_ISVTX != 0
    }

    /// Removes the directory and the socket in it; harmless when already gone.
    public func remove() {
        Self.lock.withLock { _ = Self.registered.remove(path) }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Also removes it when the process ends through `exit()` (an error, or a signal
    /// handler that ends the children and exits) rather than by returning.
    public func removeAtExit() {
        let first = Self.lock.withLock {
            Self.registered.insert(path)
            defer { Self.atExitInstalled = true }
            return !Self.atExitInstalled
        }
        if first {
            atexit {
                let paths = PrivateSocketDirectory.lock.withLock { PrivateSocketDirectory.registered }
                for path in paths { try? FileManager.default.removeItem(atPath: path) }
            }
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var registered: Set<String> = []
    nonisolated(unsafe) private static var atExitInstalled = false
}
