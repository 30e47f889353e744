@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// A coordinator that sends absurd welcomes and steps, in memory: every one is answered with
/// a refuse and one line, before the worker allocates anything for it (issue 14, row 5).
@Suite struct WorkerHostileTests {
    static let bound = MemoryBound(bytes: 256 << 20, source: "the test's bound")

    static func core() -> WorkerCore {
        WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1), memory: bound)
    }

    static func welcome(
        _ layers: [LayerSpec], input: Shape = Shape(1, 28, 28), microBatch: Int = 8, sampleSize: Int? = nil
    ) -> Welcome {
        let spec = NetworkSpec(name: "hostile", inputShape: input, layers: layers)
        return Welcome(
            workerID: 0, spec: spec, deterministic: true, microBatch: microBatch,
            sampleSize: sampleSize ?? input.dims.reduce(1, *))
    }

    static func frame(_ welcome: Welcome, run: UInt64 = 9) -> [UInt8] {
        Message(runID: run, payload: .welcome(welcome)).encoded()
    }

    /// Hands `frame` to a fresh worker; expects one refuse naming `words` and the end of the
    /// worker, with nothing built.
    static func expectRefused(_ frame: [UInt8], _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let core = Self.core()
        let (replies, line) = core.handle(frame)
        #expect(core.isFinished, sourceLocation: sourceLocation)
        #expect(core.footprint == nil && core.runID == nil, sourceLocation: sourceLocation)
        guard replies.count == 1, case let .refuse(refused) = replies[0].payload else {
            Issue.record("expected one refuse, got \(replies.map(\.payload.type))", sourceLocation: sourceLocation)
            return
        }
        let reason = refused.reason
        #expect(reason.contains(words), "\(reason)", sourceLocation: sourceLocation)
        #expect(line == reason && core.refusal == reason, sourceLocation: sourceLocation)
        #expect(!reason.contains("\n"), sourceLocation: sourceLocation)
    }

    /// Welcomes the decoder refuses (values past the protocol's bounds): still a refuse.
    @Test func outOfRangeWelcomesAreRefusedWithTheField() {
        let dense: [LayerSpec] = [.flatten, .dense(outputs: 10)]
        Self.expectRefused(Self.frame(Self.welcome(dense, microBatch: 0)), "micro-batch")
        Self.expectRefused(Self.frame(Self.welcome(dense, microBatch: Int(UInt32.max))), "micro-batch")
        Self.expectRefused(Self.frame(Self.welcome(dense, sampleSize: Int(UInt32.max))), "sample size")
        Self.expectRefused(Self.frame(Self.welcome([.flatten, .dense(outputs: Int(UInt32.max))])), "outputs")
        Self.expectRefused(Self.frame(Self.welcome([.conv2d(1_000_000_000, kernel: 5)])), "output channels")
        let huge = Shape(1 << 24, 1 << 24, 1 << 24)
        Self.expectRefused(Self.frame(Self.welcome(dense, input: huge, sampleSize: 784)), "input shape")
        Self.expectRefused(Self.frame(Self.welcome([.conv2d(6, kernel: 5, stride: 0)])), "stride")
    }

    /// Welcomes within the protocol's bounds that no model or host could take.
    @Test func impossibleModelsAreRefusedBeforeAnyAllocation() {
        Self.expectRefused(Self.frame(Self.welcome([.conv2d(6, kernel: 29)])), "larger than the padded input")
        Self.expectRefused(Self.frame(Self.welcome([.dense(outputs: 10)])), "Flatten")
        Self.expectRefused(Self.frame(Self.welcome([.flatten, .dense(outputs: 10)], sampleSize: 785)), "785")
        // 2^36 weights (256 GiB), within the per-layer size check: the memory estimate refuses.
        let wide = Self.welcome([.flatten, .dense(outputs: 1 << 20)], input: Shape(1, 256, 256))
        Self.expectRefused(Self.frame(wide), "more than this worker's bound of 256.0 MiB (the test's bound)")
        // A legal layer, but 65,536-sample micro-batches of 2^20 values: 256 GiB of inputs.
        let batch = Self.welcome([.flatten, .dense(outputs: 10)], input: Shape(1, 1024, 1024), microBatch: 65_536)
        Self.expectRefused(Self.frame(batch), "the run needs about")
        Self.expectRefused(Self.frame(Self.welcome([.conv2d(1 << 20, kernel: 256)], input: Shape(1, 256, 256))), "GiB")
    }

    /// Values no decoder lets through, handed to the checks directly (a welcome built in
    /// memory): checked arithmetic refuses them instead of trapping.
    @Test func valuesPastEveryBoundAreRefusedByCheckedArithmetic() throws {
        #expect(throws: ProtocolError.self) { try Self.welcome([.flatten], microBatch: 1 << 40).checkValues() }
        #expect(throws: ProtocolError.self) { try Self.welcome([.flatten], sampleSize: 1 << 40).checkValues() }
        #expect(throws: ShapeError.self) { try Architecture(Self.welcome([.flatten, .dense(outputs: 1 << 40)]).spec) }
        let overflowing = NetworkSpec(name: "x", inputShape: Shape(1 << 40, 1 << 40, 1 << 40), layers: [.flatten])
        #expect(Shape(1 << 40, 1 << 40, 1 << 40).checkedCount == nil)
        #expect(throws: ShapeError.self) { try Architecture(overflowing) }
        // 1e9 channels pass the per-layer check (2.5e10 weights): the estimate refuses them.
        let channels = Self.welcome([.conv2d(1_000_000_000, kernel: 5)], input: Shape(1, 5, 5))
        let architecture = try Architecture(channels.spec)
        #expect(throws: WorkerMemoryError.self) {
            try WorkerFootprint.plan(
                channels, architecture: architecture, slots: 1, maxBatch: 256, bound: Self.bound,
                messageLimit: Self.bound.connectionMessageLimit)
        }
        #expect(throws: ShapeError.self) { try Network.estimatedBytes(architecture, maxBatch: Int.max / 2) }
    }

    /// After a welcome, a step larger than the run's largest legitimate step is refused
    /// unread, and the worker goes on; before any welcome a frame past a control message's
    /// size is only logged.
    @Test func oversizedFramesAreRefusedUnread() throws {
        let core = WorkerCore(
            hello: Hello(host: "h", pid: 1, threads: 1), memory: MemoryBound(bytes: 140 << 20, source: "t"))
        let big = Message(
            runID: 9, step: 3,
            payload: .step(
                StepWork(
                    slice: 0, evaluate: false, weights: nil, sampleSize: 784,
                    pixels: [UInt8](repeating: 0, count: 784 * 2048), labels: [UInt8](repeating: 0, count: 2048)))
        ).encoded()
        let early = core.handle(big)
        #expect(early.replies.isEmpty && early.log?.contains("larger than") == true && !core.isFinished)
        let lenet = Welcome(workerID: 0, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
        let joined = core.handle(Self.frame(lenet))
        #expect(joined.replies.isEmpty, "\(joined.log ?? "")")
        let footprint = try #require(core.footprint)
        #expect(footprint.totalBytes <= 140 << 20)
        #expect(footprint.stepSamples >= 8 && footprint.stepSamples < Wire.maxSamples)
        let weights = [Float](repeating: 0, count: 61_706)
        let fits = Message(
            runID: 9, step: 4,
            payload: .step(
                StepWork(
                    slice: 0, evaluate: false, weights: weights, sampleSize: 784,
                    pixels: [UInt8](repeating: 0, count: 784 * footprint.stepSamples),
                    labels: [UInt8](repeating: 0, count: footprint.stepSamples)))
        ).encoded()
        #expect(fits.count == footprint.stepFrameBytes)
        let oversized = Message(
            runID: 9, step: 4,
            payload: .step(
                StepWork(
                    slice: 0, evaluate: false, weights: weights, sampleSize: 784,
                    pixels: [UInt8](repeating: 0, count: 784 * (footprint.stepSamples + 1)),
                    labels: [UInt8](repeating: 0, count: footprint.stepSamples + 1)))
        ).encoded()
        let refused = core.handle(oversized)
        guard refused.replies.count == 1, case let .refuse(refusal) = refused.replies[0].payload else {
            Issue.record("expected a refuse, got \(refused.replies.map(\.payload.type))")
            return
        }
        let reason = refusal.reason
        #expect(refused.replies[0].step == 4 && reason.contains("\(footprint.stepSamples) samples"), "\(reason)")
        #expect(!core.isFinished)
    }

    /// Steps of a joined run with impossible values: each is answered with a refuse naming
    /// the problem, and the worker stays for the next step.
    @Test func hostileStepsAreRefusedAndTheWorkerStays() throws {
        let core = Self.core()
        let lenet = Welcome(workerID: 0, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
        #expect(core.handle(Self.frame(lenet)).replies.isEmpty)
        func step(_ weights: [Float]?, sampleSize: Int = 784, count: Int = 8, label: UInt8 = 1) -> [UInt8] {
            Message(
                runID: 9, step: 2,
                payload: .step(
                    StepWork(
                        slice: 0, evaluate: false, weights: weights, sampleSize: sampleSize,
                        pixels: [UInt8](repeating: 0, count: sampleSize * count),
                        labels: [UInt8](repeating: label, count: count)))
            ).encoded()
        }
        let weights = [Float](repeating: 0.01, count: 61_706)
        let hostile: [(String, [UInt8], String)] = [
            ("no samples", step(weights, count: 0), "sample count 0"),
            ("a non-finite weight", step([.nan] + weights.dropFirst()), "weight 0 is nan"),
            ("too few weights", step([Float](repeating: 0, count: 10)), "carries weights 0..<10"),
            ("too many weights", step(weights + [0]), "the model has 61706"),
            ("no weights ever sent", step(nil), "holds none"),
            ("another sample size", step(weights, sampleSize: 100), "100 values"),
            ("a label past the classes", step(weights, label: 200), "label 200"),
        ]
        for (name, frame, words) in hostile {
            let (replies, _) = core.handle(frame)
            guard replies.count == 1, case let .refuse(refused) = replies[0].payload else {
                Issue.record("\(name): expected a refuse, got \(replies.map(\.payload.type))")
                continue
            }
            let reason = refused.reason
            #expect(reason.contains(words) && replies[0].step == 2, "\(name): \(reason)")
            #expect(!core.isFinished, "\(name)")
        }
    }

    /// A coordinator's refusal with newlines and terminal escapes is logged escaped.
    @Test func aRefusalReasonIsPrintedEscaped() {
        let core = Self.core()
        let reason = "full\ncoordinator: run finished\u{1B}[2J" + String(repeating: "x", count: 100_000)
        let (_, line) = core.handle(Message(runID: 0, payload: .refuse(Refusal(.worker, reason))).encoded())
        let text = line ?? ""
        #expect(!text.contains("\n") && !text.contains("\u{1B}") && text.utf8.count < 8192, "\(text.prefix(200))")
        #expect(text.contains("\\u{a}coordinator: run finished"))
    }
}
