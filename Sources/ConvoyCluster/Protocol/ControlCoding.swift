import ConvoyEngine

/// The binary payloads of `hello` and `welcome` (docs/PROTOCOL.md). Fields go in a fixed
/// order with fixed widths; the network spec is the record of docs/FORMATS.md §2, the same
/// one model files hold.
extension Hello {
    /// Host names are at most 255 bytes (POSIX); the rest of the bound is slack.
    static let maxHostBytes = 1024

    /// host (u16 length + UTF-8), pid i32, threads u32.
    func write(to writer: inout ByteWriter) {
        writer.append(string: String(decoding: Array(host.utf8.prefix(Self.maxHostBytes)), as: UTF8.self))
        writer.append(pid)
        writer.append(max(threads, 0), as: UInt32.self)
    }

    init(reading reader: inout ByteReader) throws {
        let host = try reader.readString("host", maxBytes: Self.maxHostBytes)
        let pid = try reader.read(Int32.self, "pid")
        let threads = try reader.read(UInt32.self, "threads", in: 0...4096)
        self.init(host: host, pid: pid, threads: threads)
    }
}

extension Welcome {
    /// worker id u32, deterministic u8, spans wanted u8, micro-batch u32, sample size u32,
    /// network spec.
    func write(to writer: inout ByteWriter) {
        writer.append(workerID)
        writer.append(deterministic)
        writer.append(wantsSpans)
        writer.append(microBatch, as: UInt32.self)
        writer.append(sampleSize, as: UInt32.self)
        spec.write(to: &writer)
    }

    init(reading reader: inout ByteReader) throws {
        let workerID = try reader.read(UInt32.self, "worker id", in: 0...Int(Wire.maxWorkers - 1))
        let deterministic = try reader.readBool("deterministic")
        let wantsSpans = try reader.readBool("spans wanted")
        let microBatch = try reader.read(UInt32.self, "micro-batch", in: 1...Wire.maxSamples)
        let sampleSize = try reader.read(UInt32.self, "sample size", in: 1...Wire.maxSampleSize)
        let spec = try NetworkSpec(reading: &reader, "spec")
        self.init(
            workerID: UInt32(workerID), spec: spec, deterministic: deterministic,
            microBatch: microBatch, sampleSize: sampleSize, wantsSpans: wantsSpans)
    }
}
