import CZlibSystem

public struct ZlibError: Error, CustomStringConvertible {
    public let description: String
}

public enum Zlib {
    /// Reads a whole file, gunzipping it if it is gzip (zlib passes raw files through).
    /// Throws with the path and zlib's reason for a missing, unreadable or truncated file.
    public static func readMaybeGzipped(path: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else {
            throw ZlibError(description: "\(path): cannot open (\(errnoDescription()))")
        }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
                throw ZlibError(description: "\(path): \(message)")
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<Int(n)])
        }
        // gzread returns 0 at a premature end of a gzip stream too; gzerror says so.
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if code != Z_OK && code != Z_STREAM_END {
            throw ZlibError(description: "\(path): \(message.isEmpty ? "corrupt gzip stream" : message)")
        }
        return result
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

#if canImport(Glibc)
    import Glibc
#endif
func errnoDescription() -> String { String(cString: strerror(errno)) }
