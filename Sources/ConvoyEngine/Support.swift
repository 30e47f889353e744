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
            if n < 0 { if errno == EINTR { continue }; failed = String(cString: strerror(errno)); return }
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
    if dirfd >= 0 { fsync(dirfd); close(dirfd) }
}

/// Little-endian byte building and reading for the binary formats (model files, checkpoints,
/// wire messages).
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }
    public mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    public mutating func append(_ value: Float) { append(value.bitPattern) }
    public mutating func append(_ value: Double) { append(value.bitPattern) }
    public mutating func append(bytes other: [UInt8]) { bytes.append(contentsOf: other) }
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

public struct ByteReader {
    let bytes: [UInt8]
    public private(set) var offset: Int
    let name: String

    public init(_ bytes: [UInt8], name: String, offset: Int = 0) { self.bytes = bytes; self.name = name; self.offset = offset }

    public var remaining: Int { bytes.count - offset }

    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw DataError("\(name): truncated while reading \(field)") }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset..<(offset + size)]) }
        offset += size
        return T(littleEndian: value)
    }

    public mutating func readBytes(_ count: Int, _ field: String) throws -> [UInt8] {
        guard count >= 0, remaining >= count else { throw DataError("\(name): truncated while reading \(field)") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    public mutating func readFloats(_ count: Int, _ field: String) throws -> [Float] { try readRaw(count, field) }
    public mutating func readInt64s(_ count: Int, _ field: String) throws -> [Int64] { try readRaw(count, field) }

    /// `count` values copied straight from the bytes (little-endian platforms only).
    private mutating func readRaw<T: FixedWidthInteger & Sendable>(_ count: Int, _ field: String) throws -> [T] {
        try readRawValues(count, field, T.self)
    }
    private mutating func readRaw(_ count: Int, _ field: String) throws -> [Float] {
        try readRawValues(count, field, Float.self)
    }
    private mutating func readRawValues<T>(_ count: Int, _ field: String, _: T.Type) throws -> [T] {
        let size = MemoryLayout<T>.stride
        guard count >= 0, count <= remaining / size else { throw DataError("\(name): truncated while reading \(field)") }
        let start = offset
        offset += size * count
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + size * count)]))
            }
            initialized = count
        }
    }
}
