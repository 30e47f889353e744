import ConvoyEngine

/// What a worker did during one step, on its own monotonic clock (docs/PROTOCOL.md, "Timeline
/// appendix"): when the step arrived, when this result was made, and its phases relative to
/// the arrival. The coordinator places them on its own time axis with the clock offset it
/// estimates from `arrival` and `sent` (docs/OBSERVABILITY.md "Timeline"). Sent only when the
/// welcome asks for it, in the last bucket of a slice.
public struct SpanReport: Equatable, Sendable {
    public enum Kind: UInt8, Sendable, CaseIterable {
        case forward = 1
        case headBackward = 2
        case trunkBackward = 3
        case send = 4
        case idle = 5
        /// The whole backward pass of a network without a head (one bucket).
        case backward = 6

        public var name: String {
            switch self {
            case .forward: "forward"
            case .headBackward: "head backward"
            case .trunkBackward: "trunk backward"
            case .send: "send"
            case .idle: "idle"
            case .backward: "backward"
            }
        }
    }

    public struct Span: Equatable, Sendable {
        public var kind: Kind
        /// Nanoseconds from the step's arrival: negative for the previous step's last send and
        /// the idle time before this step, which end at or before the arrival.
        public var start: Int64
        public var duration: Int64
        public init(_ kind: Kind, start: Int64, duration: Int64) {
            self.kind = kind
            self.start = start
            self.duration = duration
        }
        public var end: Int64 { start + duration }
    }

    /// Nanoseconds on the worker's clock (since its process started tracing) when the step
    /// arrived and when this result was made (just before it was sent).
    public var arrival: Int64
    public var sent: Int64
    public var spans: [Span]

    public init(arrival: Int64, sent: Int64, spans: [Span]) {
        self.arrival = arrival
        self.sent = sent
        self.spans = spans
    }
}

/// The appendix's bytes, right after a result's compute seconds: u16 length A (0: no
/// appendix), then A bytes: u8 version (1), u8 span count n ≤ 16, u64 arrival, u64 sent,
/// n × (u8 kind, i64 start, u64 duration), so A = 18 + 17·n ≤ 290. A newer version is
/// skipped whole (A ≤ 1,024 for any version); every value of version 1 is checked.
enum SpanCoding {
    static let version: UInt8 = 1
    static let maxSpans = 16
    static let maxBytes = 1024
    /// Worker clock readings below 2^62 ns (146 years of uptime); spans and the time from
    /// arrival to sending at most 2^50 ns (13 days, past any step deadline or idle timeout).
    static let maxClock: Int64 = 1 << 62
    static let maxSpan: Int64 = 1 << 50

    /// Bytes `write` adds at most.
    static let capacity = 2 + 18 + 17 * maxSpans

    static func write(_ report: SpanReport?, to frame: inout ByteWriter) {
        guard let report else { return frame.append(UInt16(0)) }
        let spans = report.spans.prefix(maxSpans)
        frame.append(UInt16(18 + 17 * spans.count))
        frame.append(version)
        frame.append(UInt8(spans.count))
        frame.append(report.arrival)
        frame.append(report.sent)
        for span in spans {
            frame.append(span.kind.rawValue)
            frame.append(span.start)
            frame.append(span.duration)
        }
    }

    static func read(_ reader: inout ByteReader) throws -> SpanReport? {
        let length = Int(try reader.read(UInt16.self, "timeline appendix length"))
        guard length > 0 else { return nil }
        guard length >= 2, length <= maxBytes, length <= reader.remaining else {
            throw ProtocolError("timeline appendix of \(length) bytes does not fit 2...\(maxBytes) or the result")
        }
        let version = try reader.read(UInt8.self, "timeline appendix version")
        guard version == Self.version else {
            _ = try reader.readBytes(length - 1, "timeline appendix")
            return nil
        }
        let count = Int(try reader.read(UInt8.self, "span count"))
        guard count <= maxSpans, length == 18 + 17 * count else {
            throw ProtocolError("timeline appendix of \(length) bytes cannot hold \(count) spans (at most \(maxSpans))")
        }
        let arrival = try reader.read(Int64.self, "arrival time")
        let sent = try reader.read(Int64.self, "sending time")
        guard (0..<maxClock).contains(arrival), (arrival..<maxClock).contains(sent), sent - arrival <= maxSpan else {
            throw ProtocolError("timeline times \(arrival) and \(sent) ns are out of order or out of range")
        }
        var spans: [SpanReport.Span] = []
        spans.reserveCapacity(count)
        for i in 0..<count {
            let raw = try reader.read(UInt8.self, "span kind")
            guard let kind = SpanReport.Kind(rawValue: raw) else {
                throw ProtocolError("span \(i) has unknown kind \(raw)")
            }
            let span = SpanReport.Span(
                kind, start: try reader.read(Int64.self, "span start"), duration: try reader.read(Int64.self, "span"))
            try check(span, index: i, stepLength: sent - arrival)
            spans.append(span)
        }
        return SpanReport(arrival: arrival, sent: sent, spans: spans)
    }

    /// A span of this step lies between the arrival and the sending time; one before the
    /// arrival (the last send and idle time) ends by the arrival. No span is longer than
    /// `maxSpan`, so no sum overflows.
    private static func check(_ span: SpanReport.Span, index: Int, stepLength: Int64) throws {
        guard (0...maxSpan).contains(span.duration), (-maxSpan...maxSpan).contains(span.start) else {
            throw ProtocolError("span \(index) (\(span.kind.name)) is out of range")
        }
        let limit = span.start >= 0 ? stepLength : 0
        guard span.end <= limit else {
            throw ProtocolError("span \(index) (\(span.kind.name)) ends after the result was made")
        }
    }
}
