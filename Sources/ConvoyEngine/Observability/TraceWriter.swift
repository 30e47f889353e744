#if canImport(Glibc)
    import Glibc
#endif
import ConvoyInterop

/// Streams Chrome trace events (the "JSON Object Format" of the Trace Event Format, which
/// Perfetto and chrome://tracing open) to a file: `{"traceEvents":[` first, one event per
/// line, and `]}` at `finish`. Events wait in a buffer of at most `flushBytes` and go to the
/// file at every `flush` (the timeline flushes once a step), so memory stays bounded however
/// long the run, and a process that dies leaves every flushed event in place: a file that
/// lacks its closing `]}` still loads (Perfetto's and the legacy importer's JSON readers keep
/// the events read so far; `python3 -c 'import json'` does not, and needs the two bytes).
public final class TraceWriter {
    public let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var first = true
    private var closed = false
    /// Bytes held before the buffer is written out on its own.
    static let flushBytes = 1 << 16

    /// Creates (or empties) the file at `path`: a path that cannot be written fails here,
    /// before any training, with one line naming it. Not written to a temporary file and
    /// renamed: a stream is read while it grows, and a crash must leave the events so far.
    public init(path: String) throws {
        guard !path.isEmpty else { throw FileError("trace file: the path is empty") }
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileError("\(path): cannot create the trace file (\(String(cString: strerror(errno))))")
        }
        buffer.reserveCapacity(Self.flushBytes + 1024)
        buffer.append(contentsOf: Array("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n".utf8))
        try flush()
    }

    /// A writer dropped without `finish` (an error path) still closes the JSON.
    deinit {
        try? finish()
        close(fd)
    }

    /// A complete event ("ph":"X"): `start` and `duration` in nanoseconds, written as
    /// microseconds with three decimals (the format's unit).
    public func complete(
        _ name: String, category: String, pid: Int, tid: Int, start: Int64, duration: Int64,
        args: [(String, TraceValue)] = []
    ) throws {
        var event = "{\"name\":\(jsonStringLiteral(name)),\"cat\":\(jsonStringLiteral(category)),\"ph\":\"X\","
        event += "\"ts\":\(Self.microseconds(start)),\"dur\":\(Self.microseconds(max(duration, 0))),"
        event += "\"pid\":\(pid),\"tid\":\(tid)"
        if !args.isEmpty {
            event += ",\"args\":{" + args.map { "\(jsonStringLiteral($0.0)):\($0.1.json)" }.joined(separator: ",") + "}"
        }
        try append(event + "}")
    }

    /// A metadata event ("ph":"M"), e.g. `process_name` with args {"name": …} or
    /// `process_sort_index` with args {"sort_index": …}.
    public func metadata(_ name: String, pid: Int, tid: Int = 0, key: String = "name", value: TraceValue) throws {
        try append(
            "{\"name\":\(jsonStringLiteral(name)),\"ph\":\"M\",\"pid\":\(pid),\"tid\":\(tid),"
                + "\"args\":{\(jsonStringLiteral(key)):\(value.json)}}")
    }

    private func append(_ event: String) throws {
        guard !closed else { return }
        if !first { buffer.append(contentsOf: [UInt8(ascii: ","), UInt8(ascii: "\n")]) }
        first = false
        buffer.append(contentsOf: event.utf8)
        if buffer.count >= Self.flushBytes { try flush() }
    }

    /// Writes the buffered events to the file.
    public func flush() throws {
        guard !buffer.isEmpty, !closed else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        try buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw FileError("\(path): cannot write the trace (\(String(cString: strerror(errno))))")
                }
                offset += n
            }
        }
    }

    /// Closes the event list and the file; later events are dropped.
    public func finish() throws {
        guard !closed else { return }
        buffer.append(contentsOf: Array("\n]}\n".utf8))
        try flush()
        closed = true
    }

    /// Nanoseconds as microseconds with three decimals: "-12.345", "7.000".
    static func microseconds(_ nanoseconds: Int64) -> String {
        let sign = nanoseconds < 0 ? "-" : ""
        let magnitude = nanoseconds.magnitude
        let fraction = String(magnitude % 1000)
        return "\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}

/// An argument value of a trace event.
public enum TraceValue: Equatable, Sendable {
    case int(Int)
    case text(String)

    var json: String {
        switch self {
        case let .int(value): String(value)
        case let .text(value): jsonStringLiteral(value)
        }
    }
}
