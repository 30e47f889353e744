@testable import ConvoyCluster
import ConvoyEngine
import Testing

/// A worker's timeline spans, in memory: sent only when the welcome asks for them, in the
/// last bucket of a slice, in the order the phases happen, and within the bounds the
/// coordinator's decoder checks.
@Suite struct WorkerSpansTests {
    /// A trunk (conv) and a head (dense): two buckets a step.
    static let spec = NetworkSpec(
        name: "spans", inputShape: Shape(1, 6, 6), layers: [.conv2d(2, kernel: 3), .relu, .flatten, .dense(outputs: 3)])

    /// The results a worker sends for three training steps and one evaluation.
    func results(wantsSpans: Bool) throws -> [Message] {
        let core = WorkerCore(
            hello: Hello(host: "h", pid: 1, threads: 1), memory: MemoryBound(bytes: 256 << 20, source: "test"))
        let welcome = Welcome(
            workerID: 0, spec: Self.spec, deterministic: true, microBatch: 2, sampleSize: 36, wantsSpans: wantsSpans)
        _ = core.handle(Message(runID: 9, payload: .welcome(welcome)).encoded())
        let weights = try Architecture(Self.spec).initialParameters(seed: 1)
        var sent: [Message] = []
        for (step, evaluate) in [(0, false), (1, false), (2, false), (1 << 47 | 1, true)] {
            let work = StepWork(
                slice: 0, evaluate: evaluate, weights: weights, sampleSize: 36,
                pixels: (0..<144).map { UInt8($0 % 251) }, labels: [0, 1, 2, 1])
            let frame = Message(runID: 9, step: UInt64(step), payload: .step(work)).encoded()
            // Every message goes through the wire format, as the coordinator would read it.
            let line = core.handle(frame) { sent.append(try Message(decoding: $0.encoded())) }
            #expect(line == nil, "\(line ?? "")")
        }
        return sent
    }

    @Test func noSpansUnlessTheWelcomeAsks() throws {
        let sent = try results(wantsSpans: false)
        #expect(sent.count == 7)  // 3 steps × 2 buckets, one evaluation
        for message in sent {
            guard case let .result(result) = message.payload else {
                Issue.record("not a result")
                continue
            }
            #expect(result.spans == nil)
        }
    }

    @Test func spansComeInTheLastBucketInTheOrderOfThePhases() throws {
        let sent = try results(wantsSpans: true)
        let results = sent.compactMap { message -> StepResult? in
            if case let .result(result) = message.payload { return result }
            return nil
        }
        #expect(results.count == 7)
        // The head bucket (offset > 0) carries none; the trunk's and the evaluation's do.
        #expect(results.map { $0.spans != nil } == [false, true, false, true, false, true, true])
        let reports = results.compactMap(\.spans)
        for (index, report) in reports.enumerated() {
            let kinds = report.spans.map(\.kind)
            let own = report.spans.filter { $0.start >= 0 }
            let earlier = report.spans.filter { $0.start < 0 }
            if index < 3 {
                #expect(own.map(\.kind) == [.forward, .headBackward, .send, .trunkBackward], "\(kinds)")
            } else {
                #expect(own.map(\.kind) == [.forward], "\(kinds)")
            }
            // Each phase starts where the one before it ended, and all end by the sending time.
            for (a, b) in zip(own, own.dropFirst()) { #expect(a.end == b.start, "\(kinds)") }
            #expect(own.allSatisfy { $0.end <= report.sent - report.arrival })
            // From the second round on: the last bucket's send before, then idle up to the arrival.
            if index == 0 {
                #expect(earlier.isEmpty)
            } else {
                #expect(earlier.map(\.kind) == [.send, .idle], "\(kinds)")
                #expect(earlier[0].end == earlier[1].start && earlier[1].end == 0)
            }
            if index > 0 { #expect(report.arrival > reports[index - 1].sent) }
        }
    }
}
