import ConvoyEngine

/// Sizes the workers' slices of a deterministic training step so that they finish together
/// (docs/DESIGN.md, "Balanced slices"). An even split waits for the slowest worker every step:
/// a worker on a busy host, on a slower CPU or with fewer slots than the others holds all of
/// them back. Two workers over `shm://`, one slowed by `--inject-fault slow:2`: 16.4–16.9k
/// samples/s balanced against 12.9k even.
///
/// The balancer watches how long each worker takes from its slice's send to its last bucket,
/// smoothed over steps, and moves one micro-batch at a time from the slowest worker to the
/// fastest while that shortens the step: when the gap between them exceeds what one
/// micro-batch costs the fastest. A smaller gap stays (two equal workers on two cores, one
/// sharing its core with the coordinator, differ by less than a micro-batch). The split never
/// changes the result: fixed-point sums are the same bits however the micro-batches are
/// shared out (docs/SPEC.md §8.1), so it is used only in deterministic rounds.
struct SliceBalancer {
    /// The live workers (ids, in the pool's order) the split is for; another set starts even.
    private(set) var workers: [UInt32] = []
    /// Micro-batches per worker, in `workers`' order.
    private(set) var units: [Int] = []
    /// Smoothed seconds from a slice's send to its last bucket; nil until measured.
    private var seconds: [Double?] = []
    /// Rounds measured since the split last changed.
    private var measured = 0
    /// Whether the last `shares` gave the learned split (else its times are not about it).
    private var usedLearnedSplit = false

    /// Weight of the newest measurement in the smoothed times.
    static let smoothing = 0.3
    /// Rounds measured under a split before it may change again: the times must reflect it.
    static let settleRounds = 3
    /// The gap (in the fastest worker's micro-batch times) above which a micro-batch moves;
    /// above 1 so that noise does not move one back and forth.
    static let threshold = 1.2

    /// Micro-batches per live worker for a step of `total` of them. A worker keeps at least
    /// one while it had one, and one beyond the micro-batch count gets none (as in the even
    /// split), so the workers with work are always the first ones. A step of another size (an
    /// epoch's short last one) is split evenly and teaches nothing; the learned split waits
    /// for the next full step.
    mutating func shares(for live: [UInt32], total: Int) -> [Int] {
        // A split that never moved is the even one of its own total: a full step re-seeds it
        // (after workers changed during an epoch's short last step).
        let seeded = units.reduce(0, +)
        if live != workers || (seeded != total && units == Self.even(seeded, live.count)) {
            workers = live
            units = Self.even(total, live.count)
            seconds = Array(repeating: nil, count: live.count)
            measured = 0
        }
        usedLearnedSplit = units.reduce(0, +) == total
        return usedLearnedSplit ? units : Self.even(total, live.count)
    }

    private static func even(_ total: Int, _ parts: Int) -> [Int] {
        BatchPlan.slices(count: total, parts: max(parts, 1), unit: 1).map(\.count)
    }

    /// One round's times: seconds per worker id, for the slices each finished alone. A round
    /// that misses a worker with work (dropped, reassigned) teaches nothing. Returns the
    /// smoothed times (by worker id) when the split changed, for the log.
    mutating func observe(_ finished: [UInt32: Double]) -> [UInt32: Double]? {
        let busy = units.indices.filter { units[$0] > 0 }
        guard usedLearnedSplit, busy.count >= 2, busy.allSatisfy({ finished[workers[$0]] != nil }) else { return nil }
        for i in busy {
            let latest = finished[workers[i]]!
            seconds[i] = seconds[i].map { $0 + Self.smoothing * (latest - $0) } ?? latest
        }
        measured += 1
        guard measured >= Self.settleRounds else { return nil }
        let slowest = busy.max { seconds[$0]! < seconds[$1]! }!
        let fastest = busy.min { seconds[$0]! < seconds[$1]! }!
        // Moving one micro-batch to the fastest shortens the step when the fastest, one
        // micro-batch (at its own pace) later, still finishes before the slowest does now.
        let fastestPerUnit = seconds[fastest]! / Double(units[fastest])
        guard units[slowest] > 1, seconds[slowest]! - seconds[fastest]! > Self.threshold * fastestPerUnit else {
            return nil
        }
        let times = Dictionary(uniqueKeysWithValues: busy.map { (workers[$0], seconds[$0]!) })
        units[slowest] -= 1
        units[fastest] += 1
        seconds = Array(repeating: nil, count: workers.count)
        measured = 0
        return times
    }
}

extension ClusterStepRunner {
    /// One line per change of the split: who now computes how many micro-batches, and the
    /// smoothed times that moved one ("w0@host:pid 6 (2.1 ms), w1@host:pid 2 (3.8 ms)").
    func logBalance(_ times: [UInt32: Double], pool: WorkerPool) {
        let shares = zip(balancer.workers, balancer.units).filter { $0.1 > 0 }.map { id, units in
            let name = pool.workers.first { $0.id == id }?.name ?? "w\(id)"
            let measured = times[id].map { String(format: " (%.1f ms)", $0 * 1000) } ?? ""
            return "\(name) \(units)\(measured)"
        }
        log(
            "slices balanced by speed, micro-batches per worker (time of the last split): "
                + shares.joined(separator: ", "))
    }
}
