import ConvoyEngine
import ConvoyInterop

/// A crafted variant of a valid file, its CRC recomputed: what an attacker writes, not what
/// a failing disk leaves.
public struct Mutation: Sendable {
    public let name: String
    public let bytes: [UInt8]
    public let expect: Expectation

    public enum Expectation: String, Sendable {
        /// No reader may accept it.
        case refuse
        /// A valid file, but not of the original's run: resuming with the original's flags
        /// must refuse it.
        case refuseOnResume = "resume-refuse"
        /// It may be valid (a flipped weight bit is a different model, not a broken one).
        case either
    }

    public init(name: String, bytes: [UInt8], expect: Expectation) {
        self.name = name
        self.bytes = bytes
        self.expect = expect
    }
}

public enum FileFormat: String, CaseIterable, Sendable {
    case checkpoint, model
}

/// Mutations of a valid model file or checkpoint: every field set to edge values, lengths
/// and counts changed, sections swapped, optimizer states relabelled, cut or padded, then
/// random bit flips and field overwrites; all deterministic for a seed.
public struct FileMutator {
    public let format: FileFormat
    public let original: [UInt8]
    /// Where the header (after magic, version, length) starts, and its length.
    let headerStart = 16
    let headerLength: Int
    var rng: SeededRandom

    public init(format: FileFormat, original: [UInt8], seed: UInt64) {
        self.format = format
        self.original = original
        headerLength = min(Int(Self.load(original, at: 12, width: 4)), max(original.count - 16, 0))
        rng = SeededRandom(seed: seed, stream: 0xF11E)
    }

    /// `count` mutations (at least the structured ones), none equal to the original.
    public mutating func mutations(count: Int) -> [Mutation] {
        var all = (format == .checkpoint ? checkpointMutations() : modelMutations()) + layoutMutations()
        all.removeAll { $0.bytes == original }
        while all.count < count {
            let mutation = randomMutation()
            if mutation.bytes != original { all.append(mutation) }
        }
        return all
    }

    // MARK: Layout mutations, shared by both formats

    /// Counts, lengths and versions at edge values; the file cut and padded.
    func layoutMutations() -> [Mutation] {
        var out: [Mutation] = []
        let parameterCountAt = headerStart + headerLength
        let edges: [UInt64] = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 32, 1 << 62, UInt64(Int64.max), UInt64.max]
        for value in [UInt64(0), 1, 2, 4, 0xFFFF_FFFF] {
            out.append(refuse("version \(value)", set(value, at: 8, width: 4)))
        }
        let lengths: [UInt64] = [0, UInt64(headerLength - 1), UInt64(headerLength + 1), 0xFFFF_FFFF]
        for value in lengths {
            out.append(refuse("header length \(value)", set(value, at: 12, width: 4)))
        }
        let parameters = Self.load(original, at: parameterCountAt, width: 8)
        for value in edges + [parameters - 1, parameters + 1] {
            out.append(refuse("parameter count \(value)", set(value, at: parameterCountAt, width: 8)))
        }
        if format == .checkpoint {
            let stateAt = parameterCountAt + 8 + 4 * Int(parameters)
            let state = Self.load(original, at: stateAt, width: 8)
            for value in edges + [state &- 1, state + 1, state / 2, state * 2] where value != state {
                out.append(refuse("optimizer state count \(value)", set(value, at: stateAt, width: 8)))
            }
        }
        let body = body
        for cut in [1, 4, 8, body.count / 2, body.count - 20] {
            out.append(refuse("cut \(cut) bytes", Self.withCRC(Array(body.prefix(body.count - cut)))))
        }
        out.append(refuse("4 bytes appended", Self.withCRC(body + [0, 0, 0, 0])))
        out.append(refuse("empty", []))
        out.append(refuse("magic only", Array(original.prefix(8))))
        return out
    }

    // MARK: Random mutations

    /// Random bit flips, edge values at random places, or a piece removed or repeated.
    mutating func randomMutation() -> Mutation {
        var bytes = body
        switch rng.nextIndex(below: 4) {
        case 0:
            let flips = 1 + rng.nextIndex(below: 4)
            for _ in 0..<flips {
                bytes[8 + rng.nextIndex(below: bytes.count - 8)] ^= 1 << UInt8(rng.nextIndex(below: 8))
            }
            return either("\(flips) bits flipped", Self.withCRC(bytes))
        case 1:
            // An edge value over a header field (fields are 1, 2, 4 or 8 bytes).
            let width = [1, 2, 4, 8][rng.nextIndex(below: 4)]
            let at = headerStart + rng.nextIndex(below: max(headerLength - width, 1))
            let values: [UInt64] = [0, 1, 0xFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 62, UInt64.max, 0x7FC0_0000]
            let value = values[rng.nextIndex(below: values.count)]
            return either(
                "header byte \(at - headerStart) = \(value) (\(width) bytes)", set(value, at: at, width: width))
        case 2:
            let at = 8 + rng.nextIndex(below: bytes.count - 8)
            let length = min(1 + rng.nextIndex(below: 16), bytes.count - at)
            bytes.removeSubrange(at..<(at + length))
            return either("\(length) bytes removed at \(at)", Self.withCRC(bytes))
        default:
            let at = 8 + rng.nextIndex(below: bytes.count - 8)
            let piece = bytes[at..<min(at + 1 + rng.nextIndex(below: 16), bytes.count)]
            bytes.insert(contentsOf: piece, at: at)
            return either("\(piece.count) bytes repeated at \(at)", Self.withCRC(bytes))
        }
    }

    // MARK: Helpers

    func refuse(_ name: String, _ bytes: [UInt8]) -> Mutation { Mutation(name: name, bytes: bytes, expect: .refuse) }
    func either(_ name: String, _ bytes: [UInt8]) -> Mutation { Mutation(name: name, bytes: bytes, expect: .either) }

    /// The body with a fresh CRC-32 in place of the last 4 bytes (or appended to `body`).
    static func withCRC(_ body: [UInt8]) -> [UInt8] {
        var writer = ByteWriter()
        writer.append(bytes: body)
        writer.append(body.withUnsafeBytes { Zlib.crc32($0) })
        return writer.bytes
    }

    /// `bytes` with `value`'s low `width` bytes (little-endian) at `at`.
    static func store(_ bytes: [UInt8], _ value: UInt64, at: Int, width: Int) -> [UInt8] {
        var copy = bytes
        for i in 0..<width where at + i < copy.count { copy[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        return copy
    }

    /// The original with `value` at `at`, its CRC recomputed.
    func set(_ value: UInt64, at: Int, width: Int) -> [UInt8] {
        Self.withCRC(Self.store(body, value, at: at, width: width))
    }

    /// The original without its CRC.
    var body: [UInt8] { Array(original.prefix(max(original.count - 4, 0))) }

    static func load(_ bytes: [UInt8], at: Int, width: Int) -> UInt64 {
        (0..<width).reduce(0) { at + $1 < bytes.count ? $0 | UInt64(bytes[at + $1]) << (8 * $1) : $0 }
    }

}
