import ConvoyEngine

/// The `result` payload (docs/PROTOCOL.md): a slice's totals and one gradient bucket.
///
/// Fixed-point gradients travel packed (kind 4, `PackedGradient`): exact, and a bucket's
/// values are small next to 2^63 (a LeNet-5 slice's sums need 20–30 bits), so a value costs
/// 3–4 bytes instead of 8 at about the CPU cost of a copy. Raw Int64 (kind 2) and zigzag
/// varints (kind 3) are still read and written on request (`GradientEncoding`).
enum ResultCoding {
    static let none: UInt32 = 0, float: UInt32 = 1, fixedPoint: UInt32 = 2, fixedPointVarint: UInt32 = 3
    static let fixedPointPacked: UInt32 = 4

    static func write(_ result: StepResult, to frame: inout ByteWriter, encoding: GradientEncoding = .varint) {
        frame.append(result.slice)
        frame.append(UInt32(result.count))
        frame.append(UInt32(result.correct))
        frame.append(result.lossSum)
        frame.append(result.computeSeconds)
        SpanCoding.write(result.spans, to: &frame)
        frame.append(UInt32(result.gradientOffset))
        switch result.gradient {
        case .none:
            frame.append(none)
            frame.append(UInt32(0))
        case let .float(values):
            frame.append(float)
            frame.append(UInt32(values.count))
            values.withUnsafeBytes { frame.append(raw: $0) }
        case let .fixedPoint(values) where encoding == .raw:
            frame.append(fixedPoint)
            frame.append(UInt32(values.count))
            values.withUnsafeBytes { frame.append(raw: $0) }
        case let .fixedPoint(values) where encoding == .packed:
            frame.append(fixedPointPacked)
            frame.append(UInt32(values.count))
            values.withUnsafeBufferPointer { frame.append(bytes: PackedGradient.encode($0)) }
        case let .fixedPoint(values):
            frame.append(fixedPointVarint)
            frame.append(UInt32(values.count))
            values.withUnsafeBufferPointer { frame.append(bytes: ZigzagVarint.encode($0)) }
        }
    }

    /// Bytes `write` needs at most.
    static func capacity(_ result: StepResult, encoding: GradientEncoding) -> Int {
        switch result.gradient {
        case .none: 44 + SpanCoding.capacity
        case let .float(values): 44 + SpanCoding.capacity + 4 * values.count
        case let .fixedPoint(values) where encoding == .raw: 44 + SpanCoding.capacity + 8 * values.count
        case let .fixedPoint(values) where encoding == .packed:
            44 + SpanCoding.capacity + PackedGradient.capacity(values.count)
        case let .fixedPoint(values): 44 + SpanCoding.capacity + ZigzagVarint.maxBytes * values.count
        }
    }

    static func read(_ reader: inout ByteReader) throws -> StepResult {
        let slice = try reader.read(UInt32.self, "slice")
        guard slice < Wire.maxWorkers else { throw ProtocolError("slice \(slice) is out of range") }
        let count = Int(try reader.read(UInt32.self, "sample count"))
        let correct = Int(try reader.read(UInt32.self, "correct count"))
        let lossSum = Double(bitPattern: try reader.read(UInt64.self, "loss sum"))
        let seconds = Double(bitPattern: try reader.read(UInt64.self, "compute seconds"))
        let spans = try SpanCoding.read(&reader)
        let offset = Int(try reader.read(UInt32.self, "gradient offset"))
        let kind = try reader.read(UInt32.self, "gradient kind")
        let values = Int(try reader.read(UInt32.self, "gradient length"))
        guard offset <= Wire.maxParameters else { throw ProtocolError("gradient offset \(offset) is out of range") }
        guard count <= Wire.maxSamples, correct <= count else {
            throw ProtocolError("counts \(correct)/\(count) are inconsistent")
        }
        guard lossSum.isFinite, lossSum >= 0 else {
            throw ProtocolError("loss sum \(lossSum) is not a finite non-negative number")
        }
        guard seconds.isFinite, seconds >= 0 else { throw ProtocolError("compute time \(seconds) is invalid") }
        guard values <= Wire.maxParameters else { throw ProtocolError("gradient length \(values) is out of range") }
        let gradient = try readGradient(kind: kind, values: values, offset: offset, &reader)
        return StepResult(
            slice: slice, count: count, correct: correct, lossSum: lossSum, computeSeconds: seconds,
            gradientOffset: offset, gradient: gradient, spans: spans)
    }

    private static func readGradient(kind: UInt32, values: Int, offset: Int, _ reader: inout ByteReader) throws
        -> StepResult.Gradient
    {
        switch kind {
        case none:
            guard values == 0, offset == 0 else {
                throw ProtocolError("gradient length \(values) at \(offset) without a gradient")
            }
            return .none
        case float:
            guard reader.remaining == 4 * values else {
                throw ProtocolError(
                    "float gradient of \(values) values needs \(4 * values) bytes, has \(reader.remaining)")
            }
            let floats = try reader.readFloats(values, "gradient")
            if let bad = FloatChecks.firstNonFinite(floats) {
                throw ProtocolError("gradient element \(bad) is \(floats[bad])")
            }
            return .float(floats)
        case fixedPoint:
            guard reader.remaining == 8 * values else {
                throw ProtocolError(
                    "fixed-point gradient of \(values) values needs \(8 * values) bytes, has \(reader.remaining)")
            }
            return .fixedPoint(try reader.readInt64s(values, "gradient"))
        case fixedPointVarint:
            // At least one byte per value, at most `maxBytes`: checked before decoding.
            guard reader.remaining >= values, reader.remaining <= ZigzagVarint.maxBytes * values else {
                throw ProtocolError("varint gradient of \(values) values cannot be \(reader.remaining) bytes")
            }
            return .fixedPoint(
                try ZigzagVarint.decode(try reader.readBytes(reader.remaining, "gradient"), count: values))
        case fixedPointPacked:
            return .fixedPoint(
                try reader.withBytes(reader.remaining, "gradient") { try PackedGradient.decode($0, count: values) })
        default:
            throw ProtocolError("unknown gradient kind \(kind)")
        }
    }
}

/// How a worker writes fixed-point gradients: both are exact and every coordinator reads both.
/// Measured on LeNet-5 (2 vCPU Zen 4, `convoy local`): varint encoding took ~8% of a worker's
/// CPU time and decoding ~16% of the coordinator's, for 3.5 instead of 8 bytes a value. Over a
/// local socket the bytes cost nearly nothing and the CPU is what the step waits on; over a
/// network link the halved bytes pay.
public enum GradientEncoding: Sendable {
    /// Eight little-endian bytes a value: no encoding or decoding work.
    case raw
    /// Zigzag LEB128: 3–4 bytes a value for LeNet-5.
    case varint
    /// Blocks of 64 values, each as wide as its largest needs (`PackedGradient`).
    case packed
}

/// Int64 values as zigzag LEB128 varints: `(v << 1) ^ (v >> 63)`, 7 bits a byte, low first,
/// the high bit set on every byte but a value's last.
enum ZigzagVarint {
    static let maxBytes = 10

    static func encode(_ values: UnsafeBufferPointer<Int64>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: maxBytes * values.count) { out, written in
            var n = 0
            for value in values {
                var z = UInt64(bitPattern: (value << 1) ^ (value >> 63))
                while z >= 0x80 {
                    out[n] = UInt8(truncatingIfNeeded: z) | 0x80
                    z >>= 7
                    n += 1
                }
                out[n] = UInt8(z)
                n += 1
            }
            written = n
        }
    }

    /// Exactly `count` values that use every byte; a value longer than 10 bytes, one that does
    /// not fit 64 bits, or a non-minimal encoding (a final 0 byte after others) is refused.
    /// One pass over raw pointers: a LeNet-5 bucket decodes in a fraction of the time its
    /// eight-byte form took to travel.
    static func decode(_ bytes: [UInt8], count: Int) throws -> [Int64] {
        try bytes.withUnsafeBufferPointer { input in
            try [Int64](unsafeUninitializedCapacity: count) { out, initialized in
                guard let base = input.baseAddress else {
                    guard count == 0 else { throw ProtocolError("varint gradient ends inside value 0") }
                    initialized = 0
                    return
                }
                var p = base
                let end = base + input.count
                for i in 0..<count {
                    var z: UInt64 = 0
                    var shift: UInt64 = 0
                    while true {
                        guard p < end else { throw ProtocolError("varint gradient ends inside value \(i)") }
                        let byte = p.pointee
                        p += 1
                        z |= UInt64(byte & 0x7F) << shift
                        if byte < 0x80 {
                            if byte == 0 && shift > 0 {
                                throw ProtocolError("varint value \(i) is not minimally encoded")
                            }
                            if shift == 63 && byte > 1 { throw ProtocolError("varint value \(i) does not fit 64 bits") }
                            break
                        }
                        shift += 7
                        if shift > 63 { throw ProtocolError("varint value \(i) does not fit 64 bits") }
                    }
                    (out.baseAddress! + i).initialize(to: Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1))))
                    initialized = i + 1
                }
                guard p == end else { throw ProtocolError("\(end - p) bytes after the varint gradient") }
            }
        }
    }
}
