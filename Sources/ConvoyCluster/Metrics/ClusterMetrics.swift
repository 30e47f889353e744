import Metrics

/// The coordinator's live cluster metrics, recorded through swift-metrics: without a
/// bootstrapped backend (no --metrics-port) every handle is swift-metrics' no-op one, so the
/// step path pays a few calls and no allocation. The handles are made once, here or at a
/// worker's first slice; drops, being rare, make theirs when they happen.
final class ClusterMetrics {
    private let liveWorkers = Gauge(label: MetricCatalogue.liveWorkers)
    private let joins = Counter(label: MetricCatalogue.joins)
    private let sentBytes = Counter(label: MetricCatalogue.sentBytes)
    private let receivedBytes = Counter(label: MetricCatalogue.receivedBytes)
    private let stepTime = Timer(label: MetricCatalogue.stepSeconds)
    /// Slice-time histograms by worker id.
    private var sliceTime: [Timer?] = []
    /// Workers live now, as the joins and drops tell it (the pool's own count is not kept).
    private var live = 0

    init() {
        liveWorkers.record(0)
    }

    func joined() {
        joins.increment()
        live += 1
        liveWorkers.record(live)
    }

    func dropped(reason: String) {
        Counter(label: MetricCatalogue.drops, dimensions: [("reason", MetricCatalogue.dropReason(reason))]).increment()
        live = max(live - 1, 0)
        liveWorkers.record(live)
    }

    func sent(bytes: Int) { sentBytes.increment(by: bytes) }
    func received(bytes: Int) { receivedBytes.increment(by: bytes) }
    func step(seconds: Double) { stepTime.recordSeconds(seconds) }

    func slice(worker id: UInt32, seconds: Double) {
        let i = Int(id)
        if sliceTime.count <= i { sliceTime += Array(repeating: nil, count: i + 1 - sliceTime.count) }
        if sliceTime[i] == nil {
            sliceTime[i] = Timer(label: MetricCatalogue.sliceSeconds, dimensions: [("worker", "w\(id)")])
        }
        sliceTime[i]?.recordSeconds(seconds)
    }
}
