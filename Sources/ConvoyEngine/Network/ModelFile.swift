import ConvoyInterop
import Foundation

/// A trained model on disk (docs/FORMATS.md §4; format version 4, little-endian):
///
/// | bytes | field |
/// |---|---|
/// | 8 | magic `CONVOYMD` |
/// | 4 | format version (4; 3 is read too) |
/// | 4 | length L of the header |
/// | L | header: network spec record, u8 config present, training config record if present, recipe (v4) |
/// | 8 | parameter count P |
/// | 4·P | parameters, Float32 |
/// | 4 | CRC-32 of every byte before it |
///
/// Version 1 held the header as JSON of the engine's types; it is not read any more.
public struct ModelFile: Sendable {
    public static let magic = Array("CONVOYMD".utf8)
    public static let version: UInt32 = 4
    /// Version 3 files, which have no recipe, still load.
    public static let readableVersions: ClosedRange<UInt32> = 3...4
    /// A header is a few hundred bytes; anything near this is not a model file.
    static let maxHeaderBytes = 1 << 20

    public var spec: NetworkSpec
    public var config: TrainingConfig?
    public var parameters: [Float]
    /// The resolved training flags by long name (`epochs` → `10`), as the CLI recorded them;
    /// empty in version 3 files. Written in sorted key order, so equal recipes are equal bytes.
    public var recipe: [String: String]

    public init(spec: NetworkSpec, config: TrainingConfig? = nil, parameters: [Float], recipe: [String: String] = [:]) {
        self.spec = spec
        self.config = config
        self.parameters = parameters
        self.recipe = recipe
    }

    /// The header block alone (what the golden-bytes test pins).
    public var headerBytes: [UInt8] {
        var header = ByteWriter()
        spec.write(to: &header)
        header.append(config != nil)
        config?.write(to: &header)
        Self.writeRecipe(recipe, to: &header)
        return header.bytes
    }

    public func encoded() throws -> [UInt8] {
        let header = headerBytes
        var writer = ByteWriter(capacity: 32 + header.count + 4 * parameters.count)
        writer.append(bytes: Self.magic)
        writer.append(Self.version)
        writer.append(header.count, as: UInt32.self)
        writer.append(bytes: header)
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
        guard Self.readableVersions.contains(version) else {
            throw DataError(
                "\(name): model format version \(version) is not supported (this convoy reads versions "
                    + "\(Self.readableVersions.lowerBound)...\(Self.readableVersions.upperBound))")
        }
        guard bytes.count >= 16 else { throw DataError("\(name): truncated") }
        let stored = bytes[(bytes.count - 4)...].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian
        let actual = bytes[0..<(bytes.count - 4)].withUnsafeBytes { Zlib.crc32($0) }
        guard stored == actual else {
            throw DataError("\(name): checksum mismatch (file is corrupt or truncated)")
        }
        let headerLength = try reader.read(UInt32.self, "header length", in: 1...Self.maxHeaderBytes)
        var header = ByteReader(try reader.readBytes(headerLength, "header"), name: name)
        let spec = try NetworkSpec(reading: &header, "spec")
        config = try header.readBool("config present") ? try TrainingConfig(reading: &header, "config") : nil
        recipe = version >= 4 ? try Self.readRecipe(from: &header) : [:]
        try header.expectEnd("header")
        let count = try reader.read(UInt64.self, "parameter count", in: 0...(reader.remaining / 4))
        parameters = try reader.readFloats(count, "parameters")
        guard reader.remaining == 4 else {
            throw DataError("\(name): \(reader.remaining - 4) unexpected trailing bytes")
        }
        // `evaluate` prints the name: a name that needs escaping is not one convoy wrote.
        guard peerText(spec.name) == spec.name else {
            throw DataError("\(name): spec name \(peerText(spec.name)) holds control characters")
        }
        let architecture: Architecture
        do { architecture = try Architecture(spec) } catch {
            throw DataError("\(name): invalid architecture: \(peerText("\(error)"))")
        }
        guard architecture.parameterCount == parameters.count else {
            throw DataError(
                "\(name): \(parameters.count) parameters stored but the \(peerText(spec.name)) architecture has "
                    + "\(architecture.parameterCount)"
            )
        }
        if let bad = parameters.firstIndex(where: { !$0.isFinite }) {
            throw DataError("\(name): parameters: value \(bad) is \(parameters[bad]), not finite")
        }
        if let config {
            // Informational here, but a file that claims an impossible run is not a model file.
            guard ModelZoo.all.contains(config.model.lowercased()) else {
                throw DataError("\(name): config model: \(peerText(config.model)) is not a known model")
            }
            do { try config.validate() } catch { throw DataError("\(name): config: \(error)") }
        }
        self.spec = spec
    }

    /// The largest model file read: VGG16's 138 M parameters take 553 MB; a bound keeps a
    /// hostile path (`/dev/zero`, a huge file) from exhausting memory.
    static let maxFileBytes = 1 << 31

    public static func load(path: String) throws -> ModelFile {
        let bytes: [UInt8]
        do { bytes = try Files.read(path, what: "model file", maxBytes: maxFileBytes) } catch let error as FileError {
            throw DataError(error.description)
        }
        return try ModelFile(decoding: bytes, name: path)
    }

    /// CRC-32 of the parameters' bytes: equal for bit-identical weights.
    public var parameterChecksum: UInt32 { parameters.withUnsafeBytes { Zlib.crc32($0) } }

    /// What `evaluate` allocates at most: a quarter of the host's memory, and never more than
    /// 4 GiB (LeNet-5 at batch 500 takes ~20 MB).
    public static var evaluationMemory: Double {
        min(Double(ProcessInfo.processInfo.physicalMemory) / 4, Double(4 << 30))
    }

    /// The batch to evaluate this model with: `preferred`, or fewer where the activations of
    /// that many samples would pass `memoryBytes`. A crafted file can describe a small model
    /// (few parameters) with enormous activations (a 1×1 convolution to 2^20 channels); it is
    /// refused here, naming `name`, before anything is allocated.
    public func evaluationBatch(preferred: Int, memoryBytes: Double, name: String) throws -> Int {
        let architecture = try Architecture(spec)
        let one = architecture.networkBytes(batch: 1)
        guard one <= memoryBytes else {
            throw DataError(
                "\(name): evaluating one sample of this model needs \(Int(one / 1e6)) MB, more than the "
                    + "\(Int(memoryBytes / 1e6)) MB allowed")
        }
        let perSample = max(architecture.networkBytes(batch: 2) - one, 1)
        return max(1, min(preferred, Int((memoryBytes - one) / perSample) + 1))
    }
}

extension Architecture {
    /// An upper bound on the bytes a `Network` of this architecture allocates for `batch`
    /// samples: parameters, gradient and scratch once; input, every layer's output, pooling
    /// indices, three buffers of the widest shape and the logits per sample. Computed in
    /// Double, so a hostile architecture overflows nothing.
    public func networkBytes(batch: Int) -> Double {
        let outputs = layers.reduce(0.0) { $0 + Double($1.outputShape.count) }
        let widest = ([inputShape] + layers.map(\.outputShape)).map { Double($0.count) }.max() ?? 0
        let perSample = Double(inputShape.count) + 2 * outputs + 3 * widest + Double(outputShape.count)
        let fixed = 2 * Double(parameterCount) + Double(layers.map(\.scratchCount).max() ?? 0)
        return 4 * (fixed + Double(batch) * perSample)
    }
}
