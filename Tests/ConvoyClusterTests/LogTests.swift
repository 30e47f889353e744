@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Logging
import Testing
@testable import convoy

/// Structured logs (issue 11): the JSON lines parse with their fields, hostile text cannot
/// break a line or forge one, error lines name their process, and the worker a line is about
/// is found the same way the coordinator names it.
@Suite struct LogTests {
    static let hostile = "a\"b\\c\nd\r{\"level\":\"error\"}\t\u{1B}[31m\u{0}\u{7F}\u{2028}é漢"

    func record(_ message: String, level: Logger.Level = .info, worker: UInt32? = 3) -> LogRecord {
        LogRecord(
            time: 1_700_000_000.123_4, level: level, component: "coordinator", process: "coordinator@h:12",
            textPrefix: "coordinator", worker: worker, message: message)
    }

    static func object(_ line: String) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(value as? [String: Any], "not an object: \(line)")
    }

    @Test func aJSONLineHasEveryFieldInOrder() throws {
        let line = record("dropped w3@h:9: it is unreachable", level: .warning).json
        #expect(!line.contains("\n"))
        let object = try Self.object(line)
        #expect(object["time"] as? String == "2023-11-14T22:13:20.123Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["component"] as? String == "coordinator")
        #expect(object["process"] as? String == "coordinator@h:12")
        #expect(object["worker"] as? Int == 3)
        #expect(object["message"] as? String == "dropped w3@h:9: it is unreachable")
        #expect(object.count == 6)
        let keys = ["time", "level", "component", "process", "worker", "message"]
        let positions = keys.map { line.range(of: "\"\($0)\":")!.lowerBound }
        #expect(positions == positions.sorted())
        // No worker: no key (not null, not 0).
        #expect(try Self.object(record("listening", worker: nil).json)["worker"] == nil)
    }

    /// Quotes, backslashes, newlines, escapes, NUL, DEL and U+2028 in a message: one line,
    /// valid JSON, and the message comes back exactly.
    @Test func hostileTextStaysInsideItsString() throws {
        let line = record(Self.hostile).json
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0.value == 0x2028 })
        let object = try Self.object(line)
        #expect(object["message"] as? String == Self.hostile)
        #expect(object["level"] as? String == "info")
        #expect(jsonStringLiteral("\u{1}") == "\"\\u0001\"")
        // A peer's host through peerText, then through JSON: still one line, still the same text.
        let name = "w1@\(peerText(Self.hostile)):4"
        #expect(try Self.object(record("\(name) joined").json)["message"] as? String == "\(name) joined")
    }

    @Test func timesAreRFC3339InUTCWithMilliseconds() {
        #expect(LogRecord.rfc3339(0) == "1970-01-01T00:00:00.000Z")
        #expect(LogRecord.rfc3339(1_700_000_000.999_9) == "2023-11-14T22:13:20.999Z")
        #expect(LogRecord.rfc3339(951_782_400.5) == "2000-02-29T00:00:00.500Z")
        let now = LogRecord.rfc3339(Date().timeIntervalSince1970)
        #expect(now.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
    }

    @Test func textErrorsNameTheProcessAndOtherLinesKeepTheirWording() {
        #expect(
            record("no coordinator answered", level: .error).text == "coordinator@h:12: error: no coordinator answered")
        #expect(record("listening on ipc:///x").text == "coordinator: listening on ipc:///x")
        #expect(record("dropped w3@h:9", level: .warning).text == "coordinator: dropped w3@h:9")
    }

    @Test func processNames() {
        let worker = ProcessIdentity(component: "worker", host: "node7", pid: 4242)
        #expect(worker.name == "worker@node7:4242")
        #expect(worker.textPrefix == "worker 4242")
        worker.workerID = 3
        #expect(worker.name == "w3@node7:4242")
        #expect(ProcessIdentity(component: "coordinator", host: "h", pid: 1).name == "coordinator@h:1")
        #expect(ProcessIdentity(component: "local", host: "h", pid: 1).textPrefix == "convoy local")
        #expect(ProcessIdentity(component: "evaluate", host: "h", pid: 1).textPrefix == "convoy")
    }

    @Test func theWorkerALineNamesIsTheFirstNameOfThatShape() {
        #expect(LogText.firstWorker(in: "dropped w3@h:9: it is unreachable") == 3)
        #expect(LogText.firstWorker(in: "w12@h:9 joined (2 live)") == 12)
        #expect(LogText.firstWorker(in: "audit: w1@a:1, w2@b:2 disagree") == 1)
        #expect(LogText.firstWorker(in: "timed out (w0@h:1)") == 0)
        #expect(LogText.firstWorker(in: "refused a worker with key ab.w1@x") == nil)
        #expect(LogText.firstWorker(in: "w4294967296@h:1") == nil)
        #expect(LogText.firstWorker(in: "w@h:1, w3x@h, w3") == nil)
        #expect(LogText.firstWorker(in: "listening on ipc:///tmp/w1") == nil)
        #expect(LogText.level(of: "dropped w3@h:9") == .warning)
        #expect(LogText.level(of: "warning: no CURVE") == .warning)
        #expect(LogText.level(of: "w3@h:9 joined") == .info)
    }

    /// Through swift-log: a handler of each format, the worker from metadata or from the
    /// process's own number, and exactly one line per event.
    @Test func theHandlerWritesOneLinePerEvent() throws {
        let lines = Lines()
        let identity = ProcessIdentity(component: "worker", host: "h", pid: 5)
        let json = Logger(label: "worker") {
            ConvoyLogHandler(component: $0, format: .json, identity: identity, write: lines.append)
        }
        json.info("connecting\nto x")
        identity.workerID = 2
        json.error("no coordinator")
        json.warning("about another", metadata: ["worker": "7"])
        json.debug("below the level")
        let text = Logger(label: "worker") {
            ConvoyLogHandler(component: $0, format: .text, identity: identity, write: lines.append)
        }
        text.error("gone silent")
        let all = lines.all
        #expect(all.count == 4 && all.allSatisfy { $0.hasSuffix("\n") && $0.dropLast().allSatisfy { $0 != "\n" } })
        let objects = try all.prefix(3).map { try Self.object(String($0.dropLast())) }
        #expect(objects[0]["process"] as? String == "worker@h:5" && objects[0]["worker"] == nil)
        #expect(objects[0]["message"] as? String == "connecting\nto x")
        #expect(objects[1]["process"] as? String == "w2@h:5" && objects[1]["worker"] as? Int == 2)
        #expect(objects[1]["level"] as? String == "error" && objects[1]["component"] as? String == "worker")
        #expect(objects[2]["worker"] as? Int == 7)
        #expect(all[3] == "w2@h:5: error: gone silent\n")
    }

    /// The worker learns its number from the welcome before the "joined run" line is logged,
    /// so that line already names it `w4@…`; a new number from a restarted coordinator too.
    @Test func aWorkerIsToldItsNumberBeforeItsJoinLine() throws {
        let transport = ScriptedWorkerTransport()
        func welcome(run: UInt64, id: UInt32) -> [UInt8] {
            let payload = Welcome(
                workerID: id, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
            return Message(runID: run, workerID: id, payload: .welcome(payload)).encoded()
        }
        var due: [(Double, [UInt8])] = [
            (0.1, welcome(run: 7, id: 4)), (0.2, welcome(run: 7, id: 4)), (9, welcome(run: 8, id: 1)),
            (10, Message(runID: 8, payload: .shutdown).encoded()),
        ]
        transport.script = { _, now in
            guard let next = due.first, now >= next.0 else { return nil }
            due.removeFirst()
            return next.1
        }
        var events: [String] = []
        var loop = WorkerLoopTests.loop(transport)
        loop.log = { events.append("log " + $0.split(separator: " ").prefix(2).joined(separator: " ")) }
        loop.joined = { events.append("joined \($0)") }
        try loop.run(WorkerCore(hello: Hello(host: "h", pid: 1, threads: 1)), over: transport)
        #expect(
            events == ["joined 4", "log joined run", "joined 1", "log joined run", "log coordinator finished"],
            "\(events)")
    }

    @Test func theFormatAndComponentAreReadBeforeParsing() {
        #expect(LogSetup.format(in: ["convoy", "worker", "--log-format", "json"]) == .json)
        #expect(LogSetup.format(in: ["convoy", "local", "--log-format=json", "--log-format", "text"]) == .text)
        #expect(LogSetup.format(in: ["convoy", "train", "--log-format", "xml"]) == .text)
        #expect(LogSetup.format(in: ["convoy", "train", "--", "--log-format", "json"]) == .text)
        #expect(LogSetup.format(in: ["convoy", "train", "--log-format"]) == .text)
        #expect(LogSetup.component(in: ["convoy", "coordinator", "--bind", "x"]) == "coordinator")
        #expect(LogSetup.component(in: ["convoy", "\u{1B}[31mworker"]) == "convoy")
        #expect(LogSetup.component(in: ["convoy"]) == "convoy")
        #expect(LogRecord.message(ofJSON: record("listening on ipc:///a\"b").json) == "listening on ipc:///a\"b")
    }
}

/// Lines a handler wrote, from any thread.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var all: [String] { lock.withLock { lines } }
    @Sendable func append(_ line: String) { lock.withLock { lines.append(line) } }
}
