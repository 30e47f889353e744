import Foundation
import Testing

/// `--trace FILE` (docs/OBSERVABILITY.md "Timeline"): real runs of the built binary write a
/// Chrome trace whose every event is well formed, whose spans nest in their step's span (the
/// workers' within the clock-offset error bound), and which covers every step.
@Suite(.serialized) struct TimelineTests {
    /// 640 samples in batches of 64 for 2 epochs: steps 0…19.
    static let quick = [
        "--epochs", "2", "--train-samples", "640", "--test-samples", "200", "--seed", "5", "--data", mnistDirectory,
    ]
    static let steps = 20

    struct Span {
        let name: String
        let category: String
        let pid: Int
        let start: Double
        let end: Double
        let step: Int?
        let evaluation: Int?
        /// Workers' spans: half the round trip of the clock estimate, in µs.
        let clockError: Double
    }

    /// The trace's spans and process names, after checking every event's fields and types.
    func load(_ path: String) throws -> (spans: [Span], processes: [Int: String]) {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasSuffix("]}\n"), "a finished run closes the JSON")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let events = try #require(root["traceEvents"] as? [[String: Any]])
        var spans: [Span] = []
        var processes: [Int: String] = [:]
        for event in events {
            let name = try #require(event["name"] as? String, "\(event)")
            let phase = try #require(event["ph"] as? String, "\(event)")
            let pid = try #require(event["pid"] as? Int, "\(event)")
            #expect(event["tid"] is Int, "\(event)")
            // Every event has args but the coordinator's "evaluate" span.
            let args = event["args"] as? [String: Any] ?? [:]
            #expect(event["args"] is [String: Any] || name == "evaluate", "\(event)")
            switch phase {
            case "M":
                if name == "process_name" { processes[pid] = try #require(args["name"] as? String) }
                if name == "process_sort_index" { #expect(args["sort_index"] as? Int == pid) }
            case "X":
                let ts = try #require(event["ts"] as? Double, "\(event)")
                let dur = try #require(event["dur"] as? Double, "\(event)")
                #expect(dur >= 0 && ts >= -1_000_000, "\(event)")
                let step = args["step"] as? Int
                let evaluation = args["evaluation"] as? Int
                #expect(
                    (step == nil) != (evaluation == nil) || name == "evaluate", "a span belongs to one round: \(event)")
                spans.append(
                    Span(
                        name: name, category: try #require(event["cat"] as? String), pid: pid, start: ts,
                        end: ts + dur, step: step, evaluation: evaluation,
                        clockError: Double(args["clock_error_us"] as? Int ?? 0)))
            default:
                Issue.record("unexpected phase \(phase) in \(event)")
            }
        }
        return (spans, processes)
    }

    /// Steps 0..<steps each have one "step N" span of pid 1; returns them by step.
    func stepSpans(_ spans: [Span]) throws -> [Int: Span] {
        let steps = spans.filter { $0.pid == 1 && $0.name.hasPrefix("step ") }
        let byStep = Dictionary(steps.map { ($0.step ?? -1, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(steps.count == Self.steps && Set(byStep.keys) == Set(0..<Self.steps), "no step missing or repeated")
        for (step, span) in byStep { #expect(span.name == "step \(step)") }
        return byStep
    }

    /// `inner` lies within `outer`, give or take `tolerance` µs (plus 2 µs of rounding).
    func nests(_ inner: Span, in outer: Span, tolerance: Double = 0) -> Bool {
        inner.start >= outer.start - tolerance - 2 && inner.end <= outer.end + tolerance + 2
    }

    @Test func localWithTwoWorkersTracesEveryStepOfEveryWorker() throws {
        let dir = NSTemporaryDirectory() + "convoy-trace-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = dir + "/run.json"
        let run = try runConvoy(
            ["local", "--workers", "2", "--out", dir + "/m.convoy", "--trace", trace, "--json"] + Self.quick,
            timeout: 300)
        try #require(run.status == 0, "\(run.stderr)")
        let (spans, processes) = try load(trace)
        #expect(processes[1]?.wholeMatch(of: /coordinator@.+:\d+/) != nil, "\(processes)")
        let workers = processes.filter { $0.value.wholeMatch(of: /w\d+@.+:\d+/) != nil }.map(\.key)
        #expect(workers.count == 2, "\(processes)")
        let steps = try stepSpans(spans)
        for (step, outer) in steps {
            let own = spans.filter { $0.pid == 1 && $0.step == step }
            for phase in ["send", "wait", "sum", "optimizer"] {
                let found = own.filter { $0.name == phase }
                #expect(found.count == 1, "coordinator \(phase) of step \(step)")
                for span in found { #expect(nests(span, in: outer), "coordinator \(phase) of step \(step)") }
            }
            for pid in workers {
                let mine = spans.filter { $0.pid == pid && $0.step == step && $0.category == "worker" }
                for phase in ["forward", "head backward", "trunk backward"] {
                    #expect(mine.filter { $0.name == phase }.count == 1, "\(processes[pid]!) \(phase) of step \(step)")
                }
                // The head's send within the step; the last bucket's, reported with the next round.
                #expect(mine.filter { $0.name == "send" }.count == 2, "\(processes[pid]!) sends of step \(step)")
                for span in mine where span.name != "idle" {
                    // A send starts in its step; the last one's end is when the worker's call
                    // returned, which may be after the coordinator had the bytes and moved on.
                    let checked =
                        span.name == "send"
                        ? Span(
                            name: span.name, category: span.category, pid: span.pid, start: span.start, end: span.start,
                            step: span.step, evaluation: nil, clockError: span.clockError) : span
                    #expect(
                        nests(checked, in: outer, tolerance: span.clockError),
                        "\(processes[pid]!) \(span.name) of step \(step): \(span) outside \(outer)")
                    #expect(span.clockError < 1_000_000, "a loopback round trip is under a second")
                }
                // The idle time before a step ends at its arrival, inside the step.
                for idle in mine where idle.name == "idle" {
                    #expect(
                        idle.end >= outer.start - idle.clockError - 2 && idle.end <= outer.end + idle.clockError + 2)
                }
                if step > 0 { #expect(mine.contains { $0.name == "idle" }, "idle before step \(step)") }
            }
        }
        // Evaluation rounds (one per epoch) have their spans too.
        #expect(spans.filter { $0.name == "evaluate" && $0.pid == 1 }.count == 2)
        for pid in workers {
            #expect(Set(spans.filter { $0.pid == pid && $0.name == "forward" }.compactMap(\.evaluation)) == [1, 2])
        }
    }

    @Test func trainTracesItsLocalPhases() throws {
        let dir = NSTemporaryDirectory() + "convoy-trace-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = dir + "/train.json"
        let run = try runConvoy(["train", "--out", dir + "/m.convoy", "--trace", trace, "--json"] + Self.quick)
        try #require(run.status == 0, "\(run.stderr)")
        let (spans, processes) = try load(trace)
        #expect(processes.count == 1 && processes[1]?.wholeMatch(of: /train@.+:\d+/) != nil, "\(processes)")
        for (step, outer) in try stepSpans(spans) {
            for phase in ["forward", "backward", "optimizer"] {
                let found = spans.filter { $0.step == step && $0.name == phase }
                #expect(found.count == 1 && found.allSatisfy { nests($0, in: outer) }, "\(phase) of step \(step)")
            }
        }
    }

    /// A path that cannot be written fails at the start, with one line naming the flag and the
    /// path, before the data is read (the data directory here does not exist either).
    @Test func aBadTracePathFailsAtTheStart() throws {
        for command in ["train", "local"] {
            let run = try runConvoy(
                [
                    command, "--trace", "/nonexistent-convoy-dir/t.json", "--data", "/nonexistent-convoy-data",
                    "--out", NSTemporaryDirectory() + "convoy-unused-\(UUID().uuidString).convoy",
                ],
                timeout: 60)
            #expect(run.status != 0)
            let lines = run.stderr.split(separator: "\n").filter { $0.contains("--trace") }
            #expect(
                lines.count == 1 && lines[0].contains("/nonexistent-convoy-dir/t.json"), "\(command): \(run.stderr)")
            #expect(!run.stderr.contains("nonexistent-convoy-data"), "\(command): \(run.stderr)")
        }
    }

    /// A process killed mid-run leaves the events of its finished steps, each complete: the
    /// file plus the closing `]}` is valid JSON (docs/OBSERVABILITY.md "Streaming").
    @Test func aKilledRunLeavesAnEventPrefix() throws {
        let dir = NSTemporaryDirectory() + "convoy-trace-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = dir + "/killed.json"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: convoyBinary)
        process.arguments = [
            "train", "--out", dir + "/m.convoy", "--trace", trace, "--json", "--epochs", "50", "--train-samples",
            "6400", "--test-samples", "100", "--data", mnistDirectory,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let deadline = Date().addingTimeInterval(120)
        func stepsWritten() -> Bool {
            ((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").contains("\"name\":\"step 3\"")
        }
        while process.isRunning && !stepsWritten() && Date() < deadline { usleep(20_000) }
        try #require(process.isRunning, "the run ended before it could be killed")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let text = try String(contentsOfFile: trace, encoding: .utf8)
        #expect(!text.hasSuffix("]}\n"))
        let repaired = try JSONSerialization.jsonObject(with: Data((text + "\n]}\n").utf8)) as? [String: Any]
        let events = try #require(repaired?["traceEvents"] as? [[String: Any]])
        #expect(events.contains { $0["name"] as? String == "step 3" })
        #expect(events.allSatisfy { $0["ph"] as? String == "M" || $0["dur"] is Double })
    }
}
