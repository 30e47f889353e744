@testable import ConvoyCluster
import ConvoyEngine
import Testing

@Suite struct ProtocolTests {
    static let samples: [Message] = [
        Message(runID: 0, payload: .hello(Hello(host: "h1", pid: 42, threads: 1))),
        Message(
            runID: 7, workerID: 3,
            payload: .welcome(
                Welcome(workerID: 3, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784))),
        Message(
            runID: 7, step: 11, workerID: 1,
            payload: .step(
                StepWork(
                    slice: 1, evaluate: false, weights: [1.5, -2, 0.25], sampleSize: 4,
                    pixels: [0, 1, 2, 255, 9, 8, 7, 6], labels: [3, 9]))),
        Message(
            runID: 7, step: 12,
            payload: .step(
                StepWork(slice: 0, evaluate: true, weights: nil, sampleSize: 2, pixels: [1, 2], labels: [0]))),
        Message(
            runID: 7, step: 11, workerID: 1,
            payload: .result(
                StepResult(
                    slice: 1, count: 2, correct: 1, lossSum: 1.25, computeSeconds: 0.01,
                    gradient: .fixedPoint([1, -1 << 40, 99])))),
        Message(
            runID: 7, step: 11,
            payload: .result(
                StepResult(
                    slice: 0, count: 2, correct: 2, lossSum: 0.5, computeSeconds: 0, gradient: .float([0.5, -1])))),
        Message(
            runID: 7, step: 11,
            payload: .result(StepResult(slice: 0, count: 5, correct: 0, lossSum: 3, computeSeconds: 0, gradient: .none))
        ),
        Message(runID: 7, payload: .shutdown),
        Message(runID: 7, payload: .refuse(Refusal(.worker, "wrong run"))),
        Message(runID: 7, step: 3, workerID: 2, payload: .refuse(Refusal(.run, "diverged"))),
        Message(runID: 7, payload: .stop("preempted after step 3")),
    ]

    @Test func everyMessageRoundTrips() throws {
        for message in Self.samples {
            #expect(try Message(decoding: message.encoded()) == message)
        }
    }

    @Test func headerIsLittleEndianAndDocumented() {
        let frame = Message(runID: 0x0102_0304_0506_0708, step: 9, workerID: 5, payload: .shutdown).encoded()
        #expect(frame.count == Wire.headerSize)
        #expect(Array(frame[0..<4]) == Array("CNVY".utf8))
        #expect(frame[4] == 5 && frame[5] == 0)  // version 5
        #expect(frame[6] == UInt8(MessageType.shutdown.rawValue))
        #expect(Array(frame[8..<16]) == [8, 7, 6, 5, 4, 3, 2, 1])  // run id, little-endian
        #expect(frame[16] == 9 && frame[24] == 5)
    }

    func expectRefused(_ frame: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try Message(decoding: frame)
            Issue.record("accepted a bad frame (\(fragment))", sourceLocation: sourceLocation)
        } catch let error as ProtocolError {
            #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        } catch { Issue.record("unexpected \(error)", sourceLocation: sourceLocation) }
    }

    @Test func refusesWrongVersionMagicTypeAndLengths() {
        var frame = Self.samples[2].encoded()
        frame[4] = 1
        expectRefused(frame, "protocol version 1 is not supported")
        frame = Self.samples[2].encoded()
        frame[0] = 0x58
        expectRefused(frame, "bad magic")
        frame = Self.samples[2].encoded()
        frame[6] = 99
        expectRefused(frame, "unknown message type 99")
        frame = Self.samples[2].encoded()
        frame.removeLast()
        expectRefused(frame, "payload length")
        frame = Self.samples[2].encoded()
        frame[24] = 0xFF
        frame[25] = 0xFF
        expectRefused(frame, "worker id")
        expectRefused([1, 2, 3], "shorter than")
    }

    @Test func refusesNonFiniteGradientsAndImpossibleCounts() {
        let nan = Message(
            runID: 1,
            payload: .result(
                StepResult(slice: 0, count: 1, correct: 0, lossSum: 1, computeSeconds: 0, gradient: .float([1, .nan]))))
        expectRefused(nan.encoded(), "gradient element 1 is nan")
        let inf = Message(
            runID: 1,
            payload: .result(
                StepResult(slice: 0, count: 1, correct: 0, lossSum: 1, computeSeconds: 0, gradient: .float([.infinity]))
            ))
        expectRefused(inf.encoded(), "gradient element 0 is inf")
        // Found by libFuzzer (scripts/fuzz.sh): a step carrying a NaN weight was accepted.
        let nanWeights = Message(
            runID: 1,
            payload: .step(
                StepWork(slice: 0, evaluate: false, weights: [1, .nan], sampleSize: 1, pixels: [0], labels: [0])))
        expectRefused(nanWeights.encoded(), "weight 1 is nan")
        let tooCorrect = Message(
            runID: 1,
            payload: .result(StepResult(slice: 0, count: 1, correct: 2, lossSum: 1, computeSeconds: 0, gradient: .none))
        )
        expectRefused(tooCorrect.encoded(), "inconsistent")
        let badLoss = Message(
            runID: 1,
            payload: .result(
                StepResult(slice: 0, count: 1, correct: 0, lossSum: -.infinity, computeSeconds: 0, gradient: .none)))
        expectRefused(badLoss.encoded(), "loss sum")
        // A step whose declared sample count does not match its bytes.
        var step = Self.samples[2].encoded()
        step[Wire.headerSize + 8] = 200
        expectRefused(step, "its counts need")
    }

    /// Property-based fuzzing, seeded: random frames, and valid frames with random bytes
    /// flipped, truncated or extended. The decoder must return or throw, never trap; and
    /// anything it accepts must re-encode to a frame that decodes to the same message.
    @Test func decoderSurvivesRandomAndMutatedFrames() {
        var rng = SeededRandom(seed: 2026)
        var accepted = 0
        var refused = 0
        for round in 0..<20_000 {
            var frame: [UInt8]
            if round % 4 == 0 {
                frame = (0..<rng.nextIndex(below: 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if round % 8 == 0 && frame.count >= 8 {
                    frame.replaceSubrange(0..<6, with: Wire.magic + [UInt8(Wire.version), 0])
                }
            } else {
                frame = Self.samples[rng.nextIndex(below: Self.samples.count)].encoded()
                for _ in 0..<(1 + rng.nextIndex(below: 4)) {
                    switch rng.nextIndex(below: 4) {
                    case 0: frame[rng.nextIndex(below: frame.count)] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: frame.removeLast(min(frame.count, 1 + rng.nextIndex(below: 8)))
                    case 2:
                        frame.append(
                            contentsOf: (0..<(1 + rng.nextIndex(below: 8))).map { _ in
                                UInt8(truncatingIfNeeded: rng.next())
                            })
                    default:
                        // Aim at the header and the counts, where the bounds checks live.
                        let target = rng.nextIndex(below: min(frame.count, Wire.headerSize + 40) + 1)
                        if target < frame.count { frame[target] ^= UInt8(1 << rng.nextIndex(below: 8)) }
                    }
                    if frame.isEmpty { break }
                }
            }
            do {
                let message = try Message(decoding: frame)
                accepted += 1
                #expect((try? Message(decoding: message.encoded())) == message)
            } catch is ProtocolError {
                refused += 1
            } catch {
                Issue.record("decoder threw a non-protocol error: \(error)")
            }
        }
        #expect(refused > 10_000)
        #expect(accepted > 0)
    }

    /// Varint gradients round-trip every Int64 exactly and refuse hostile encodings.
    @Test func varintGradientsRoundTripAndRefuseHostileBytes() throws {
        var rng = SeededRandom(seed: 21)
        var values: [Int64] = [0, 1, -1, 63, -64, 64, .max, .min, 1 << 50, -(1 << 50)]
        values += (0..<2000).map { _ in Int64(bitPattern: rng.next()) >> Int64(rng.nextIndex(below: 64)) }
        let bytes = values.withUnsafeBufferPointer { ZigzagVarint.encode($0) }
        #expect(try ZigzagVarint.decode(bytes, count: values.count) == values)
        #expect(throws: ProtocolError.self) { try ZigzagVarint.decode([0x80], count: 1) }  // ends inside
        #expect(throws: ProtocolError.self) { try ZigzagVarint.decode([0x80, 0x00], count: 1) }  // not minimal
        #expect(throws: ProtocolError.self) { try ZigzagVarint.decode([0x02, 0x02], count: 1) }  // trailing
        #expect(throws: ProtocolError.self) {  // > 64 bits
            try ZigzagVarint.decode([UInt8](repeating: 0xFF, count: 9) + [0x02], count: 1)
        }
        #expect(throws: ProtocolError.self) {
            try ZigzagVarint.decode([UInt8](repeating: 0x80, count: 11) + [1], count: 1)
        }
    }
}
