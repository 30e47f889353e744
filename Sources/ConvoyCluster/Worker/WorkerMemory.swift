import ConvoyEngine
import Foundation

/// The most memory a worker may use for a run: the CLI's `--max-memory`, or by default half
/// of this host's RAM. Half of `MemTotal`, not `MemAvailable`: the available figure moves
/// with the page cache and other processes, so the same welcome would be accepted or refused
/// by chance; half leaves the other half to the coordinator and other workers of the host,
/// so one absurd welcome cannot bring the OOM killer onto them.
public struct MemoryBound: Sendable, Equatable, CustomStringConvertible {
    public var bytes: Int
    /// Where the number came from, for the refusal line ("--max-memory", "half of this host's RAM").
    public var source: String

    public init(bytes: Int, source: String) {
        self.bytes = bytes
        self.source = source
    }

    /// A worker process alone (code, libraries, ZeroMQ and BLAS threads) needs about this.
    public static let processBytes = 64 << 20
    /// Smaller bounds cannot hold a process and a control message.
    public static let minimum = 2 * processBytes
    /// When /proc/meminfo cannot be read.
    static let fallbackBytes = 2 << 30

    public var description: String { "\(mebibytes(bytes)) (\(source))" }

    /// Bytes from `512M`, `4G`, `1T`, `65536` or `64K` (binary multiples; an optional `B` or
    /// `iB` after the letter). Nil for anything else, zero, negative or past `Int`.
    public static func parse(_ text: String) -> Int? {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        for suffix in ["iB", "B"] where digits.count > suffix.count && digits.hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count)
            break
        }
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40]
        var shift = 0
        if let last = digits.last?.uppercased().first, let bits = shifts[last] {
            shift = bits
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let value = Int(digits), value > 0
        else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : bytes
    }

    /// Half of `MemTotal` from `/proc/meminfo` (given as text in tests); 2 GiB when it cannot be read.
    public static func hostDefault(meminfo: String? = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))
        -> MemoryBound
    {
        let line = meminfo?.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
        let fields = line?.split(separator: " ", omittingEmptySubsequences: true) ?? []
        guard fields.count == 3, fields[2] == "kB", let kibibytes = Int(fields[1]), kibibytes > 0,
            kibibytes < Int.max / 1024
        else {
            return MemoryBound(bytes: fallbackBytes, source: "the default when /proc/meminfo has no MemTotal")
        }
        return MemoryBound(bytes: kibibytes * 1024 / 2, source: "half of this host's RAM")
    }

    /// ZMQ_MAXMSGSIZE of the worker's connection: the largest message a run within this
    /// bound can send (a received message is held about three times while it is decoded),
    /// never less than the largest control message and never more than the protocol allows.
    public var connectionMessageLimit: Int {
        min(Int(Wire.maxMessageBytes), max(WorkerFootprint.controlFrameBytes, bytes / 4))
    }
}

/// What one run costs a worker, estimated from its welcome before anything is allocated.
public struct WorkerFootprint: Sendable, Equatable {
    /// Networks, gradient sums and result buffers of every slot.
    public var modelBytes: Int
    /// The largest step message this worker accepts in the run, and its samples.
    public var stepFrameBytes: Int
    public var stepSamples: Int
    /// Everything: the process, the model and three copies of the largest step message.
    public var totalBytes: Int

    /// The largest welcome, refusal or other control message (the decoder's own bound).
    public static let controlFrameBytes = Wire.headerSize + Wire.maxControlBytes

    /// Bytes of a step message carrying `samples` samples of `sampleSize` values and `parameters` weights.
    static func stepFrame(samples: Int, sampleSize: Int, parameters: Int) throws -> Int {
        var bytes = CheckedSize("bytes of a step message", Wire.headerSize + 24)
        try bytes.add(4, parameters)
        try bytes.add(samples, sampleSize + 1)
        return bytes.value
    }

    /// The footprint of `welcome`'s run with `slots` compute threads of `maxBatch` samples,
    /// within `bound` and the connection's `messageLimit`; an error naming the estimate and
    /// the bound when not even one micro-batch per step fits.
    public static func plan(
        _ welcome: Welcome, architecture: Architecture, slots: Int, maxBatch: Int, bound: MemoryBound,
        messageLimit: Int
    ) throws -> WorkerFootprint {
        let parameters = architecture.parameterCount
        var model = CheckedSize("bytes of the worker's buffers")
        try model.add(slots, Network.estimatedBytes(architecture, maxBatch: maxBatch))
        // One gradient sum per slot and their total, Int64 or Float per parameter.
        try model.add(slots + 1, parameters, welcome.deterministic ? 8 : 4)
        // A result bucket: its values (8 bytes) and their encoding (at most 10 bytes each);
        // weights sent ahead of their step (HeldWeights), 4 bytes each.
        try model.add(parameters, 22)
        let fixed = try model.adding(MemoryBound.processBytes).value
        let fewest = welcome.deterministic ? welcome.microBatch : 1
        let smallest = try stepFrame(samples: fewest, sampleSize: welcome.sampleSize, parameters: parameters)
        let needed = try model.adding(MemoryBound.processBytes).adding(3, smallest).value
        guard needed <= bound.bytes, smallest <= messageLimit else {
            throw WorkerMemoryError(
                needed: needed, model: model.value, stepBytes: smallest, stepSamples: fewest, bound: bound)
        }
        // The rest of the bound, a third per copy of a step message, at most the connection's limit.
        let frameRoom = min(messageLimit, (bound.bytes - fixed) / 3)
        let perSample = welcome.sampleSize + 1
        let samples = min(Wire.maxSamples, (frameRoom - (smallest - fewest * perSample)) / perSample)
        let frame = try stepFrame(samples: samples, sampleSize: welcome.sampleSize, parameters: parameters)
        return WorkerFootprint(
            modelBytes: model.value, stepFrameBytes: max(frame, controlFrameBytes), stepSamples: samples,
            totalBytes: fixed + 3 * frame)
    }
}

/// A run that does not fit a worker's memory bound: the estimate, its parts and the bound.
public struct WorkerMemoryError: Error, CustomStringConvertible, Equatable {
    public let needed: Int, model: Int, stepBytes: Int, stepSamples: Int
    public let bound: MemoryBound

    public var description: String {
        "the run needs about \(mebibytes(needed)) (buffers \(mebibytes(model)), steps of \(stepSamples) "
            + "sample(s) of \(mebibytes(stepBytes)) held three times, the process "
            + "\(mebibytes(MemoryBound.processBytes))), more than this worker's bound of \(bound)"
    }
}

/// `1.5 GiB`, `61.2 MiB`: sizes in refusal and log lines.
func mebibytes(_ bytes: Int) -> String {
    let mib = Double(bytes) / Double(1 << 20)
    return mib >= 1024 ? String(format: "%.1f GiB", mib / 1024) : String(format: "%.1f MiB", mib)
}
