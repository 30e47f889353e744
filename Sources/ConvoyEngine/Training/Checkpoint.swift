import ConvoyInterop
import Foundation

/// Everything a coordinator needs to continue a run exactly where it stopped: weights,
/// optimizer state, position (epoch, step), the epoch's running totals and the finished
/// epochs' reports. The batch order needs no state: it is derived from (seed, epoch).
///
/// File (docs/FORMATS.md §5, little-endian): magic `CONVOYCK`, version u32 (3), header length
/// u32, header (binary record: config, position, totals, reports), parameter count u64,
/// parameters f32, optimizer state count u64, state f32, CRC-32 of all bytes before it.
/// Written atomically (temp file, fsync, rename). Version 1 (a JSON header) is not read.
public struct Checkpoint: Sendable {
    public static let magic = Array("CONVOYCK".utf8)
    public static let version: UInt32 = 3
    static let maxHeaderBytes = 1 << 28

    public struct Header: Equatable, Sendable {
        public var config: TrainingConfig
        /// The epoch in progress (0-based) and how many of its steps are done.
        public var epoch: Int
        public var stepInEpoch: Int
        /// Optimizer steps done since the start of the run.
        public var step: Int
        public var epochTotals: GradientComputer.Totals
        public var reports: [EpochReport]

        public init(
            config: TrainingConfig, epoch: Int, stepInEpoch: Int, step: Int,
            epochTotals: GradientComputer.Totals, reports: [EpochReport]
        ) {
            self.config = config
            self.epoch = epoch
            self.stepInEpoch = stepInEpoch
            self.step = step
            self.epochTotals = epochTotals
            self.reports = reports
        }
    }

    public var header: Header
    public var parameters: [Float]
    public var optimizerState: [Float]

    public init(header: Header, parameters: [Float], optimizerState: [Float]) {
        self.header = header
        self.parameters = parameters
        self.optimizerState = optimizerState
    }

    /// The header block alone (what the golden-bytes test pins).
    public var headerBytes: [UInt8] {
        var writer = ByteWriter()
        header.write(to: &writer)
        return writer.bytes
    }

    public func encoded() throws -> [UInt8] {
        let headerBytes = headerBytes
        var writer = ByteWriter(capacity: 48 + headerBytes.count + 4 * (parameters.count + optimizerState.count))
        writer.append(bytes: Self.magic)
        writer.append(Self.version)
        writer.append(headerBytes.count, as: UInt32.self)
        writer.append(bytes: headerBytes)
        writer.append(UInt64(parameters.count))
        parameters.withUnsafeBufferPointer { writer.append(floats: $0) }
        writer.append(UInt64(optimizerState.count))
        optimizerState.withUnsafeBufferPointer { writer.append(floats: $0) }
        writer.append(writer.bytes.withUnsafeBytes { Zlib.crc32($0) })
        return writer.bytes
    }

    public init(decoding bytes: [UInt8], name: String) throws {
        guard bytes.count >= 20, Array(bytes[0..<8]) == Self.magic else {
            throw DataError("\(name): not a convoy checkpoint (bad magic)")
        }
        var reader = ByteReader(bytes, name: name, offset: 8)
        let version = try reader.read(UInt32.self, "version")
        guard version == Self.version else {
            throw DataError(
                "\(name): checkpoint version \(version) is not supported (this convoy reads version \(Self.version))")
        }
        let stored = bytes[(bytes.count - 4)...].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian
        guard stored == bytes[0..<(bytes.count - 4)].withUnsafeBytes({ Zlib.crc32($0) }) else {
            throw DataError("\(name): checksum mismatch (corrupt or truncated checkpoint)")
        }
        let headerLength = try reader.read(UInt32.self, "header length", in: 1...Self.maxHeaderBytes)
        var headerReader = ByteReader(try reader.readBytes(headerLength, "header"), name: name)
        header = try Header(reading: &headerReader, "header")
        try headerReader.expectEnd("header")
        let parameterCount = try reader.read(UInt64.self, "parameter count", in: 0...(reader.remaining / 4))
        parameters = try reader.readFloats(parameterCount, "parameters")
        let stateCount = try reader.read(UInt64.self, "optimizer state count", in: 0...(reader.remaining / 4))
        optimizerState = try reader.readFloats(stateCount, "optimizer state")
        guard reader.remaining == 4 else {
            throw DataError("\(name): \(reader.remaining - 4) unexpected trailing bytes")
        }
    }

    /// The largest checkpoint file read: the parameters and Adam's state of the largest
    /// trainable model are a few MB; 1 GiB leaves room and keeps a hostile file from
    /// exhausting memory.
    static let maxFileBytes = 1 << 30

    /// Reads the checkpoint at `path` and checks every claim it makes (`validate`).
    public static func load(path: String) throws -> Checkpoint {
        let bytes: [UInt8]
        do { bytes = try Files.read(path, what: "checkpoint", maxBytes: maxFileBytes) } catch let error as FileError {
            throw DataError(error.description)
        }
        let checkpoint = try Checkpoint(decoding: bytes, name: path)
        try checkpoint.validate(name: path)
        return checkpoint
    }

    static func fileName(step: Int) -> String { String(format: "checkpoint-%010d.convoy-ckpt", step) }

    /// Writes this checkpoint into `directory` and deletes all but the newest `keep`.
    public func save(in directory: String, keep: Int) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeAtomically(
            try encoded(), to: FilePaths.join(directory, Self.fileName(step: header.step)))
        for old in try Self.files(in: directory).dropFirst(max(keep, 1)) {
            try? FileManager.default.removeItem(atPath: old)
        }
    }

    /// Checkpoint paths in `directory`, newest first.
    static func files(in directory: String) throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("checkpoint-") && $0.hasSuffix(".convoy-ckpt") }.sorted(by: >)
            .map { FilePaths.join(directory, $0) }
    }

    /// The newest checkpoint in `directory` that reads back intact; corrupt ones are skipped,
    /// each with a message. Throws if the directory holds none that is usable.
    public static func newest(in directory: String, log: (String) -> Void) throws -> Checkpoint {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError("\(directory): no such checkpoint directory")
        }
        for path in try files(in: directory) {
            do {
                return try load(path: path)
            } catch {
                log("skipping \(error)")
            }
        }
        throw DataError("\(directory): holds no usable checkpoint")
    }
}
