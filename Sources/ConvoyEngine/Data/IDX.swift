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

    /// The most data bytes an IDX file may claim (MNIST's training images are 47 MB).
    public static let maxDataBytes = 1 << 32

    /// Parses `data` read from `name`; checks the magic, the element type, the rank, and that
    /// the data is exactly as long as the dimensions say.
    public init(parsing data: [UInt8], name: String, expectedRank: Int) throws {
        let header = try Self.header(data, name: name, expectedRank: expectedRank)
        let available = data.count - header.size
        guard available >= header.dataBytes else {
            throw DataError(
                "\(name): truncated: dimensions \(header.dimensions) need \(header.dataBytes) data bytes, file has "
                    + "\(available)")
        }
        guard available == header.dataBytes else {
            throw DataError(
                "\(name): \(available - header.dataBytes) unexpected bytes after the \(header.dataBytes) data bytes "
                    + "of \(header.dimensions)")
        }
        dimensions = header.dimensions
        bytes = Array(data[header.size...])
    }

    /// The header at the start of `data`: its dimensions, its size and the data bytes it
    /// promises, every value checked before any size is formed from it.
    static func header(_ data: [UInt8], name: String, expectedRank: Int) throws -> (
        dimensions: [Int], size: Int, dataBytes: Int
    ) {
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
            let value = bigEndianUInt32(data, at: 4 + 4 * d)
            guard value >= 1, value <= 1 << 28 else {
                throw DataError("\(name): dimension \(d) is \(value), outside 1...\(1 << 28)")
            }
            dims.append(value)
            total = total.multipliedReportingOverflow(by: value).partialValue
            guard total <= maxDataBytes else { throw DataError("\(name): dimensions \(dims) are implausibly large") }
        }
        return (dims, headerSize, total)
    }

    /// Reads a gzipped or raw IDX file. The header is read first and the data only as far
    /// as its dimensions allow (plus one byte, to see that nothing follows), so a gzip bomb
    /// costs at most what the header claims.
    public static func load(path: String, expectedRank: Int) throws -> IDXArray {
        do {
            let reader = try GzipReader(path: path)
            return try load(from: reader, expectedRank: expectedRank)
        } catch let error as ZlibError {
            throw DataError(error.description)
        }
    }

    /// The header, then at most the data it promises and one byte more.
    static func load(from reader: GzipReader, expectedRank: Int) throws -> IDXArray {
        var data = try reader.read(4)
        if data.count == 4 { data += try reader.read(4 * Int(data[3])) }
        let header = try header(data, name: reader.path, expectedRank: expectedRank)
        data += try reader.read(header.dataBytes + 1)
        return try IDXArray(parsing: data, name: reader.path, expectedRank: expectedRank)
    }
}

private func hex(_ bytes: ArraySlice<UInt8>) -> String {
    bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ")
}
