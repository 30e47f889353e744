import ConvoyInterop

/// A problem with a data file; the message names the file and what is wrong with it.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An IDX array of unsigned bytes (the MNIST format): a 4-byte magic `00 00 08 <rank>`,
/// `rank` big-endian UInt32 dimensions, then the data.
public struct IDXArray: Sendable {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    /// Parses `data` read from `name`; checks the magic, the element type, the rank, and that
    /// the data is exactly as long as the dimensions say.
    public init(parsing data: [UInt8], name: String, expectedRank: Int) throws {
        guard data.count >= 4 else {
            throw DataError("\(name): truncated: \(data.count) bytes, too short for an IDX header")
        }
        guard data[0] == 0, data[1] == 0 else {
            throw DataError("\(name): bad magic \(hex(data[0..<4])): not an IDX file")
        }
        guard data[2] == 0x08 else {
            throw DataError("\(name): element type 0x\(String(data[2], radix: 16)) is not unsigned byte (0x08)")
        }
        let rank = Int(data[3])
        guard rank == expectedRank else {
            throw DataError("\(name): has \(rank) dimensions, expected \(expectedRank)")
        }
        let headerSize = 4 + 4 * rank
        guard data.count >= headerSize else {
            throw DataError("\(name): truncated: header needs \(headerSize) bytes, file has \(data.count)")
        }
        var dims: [Int] = []
        var total = 1
        for d in 0..<rank {
            let o = 4 + 4 * d
            let value = Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3])
            guard value >= 1, value <= 1 << 28 else {
                throw DataError("\(name): dimension \(d) is \(value), outside 1...\(1 << 28)")
            }
            dims.append(value)
            total = total.multipliedReportingOverflow(by: value).partialValue
            guard total <= 1 << 32 else { throw DataError("\(name): dimensions \(dims) are implausibly large") }
        }
        let available = data.count - headerSize
        guard available >= total else {
            throw DataError("\(name): truncated: dimensions \(dims) need \(total) data bytes, file has \(available)")
        }
        guard available == total else {
            throw DataError("\(name): \(available - total) unexpected bytes after the \(total) data bytes of \(dims)")
        }
        dimensions = dims
        bytes = Array(data[headerSize...])
    }

    /// Reads a gzipped or raw IDX file.
    public static func load(path: String, expectedRank: Int) throws -> IDXArray {
        let data: [UInt8]
        do { data = try Zlib.readMaybeGzipped(path: path) } catch let error as ZlibError {
            throw DataError(error.description)
        }
        return try IDXArray(parsing: data, name: path, expectedRank: expectedRank)
    }
}

private func hex(_ bytes: ArraySlice<UInt8>) -> String {
    bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ")
}
