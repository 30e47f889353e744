@testable import ConvoyCluster
import ConvoyEngine
import Testing

/// The head sent ahead (HeadAhead.swift, docs/PROTOCOL.md `weights`): a worker that got the
/// head early and the trunk with the step computes exactly what one sent all the weights
/// computes; the optimizer applied in two ranges gives the bits of one application.
@Suite struct HeadAheadTests {
    static let architecture = try! Architecture(ModelZoo.lenet5)
    static var head: Range<Int> { architecture.gradientBuckets[0].parameters }

    func welcomed() -> WorkerCore {
        let core = WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1))
        let welcome = Welcome(workerID: 2, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
        _ = core.handle(Message(runID: 1, payload: .welcome(welcome)).encoded())
        return core
    }

    func step(_ number: UInt64, _ weights: ArraySlice<Float>?, offset: Int = 0, evaluate: Bool = false) -> [UInt8] {
        let pixels = (0..<(784 * 8)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let work = StepWork(
            slice: 0, evaluate: evaluate, weights: weights.map(Array.init), weightsOffset: offset, sampleSize: 784,
            pixels: pixels, labels: (0..<8).map { UInt8($0) })
        return Message(runID: 1, step: number, workerID: 2, payload: .step(work)).encoded()
    }

    func ahead(_ number: UInt64, _ weights: [Float]) -> [UInt8] {
        let update = WeightsUpdate(offset: Self.head.lowerBound, values: Array(weights[Self.head]))
        return Message(runID: 1, step: number, workerID: 2, payload: .weights(update)).encoded()
    }

    /// Gradient buckets and totals of the replies (compute times differ from run to run).
    func gradients(_ replies: [Message]) -> [String] {
        replies.map { message in
            guard case let .result(result) = message.payload else { return "\(message.payload)" }
            return "\(result.slice) \(result.count) \(result.correct) \(result.lossSum) \(result.gradientOffset) "
                + "\(result.gradient)"
        }
    }

    static func weights(seed: UInt64) -> [Float] { architecture.initialParameters(seed: seed) }

    @Test func aHeadSentAheadAndTheTrunkWithTheStepComputeWhatAllWeightsDo() throws {
        let weights = Self.weights(seed: 3)
        let trunk = weights[0..<Self.head.lowerBound]
        let full = gradients(welcomed().handle(step(7, weights[...])).replies)
        #expect(full.count == 2 && full.allSatisfy { $0.hasPrefix("0 8 ") })

        let core = welcomed()
        #expect(core.handle(ahead(7, weights)).replies.isEmpty)
        #expect(gradients(core.handle(step(7, trunk)).replies) == full)

        // A step in between (an evaluation, a reassigned slice) loads its own weights and
        // leaves the head sent ahead for its step.
        let other = welcomed()
        _ = other.handle(ahead(7, weights))
        _ = other.handle(step(1 << 47 | 1, Self.weights(seed: 4)[...], evaluate: true))
        _ = other.handle(step(6, Self.weights(seed: 5)[...]))
        #expect(gradients(other.handle(step(7, trunk)).replies) == full)
    }

    @Test func theTrunkAloneIsRefusedByAWorkerWithoutTheHeadForThatStep() throws {
        let weights = Self.weights(seed: 3)
        let trunk = weights[0..<Self.head.lowerBound]
        let reason = "step 8 carries weights 0..<\(Self.head.lowerBound) and this worker holds no others for it"
        let refusal = [Message(runID: 1, step: 8, workerID: 2, payload: .refuse(Refusal(.worker, reason)))]
        #expect(welcomed().handle(step(8, trunk)).replies == refusal)
        let late = welcomed()
        _ = late.handle(ahead(7, weights))
        #expect(late.handle(step(8, trunk)).replies == refusal, "the head of another step is not this one's")
        let used = welcomed()
        _ = used.handle(ahead(8, weights))
        _ = used.handle(step(8, trunk))
        #expect(used.handle(step(8, trunk)).replies == refusal, "a head sent ahead is used once")
        let rewelcomed = welcomed()
        _ = rewelcomed.handle(ahead(8, weights))
        let again = Welcome(workerID: 3, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
        _ = rewelcomed.handle(Message(runID: 1, payload: .welcome(again)).encoded())
        #expect(
            gradients(rewelcomed.handle(step(8, trunk)).replies).first?.contains("holds no others") == true,
            "a new welcome forgets what was sent ahead")
    }

    @Test(arguments: OptimizerKind.allCases)
    func anOptimizerStepInTwoRangesHasTheBitsOfOne(_ kind: OptimizerKind) {
        var config = TrainingConfig()
        config.optimizer = kind
        config.weightDecay = 5e-4
        let initial = Self.weights(seed: 9)
        let whole = ParameterServer(parameters: initial, config: config, totalSteps: 10)
        let split = ParameterServer(parameters: initial, config: config, totalSteps: 10)
        for round in 0..<3 {
            let sum = GradientSum(mode: .fixedPoint, count: initial.count)
            let gradient = (0..<initial.count).map { Float(($0 * 7 + round) % 13 - 6) * 1e-3 }
            #expect(throws: Never.self) {
                try gradient.withUnsafeBufferPointer { try sum.accumulate($0.baseAddress!, range: 0..<initial.count) }
            }
            sum.addSamples(8)
            whole.apply(sum)
            split.applyEarly(sum, range: Self.head)
            split.apply(sum)
        }
        #expect(whole.parameters.array == split.parameters.array)
        #expect(whole.optimizer.state == split.optimizer.state)
        #expect(whole.step == split.step)
    }

    /// A step stopped after its head was updated (preempted while no worker was left) leaves
    /// the weights, the optimizer state and the step count as they were.
    @Test(arguments: OptimizerKind.allCases)
    func aStepStoppedAfterItsHeadLeavesNoTrace(_ kind: OptimizerKind) throws {
        var config = TrainingConfig()
        config.optimizer = kind
        let initial = Self.weights(seed: 9)
        let server = ParameterServer(parameters: initial, config: config, totalSteps: 10)
        let sum = GradientSum(mode: .fixedPoint, count: initial.count)
        let gradient = (0..<initial.count).map { Float($0 % 5 - 2) * 1e-2 }
        try gradient.withUnsafeBufferPointer { try sum.accumulate($0.baseAddress!, range: 0..<initial.count) }
        sum.addSamples(8)
        server.apply(sum)
        let (parameters, state) = (server.parameters.array, server.optimizer.state)
        server.applyEarly(sum, range: Self.head)
        #expect(server.parameters.array != parameters)
        server.discardEarly()
        #expect(server.parameters.array == parameters)
        #expect(server.optimizer.state == state)
        #expect(server.step == 1)
        // And the step taken again gives what it would have.
        let again = ParameterServer(parameters: initial, config: config, totalSteps: 10)
        again.apply(sum)
        again.apply(sum)
        server.apply(sum)
        #expect(server.parameters.array == again.parameters.array)
    }
}
