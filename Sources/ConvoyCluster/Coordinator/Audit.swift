import ConvoyEngine

/// Audit mode (`--audit FRACTION`): proof against bad hardware. In deterministic mode a slice's
/// result is a pure function of the weights and its samples (integer sums of fixed-point
/// micro-batch gradients), so any two healthy workers return the same bits for it. A seeded
/// fraction of training slices is therefore also computed by a second worker and the two
/// results compared bit for bit; a disagreement asks a third worker, and whoever the others
/// outvote is named and dropped. `RoundAudit` applies this to one round.
public struct AuditPlan: Sendable, Equatable {
    /// Share of training slices computed twice, in [0, 1].
    public let fraction: Double
    /// The run's seed: a rerun (same seed, same workers) audits the same slices.
    public let seed: UInt64

    public init(fraction: Double, seed: UInt64) {
        self.fraction = fraction
        self.seed = seed
    }

    /// Whether slice `slice` of training step `step` is audited: a pure function of the
    /// seed, the step and the slice, true for about `fraction` of them.
    public func audits(step: UInt64, slice: Int) -> Bool {
        guard fraction > 0 else { return false }
        // Its own stream, so the choice is independent of the batch order and the weights.
        var random = SeededRandom(seed: seed ^ 0xA0D1_7000_0000_0000, stream: step &* 4099 &+ UInt64(slice))
        return random.nextUnit() < fraction
    }

    /// Whether two results of one slice are the same bit for bit: every bucket's totals,
    /// offset and gradient values (the compute time and slice number aside).
    public static func same(_ a: [StepResult], _ b: [StepResult]) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy { x, y in
                x.count == y.count && x.correct == y.correct && x.lossSum.bitPattern == y.lossSum.bitPattern
                    && x.gradientOffset == y.gradientOffset && sameBits(x.gradient, y.gradient)
            }
    }

    private static func sameBits(_ a: StepResult.Gradient, _ b: StepResult.Gradient) -> Bool {
        switch (a, b) {
        case (.none, .none): true
        case let (.fixedPoint(x), .fixedPoint(y)): x == y
        case let (.float(x), .float(y)): x.map(\.bitPattern) == y.map(\.bitPattern)
        default: false
        }
    }

    /// One worker's result for an audited slice.
    public struct Opinion {
        public let worker: Int
        public let result: [StepResult]
        public init(worker: Int, result: [StepResult]) {
            self.worker = worker
            self.result = result
        }
    }

    public enum Judgement: Equatable {
        /// Opinion `index`'s result is the slice's; `wrong` lists the workers that returned
        /// anything else (each once, in order).
        case agreed(index: Int, wrong: [Int])
        /// No result is backed by two different workers, or two results are.
        case undecided
    }

    /// The vote: a result stands when it is the only one that two different workers
    /// returned; every worker that returned another result is wrong. All opinions equal (even
    /// from one worker, whose slice was reassigned to the same worker) also stand. With
    /// workers A and B each asked twice, A: x, y and B: y, y convicts A (it changed its mind);
    /// A: x, x and B: y, y decides nothing.
    public static func judge(_ opinions: [Opinion]) -> Judgement {
        precondition(!opinions.isEmpty)
        // Distinct results, each with the opinions that returned it.
        var values: [(first: Int, workers: Set<Int>)] = []
        for (index, opinion) in opinions.enumerated() {
            if let v = values.firstIndex(where: { same(opinions[$0.first].result, opinion.result) }) {
                values[v].workers.insert(opinion.worker)
            } else {
                values.append((index, [opinion.worker]))
            }
        }
        if values.count == 1 { return .agreed(index: 0, wrong: []) }
        let backed = values.filter { $0.workers.count >= 2 }
        guard backed.count == 1, let winner = backed.first else { return .undecided }
        var wrong: [Int] = []
        for opinion in opinions where !same(opinion.result, opinions[winner.first].result) {
            if !wrong.contains(opinion.worker) { wrong.append(opinion.worker) }
        }
        return .agreed(index: winner.first, wrong: wrong)
    }
}

/// A run's audit: the plan, what has been said about it (a line once when only one worker is
/// live and nothing can be checked), and the epoch's counts.
final class Auditor {
    let plan: AuditPlan
    let log: (String) -> Void
    private var toldAlone = false
    /// This epoch: audited slices settled, and workers outvoted on them.
    private var checked = 0
    private var outvoted = 0

    init?(fraction: Double, seed: UInt64, log: @escaping (String) -> Void) {
        guard fraction > 0 else { return nil }
        plan = AuditPlan(fraction: fraction, seed: seed)
        self.log = log
        log(
            "audit: about \(fraction * 100)% of training slices (chosen by seed \(seed)) are computed again by "
                + "another worker and compared bit for bit")
    }

    /// Whether a round with `live` workers can audit; says once when it cannot.
    func canAudit(live: Int) -> Bool {
        if live >= 2 {
            toldAlone = false
            return true
        }
        if !toldAlone {
            toldAlone = true
            log("audit: only one live worker, so no slice can be checked on a second one until another joins")
        }
        return false
    }

    func settled(outvoted workers: Int) {
        checked += 1
        outvoted += workers
    }

    /// The epoch's line (so an operator sees the audit at work); the counts start again.
    func takeEpochSummary() -> String {
        defer { (checked, outvoted) = (0, 0) }
        return "audit: \(checked) slice(s) checked on a second worker this epoch, \(outvoted) worker(s) outvoted"
    }
}

/// One round's audit. Slice numbers past the round's own slices (`primaries`) are further
/// computations of an audited slice: its copy, then tie-breakers. `Round` reports each
/// finished slice; the answer says what to do next.
struct RoundAudit {
    struct Decision {
        /// Slice `.0` takes the result of slice `.1` (the agreed one).
        var use: [(Int, Int)] = []
        /// Workers to drop, with the reason.
        var convicted: [(worker: Int, reason: String)] = []
        /// New slices `(number, copy of, worker)` to send.
        var opinions: [(slice: Int, of: Int, worker: Int)] = []
        /// Finished slices of convicted workers to compute again.
        var redo: [Int] = []
        /// Lines for the log.
        var notes: [String] = []
    }

    private let auditor: Auditor?
    let step: UInt64
    /// The round's own slices; numbers from here on are audit copies.
    let primaries: Int
    /// Copies to send with the round's slices: `(number, copy of, worker)`.
    private(set) var copies: [(slice: Int, of: Int, worker: Int)] = []
    /// An audited slice's computations (itself first), and which slice each copy is of.
    private var group: [Int: [Int]] = [:]
    private var copyOf: [Int: Int] = [:]
    /// Who computed each finished slice.
    private var computedBy: [Int: Int] = [:]
    /// Audited slices whose result has been settled.
    private var settled: Set<Int> = []

    /// Slice `p` goes to `live[p]`; an audited one's copy to the next live worker, so with
    /// every slice audited each worker computes one copy.
    init(_ auditor: Auditor?, step: UInt64, evaluate: Bool, primaries: Int, live: [Int]) {
        self.auditor = auditor
        self.step = step
        self.primaries = primaries
        guard let auditor, !evaluate, auditor.canAudit(live: live.count) else { return }
        for p in 0..<primaries where auditor.plan.audits(step: step, slice: p) {
            let copy = primaries + copies.count
            // The wire bounds slice numbers (Wire.maxWorkers): past 2,048 workers some go unaudited.
            guard copy < Int(Wire.maxWorkers) else { break }
            copies.append((copy, p, live[(p + 1) % live.count]))
            group[p] = [p, copy]
            copyOf[copy] = p
        }
    }

    /// Whether this round audits any slice (otherwise finished slices need no bookkeeping).
    var isActive: Bool { !group.isEmpty }

    /// The round's slice that `slice` is a copy of, or `slice` itself.
    func primary(of slice: Int) -> Int { copyOf[slice] ?? slice }

    /// Slice `slice` is complete, computed by worker `w`. `results` holds every slice's
    /// buckets (empty while unfinished), `live` the live workers, `name` names a worker.
    mutating func finished(
        _ slice: Int, by w: Int, results: [[StepResult]], live: [Int], name: (Int) -> String
    ) throws -> Decision {
        computedBy[slice] = w
        let p = primary(of: slice)
        guard let members = group[p], !settled.contains(p),
            members.allSatisfy({ !results[$0].isEmpty })
        else { return Decision() }
        // Every member has its result, so each has the worker that computed it.
        let opinions = members.map { AuditPlan.Opinion(worker: computedBy[$0]!, result: results[$0]) }
        let voters = Set(opinions.map(\.worker)).sorted().map(name)
        var decision = Decision()
        switch AuditPlan.judge(opinions) {
        case let .agreed(index, wrong):
            settled.insert(p)
            auditor?.settled(outvoted: wrong.count)
            if index != 0 { decision.use.append((p, members[index])) }
            let backers = Set(opinions.filter { AuditPlan.same($0.result, opinions[index].result) }.map(\.worker))
            let right = backers.sorted().map(name).joined(separator: " and ")
            for worker in wrong {
                decision.convicted.append(
                    (worker, "computed slice \(p) of step \(step) wrong (audit: \(right) returned another result)"))
                decision.redo += unconfirmed(of: worker)
            }
        case .undecided:
            let next = nextOpinions(members.map { computedBy[$0]! }, live: live)
            guard !next.isEmpty, results.count + next.count <= Int(Wire.maxWorkers) else {
                throw ClusterError.auditUndecided(
                    step: step, slice: p,
                    workers: voters.joined(separator: ", "))
            }
            decision.notes.append(
                "audit: \(voters.joined(separator: ", ")) disagree on slice \(p) of step \(step); asking "
                    + next.map(name).joined(separator: " and ") + " to compute it")
            for worker in next {
                let copy = results.count + decision.opinions.count
                decision.opinions.append((copy, p, worker))
                group[p]!.append(copy)
                copyOf[copy] = p
            }
        }
        for s in decision.redo { computedBy[s] = nil }
        return decision
    }

    /// Who computes an undecided slice next: one live worker that has not computed it yet;
    /// without one (two workers), each live worker that computed it only once, again: a worker
    /// that changes its mind is outvoted by its own second answer.
    private func nextOpinions(_ workers: [Int], live: [Int]) -> [Int] {
        if let outsider = live.first(where: { !workers.contains($0) }) { return [outsider] }
        return live.filter { w in workers.count { $0 == w } == 1 }
    }

    /// The finished slices of `worker` that no other worker's vote confirms: its own unaudited
    /// slices and its computations of audited slices not yet settled.
    private func unconfirmed(of worker: Int) -> [Int] {
        computedBy.filter { slice, w in w == worker && !settled.contains(primary(of: slice)) }.keys.sorted()
    }
}
