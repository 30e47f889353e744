import Foundation
import ZIPFoundation

/// One array in NumPy's `.npy` format (version 1.0): the magic `\x93NUMPY`, the version, a
/// little-endian u16 header length, an ASCII Python-dict header padded with spaces to a
/// multiple of 64 bytes, then the data in C order.
public struct NumPyArray: Equatable, Sendable {
    /// The element types convoy writes and reads.
    public enum DType: String, Sendable, CaseIterable {
        case float32 = "<f4"
        case uint8 = "|u1"
        case int8 = "|i1"
        case int16 = "<i2"
        case int32 = "<i4"
        case int64 = "<i8"
        case uint16 = "<u2"
        case uint32 = "<u4"
        case uint64 = "<u8"

        var size: Int {
            switch self {
            case .uint8, .int8: 1
            case .int16, .uint16: 2
            case .float32, .int32, .uint32: 4
            case .int64, .uint64: 8
            }
        }
    }

    public var dtype: DType
    public var shape: [Int]
    /// The elements' little-endian bytes, C order.
    public var data: [UInt8]

    public init(dtype: DType, shape: [Int], data: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    public init(shape: [Int], floats: [Float]) {
        var writer = ByteWriter(capacity: 4 * floats.count)
        floats.withUnsafeBufferPointer { writer.append(floats: $0) }
        self.init(dtype: .float32, shape: shape, data: writer.bytes)
    }

    public var count: Int { shape.reduce(1, *) }

    public var encoded: [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': (\(dims)), }"
        // 10 bytes of preamble; the header ends in a newline and the whole is 64-byte aligned.
        let padded = (10 + header.utf8.count + 1 + 63) / 64 * 64
        header += String(repeating: " ", count: padded - 10 - header.utf8.count - 1) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        return bytes + Array(header.utf8) + data
    }

    /// Decodes a `.npy` file's bytes; every field is checked (a file is hostile input).
    public init(decoding bytes: [UInt8], name: String) throws {
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw DataError("\(name): not a .npy array") }
        let (major, headerStart) = (bytes[6], bytes[6] == 1 ? 10 : 12)
        guard (1...3).contains(major), bytes.count >= headerStart else {
            throw DataError("\(name): .npy version \(major) is not supported")
        }
        let headerLength =
            major == 1
            ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        guard headerLength <= 1 << 16, bytes.count >= headerStart + headerLength else {
            throw DataError("\(name): truncated .npy header")
        }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let fields = try NumPyHeader(header, name: name)
        var count = 1
        for dim in fields.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow, dim >= 0 else { throw DataError("\(name): shape \(fields.shape) is too large") }
            count = product
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: fields.dtype.size)
        let start = headerStart + headerLength
        guard !overflow, bytes.count - start == byteCount else {
            throw DataError("\(name): shape \(fields.shape) needs \(count) elements, the file holds a different amount")
        }
        self.init(dtype: fields.dtype, shape: fields.shape, data: Array(bytes[start...]))
    }

    /// The elements as integers (labels), whatever the integer dtype.
    public func integers() throws -> [Int64] {
        let n = count
        return try data.withUnsafeBytes { raw in
            func load<T: FixedWidthInteger>(_: T.Type) -> [Int64] {
                (0..<n).map {
                    Int64(T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * T.bitWidth / 8, as: T.self)))
                }
            }
            switch dtype {
            case .uint8: return load(UInt8.self)
            case .int8: return load(Int8.self)
            case .int16: return load(Int16.self)
            case .uint16: return load(UInt16.self)
            case .int32: return load(Int32.self)
            case .uint32: return load(UInt32.self)
            case .int64: return load(Int64.self)
            case .uint64: return load(UInt64.self).map { $0 < 0 ? Int64.max : $0 }
            case .float32: throw DataError("float32 array where integers are expected")
            }
        }
    }
}

/// The Python-dict header of a `.npy` array: `descr`, `fortran_order` and `shape`.
struct NumPyHeader {
    let dtype: NumPyArray.DType
    let shape: [Int]

    init(_ header: String, name: String) throws {
        func value(_ key: String) -> Substring? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return header[range.upperBound...].drop(while: { $0 == " " })
        }
        guard let descr = value("descr"), descr.first == "'",
            let end = descr.dropFirst().firstIndex(of: "'")
        else { throw DataError("\(name): .npy header has no descr") }
        let code = String(descr[descr.index(after: descr.startIndex)..<end])
        let normalized = code == "<u1" || code == "u1" ? "|u1" : code == "<i1" || code == "i1" ? "|i1" : code
        guard let dtype = NumPyArray.DType(rawValue: normalized) else {
            throw DataError("\(name): element type \(peerText(code)) is not supported")
        }
        guard let order = value("fortran_order"), order.hasPrefix("False") else {
            throw DataError("\(name): Fortran-ordered arrays are not supported; save with C order")
        }
        guard let shapeText = value("shape"), shapeText.first == "(", let close = shapeText.firstIndex(of: ")")
        else { throw DataError("\(name): .npy header has no shape") }
        let parts = shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",")
        let dims = parts.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard dims.count <= 8, let shape = Optional(dims.compactMap { Int($0) }), shape.count == dims.count else {
            throw DataError("\(name): .npy shape (\(peerText(String(shapeText[...close])))) is not understood")
        }
        self.dtype = dtype
        self.shape = shape
    }
}

/// NumPy's `.npz`: a zip archive of `.npy` arrays (`NAME.npy` for array `NAME`), read by
/// `numpy.load`. Written stored (uncompressed) with a fixed date, so identical arrays give
/// identical files.
public enum NumPyArchive {
    public static func encode(_ arrays: [(name: String, array: NumPyArray)]) throws -> [UInt8] {
        let archive = try Archive(data: Data(), accessMode: .create)
        // The zip format's earliest date: no clock in the file.
        let epoch = DateComponents(calendar: Calendar(identifier: .gregorian), year: 1980, month: 1, day: 1).date!
        for (name, array) in arrays {
            let bytes = Data(array.encoded)
            try archive.addEntry(
                with: name + ".npy", type: .file, uncompressedSize: Int64(bytes.count), modificationDate: epoch,
                permissions: 0o644
            ) { position, size in bytes.subdata(in: Int(position)..<Int(position) + size) }
        }
        guard let data = archive.data else { throw DataError("could not build the .npz archive") }
        return Array(data)
    }

    /// Reads the arrays of an `.npz` file, refusing any entry that would decompress to more
    /// than `maxBytes` (a zip bomb is hostile input like any other).
    public static func load(path: String, maxBytes: Int = 1 << 32) throws -> [String: NumPyArray] {
        let archive: Archive
        do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
            throw DataError("\(path): not a readable .npz (zip) file")
        }
        var arrays: [String: NumPyArray] = [:]
        for entry in archive where entry.type == .file && entry.path.hasSuffix(".npy") {
            guard entry.uncompressedSize <= UInt64(maxBytes) else {
                throw DataError("\(path): \(peerText(entry.path)) is larger than \(maxBytes) bytes")
            }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(entry.uncompressedSize))
            do {
                _ = try archive.extract(entry) { chunk in
                    guard bytes.count + chunk.count <= Int(entry.uncompressedSize) else {
                        throw DataError("\(path): \(peerText(entry.path)) is longer than its header says")
                    }
                    bytes += chunk
                }
            } catch let error as DataError { throw error } catch {
                throw DataError("\(path): \(peerText(entry.path)) cannot be read (\(error))")
            }
            let name = String(entry.path.dropLast(4))
            arrays[name] = try NumPyArray(decoding: bytes, name: "\(path): \(peerText(entry.path))")
        }
        return arrays
    }
}
