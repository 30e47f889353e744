@testable import ConvoyCluster
import ConvoyEngine
import Testing

/// Gradient kind 4 (docs/PROTOCOL.md, "Packed fixed point"): exact for every Int64, each block
/// exactly as wide as its largest value needs, and hostile widths or lengths refused.
@Suite struct PackedGradientTests {
    func packed(_ values: [Int64]) -> [UInt8] { values.withUnsafeBufferPointer { PackedGradient.encode($0) } }
    func unpacked(_ bytes: [UInt8], count: Int) throws -> [Int64] {
        try bytes.withUnsafeBytes { try PackedGradient.decode($0, count: count) }
    }

    /// Every width's edges, both signs, the extremes, and random values of every bit length,
    /// in lengths around the 64-value block (a partial last block, one value, none).
    @Test func everyInt64RoundTripsExactly() throws {
        var edges: [Int64] = [0, 1, -1, .max, .min, 1 << 50, -(1 << 50)]
        for bytes in 1...7 {
            let top = Int64(1) << (8 * bytes - 1)
            edges += [top - 1, top, -top, -top - 1]
        }
        var rng = SeededRandom(seed: 44)
        let randoms = (0..<3000).map { _ in Int64(bitPattern: rng.next()) >> Int64(rng.nextIndex(below: 64)) }
        for count in [0, 1, 63, 64, 65, 129, 3000] {
            let values = Array((edges + randoms).prefix(count))
            #expect(try unpacked(packed(values), count: count) == values, "count \(count)")
        }
        // One block per width: 64 copies of a value needing exactly w bytes, for w = 1…8.
        for bytes in 1...8 {
            let value = bytes == 8 ? Int64.min : -(Int64(1) << (8 * bytes - 1))
            let values = [Int64](repeating: value, count: 64) + [Int64](repeating: 1, count: 3)
            let encoded = packed(values)
            #expect(encoded.prefix(2) == [UInt8(bytes), 1])
            #expect(encoded.count == 2 + 64 * bytes + 3)
            #expect(try unpacked(encoded, count: values.count) == values)
        }
    }

    /// Golden bytes: widths first (0: an all-zero block), then each block's values.
    @Test func goldenBytes() {
        #expect(packed([0, 1, -1, 300]) == [2, 0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0x2C, 0x01])
        let zeros = [Int64](repeating: 0, count: 64)
        #expect(packed(zeros + [-129]) == [0, 2, 0x7F, 0xFF])
        #expect(packed([1 << 23]) == [4, 0x00, 0x00, 0x80, 0x00])
        #expect(packed([-(1 << 23)]) == [3, 0x00, 0x00, 0x80])
    }

    @Test func hostileBytesAreRefused() throws {
        // A width above 8.
        #expect(throws: ProtocolError.self) { try unpacked([9] + [UInt8](repeating: 0, count: 9), count: 1) }
        // Fewer bytes than the widths say, more, and not even the width bytes.
        #expect(throws: ProtocolError.self) { try unpacked([2, 0x01], count: 1) }
        #expect(throws: ProtocolError.self) { try unpacked([1, 0x01, 0x02], count: 1) }
        #expect(throws: ProtocolError.self) { try unpacked([1, 0x01], count: 65) }
        #expect(throws: ProtocolError.self) { try unpacked([0], count: 0) }
        // A wide last value whose eight-byte load would pass the end is read byte by byte.
        #expect(try unpacked([5, 1, 2, 3, 4, 0x85], count: 1) == [Int64(bitPattern: 0xFFFF_FF85_0403_0201)])
    }

    /// A result bucket written packed decodes to the same message (kind 4 on the wire).
    @Test func packedResultRoundTrips() throws {
        let values: [Int64] = (0..<200).map { (i: Int) -> Int64 in
            // Two blocks of 3-byte values, then wider ones (7 bytes).
            let shift: Int64 = i < 128 ? 0 : 30
            return Int64(i * 7919 - 700_000) << shift
        }
        let message = Message(
            runID: 3, step: 4, workerID: 1,
            payload: .result(
                StepResult(
                    slice: 1, count: 8, correct: 2, lossSum: 1.5, computeSeconds: 0.25, gradientOffset: 0,
                    gradient: .fixedPoint(values))))
        let frame = message.encoded(gradients: GradientEncoding.packed)
        #expect(frame.count < message.encoded(gradients: GradientEncoding.raw).count * 3 / 4)
        #expect(try Message(decoding: frame) == message)
    }
}
