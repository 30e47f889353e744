import ConvoyEngine
import Foundation

/// Names a straggler live: each worker's recent training-slice times sit in a small ring, and
/// a worker whose median is far above the median of the others' medians is logged (at most
/// once per `reportInterval` per worker) and recorded as a "straggler" event of the epoch.
/// A ring and a median are enough: a handful of numbers per worker, read once per slice, where
/// a histogram library would add a dependency for no better answer.
final class StragglerWatch {
    /// Slices per worker the median is taken over: a single slow slice (a page fault, another
    /// process's burst) does not make a straggler, five in a row of nine do.
    static let window = 9
    /// Slices a worker must have before it is judged or used as a yardstick.
    static let minimumSlices = 3
    /// "Far above": twice the others' median. Data-parallel steps wait for the slowest slice,
    /// so a worker at 2× halves the whole cluster's speed; below that, uneven hosts are normal.
    static let ratio = 2.0
    /// ...and at least this many milliseconds over, so sub-millisecond slices that jitter by
    /// 2× on a busy host are not named.
    static let minimumExcessMs = 5.0
    /// Seconds between two reports on the same worker: a lasting straggler is one line per
    /// half minute, not one per step.
    static let reportInterval = 30.0

    /// Recent slice times (ms) per worker id, newest last.
    private var recent: [UInt32: [Double]] = [:]
    private var lastReport: [UInt32: ContinuousClock.Instant] = [:]
    /// `w<id>@host:pid` of a worker id, when the coordinator knows it.
    var name: (UInt32) -> String = { "w\($0)" }
    var log: (String) -> Void = { _ in }
    var now: () -> ContinuousClock.Instant = { .now }

    /// Median of the worker's recent slice times (ms), nil before its first slice.
    func medianMs(of worker: UInt32) -> Double? { recent[worker].flatMap(Self.median) }

    /// A new process took this worker number: its predecessor's times say nothing about it.
    func forget(_ worker: UInt32) {
        recent[worker] = nil
        lastReport[worker] = nil
    }

    /// Records one finished training slice; returns the straggler line when this slice makes
    /// `worker` one and it was not reported within `reportInterval`.
    @discardableResult
    func record(worker: UInt32, ms: Double) -> String? {
        guard ms.isFinite, ms >= 0 else { return nil }
        var times = recent[worker] ?? []
        times.append(ms)
        if times.count > Self.window { times.removeFirst(times.count - Self.window) }
        recent[worker] = times
        guard times.count >= Self.minimumSlices, let mine = Self.median(times) else { return nil }
        let others = recent.compactMap { id, times in
            id != worker && times.count >= Self.minimumSlices ? Self.median(times) : nil
        }
        guard let yardstick = Self.median(others), mine >= yardstick * Self.ratio,
            mine - yardstick >= Self.minimumExcessMs
        else { return nil }
        let time = now()
        if let last = lastReport[worker], (time - last).inSeconds < Self.reportInterval { return nil }
        lastReport[worker] = time
        let factor = yardstick > 0 ? "\(Self.text(mine / yardstick))×" : "∞×"
        let detail = "slice time \(Self.text(mine)) ms, median of others \(Self.text(yardstick)) ms (\(factor))"
        log("\(name(worker)) is a straggler: \(detail)")
        return detail
    }

    private static func text(_ value: Double) -> String { String(format: "%.1f", value) }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
