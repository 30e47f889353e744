import ConvoyEngine

/// A worker's side of the timeline (docs/OBSERVABILITY.md "Timeline"): the instants of one
/// step's phases on this process's monotonic clock, turned into the `SpanReport` its last
/// result bucket carries. Exists only while the welcome asks for spans: tracing off costs
/// the worker nothing. Phases, relative to the step's arrival: forward, then each bucket's
/// backward (the head's, then the trunk's) and the send of every bucket but the last; the
/// last bucket's send is measured after it left, so it goes with the next step's report,
/// together with the idle time from that send to the next step's arrival.
final class WorkerSpans {
    /// Time zero of this worker's readings: only differences to it travel.
    private let epoch = ContinuousClock.now
    /// When the frame now handled arrived.
    private var arrival = ContinuousClock.now
    /// Where the current phase began, and the spans of this step so far.
    private var mark = ContinuousClock.now
    private var spans: [SpanReport.Span] = []
    /// The last result's send: open while it is sent, then kept for the next step's report.
    private var openSend: ContinuousClock.Instant?
    private var lastSend: (start: ContinuousClock.Instant, end: ContinuousClock.Instant)?
    /// Between `computing` and the step's report.
    private var inStep = false
    /// Buckets of the model's gradient (`Architecture.gradientBuckets`), and those of this
    /// step announced so far.
    private let buckets: Int
    private var bucketsDone = 0

    init(buckets: Int) { self.buckets = buckets }

    /// A frame arrived (before it is decoded).
    func frameArrived() { arrival = .now }

    /// The step's computation starts now (its weights are loaded).
    func computing() {
        spans.removeAll(keepingCapacity: true)
        mark = .now
        inStep = true
        bucketsDone = 0
    }

    /// The next bucket's sums are final (buckets come in the layout's order: the head's, then
    /// the trunk's); `forwardDone`: when slot 0's forward pass ended (nil: forward and backward
    /// were interleaved, so the backward span covers both). Returns the report when this is
    /// the step's last bucket.
    func bucketReady(forwardDone: ContinuousClock.Instant?) -> SpanReport? {
        if bucketsDone == 0, let forwardDone, forwardDone >= mark {
            add(.forward, from: mark, to: forwardDone)
            mark = forwardDone
        }
        let now = ContinuousClock.now
        add(buckets == 1 ? .backward : bucketsDone == 0 ? .headBackward : .trunkBackward, from: mark, to: now)
        mark = now
        bucketsDone += 1
        return bucketsDone >= buckets ? report() : nil
    }

    /// An evaluation's forward pass ended: the report.
    func evaluated() -> SpanReport {
        add(.forward, from: mark, to: .now)
        return report()
    }

    /// A result has been sent: the last one's send is kept for the next step's report; one
    /// of an earlier bucket is a span of this step. Nothing happens outside a step.
    func sent() {
        let now = ContinuousClock.now
        if let start = openSend {
            lastSend = (start, now)
            openSend = nil
        } else if inStep {
            add(.send, from: mark, to: now)
            mark = now
        }
    }

    private func report() -> SpanReport {
        let sent = ContinuousClock.now
        var all = spans
        if let lastSend, lastSend.end <= arrival {
            all.append(span(.send, from: lastSend.start, to: lastSend.end))
            all.append(span(.idle, from: lastSend.end, to: arrival))
        }
        lastSend = nil
        openSend = sent
        inStep = false
        return SpanReport(
            arrival: nanoseconds(arrival), sent: nanoseconds(sent), spans: Array(all.prefix(SpanCoding.maxSpans)))
    }

    private func add(_ kind: SpanReport.Kind, from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) {
        spans.append(span(kind, from: start, to: end))
    }

    private func span(_ kind: SpanReport.Kind, from start: ContinuousClock.Instant, to end: ContinuousClock.Instant)
        -> SpanReport.Span
    {
        let begin = nanoseconds(start) - nanoseconds(arrival)
        return SpanReport.Span(kind, start: begin, duration: max(nanoseconds(end) - nanoseconds(start), 0))
    }

    private func nanoseconds(_ instant: ContinuousClock.Instant) -> Int64 {
        let parts = epoch.duration(to: instant).components
        return parts.seconds &* 1_000_000_000 &+ parts.attoseconds / 1_000_000_000
    }
}
