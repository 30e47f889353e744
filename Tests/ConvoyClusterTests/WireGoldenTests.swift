@testable import ConvoyCluster
import ConvoyEngine
import Testing

/// Golden bytes of the wire format (docs/PROTOCOL.md): a fixed message must encode to exactly
/// these bytes and decode back. A failure here means the format changed: bump `Wire.version`,
/// update docs/PROTOCOL.md, then the literal.
@Suite struct WireGoldenTests {
    /// Every layer kind, both padding axes and a Gaussian initializer.
    static let spec = NetworkSpec(
        name: "g", inputShape: Shape(1, 6, 6),
        layers: [
            .conv2d(
                outChannels: 2, kernelHeight: 3, kernelWidth: 2, strideHeight: 1, strideWidth: 2,
                paddingHeight: 1, paddingWidth: 0),
            .relu, .maxPool(2), .avgPool(1), .sigmoid, .flatten, .dense(outputs: 3), .tanh,
        ], initializer: .gaussian(sigma: 0.5))

    func check(_ message: Message, _ golden: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = message.encoded()
        #expect(hexString(bytes) == hexString(hexBytes(golden)), sourceLocation: sourceLocation)
        #expect(try Message(decoding: hexBytes(golden)) == message, sourceLocation: sourceLocation)
    }

    @Test func header() throws {
        try check(
            Message(runID: 0x0102_0304_0506_0708, step: 9, workerID: 5, payload: .shutdown),
            """
            434e5659 0500 0500 0807060504030201 0900000000000000 05000000 00000000 0000000000000000
            """)
    }

    /// A fixed-point bucket as zigzag varints: 0 → 00, −1 → 01, 1 → 02, 64 → 80 01,
    /// −2^32 → ff ff ff ff 1f, Int64.max → fe ff … ff 01 (10 bytes).
    @Test func fixedPointResult() throws {
        let result = StepResult(
            slice: 1, count: 8, correct: 3, lossSum: 2, computeSeconds: 0.5, gradientOffset: 4,
            gradient: .fixedPoint([0, -1, 1, 64, -(1 << 32), .max]))
        try check(
            Message(runID: 7, step: 2, workerID: 1, payload: .result(result)),
            """
            434e5659 0500 0400 0700000000000000 0200000000000000 01000000 3e000000 0000000000000000
            01000000 08000000 03000000 0000000000000040 000000000000e03f 0000 04000000 03000000 06000000
            00 01 02 8001 ffffffff1f feffffffffffffffff01
            """)
    }

    /// The same bucket as raw little-endian Int64 (kind 2), what workers on this host send.
    @Test func rawFixedPointResult() throws {
        let result = StepResult(
            slice: 0, count: 8, correct: 8, lossSum: 0, computeSeconds: 0, gradientOffset: 1,
            gradient: .fixedPoint([-1, 1 << 40]))
        let message = Message(runID: 7, step: 2, payload: .result(result))
        let golden = """
            434e5659 0500 0400 0700000000000000 0200000000000000 00000000 3a000000 0000000000000000
            00000000 08000000 08000000 0000000000000000 0000000000000000 0000 01000000 02000000 02000000
            ffffffffffffffff 0000000000010000
            """
        #expect(hexString(message.encoded(gradients: .raw)) == hexString(hexBytes(golden)))
        #expect(try Message(decoding: hexBytes(golden)) == message)
    }

    /// A step (type 3) carrying only the weights from parameter 2 on: slice, flags (2: has
    /// weights), samples, sample size, weight count, weight offset, weights, pixels, labels.
    @Test func stepWithPartialWeights() throws {
        let work = StepWork(
            slice: 1, evaluate: false, weights: [1, -2], weightsOffset: 2, sampleSize: 2, pixels: [9, 8],
            labels: [7])
        try check(
            Message(runID: 7, step: 5, workerID: 1, payload: .step(work)),
            """
            434e5659 0500 0300 0700000000000000 0500000000000000 01000000 23000000 0000000000000000
            01000000 02000000 01000000 02000000 02000000 02000000 0000803f 000000c0 0908 07
            """)
    }

    /// Weights sent ahead (type 10): offset, count, Float32 values; all finite, or the run's
    /// problem.
    @Test func weightsAhead() throws {
        let update = WeightsUpdate(offset: 3, values: [0.5, 2])
        try check(
            Message(runID: 7, step: 6, payload: .weights(update)),
            """
            434e5659 0500 0a00 0700000000000000 0600000000000000 00000000 10000000 0000000000000000
            03000000 02000000 0000003f 00000040
            """)
        var infinite = Message(runID: 7, step: 6, payload: .weights(update)).encoded()
        infinite.replaceSubrange(52..<56, with: [0, 0, 0x80, 0x7f])
        #expect(throws: ProtocolError("weight 4 is inf", runScope: true)) { try Message(decoding: infinite) }
        var empty = Message(runID: 7, payload: .weights(WeightsUpdate(offset: 0, values: []))).encoded()
        empty[28] = 8
        #expect(throws: ProtocolError("weights 0+0 are out of range")) { try Message(decoding: empty) }
    }

    /// An evaluation result with a timeline appendix (SpanCoding.swift): length 52 = 18 + 2 × 17,
    /// version 1, 2 spans, arrival 1,000 ns, sent 9,000 ns; forward at +500 for 7,000 ns, and the
    /// previous step's send, 300 ns ending 200 ns before the arrival.
    @Test func resultWithSpans() throws {
        let spans = SpanReport(
            arrival: 1000, sent: 9000,
            spans: [.init(.forward, start: 500, duration: 7000), .init(.send, start: -500, duration: 300)])
        let result = StepResult(
            slice: 0, count: 2, correct: 1, lossSum: 2, computeSeconds: 0.5, gradient: .none, spans: spans)
        try check(
            Message(runID: 7, step: 2, workerID: 1, payload: .result(result)),
            """
            434e5659 0500 0400 0700000000000000 0200000000000000 01000000 5e000000 0000000000000000
            00000000 02000000 01000000 0000000000000040 000000000000e03f
            3400 01 02 e803000000000000 2823000000000000
            01 f401000000000000 581b000000000000
            04 0cfeffffffffffff 2c01000000000000
            00000000 00000000 00000000
            """)
    }

    /// A stop (type 7): the reason's UTF-8 bytes, nothing else.
    @Test func stop() throws {
        try check(
            Message(runID: 7, step: 3, payload: .stop("go")),
            """
            434e5659 0500 0700 0700000000000000 0300000000000000 00000000 02000000 0000000000000000
            676f
            """)
    }

    /// A refusal: its scope (1 run, 2 worker) and the reason's UTF-8 bytes; an unknown scope
    /// or an empty payload is refused.
    @Test func refuse() throws {
        try check(
            Message(runID: 7, step: 2, workerID: 1, payload: .refuse(Refusal(.run, "nan"))),
            """
            434e5659 0500 0600 0700000000000000 0200000000000000 01000000 04000000 0000000000000000
            01 6e616e
            """)
        try check(
            Message(runID: 7, payload: .refuse(Refusal(.worker, "full"))),
            """
            434e5659 0500 0600 0700000000000000 0000000000000000 00000000 05000000 0000000000000000
            02 66756c6c
            """)
        var unknown = Message(runID: 7, payload: .refuse(Refusal(.worker, "x"))).encoded()
        unknown[40] = 3
        #expect(throws: ProtocolError("unknown refusal scope 3")) { try Message(decoding: unknown) }
        var empty = Message(runID: 7, payload: .refuse(Refusal(.worker, ""))).encoded()
        empty.removeLast()
        empty[28] = 0
        #expect(throws: ProtocolError("refuse payload of 0 bytes is not 1...1048577")) {
            try Message(decoding: empty)
        }
    }

    @Test func hello() throws {
        try check(
            Message(runID: 0, payload: .hello(Hello(host: "h1", pid: 42, threads: 1))),
            """
            434e5659 0500 0100 0000000000000000 0000000000000000 00000000 0c000000 0000000000000000
            0200 6831 2a000000 01000000
            """)
    }

    @Test func welcome() throws {
        let welcome = Welcome(
            workerID: 3, spec: Self.spec, deterministic: true, microBatch: 8, sampleSize: 36, wantsSpans: true)
        try check(
            Message(runID: 7, workerID: 3, payload: .welcome(welcome)),
            [
                // header: welcome, run 7, step 0, worker 3, 116 bytes
                "434e5659 0500 0200 0700000000000000 0000000000000000 03000000 74000000 0000000000000000",
                // worker id 3, deterministic, spans wanted, micro-batch 8, sample size 36
                "03000000 01 01 08000000 24000000",
                // spec: "g", (1, 6, 6), gaussian 0.5, 8 layers
                "0100 67 03 01000000 06000000 06000000 01 000000000000e03f 0800",
                // conv2d 2@3×2, stride 1×2, pad 1/0, zeros
                "03 02000000 03000000 02000000 01000000 02000000 01 01000000 01 00000000 01",
                // relu
                "08",
                // max pool 2×2, stride 2×2
                "04 02000000 02000000 02000000 02000000",
                // avg pool 1×1, stride 1×1
                "05 01000000 01000000 01000000 01000000",
                // sigmoid
                "09",
                // flatten
                "06",
                // dense: 3 outputs
                "07 03000000",
                // tanh
                "0a",
            ].joined())
    }

    /// A welcome whose spec is hostile is refused with the field named, before any layer is built.
    @Test func hostileWelcomeSpecsAreRefusedByField() {
        let frame = Message(
            runID: 7, workerID: 3,
            payload: .welcome(
                Welcome(workerID: 3, spec: Self.spec, deterministic: true, microBatch: 8, sampleSize: 36))
        ).encoded()
        // Offsets: 40 payload, 54 spec, 57 its input rank, 81 layer 1 (tag, out channels u32 …).
        let cases: [(Int, UInt8, String)] = [
            (81, 42, "welcome: message: spec layer 1 kind: unknown layer tag 42"),
            (85, 0x10, "welcome: message: spec layer 1 output channels: 268435458 is outside 1...1048576"),
            (57, 4, "welcome: message: spec input rank: 4 is outside 1...3"),
            (44, 2, "welcome: message: deterministic: 2 is not a boolean (0 or 1)"),
            (45, 3, "welcome: message: spans wanted: 3 is not a boolean (0 or 1)"),
        ]
        for (offset, value, message) in cases {
            var bad = frame
            bad[offset] = value
            #expect(throws: ProtocolError(message)) { try Message(decoding: bad) }
        }
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// Bytes from hex digits; spaces and newlines (for readability, one field per group) ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter(\.isHexDigit))
    return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(digits[$0...($0 + 1)]), radix: 16)! }
}
