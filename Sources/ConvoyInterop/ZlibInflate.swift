import CZlibSystem

extension Zlib {
    /// Inflates a zlib stream (RFC 1950, as in PNG's IDAT chunks) that must come to exactly
    /// `expectedBytes`. zlib writes at most one byte past that (the output buffer has one byte
    /// of room to see a stream that is too long), so a decompression bomb costs nothing.
    public static func inflate(_ input: [UInt8], expectedBytes: Int) throws -> [UInt8] {
        guard expectedBytes >= 0, expectedBytes < 1 << 31, input.count < 1 << 31 else {
            throw ZlibError(description: "compressed data of \(input.count) bytes for \(expectedBytes) is too large")
        }
        var output = [UInt8](repeating: 0, count: expectedBytes + 1)
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ZlibError(description: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                // Z_FINISH: all input and all room are given at once, so one call does it all
                // or stops at the room's end (Z_BUF_ERROR).
                return CZlibSystem.inflate(&stream, Z_FINISH)
            }
        }
        let produced = expectedBytes + 1 - Int(stream.avail_out)
        guard status == Z_STREAM_END, produced == expectedBytes else {
            throw ZlibError(
                description: status == Z_STREAM_END && produced < expectedBytes
                    ? "the compressed data holds \(produced) bytes, \(expectedBytes) expected"
                    : "the compressed data is corrupt or larger than the \(expectedBytes) bytes expected")
        }
        output.removeLast()
        return output
    }
}
