/// Little-endian byte building and reading for the binary formats (model files, checkpoints,
/// wire messages; docs/FORMATS.md). Every record is written field by field in a fixed order,
/// so the bytes depend on nothing the compiler chooses (no synthesized `Codable`).
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }
    public mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    public mutating func append(_ value: Float) { append(value.bitPattern) }
    public mutating func append(_ value: Double) { append(value.bitPattern) }
    public mutating func append(_ value: Bool) { append(UInt8(value ? 1 : 0)) }
    public mutating func append(bytes other: [UInt8]) { bytes.append(contentsOf: other) }
    /// A count the format stores as `T` (u8, u16, u32): callers keep values within the
    /// format's bounds, so a value that does not fit is a programming error.
    public mutating func append<T: FixedWidthInteger & UnsignedInteger>(_ value: Int, as _: T.Type) {
        guard let narrow = T(exactly: value) else { preconditionFailure("\(value) does not fit in \(T.self)") }
        append(narrow)
    }
    /// UTF-8 bytes after a u16 length.
    public mutating func append(string: String) {
        let utf8 = Array(string.utf8)
        append(utf8.count, as: UInt16.self)
        append(bytes: utf8)
    }
    public mutating func append(floats: UnsafeBufferPointer<Float>) {
        append(raw: UnsafeRawBufferPointer(floats))
    }
    /// Raw memory as it is: Float32 and Int64 arrays are little-endian on every platform
    /// convoy runs on (x86-64, arm64), so tensors are copied, never encoded per element.
    public mutating func append(raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }
    /// Overwrites 4 bytes at `offset` (a length known only after the body was written).
    public mutating func patch(_ value: UInt32, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { v in for i in 0..<4 { bytes[offset + i] = v[i] } }
    }
}

/// Reads what `ByteWriter` wrote, treating every byte as hostile: each read checks the
/// bytes left before touching them, counts are checked against bounds before anything is
/// allocated, and every failure is one `DataError` naming the source, the field and the
/// problem ("m.convoy: spec layer 3 kind: unknown tag 42").
public struct ByteReader {
    let bytes: [UInt8]
    public private(set) var offset: Int
    let name: String

    public init(_ bytes: [UInt8], name: String, offset: Int = 0) {
        self.bytes = bytes
        self.name = name
        self.offset = min(max(offset, 0), bytes.count)
    }

    public var remaining: Int { bytes.count - offset }

    /// The error for `field`; decoders use it for their own checks so every message reads alike.
    public func error(_ field: String, _ problem: String) -> DataError { DataError("\(name): \(field): \(problem)") }

    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw error(field, "truncated (\(remaining) bytes left, \(size) needed)") }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset..<(offset + size)]) }
        offset += size
        return T(littleEndian: value)
    }

    /// An unsigned integer stored as `T` that must lie in `range`, as an `Int`.
    public mutating func read<T: FixedWidthInteger & UnsignedInteger>(
        _: T.Type, _ field: String, in range: ClosedRange<Int>
    ) throws -> Int {
        let raw = try read(T.self, field)
        guard let value = Int(exactly: raw), range.contains(value) else {
            throw error(field, "\(raw) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    public mutating func readBool(_ field: String) throws -> Bool {
        switch try read(UInt8.self, field) {
        case 0: return false
        case 1: return true
        case let other: throw error(field, "\(other) is not a boolean (0 or 1)")
        }
    }

    /// A Float32 that must be finite.
    public mutating func readFloat(_ field: String) throws -> Float {
        let value = Float(bitPattern: try read(UInt32.self, field))
        guard value.isFinite else { throw error(field, "\(value) is not finite") }
        return value
    }

    /// A Float64 that must be finite.
    public mutating func readDouble(_ field: String) throws -> Double {
        let value = Double(bitPattern: try read(UInt64.self, field))
        guard value.isFinite else { throw error(field, "\(value) is not finite") }
        return value
    }

    /// A u16 length (at most `maxBytes`) and that many bytes of valid UTF-8.
    public mutating func readString(_ field: String, maxBytes: Int) throws -> String {
        let length = try read(UInt16.self, field + " length", in: 0...maxBytes)
        let utf8 = try readBytes(length, field)
        guard let string = String(validating: utf8, as: UTF8.self) else { throw error(field, "is not valid UTF-8") }
        return string
    }

    public mutating func readBytes(_ count: Int, _ field: String) throws -> [UInt8] {
        guard count >= 0, remaining >= count else {
            throw error(field, "truncated (\(remaining) bytes left, \(count) needed)")
        }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// Lends the next `count` bytes to `body` without copying them, then moves past them.
    public mutating func withBytes<R>(_ count: Int, _ field: String, _ body: (UnsafeRawBufferPointer) throws -> R)
        throws -> R
    {
        guard count >= 0, remaining >= count else {
            throw error(field, "truncated (\(remaining) bytes left, \(count) needed)")
        }
        let start = offset
        let result = try bytes.withUnsafeBytes {
            try body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + count)]))
        }
        offset += count
        return result
    }

    public mutating func readFloats(_ count: Int, _ field: String) throws -> [Float] {
        try readRawValues(count, field, Float.self)
    }
    public mutating func readInt64s(_ count: Int, _ field: String) throws -> [Int64] {
        try readRawValues(count, field, Int64.self)
    }

    /// Fails unless every byte was read: a record has no slack.
    public func expectEnd(_ what: String) throws {
        guard remaining == 0 else { throw error(what, "\(remaining) unexpected bytes after it") }
    }

    /// `count` values copied straight from the bytes (little-endian platforms only).
    private mutating func readRawValues<T>(_ count: Int, _ field: String, _: T.Type) throws -> [T] {
        let size = MemoryLayout<T>.stride
        // Division, not multiplication: `count · size` could overflow for a hostile count.
        guard count >= 0, count <= remaining / size else {
            throw error(field, "truncated (\(count) values of \(size) bytes, \(remaining) bytes left)")
        }
        let start = offset
        offset += size * count
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: source[start..<(start + size * count)]))
            }
            initialized = count
        }
    }
}

/// The big-endian 32-bit integer at `offset` (IDX headers, PNG chunks: the formats convoy
/// reads that are not its own little-endian ones). The caller has checked the four bytes exist.
func bigEndianUInt32<Bytes: RandomAccessCollection>(_ bytes: Bytes, at offset: Bytes.Index) -> Int
where Bytes.Element == UInt8, Bytes.Index == Int {
    Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
}
