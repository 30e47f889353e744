import ConvoyEngine
import Foundation

/// Runs one round: cuts the samples into contiguous slices, one per live worker, sends them,
/// collects the results, and gives the slices of workers that fail (unreachable, past the
/// deadline, bad results) to the others. A slice's buckets count only once all of them came
/// from one worker: the buckets of a worker dropped halfway are discarded with it.
final class Round {
    private let work: RoundWork
    private let pool: WorkerPool
    private let validator: ResultValidator
    private let stats: ClusterStatsRecorder
    private let options: ClusterOptions
    private let log: (String) -> Void
    private var ranges: [Range<Int>]
    /// Audit mode: copies of some slices on other workers, compared bit for bit (Audit.swift).
    private var audit: RoundAudit
    private var results: [[StepResult]]
    /// Slice → the worker that holds it, until all its buckets are in.
    private var owner: [Int: Int] = [:]
    /// Buckets of unfinished slices.
    private var partial: [Int: [StepResult]] = [:]
    /// Head buckets of primary slices, until `headsReady` has them all.
    private var heads: [Int: StepResult] = [:]
    private(set) var headsCounted = false
    /// Seconds spent sending work, the coordinator's share of the round.
    private(set) var sendSeconds = 0.0
    /// For the timeline (`--trace`): when each slice was last handed to a worker, when the
    /// first sends were done, and the workers' span reports with when each arrived.
    private var handedOut: [Int: ContinuousClock.Instant] = [:]
    private(set) var sendsDone: ContinuousClock.Instant?
    private(set) var spanReports: [WorkerSpanReport] = []
    /// When the round began: no honest worker reports more compute time than has passed since.
    private let started = ContinuousClock.now
    /// Seconds from send to last bucket per worker id, for primary slices handed out once
    /// (SliceBalancer).
    private(set) var finishSeconds: [UInt32: Double] = [:]
    private var reassigned: Set<Int> = []
    /// Workers that refused this round for the whole run: a second one confirms it.
    private var runRefusals: Set<UInt32> = []
    /// Step deadlines in a row that passed with no result accepted in between.
    private var barrenDeadlines = 0
    private var acceptedSinceDeadline = false
    /// Barren deadlines after which the round stops: a deadline no slice can meet would
    /// otherwise cycle drop → re-admit → drop forever.
    static let maxBarrenDeadlines = 3

    init(
        _ work: RoundWork, pool: WorkerPool, validator: ResultValidator, stats: ClusterStatsRecorder,
        options: ClusterOptions, auditor: Auditor? = nil, log: @escaping (String) -> Void
    ) {
        self.work = work
        self.pool = pool
        self.validator = validator
        self.stats = stats
        self.options = options
        self.log = log
        let split =
            if let shares = work.shares, shares.count == pool.liveCount {
                BatchPlan.slices(count: work.samples.count, units: shares, unit: work.unit)
            } else {
                BatchPlan.slices(count: work.samples.count, parts: max(pool.liveCount, 1), unit: work.unit)
            }
        // Empty slices come last in both splits (SliceBalancer keeps them there), so slice i
        // goes to the i-th live worker.
        let slices = split.filter { !$0.isEmpty }
        audit = RoundAudit(auditor, step: work.step, evaluate: work.evaluate, primaries: slices.count, live: pool.live)
        ranges = slices + audit.copies.map { slices[$0.of] }
        results = Array(repeating: [], count: ranges.count)
    }

    /// Each slice's result buckets, in slice order (and bucket order within a slice).
    func run() throws -> [[StepResult]] {
        pool.inRound = true
        defer { pool.inRound = false }
        pool.roundView = RoundView(step: work.step, evaluate: work.evaluate, started: started) { [unowned self] in
            Array(owner.values)
        }
        defer { pool.roundView = nil }
        for (slice, w) in zip(0..<audit.primaries, pool.live) { try assign(slice, to: w) }
        for copy in audit.copies { try assign(copy.slice, to: copy.worker) }
        sendsDone = .now
        var deadline = pool.now() + .seconds(clamping: options.stepTimeout)
        while !owner.isEmpty {
            let left = (deadline - pool.now()).inSeconds
            if left <= 0 {
                barrenDeadlines = acceptedSinceDeadline ? 0 : barrenDeadlines + 1
                acceptedSinceDeadline = false
                guard barrenDeadlines < Self.maxBarrenDeadlines else {
                    throw ClusterError.stalled(step: work.step, deadline: options.stepTimeout, misses: barrenDeadlines)
                }
                for w in Set(owner.values) {
                    pool.drop(w, because: "missed the \(formatSeconds(options.stepTimeout)) s step deadline")
                }
                try reassignOrphans()
                deadline = pool.now() + .seconds(clamping: options.stepTimeout)
                continue
            }
            guard let (peer, frame) = try pool.transport.receive(timeoutMs: Int(min(left, 1) * 1000) + 1) else {
                continue
            }
            stats.countBytes(frame.count)
            guard let w = pool.liveIndex(of: peer) else {
                try pool.handleUnexpected(peer: peer, frame: frame)
                continue
            }
            try handle(frame, from: w)
        }
        return Array(results.prefix(audit.primaries))
    }

    private func message(for slice: Int, to w: Int) -> Message {
        let range = ranges[slice]
        // The rest of the weights only, where the head went ahead; once: a second slice of
        // this step (reassigned) carries them all.
        var (weights, offset) = (work.weights, 0)
        if let ahead = work.sentAhead, pool.workers[w].aheadStep == work.step {
            // The head lies at one end of the layout (`headAheadRange`): the rest is the other.
            let rest = ahead.lowerBound == 0 ? ahead.upperBound..<weights.count : 0..<ahead.lowerBound
            (weights, offset) = (Array(weights[rest]), rest.lowerBound)
            pool.setAheadStep(nil, of: w)
        }
        var pixels = [UInt8](repeating: 0, count: range.count * work.samples.sampleSize)
        var labels = [UInt8](repeating: 0, count: range.count)
        pixels.withUnsafeMutableBufferPointer { p in
            labels.withUnsafeMutableBufferPointer { l in
                work.samples.gather(range, pixels: p.baseAddress!, labels: l.baseAddress!)
            }
        }
        return Message(
            runID: pool.runID, step: work.step,
            payload: .step(
                StepWork(
                    slice: UInt32(slice), evaluate: work.evaluate, weights: weights, weightsOffset: offset,
                    sampleSize: work.samples.sampleSize,
                    pixels: pixels, labels: labels)))
    }

    /// Sends `slice` to worker `w`, or to the next live one while sends fail.
    private func assign(_ slice: Int, to w: Int) throws {
        let started = ContinuousClock.now
        defer { sendSeconds += (ContinuousClock.now - started).inSeconds }
        var target = w
        while try !pool.send(message(for: slice, to: target), to: target) {
            target = try nextLiveWorker(after: target)
        }
        owner[slice] = target
        if handedOut[slice] != nil { reassigned.insert(slice) }
        handedOut[slice] = started
    }

    /// Gives the slices of dropped workers to live ones.
    private func reassignOrphans() throws {
        let orphans = owner.filter { !pool.workers[$0.value].alive }.sorted { $0.key < $1.key }
        for (slice, w) in orphans {
            owner[slice] = nil
            partial[slice] = nil
            if !headsCounted { heads[slice] = nil }
            try assign(slice, to: try nextLiveWorker(after: w))
        }
    }

    private func nextLiveWorker(after w: Int) throws -> Int {
        if pool.liveCount == 0 {
            // Everyone of this round is gone: take whoever joined meanwhile, or wait for one.
            pool.inRound = false
            defer { pool.inRound = true }
            log("no live worker left: waiting up to \(formatSeconds(options.joinTimeout)) s for one to join")
            try pool.waitUntilLive(1, timeout: options.joinTimeout)
        }
        let count = pool.workers.count
        for offset in 1...count where pool.workers[(w + offset) % count].alive { return (w + offset) % count }
        throw ClusterError.noLiveWorkers
    }

    private func handle(_ frame: [UInt8], from w: Int) throws {
        let name = pool.workers[w].name
        let message: Message
        do { message = try Message(decoding: frame) } catch {
            pool.drop(w, because: "sent an invalid message (\(error))")
            return try reassignOrphans()
        }
        switch message.payload {
        case let .result(result):
            guard message.runID == pool.runID, message.step == work.step else {
                return log(
                    "ignored a result of step \(message.step) run \(hex(message.runID)) from \(name) (now step "
                        + "\(work.step))"
                )
            }
            try accept(result, from: w)
        case let .refuse(refusal):
            guard message.runID == pool.runID, message.step == work.step else {
                return log("ignored a refusal of step \(message.step) from \(name) (now step \(work.step))")
            }
            try refused(refusal, by: w)
        case .hello:
            try pool.handleUnexpected(peer: pool.workers[w].peer, frame: frame)
        default:
            log("ignored a \(message.payload.type) message from \(name)")
        }
    }

    /// A worker-scope refusal drops that worker and training goes on. A run-scope one (every
    /// worker would hit it) stops the run once a second worker refuses this round too, or
    /// when no other worker is left to try: until then the refuser is dropped and its slice
    /// recomputed elsewhere, so one broken or hostile worker cannot stop the run alone.
    private func refused(_ refusal: Refusal, by w: Int) throws {
        let worker = pool.workers[w]
        let reason = peerText(refusal.reason)
        switch refusal.scope {
        case .worker:
            pool.drop(w, because: "refused step \(work.step) (its own problem: \(reason))")
        case .run:
            runRefusals.insert(worker.id)
            if runRefusals.count >= 2 || pool.liveCount <= 1 {
                throw ClusterError.workerRefused(worker: worker.name, step: work.step, reason: refusal.reason)
            }
            pool.drop(w, because: "refused step \(work.step) for the whole run (\(reason)); another worker confirms")
        }
        try reassignOrphans()
    }

    private func accept(_ result: StepResult, from w: Int) throws {
        let slice = Int(result.slice)
        guard slice < ranges.count, owner[slice] == w else {
            return log("ignored a result for slice \(slice) that \(pool.workers[w].name) does not hold")
        }
        var buckets = partial[slice] ?? []
        // Clocks of two hosts may differ in rate by parts per million: 1% and 1 s of slack.
        let elapsed = started.duration(to: .now) / .seconds(1)
        if let problem = validator.problem(
            with: result, expected: ranges[slice].count, evaluate: work.evaluate,
            earlier: buckets, maxSeconds: elapsed * 1.01 + 1)
        {
            pool.drop(w, because: "sent a bad result (\(problem))")
            return try reassignOrphans()
        }
        buckets.append(result)
        acceptedSinceDeadline = true
        guard validator.isComplete(buckets, evaluate: work.evaluate) else {
            partial[slice] = buckets
            // The head comes first and never completes a slice (`headsReady` needs two buckets).
            if buckets.count == 1 && slice < audit.primaries { try headIn(result, slice: slice) }
            return
        }
        results[slice] = buckets
        partial[slice] = nil
        owner[slice] = nil
        if !work.evaluate { stats.addSlice(worker: pool.workers[w].id, computeSeconds: result.computeSeconds) }
        if slice < audit.primaries, !reassigned.contains(slice), let sent = handedOut[slice] {
            finishSeconds[pool.workers[w].id] = (ContinuousClock.now - sent).inSeconds
        }
        if let spans = result.spans, let sent = handedOut[slice] {
            spanReports.append(WorkerSpanReport(worker: pool.workers[w], sent: sent, received: .now, report: spans))
        }
        try audited(slice, by: w)
    }

    /// Counts a primary slice's head bucket; with every slice's in, hands them on.
    private func headIn(_ head: StepResult, slice: Int) throws {
        guard let headsReady = work.headsReady, !headsCounted else { return }
        heads[slice] = head
        guard heads.count == audit.primaries else { return }
        headsCounted = true
        try headsReady((0..<audit.primaries).map { heads[$0]! })
        heads = [:]
        // Sending the head ahead may have dropped a worker that does not read.
        try reassignOrphans()
    }

    /// Audit mode: a finished slice may settle an audited one (and convict a worker, whose
    /// unconfirmed slices are computed again) or ask for another worker's opinion.
    private func audited(_ slice: Int, by w: Int) throws {
        guard audit.isActive else { return }
        let decision = try audit.finished(slice, by: w, results: results, live: pool.live) { pool.workers[$0].name }
        for (target, source) in decision.use { results[target] = results[source] }
        for (worker, reason) in decision.convicted { pool.drop(worker, because: reason) }
        for note in decision.notes { log(note) }
        for opinion in decision.opinions {
            ranges.append(ranges[opinion.of])
            results.append([])
            try assign(opinion.slice, to: opinion.worker)
        }
        for redo in decision.redo {
            results[redo] = []
            try assign(redo, to: try nextLiveWorker(after: w))
        }
        try reassignOrphans()
    }
}
