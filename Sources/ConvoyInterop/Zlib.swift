import CZlibSystem

public struct ZlibError: Error, CustomStringConvertible {
    public let description: String
}

public enum Zlib {
    /// Reads a whole file, gunzipping it if it is gzip (zlib passes raw files through).
    /// Throws with the path and zlib's reason for a missing, unreadable or truncated file.
    /// More than `maxBytes` (after decompression) is refused: a gzip bomb stops there.
    public static func readMaybeGzipped(path: String, maxBytes: Int = 1 << 32) throws -> [UInt8] {
        let reader = try GzipReader(path: path)
        let bytes = try reader.read(maxBytes)
        guard try reader.read(1).isEmpty else {
            throw ZlibError(description: "\(path): more than \(maxBytes) bytes after decompression")
        }
        return bytes
    }

    /// Writes `bytes` gzipped to `path` (test data: bombs and truncated streams).
    public static func writeGzipped(_ bytes: [UInt8], to path: String) throws {
        guard let file = gzopen(path, "wb") else {
            throw ZlibError(description: "\(path): cannot create (\(errnoDescription()))")
        }
        var offset = 0
        while offset < bytes.count {
            let length = min(bytes.count - offset, 1 << 20)
            let n = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress! + offset, UInt32(length)) }
            guard n > 0 else {
                gzclose(file)
                throw ZlibError(description: "\(path): write failed")
            }
            offset += Int(n)
        }
        guard gzclose(file) == Z_OK else { throw ZlibError(description: "\(path): write failed") }
    }

    /// CRC-32 (zlib's polynomial) of a byte buffer; used as the checksum of model files.
    public static func crc32(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt32 {
        var crc = UInt(initial)
        var offset = 0
        // zlib's length argument is 32-bit: feed large buffers in pieces.
        while offset < bytes.count {
            let length = min(bytes.count - offset, 1 << 30)
            crc = CZlibSystem.crc32(
                crc,
                bytes.baseAddress!.advanced(by: offset)
                    .assumingMemoryBound(to: UInt8.self), UInt32(length))
            offset += length
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}

/// A gzipped or raw file read piece by piece, so a caller that knows how many bytes a valid
/// file holds (an IDX header says it) never decompresses more: a few KB of gzip that inflate
/// to terabytes cost no more than the header allows.
public final class GzipReader {
    private let file: gzFile
    public let path: String
    /// Bytes handed out so far (after decompression).
    public private(set) var bytesRead = 0

    public init(path: String) throws {
        // O_NONBLOCK is not available through gzopen: a FIFO path would block, so only
        // regular files are opened.
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ZlibError(description: "\(path): cannot open (\(errnoDescription()))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ZlibError(description: "\(path): not a regular file") }
        guard let file = gzopen(path, "rb") else {
            throw ZlibError(description: "\(path): cannot open (\(errnoDescription()))")
        }
        self.file = file
        self.path = path
    }

    deinit { gzclose(file) }

    /// Up to `count` more bytes (fewer only at the end of the data); memory grows with what
    /// is actually read, not with `count`.
    public func read(_ count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(max(count, 0), 1 << 20))
        while result.count < count {
            let want = min(chunk.count, count - result.count)
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(want)) }
            if n < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
                throw ZlibError(description: "\(path): \(message)")
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<Int(n)])
            bytesRead += Int(n)
        }
        // gzread returns 0 at a premature end of a gzip stream too; gzerror says so.
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if code != Z_OK && code != Z_STREAM_END {
            throw ZlibError(description: "\(path): \(message.isEmpty ? "corrupt gzip stream" : message)")
        }
        return result
    }
}

#if canImport(Glibc)
    import Glibc
#endif
func errnoDescription() -> String { String(cString: strerror(errno)) }
