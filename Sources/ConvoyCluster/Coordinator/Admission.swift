import ConvoyEngine

/// The coordinator's door policy, apart from who is live (`WorkerPool`): how often a peer
/// may be welcomed, how long a dropped worker is held back, and how often a repeated
/// complaint is logged. Every table here is bounded, so no peer can grow it without end.
struct Admission {
    typealias Instant = ContinuousClock.Instant

    /// Least time between two welcomes to one peer: a peer that repeats its hello thousands
    /// of times earns one welcome per interval, not thousands of messages to queue.
    var welcomeInterval: Duration = .seconds(1)
    /// A dropped worker waits this long before it is admitted again, doubling with each drop
    /// up to `maxBackOff`.
    var firstBackOff: Duration = .seconds(1)
    var maxBackOff: Duration = .seconds(60)
    /// Most back-off records kept; past it the expired ones go, then the oldest.
    var maxRecords = 4 * Int(Wire.maxWorkers)

    struct BackOff {
        var delay: Duration
        var until: Instant
    }
    /// Back-off by worker process (host and pid from its hello): a worker that reconnects
    /// gets a new routing id but keeps its process.
    private(set) var backOffs: [String: BackOff] = [:]

    static func processKey(_ hello: Hello) -> String { "\(hello.host)\u{0}\(hello.pid)" }

    /// Records a drop; returns the back-off it starts.
    mutating func recordDrop(of hello: Hello, now: Instant) -> Duration {
        let key = Self.processKey(hello)
        var delay = firstBackOff
        if let earlier = backOffs[key], now - earlier.until < maxBackOff * 2 {
            // Dropped again soon after its last back-off: the next one is twice as long.
            delay = min(earlier.delay * 2, maxBackOff)
        }
        backOffs[key] = BackOff(delay: delay, until: now + delay)
        prune(now: now)
        return delay
    }

    /// The time left before `hello`'s process may be admitted again, or nil when it may.
    func heldBack(_ hello: Hello, now: Instant) -> Duration? {
        guard let record = backOffs[Self.processKey(hello)], record.until > now else { return nil }
        return record.until - now
    }

    private mutating func prune(now: Instant) {
        guard backOffs.count > maxRecords else { return }
        backOffs = backOffs.filter { now - $0.value.until < maxBackOff * 2 }
        while backOffs.count > maxRecords, let oldest = backOffs.min(by: { $0.value.until < $1.value.until }) {
            backOffs[oldest.key] = nil
        }
    }
}

/// Logs a repeated line the 1st, 10th, 100th… time, so a peer repeating a mistake (or an
/// attack) thousands of times costs a few log lines. Keys are bounded: past `maxKeys`
/// distinct ones, the rest are counted under one.
struct LogThrottle {
    private var counts: [String: Int] = [:]
    var maxKeys = 1024

    /// Whether to log the `key` event now, and how many times it has happened.
    mutating func shouldLog(_ key: String) -> (log: Bool, count: Int) {
        let key = counts[key] != nil || counts.count < maxKeys ? key : "other"
        let count = (counts[key] ?? 0) + 1
        counts[key] = count
        var power = 1
        while power < count { power *= 10 }
        return (power == count, count)
    }
}

extension Duration {
    /// `seconds` as a Duration; values past 10^9 s (an `inf` flag) are held at 10^9 s,
    /// which `Duration.seconds(_:)` would trap on.
    static func seconds(clamping seconds: Double) -> Duration {
        .seconds(seconds.isNaN ? 0 : min(max(seconds, 0), 1e9))
    }
}
