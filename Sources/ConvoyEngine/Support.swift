import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename,
/// then fsync of the directory. A crash leaves the old file or the new one, never half.
public func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let dir = directory.isEmpty ? "." : directory
    let temp = (dir as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, mode)
    guard fd >= 0 else { throw DataError("\(path): cannot write (\(String(cString: strerror(errno))))") }
    var failed: String? = nil
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                failed = String(cString: strerror(errno))
                return
            }
            offset += n
        }
    }
    if failed == nil && fsync(fd) != 0 { failed = String(cString: strerror(errno)) }
    close(fd)
    if failed == nil && rename(temp, path) != 0 { failed = String(cString: strerror(errno)) }
    if let failed {
        unlink(temp)
        throw DataError("\(path): write failed (\(failed))")
    }
    let dirfd = open(dir, O_RDONLY)
    if dirfd >= 0 {
        fsync(dirfd)
        close(dirfd)
    }
}
