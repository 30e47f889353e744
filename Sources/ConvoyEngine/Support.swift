import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename,
/// then fsync of the directory. A crash leaves the old file or the new one, never half.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let dir = directory.isEmpty ? "." : directory
    let temp = (dir as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
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
        // Float32 is little-endian on every platform convoy runs on; copy as raw bytes.
        bytes.append(contentsOf: UnsafeRawBufferPointer(floats))
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

    public mutating func readFloats(_ count: Int, _ field: String) throws -> [Float] {
        guard count >= 0, count <= remaining / 4 else { throw DataError("\(name): truncated while reading \(field)") }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { $0.copyBytes(from: bytes[offset..<(offset + 4 * count)]) }
        offset += 4 * count
        return values
    }
}
