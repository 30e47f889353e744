import ConvoyInterop
import Foundation

/// A trained model on disk (format version 1, little-endian):
///
/// | bytes | field |
/// |---|---|
/// | 8 | magic `CONVOYMD` |
/// | 4 | format version (1) |
/// | 4 | length L of the header JSON |
/// | L | header JSON: `{"spec": NetworkSpec, "config": TrainingConfig?}` |
/// | 8 | parameter count P |
/// | 4·P | parameters, Float32 |
/// | 4 | CRC-32 of every byte before it |
public struct ModelFile: Sendable {
    public static let magic = Array("CONVOYMD".utf8)
    public static let version: UInt32 = 1

    struct Header: Codable {
        var spec: NetworkSpec
        var config: TrainingConfig?
    }

    public var spec: NetworkSpec
    public var config: TrainingConfig?
    public var parameters: [Float]

    public init(spec: NetworkSpec, config: TrainingConfig? = nil, parameters: [Float]) {
        self.spec = spec; self.config = config; self.parameters = parameters
    }

    public func encoded() throws -> [UInt8] {
        let header = try JSONEncoder().encode(Header(spec: spec, config: config))
        var writer = ByteWriter(capacity: 32 + header.count + 4 * parameters.count)
        writer.append(bytes: Self.magic)
        writer.append(Self.version)
        writer.append(UInt32(header.count))
        writer.append(bytes: Array(header))
        writer.append(UInt64(parameters.count))
        parameters.withUnsafeBufferPointer { writer.append(floats: $0) }
        let crc = writer.bytes.withUnsafeBytes { Zlib.crc32($0) }
        writer.append(crc)
        return writer.bytes
    }

    public func save(to path: String) throws { try writeAtomically(try encoded(), to: path) }

    /// Decodes and checks everything: magic, version, checksum, header, and that the
    /// parameter count matches the architecture the header describes.
    public init(decoding bytes: [UInt8], name: String) throws {
        guard bytes.count >= Self.magic.count + 4, Array(bytes[0..<8]) == Self.magic else {
            throw DataError("\(name): not a convoy model file (bad magic)")
        }
        var reader = ByteReader(bytes, name: name, offset: 8)
        let version = try reader.read(UInt32.self, "format version")
        guard version == Self.version else {
            throw DataError("\(name): model format version \(version) is not supported (this convoy reads version \(Self.version))")
        }
        guard bytes.count >= 16 else { throw DataError("\(name): truncated") }
        let stored = bytes[(bytes.count - 4)...].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian
        let actual = bytes[0..<(bytes.count - 4)].withUnsafeBytes { Zlib.crc32($0) }
        guard stored == actual else {
            throw DataError("\(name): checksum mismatch (file is corrupt or truncated)")
        }
        let headerLength = Int(try reader.read(UInt32.self, "header length"))
        let headerBytes = try reader.readBytes(headerLength, "header")
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(headerBytes)) } catch {
            throw DataError("\(name): unreadable model header (\(error))")
        }
        let count = try reader.read(UInt64.self, "parameter count")
        guard count <= UInt64(reader.remaining / 4) else { throw DataError("\(name): truncated parameters") }
        parameters = try reader.readFloats(Int(count), "parameters")
        guard reader.remaining == 4 else { throw DataError("\(name): \(reader.remaining - 4) unexpected trailing bytes") }
        let architecture: Architecture
        do { architecture = try Architecture(header.spec) } catch {
            throw DataError("\(name): invalid architecture: \(error)")
        }
        guard architecture.parameterCount == parameters.count else {
            throw DataError("\(name): \(parameters.count) parameters stored but the \(header.spec.name) architecture has \(architecture.parameterCount)")
        }
        spec = header.spec
        config = header.config
    }

    public static func load(path: String) throws -> ModelFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError("\(path): cannot read model file (missing or unreadable)")
        }
        return try ModelFile(decoding: Array(data), name: path)
    }

    /// CRC-32 of the parameters' bytes: equal for bit-identical weights.
    public var parameterChecksum: UInt32 { parameters.withUnsafeBytes { Zlib.crc32($0) } }
}
