@testable import ConvoyCluster
import ConvoyEngine
import Testing

/// The timeline appendix of a result (SpanCoding.swift) from a hostile worker: every bound is
/// checked, a refusal names the field, and nothing it says can crash or bloat the coordinator.
@Suite struct SpanCodingTests {
    /// An evaluation result whose appendix is `appendix` (its u16 length first), as a frame.
    static func frame(appendix: [UInt8]) -> [UInt8] {
        let plain = Message(
            runID: 7, step: 2, workerID: 1,
            payload: .result(
                StepResult(slice: 0, count: 2, correct: 1, lossSum: 1, computeSeconds: 0.1, gradient: .none))
        ).encoded()
        // The appendix sits after the 40-byte header and 28 bytes of result fields.
        var frame = Array(plain[0..<68]) + appendix + Array(plain[70...])
        let length = UInt32(frame.count - Wire.headerSize)
        for i in 0..<4 { frame[28 + i] = UInt8(truncatingIfNeeded: length >> (8 * i)) }
        return frame
    }

    /// A version-1 appendix: arrival, sent and spans (kind, start, duration), with its length.
    static func appendix(
        arrival: Int64 = 1000, sent: Int64 = 5000, spans: [(UInt8, Int64, Int64)], length: Int? = nil,
        count: Int? = nil, version: UInt8 = 1
    ) -> [UInt8] {
        var writer = ByteWriter()
        writer.append(UInt16(length ?? 18 + 17 * spans.count))
        writer.append(version)
        writer.append(UInt8(count ?? spans.count))
        writer.append(arrival)
        writer.append(sent)
        for (kind, start, duration) in spans {
            writer.append(kind)
            writer.append(start)
            writer.append(duration)
        }
        return writer.bytes
    }

    func refused(_ appendix: [UInt8], _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: ProtocolError(expected), sourceLocation: sourceLocation) {
            try Message(decoding: Self.frame(appendix: appendix))
        }
    }

    @Test func anHonestAppendixDecodes() throws {
        let message = try Message(
            decoding: Self.frame(appendix: Self.appendix(spans: [(1, 0, 4000), (4, -900, 400), (5, -500, 500)])))
        guard case let .result(result) = message.payload else {
            Issue.record("not a result")
            return
        }
        #expect(
            result.spans
                == SpanReport(
                    arrival: 1000, sent: 5000,
                    spans: [
                        .init(.forward, start: 0, duration: 4000), .init(.send, start: -900, duration: 400),
                        .init(.idle, start: -500, duration: 500),
                    ]))
    }

    @Test func hostileAppendicesAreRefusedByField() {
        let span = (UInt8(1), Int64(0), Int64(10))
        refused(
            [0xFF, 0xFF] + [UInt8](repeating: 0, count: 64),
            "timeline appendix of 65535 bytes does not fit 2...1024 or the result")
        refused([0x01, 0x00, 0x01], "timeline appendix of 1 bytes does not fit 2...1024 or the result")
        // Longer than what follows it in the result: never read past the payload.
        refused(
            Self.appendix(spans: [span], length: 600),
            "timeline appendix of 600 bytes does not fit 2...1024 or the result")
        refused(
            Self.appendix(spans: Array(repeating: span, count: 17)),
            "timeline appendix of 307 bytes cannot hold 17 spans (at most 16)")
        refused(
            Self.appendix(spans: [span], count: 200),
            "timeline appendix of 35 bytes cannot hold 200 spans (at most 16)")
        refused(
            Self.appendix(arrival: -1, spans: [span]), "timeline times -1 and 5000 ns are out of order or out of range")
        refused(
            Self.appendix(arrival: 6000, spans: [span]),
            "timeline times 6000 and 5000 ns are out of order or out of range")
        refused(
            Self.appendix(arrival: 0, sent: (1 << 50) + 1, spans: []),
            "timeline times 0 and 1125899906842625 ns are out of order or out of range")
        refused(
            Self.appendix(arrival: 0, sent: .max, spans: []),
            "timeline times 0 and 9223372036854775807 ns are out of order or out of range")
        refused(Self.appendix(spans: [(0, 0, 1)]), "span 0 has unknown kind 0")
        refused(Self.appendix(spans: [span, (7, 0, 1)]), "span 1 has unknown kind 7")
        refused(Self.appendix(spans: [(2, 0, -1)]), "span 0 (head backward) is out of range")
        refused(Self.appendix(spans: [(3, 0, .max)]), "span 0 (trunk backward) is out of range")
        refused(Self.appendix(spans: [(4, .min, 1)]), "span 0 (send) is out of range")
        refused(Self.appendix(spans: [(1, 3000, 1001)]), "span 0 (forward) ends after the result was made")
        refused(Self.appendix(spans: [(5, -10, 11)]), "span 0 (idle) ends after the result was made")
    }

    /// A later version of the appendix is skipped whole (its length bounds it), not refused.
    @Test func aNewerVersionIsSkipped() throws {
        let appendix = [UInt8(20), 0, 2] + [UInt8](repeating: 0xAB, count: 19)
        let message = try Message(decoding: Self.frame(appendix: appendix))
        guard case let .result(result) = message.payload else {
            Issue.record("not a result")
            return
        }
        #expect(result.spans == nil)
    }

    /// Random appendices (seeded): a message or a `ProtocolError`, never a trap, and never
    /// more than 16 spans kept.
    @Test func randomAppendicesNeverCrash() {
        var random = SeededRandom(seed: 11)
        var decoded = 0
        for _ in 0..<5000 {
            let spans = (0..<Int(random.next() % 18)).map { _ in
                (
                    UInt8(random.next() % 8), Int64(bitPattern: random.next()) >> (random.next() % 64),
                    Int64(bitPattern: random.next()) >> (random.next() % 64)
                )
            }
            var appendix = Self.appendix(
                arrival: Int64(random.next() % 100_000), sent: Int64(random.next() % 200_000), spans: spans)
            if random.next() % 4 == 0 {
                appendix[Int(random.next() % UInt64(appendix.count))] = UInt8(random.next() % 256)
            }
            do {
                let message = try Message(decoding: Self.frame(appendix: appendix))
                guard case let .result(result) = message.payload else { continue }
                #expect((result.spans?.spans.count ?? 0) <= SpanCoding.maxSpans)
                decoded += 1
            } catch {
                #expect(error is ProtocolError)
            }
        }
        // Both outcomes happen: the test exercises the checks, not only one branch.
        #expect(decoded > 0 && decoded < 5000)
    }
}
