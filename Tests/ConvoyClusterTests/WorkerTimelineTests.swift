@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// The coordinator's side of the timeline, without sockets: a worker's spans land on the
/// coordinator's axis by the NTP estimate, and reports at the decoder's extremes neither trap
/// nor make the coordinator hold more than their events.
@Suite struct WorkerTimelineTests {
    static func worker(_ id: UInt32, host: String = "h") -> WorkerPool.Worker {
        WorkerPool.Worker(peer: [1], id: id, hello: Hello(host: host, pid: 7, threads: 1))
    }

    /// Writes `reports` as round `step` and returns the worker events of the finished trace.
    func events(_ reports: [WorkerSpanReport], timeline: Timeline, path: String) throws -> [[String: Any]] {
        let spans = WorkerTimeline(timeline)
        spans.workers(reports, round: ("step", .int(0)))
        timeline.finish()
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        let events = (root as? [String: Any])?["traceEvents"] as? [[String: Any]] ?? []
        return events.filter { $0["cat"] as? String == "worker" }
    }

    @Test func spansArePlacedByTheEstimatedOffset() throws {
        let path = NSTemporaryDirectory() + "convoy-timeline-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let timeline = try Timeline(path: path, role: "coordinator", log: { _ in })
        let t0 = timeline.epoch + .microseconds(100)
        let t3 = timeline.epoch + .microseconds(900)
        // The worker's clock reads 1 s more than the coordinator's: the step left at 100 µs,
        // arrived at 1 s + 200 µs (worker clock), the result was made at 1 s + 800 µs and
        // accepted at 900 µs. θ = ((1,000,200 − 100) + (1,000,800 − 900)) / 2 = 1,000,000 µs,
        // δ = 800 − 600 = 200 µs.
        let report = SpanReport(
            arrival: 1_000_200_000, sent: 1_000_800_000,
            spans: [
                .init(.forward, start: 0, duration: 300_000), .init(.trunkBackward, start: 300_000, duration: 300_000),
            ])
        let events = try events(
            [WorkerSpanReport(worker: Self.worker(3), sent: t0, received: t3, report: report)], timeline: timeline,
            path: path)
        #expect(events.count == 2)
        #expect(events.map { $0["ts"] as? Double } == [200, 500])
        #expect(events.map { $0["dur"] as? Double } == [300, 300])
        #expect(events.allSatisfy { ($0["args"] as? [String: Any])?["clock_error_us"] as? Int == 100 })
    }

    /// Values at the decoder's bounds (clock readings near 2^62, spans of 2^50 ns, starts of
    /// −2^50) and a report that cannot be true (its worker claims more time between arrival and
    /// sending than the round trip took): no trap, and the impossible one is not drawn.
    @Test func extremeReportsNeitherTrapNorBloat() throws {
        let path = NSTemporaryDirectory() + "convoy-timeline-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let timeline = try Timeline(path: path, role: "coordinator", log: { _ in })
        let t0 = timeline.epoch
        // A round of 13 days and 1 ms: long enough for spans of 2^50 ns to be possible.
        let t3 = timeline.epoch + .nanoseconds(SpanCoding.maxSpan) + .milliseconds(1)
        let top = SpanCoding.maxClock - 1
        let extreme = SpanReport(
            arrival: top - SpanCoding.maxSpan, sent: top,
            spans: [
                .init(.forward, start: 0, duration: SpanCoding.maxSpan),
                .init(.idle, start: -SpanCoding.maxSpan, duration: SpanCoding.maxSpan),
            ])
        let impossible = SpanReport(
            arrival: 0, sent: 2_000_000, spans: [.init(.forward, start: 0, duration: 2_000_000)])
        let reports = [
            WorkerSpanReport(worker: Self.worker(1, host: "a\"b\\c\n"), sent: t0, received: t3, report: extreme),
            WorkerSpanReport(worker: Self.worker(2), sent: t0, received: t0 + .milliseconds(1), report: impossible),
        ]
        let events = try events(reports, timeline: timeline, path: path)
        #expect(events.count == 2)
        #expect(events.allSatisfy { $0["pid"] as? Int == 2 })
    }
}
