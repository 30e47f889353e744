import ConvoyEngine
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// One log line as this process writes it: as text (the wording of the commands' lines
/// before structured logs, and `process: error: …` for errors, so every error names its
/// process) or as one JSON object. Pure, so tests check the rendering without a process.
struct LogRecord: Equatable {
    /// Seconds since 1970 (wall clock: a log line's time is for people and log stores).
    var time: Double
    var level: Logger.Level
    var component: String
    /// `coordinator@host:pid`, `w3@host:pid`… (`ProcessIdentity.name`).
    var process: String
    /// The start of a text line that is not an error (`ProcessIdentity.textPrefix`).
    var textPrefix: String
    /// The worker the line is about (on a worker: itself, once numbered).
    var worker: UInt32?
    var message: String

    func rendered(_ format: LogFormat) -> String {
        switch format {
        case .text: text
        case .json: json
        }
    }

    var text: String { level >= .error ? "\(process): error: \(message)" : "\(textPrefix): \(message)" }

    /// Keys in a fixed order (time first, message last) so the lines read well unparsed too.
    var json: String {
        var out = "{\"time\":\"\(Self.rfc3339(time))\",\"level\":\"\(level.rawValue)\""
        out += ",\"component\":\(jsonStringLiteral(component)),\"process\":\(jsonStringLiteral(process))"
        if let worker { out += ",\"worker\":\(worker)" }
        out += ",\"message\":\(jsonStringLiteral(message))}"
        return out
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-30T07:55:01.123Z`.
    static func rfc3339(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < 253_402_300_800 else { return "1970-01-01T00:00:00.000Z" }
        let whole = seconds.rounded(.down)
        var clock = time_t(whole)
        var parts = tm()
        gmtime_r(&clock, &parts)
        let milliseconds = min(999, Int(((seconds - whole) * 1000).rounded(.down)))
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), milliseconds)
    }
}

/// What the engine's and the cluster's log closures say, read for the structured fields they
/// do not carry: they pass plain lines (`log: (String) -> Void`, kept so the libraries need
/// no logging dependency and the hot-path files stay as they are).
enum LogText {
    /// Warnings: the lines that say so, and the coordinator's drops and refusals.
    static func level(of line: String) -> Logger.Level {
        for prefix in ["warning: ", "dropped ", "refused "] where line.hasPrefix(prefix) { return .warning }
        return .info
    }

    /// The number of the first worker a line names (`w3@host:pid`, the coordinator's name for
    /// a worker): `w`, 1 to 10 digits, `@`, at the start of the line or after a space or `(`.
    /// Peer text in a line comes after the name it follows (`dropped w3@host:pid: it …`).
    static func firstWorker(in line: String) -> UInt32? {
        let bytes = Array(line.utf8)
        var i = 0
        while i < bytes.count {
            defer { i += 1 }
            guard bytes[i] == UInt8(ascii: "w"), i == 0 || bytes[i - 1] == 0x20 || bytes[i - 1] == 0x28 else {
                continue
            }
            var j = i + 1
            var value: UInt64 = 0
            while j < bytes.count, j - i <= 10, (0x30...0x39).contains(bytes[j]) {
                value = value * 10 + UInt64(bytes[j] - 0x30)
                j += 1
            }
            if j > i + 1, j < bytes.count, bytes[j] == UInt8(ascii: "@"), value <= UInt64(UInt32.max) {
                return UInt32(value)
            }
        }
        return nil
    }
}

extension LogRecord {
    /// The `message` of a JSON log line (what `local` reads its coordinator's endpoint from).
    static func message(ofJSON line: String) -> String? {
        let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        return object?["message"] as? String
    }
}
