import ConvoyEngine

/// A worker's span report as the coordinator got it: when the slice was handed to the worker
/// (before the send: t0 of the clock estimate) and when its last bucket was accepted (t3).
struct WorkerSpanReport {
    let worker: WorkerPool.Worker
    let sent: ContinuousClock.Instant
    let received: ContinuousClock.Instant
    let report: SpanReport
}

/// The coordinator's side of the timeline (`--trace`, docs/OBSERVABILITY.md "Timeline"): its
/// own phases of each round, and its workers' spans moved onto its time axis by a clock
/// offset estimated NTP-style from each step exchange: t0 slice handed out, t1 step arrived
/// (worker clock), t2 result made (worker clock), t3 result accepted; offset θ = ((t1 − t0) +
/// (t2 − t3)) / 2, round-trip delay δ = (t3 − t0) − (t2 − t1), and the true offset lies within
/// θ ± δ/2. The first exchange after a worker joins sets θ; one with a smaller δ refines it;
/// one whose interval does not overlap the estimate's (the worker restarted its clock) replaces it.
final class WorkerTimeline {
    let timeline: Timeline
    private struct Clock {
        var offset: Int64
        var delay: Int64
        /// The round of the last report, which the deferred send of the next one belongs to.
        var lastRound: (String, TraceValue)?
    }
    /// Per worker process, at most `Timeline.maxProcesses` of them (the timeline's bound).
    private var clocks: [String: Clock] = [:]

    init(_ timeline: Timeline) { self.timeline = timeline }

    /// A training round's coordinator spans: send (the slices out, weights included), wait
    /// (for the results), sum (adding them); then the workers' spans.
    func training(step: Int, started: ContinuousClock.Instant, round: Round, combining: ContinuousClock.Instant) {
        let args: [(String, TraceValue)] = [("step", .int(step))]
        let sendsDone = round.sendsDone ?? started
        timeline.span("send", from: started, to: sendsDone, args: args)
        timeline.span("wait", from: sendsDone, to: combining, args: args)
        timeline.span("sum", from: combining, to: .now, args: args)
        workers(round.spanReports, round: ("step", .int(step)))
    }

    /// Each worker's spans of one round, labelled `round` (a training step or an evaluation).
    func workers(_ reports: [WorkerSpanReport], round: (String, TraceValue)) {
        for entry in reports {
            let worker = entry.worker
            let name = "w\(worker.id)@\(peerText(worker.hello.host, limit: 255)):\(worker.hello.pid)"
            guard let pid = timeline.process(named: name) else { continue }
            let (t0, t3) = (timeline.nanoseconds(entry.sent), timeline.nanoseconds(entry.received))
            let report = entry.report
            // Decoded bounds: every value below 2^62, so none of these sums overflows.
            let offset = ((report.arrival - t0) + (report.sent - t3)) / 2
            let delay = (t3 - t0) - (report.sent - report.arrival)
            guard delay >= 0 else { continue }  // not causal: a worker's report that cannot be true
            var clock = clocks[name] ?? Clock(offset: offset, delay: delay)
            let apart = abs(offset - clock.offset)
            if delay < clock.delay || apart > (delay + clock.delay) / 2 + 1 {
                clock.offset = offset
                clock.delay = delay
            }
            for span in report.spans {
                let args: [(String, TraceValue)]
                if span.kind == .send && span.start < 0 {
                    guard let last = clock.lastRound else { continue }
                    args = [last]
                } else {
                    args = [round]
                }
                timeline.span(
                    span.kind.name, category: "worker", pid: pid, start: report.arrival + span.start - clock.offset,
                    duration: span.duration, args: args + [("clock_error_us", .int(Int(clock.delay / 2_000)))])
            }
            clock.lastRound = round
            clocks[name] = clock
        }
    }
}
