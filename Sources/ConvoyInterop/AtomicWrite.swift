#if canImport(Glibc)
    import Glibc
#endif

extension Files {
    /// Writes `bytes` to `path` atomically: a new temporary file in the same directory, fsync,
    /// rename (or link, when `replace` is false), then fsync of the directory. A crash leaves
    /// the old file or the new one, never half of one.
    ///
    /// The temporary file has an unpredictable name (128 random bits) and is created with
    /// `O_CREAT | O_EXCL`, so nothing planted in the directory (a file, a symlink to
    /// somewhere else) is ever opened: a planted name is skipped and another one drawn.
    /// Without `replace`, an existing file (or symlink) at `path` is never overwritten:
    /// `link` fails atomically where "check, then rename" would race.
    ///
    /// - Parameters:
    ///   - mode: permissions of the new file (less the umask); 0600 for a secret.
    ///   - tempName: draws the temporary file's name (tests plant files at the names it draws).
    public static func writeAtomically(
        _ bytes: [UInt8], to path: String, mode: UInt32 = 0o644, replace: Bool = true,
        tempName: () -> String = Files.randomTempName
    ) throws {
        let directory = FilePaths.directory(of: path)
        let base = FilePaths.lastComponent(of: path)
        guard !base.isEmpty, base != ".", base != "..", !path.hasSuffix("/") else {
            throw FileError("\(path): names a directory, not a file")
        }
        var attempt = 0
        var temp = ""
        var fd: Int32 = -1
        while fd < 0 {
            // The stem is cut so that a name near NAME_MAX (255) still leaves room for the rest.
            temp = FilePaths.join(directory, ".\(base.prefix(100)).\(tempName()).tmp")
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
            attempt += 1
            // A taken name is someone else's file: draw another (a few times at most).
            guard fd < 0, errno == EEXIST, attempt < 8 else { break }
        }
        guard fd >= 0 else { throw FileError("\(path): cannot write (\(errnoDescription()))") }
        var failed = writeAll(fd, bytes)
        if failed == nil && fsync(fd) != 0 { failed = errnoDescription() }
        close(fd)
        if failed == nil {
            if replace {
                if rename(temp, path) != 0 { failed = errnoDescription() }
            } else {
                if link(temp, path) != 0 { failed = errno == EEXIST ? "it exists" : errnoDescription() }
            }
        }
        // After a link, the temporary name is a second name for the file: remove it.
        if failed != nil || !replace { unlink(temp) }
        if let failed { throw FileError("\(path): write failed (\(failed))") }
        let dirfd = open(directory, O_RDONLY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    /// 32 hex digits from the system's random source.
    public static func randomTempName() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let text = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }.joined()
    }

    /// nil when every byte was written, else the reason.
    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errnoDescription()
                }
                offset += n
            }
            return nil
        }
    }
}

/// Path text handled as plain strings split at "/". Foundation's NSString path helpers trap
/// on some legal names on Linux (`deletingLastPathComponent` of a one-letter path), so no
/// user path goes through them.
public enum FilePaths {
    /// The directory part: "m" → ".", "a/b" → "a", "/b" → "/", "a//b/" → "a".
    public static func directory(of path: String) -> String {
        let trimmed = trimmingTrailingSlashes(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed == "/" ? "/" : "." }
        let parent = trimmingTrailingSlashes(String(trimmed[..<slash]))
        return parent.isEmpty ? "/" : parent
    }

    /// The last component: "a/b" → "b", "a/b/" → "b", "m" → "m", "/" → "".
    public static func lastComponent(of path: String) -> String {
        let trimmed = trimmingTrailingSlashes(path)
        guard trimmed != "/" else { return "" }
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `name` inside `directory`.
    public static func join(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func trimmingTrailingSlashes(_ path: String) -> String {
        var text = Substring(path)
        while text.count > 1 && text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }
}
