@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// Audit mode: slices recomputed on a second worker, compared bit for bit, a third opinion
/// on a mismatch, and the odd worker named and dropped (Audit.swift).
@Suite(.serialized) struct AuditTests {
    static var config: TrainingConfig { CoordinatorTests.config }

    struct Run {
        var weights: [Float]
        var log: [String]
        var stepMessages: Int
    }

    /// Trains `config` on `workers` in-memory workers with `--audit fraction`; `faults` makes
    /// worker k corrupt its results the way `--inject-fault` does.
    func run(
        workers: Int, audit: Double, faults: [Int: FaultInjection.Trigger] = [:],
        config: TrainingConfig = Self.config
    ) throws -> Run {
        let cluster = InMemoryCluster()
        for _ in 0..<workers { cluster.addWorker() }
        for (k, trigger) in faults {
            let fault = FaultInjection(trigger)
            cluster.nodes[k].tamper = { fault.apply($0, log: { cluster.log.append($0) }).encoded() }
        }
        var options = ClusterOptions(workers: workers)
        options.joinTimeout = 2
        options.audit = audit
        var messages: [String] = []
        let runner = try ClusterStepRunner(transport: cluster, options: options, runID: 31) { messages.append($0) }
        let session = try TrainingSession(
            config: config, train: CoordinatorTests.train, test: CoordinatorTests.test, runner: runner,
            log: { messages.append($0) })
        try session.run(epochDone: { _ in _ = runner.takeEpochStats() })
        return Run(
            weights: session.server.parameters.array, log: messages + cluster.log, stepMessages: cluster.stepMessages)
    }

    static let reference: [Float] = {
        let session = try! TrainingSession(
            config: config, train: CoordinatorTests.train, test: CoordinatorTests.test, runner: LocalStepRunner())
        try! session.run(epochDone: { _ in })
        return session.server.parameters.array
    }()

    @Test func auditedSlicesThatMatchCountOnce() throws {
        let plain = try run(workers: 3, audit: 0)
        let audited = try run(workers: 3, audit: 1)
        #expect(plain.weights == Self.reference)
        #expect(audited.weights == Self.reference)
        // Every training slice went out twice (evaluation slices once), and nobody was dropped.
        let evaluationMessages = 3 * Self.config.epochs
        #expect(audited.stepMessages - evaluationMessages == 2 * (plain.stepMessages - evaluationMessages))
        #expect(!audited.log.contains { $0.contains("dropped") || $0.contains("ignored") })
        // Each epoch has 13 slices (4 steps of 3, one of 1), all checked.
        let summary = "audit: 13 slice(s) checked on a second worker this epoch, 0 worker(s) outvoted"
        #expect(audited.log.count { $0 == summary } == 2)
        #expect(!plain.log.contains { $0.hasPrefix("audit:") })
    }

    @Test func aCorruptedWorkerAmongThreeIsNamedDroppedAndOutvoted() throws {
        // Without the audit the flipped bit changes the weights: the fault is real.
        let unaudited = try run(workers: 3, audit: 0, faults: [1: .step(3)])
        #expect(unaudited.weights != Self.reference)
        let audited = try run(workers: 3, audit: 1, faults: [1: .step(3)])
        #expect(audited.weights == Self.reference)
        #expect(audited.log.contains { $0.hasPrefix("injected a fault") && $0.hasSuffix("step 3") })
        #expect(audited.log.contains { $0.hasSuffix("this epoch, 1 worker(s) outvoted") })
        let drops = audited.log.filter { $0.hasPrefix("dropped") }
        #expect(drops.count == 1)
        #expect(drops.first?.contains("dropped w1@mem:1: it computed slice ") == true)
        #expect(
            drops.first?.contains(
                " of step 3 wrong (audit: w0@mem:0 and w2@mem:2 returned another result)")
                == true)
        #expect(
            audited.log.contains {
                $0.hasPrefix(
                    "audit: w1@mem:1, w2@mem:2 disagree on slice 1 of step 3; asking "
                        + "w0@mem:0 to compute it")
            })
    }

    /// A worker that corrupts every slice is caught at its first step, where the others
    /// outvote it on every slice it computed.
    @Test func aWorkerThatCorruptsEverySliceIsCaughtAtOnce() throws {
        let audited = try run(workers: 3, audit: 1, faults: [1: .rate(1)])
        #expect(audited.weights == Self.reference)
        let drops = audited.log.filter { $0.hasPrefix("dropped") }
        #expect(drops.count == 1 && drops[0].hasPrefix("dropped w1@mem:1: it computed slice "))
        #expect(drops.first?.contains(" of step 0 wrong") == true)
    }

    /// A worker caught on an audited copy also computed an unaudited slice of the same step:
    /// that one is computed again by another worker, so its wrong bits never count.
    @Test func aCaughtWorkersUnauditedSlicesAreComputedAgain() throws {
        // Worker k computes slice k and the copy of slice k - 1 (mod 3) at step 0: find a
        // fraction (seed 1, the config's) that audits slice k - 1 but not slice k.
        var choice: (fraction: Double, worker: Int)?
        for f in stride(from: 0.05, to: 1, by: 0.05) where choice == nil {
            let plan = AuditPlan(fraction: f, seed: Self.config.seed)
            if let k = (0..<3).first(where: {
                plan.audits(step: 0, slice: ($0 + 2) % 3) && !plan.audits(step: 0, slice: $0)
            }) {
                choice = (f, k)
            }
        }
        let (fraction, k) = try #require(choice)
        let audited = try run(workers: 3, audit: fraction, faults: [k: .rate(1)])
        #expect(audited.weights == Self.reference, "audit \(fraction), faulty worker \(k)")
        let drops = audited.log.filter { $0.hasPrefix("dropped") }
        #expect(drops.count == 1 && drops[0].hasPrefix("dropped w\(k)@mem:\(k): it computed slice "))
        #expect(drops.first?.contains(" of step 0 wrong") == true)
    }

    @Test func aPartialAuditAddsCopiesOfSomeSlicesOnly() throws {
        let audited = try run(workers: 3, audit: 0.5)
        #expect(audited.weights == Self.reference)
        let training = audited.stepMessages - 3 * Self.config.epochs
        #expect(training > 26 && training < 52, "\(training) training slices sent for 26 slices")
    }

    @Test func withTwoWorkersAFlickeringOneIsOutvotedByItsOwnSecondAnswer() throws {
        let audited = try run(workers: 2, audit: 1, faults: [0: .step(2)])
        #expect(audited.weights == Self.reference)
        let drops = audited.log.filter { $0.hasPrefix("dropped") }
        #expect(drops.count == 1 && drops[0].hasPrefix("dropped w0@mem:0: it computed slice "))
        #expect(audited.log.contains { $0.contains("only one live worker") })
    }

    @Test func withTwoWorkersARepeatableDisagreementStopsTheRun() throws {
        do {
            _ = try run(workers: 2, audit: 1, faults: [1: .rate(1)])
            Issue.record("a run whose two workers always disagree finished")
        } catch let ClusterError.auditUndecided(step, slice, workers) {
            #expect(step == 0 && (0..<2).contains(slice))
            #expect(workers == "w0@mem:0, w1@mem:1")
        }
    }

    @Test func oneLiveWorkerSaysOnceThatItCannotAudit() throws {
        let alone = try run(workers: 1, audit: 1)
        #expect(alone.weights == Self.reference)
        #expect(alone.log.count { $0.contains("only one live worker") } == 1)
    }

    @Test func sliceChoiceIsAFunctionOfTheSeed() {
        func chosen(_ plan: AuditPlan) -> [Bool] {
            (0..<1000).flatMap { step in (0..<4).map { plan.audits(step: UInt64(step), slice: $0) } }
        }
        let first = chosen(AuditPlan(fraction: 0.3, seed: 5))
        #expect(first == chosen(AuditPlan(fraction: 0.3, seed: 5)))
        #expect(first != chosen(AuditPlan(fraction: 0.3, seed: 6)))
        // 4,000 draws: the share is 0.3 ± 0.05 (7 standard deviations).
        let share = Double(first.count { $0 }) / Double(first.count)
        #expect(abs(share - 0.3) < 0.05, "share \(share)")
        #expect(!chosen(AuditPlan(fraction: 0, seed: 5)).contains(true))
        #expect(!chosen(AuditPlan(fraction: 1, seed: 5)).contains(false))
    }

    @Test func theVoteNamesTheOddOneOut() {
        func result(_ value: Int64) -> [StepResult] {
            [
                StepResult(
                    slice: 0, count: 8, correct: 3, lossSum: 2.5, computeSeconds: 0, gradient: .fixedPoint([value, 7]))
            ]
        }
        func judge(_ opinions: [(Int, Int64)]) -> AuditPlan.Judgement {
            AuditPlan.judge(opinions.map { AuditPlan.Opinion(worker: $0.0, result: result($0.1)) })
        }
        #expect(judge([(0, 1), (1, 1)]) == .agreed(index: 0, wrong: []))
        #expect(judge([(0, 1), (1, 2)]) == .undecided)
        #expect(judge([(0, 1), (1, 2), (2, 2)]) == .agreed(index: 1, wrong: [0]))
        #expect(judge([(0, 1), (1, 2), (2, 3)]) == .undecided)
        // Two workers asked twice: one that changes its mind loses; two that hold firm decide nothing.
        #expect(judge([(0, 1), (1, 2), (0, 2), (1, 2)]) == .agreed(index: 1, wrong: [0]))
        #expect(judge([(0, 1), (1, 2), (0, 1), (1, 2)]) == .undecided)
        // The compute time does not count; the loss's bits do.
        var slower = result(1)
        slower[0].computeSeconds = 9
        #expect(AuditPlan.same(result(1), slower))
        var otherLoss = result(1)
        otherLoss[0].lossSum = 2.5000000000000004
        #expect(!AuditPlan.same(result(1), otherLoss))
    }

    @Test func injectedFaultsFlipOneLowBitOfOneBucket() {
        #expect(FaultInjection(spec: "step:4")?.trigger == .step(4))
        #expect(FaultInjection(spec: "rate:0.5")?.trigger == .rate(0.5))
        for bad in ["", "step", "step:-1", "rate:0", "rate:1.5", "rate:nan", "often:1", "step:1:2"] {
            #expect(FaultInjection(spec: bad) == nil, "\(bad)")
        }
        let fault = FaultInjection(.step(2))
        func bucket(step: UInt64, slice: UInt32, offset: Int) -> Message {
            Message(
                runID: 1, step: step,
                payload: .result(
                    StepResult(
                        slice: slice, count: 8, correct: 1, lossSum: 1, computeSeconds: 0, gradientOffset: offset,
                        gradient: .fixedPoint([40, -3]))))
        }
        var lines: [String] = []
        let log = { (line: String) in lines.append(line) }
        #expect(fault.apply(bucket(step: 1, slice: 0, offset: 0), log: log) == bucket(step: 1, slice: 0, offset: 0))
        let hit = fault.apply(bucket(step: 2, slice: 1, offset: 10), log: log)
        guard case let .result(result) = hit.payload else { return #expect(Bool(false)) }
        #expect(result.gradient == .fixedPoint([40 + (1 << 20), -3]))
        // The slice's next bucket and later slices are left alone: one value of one slice.
        #expect(fault.apply(bucket(step: 2, slice: 1, offset: 0), log: log) == bucket(step: 2, slice: 1, offset: 0))
        #expect(fault.apply(bucket(step: 3, slice: 0, offset: 10), log: log) == bucket(step: 3, slice: 0, offset: 10))
        #expect(
            lines == ["injected a fault (--inject-fault): flipped a low bit of gradient value 10 of slice 1, step 2"])
        var float = StepResult.Gradient.float([1])
        float.flipLowBit()
        #expect(float == .float([1 + 0x1p-11]))
    }

    @Test func auditNeedsADeterministicRunAndAFractionInRange() throws {
        for bad in [-0.1, 1.5, Double.nan] {
            var options = ClusterOptions(workers: 2)
            options.audit = bad
            #expect(options.problem == .audit(bad) || bad.isNaN && options.problem != nil)
        }
        var config = Self.config
        config.deterministic = false
        #expect(throws: ClusterSettingError.auditNeedsDeterministic) {
            try run(workers: 2, audit: 0.5, config: config)
        }
    }
}
