#if canImport(Glibc)
    import Glibc
#endif

/// The run's timeline (`--trace FILE`, docs/OBSERVABILITY.md "Timeline"): spans of this
/// process and of its workers on one time axis, nanoseconds since the timeline was made on
/// this process's monotonic clock, streamed to a Chrome trace file. This process is pid 1;
/// each worker process gets the next pid the first time it reports spans.
///
/// Tracing is diagnostics: a write that fails (a full disk) is logged once and ends the trace,
/// never the training.
public final class Timeline {
    public let writer: TraceWriter
    /// Time zero of the trace.
    public let epoch = ContinuousClock.now
    /// This process: pid 1, named e.g. "coordinator@host:4242".
    public static let ownPID = 1
    private var pids: [String: Int] = [:]
    private let log: (String) -> Void
    private var failed = false
    /// Most processes named in one trace: a run has at most 4,096 workers live at once, and
    /// workers that come back as new processes past this bound are not traced (logged once).
    public static let maxProcesses = 8192

    /// Opens `path` (a bad path fails here) and names this process `role@host:pid`.
    public init(path: String, role: String, log: @escaping (String) -> Void) throws {
        writer = try TraceWriter(path: path)
        self.log = log
        _ = process(named: "\(role)@\(Self.hostName()):\(getpid())")
        guarded { try writer.metadata("thread_name", pid: Self.ownPID, tid: 1, value: .text("main")) }
    }

    /// Nanoseconds from the trace's start to `instant`.
    public func nanoseconds(_ instant: ContinuousClock.Instant) -> Int64 {
        let parts = epoch.duration(to: instant).components
        return parts.seconds &* 1_000_000_000 &+ parts.attoseconds / 1_000_000_000
    }

    /// The pid of the process named `name` (its `process_name` metadata is written the first
    /// time), or nil once `maxProcesses` are named.
    public func process(named name: String) -> Int? {
        if let pid = pids[name] { return pid }
        guard pids.count < Self.maxProcesses else {
            if pids.count == Self.maxProcesses {
                log("trace: more than \(Self.maxProcesses) processes; the spans of later ones are not traced")
                pids[""] = 0  // counts as the note, once
            }
            return nil
        }
        let pid = pids.count + 1
        pids[name] = pid
        guarded {
            try writer.metadata("process_name", pid: pid, value: .text(name))
            try writer.metadata("process_sort_index", pid: pid, key: "sort_index", value: .int(pid))
        }
        return pid
    }

    /// A span of this process between two instants.
    public func span(
        _ name: String, from start: ContinuousClock.Instant, to end: ContinuousClock.Instant,
        args: [(String, TraceValue)] = []
    ) {
        let begin = nanoseconds(start)
        span(name, category: "step", pid: Self.ownPID, start: begin, duration: nanoseconds(end) - begin, args: args)
    }

    /// A span of any process, in nanoseconds on the trace's axis.
    public func span(
        _ name: String, category: String, pid: Int, tid: Int = 1, start: Int64, duration: Int64,
        args: [(String, TraceValue)] = []
    ) {
        guarded {
            try writer.complete(
                name, category: category, pid: pid, tid: tid, start: start, duration: duration, args: args)
        }
    }

    /// The events so far go to the file (once a step: a crash loses at most the current one).
    public func flush() { guarded { try writer.flush() } }

    /// Closes the trace's JSON at the end of the run.
    public func finish() { guarded { try writer.finish() } }

    private func guarded(_ body: () throws -> Void) {
        guard !failed else { return }
        do { try body() } catch {
            failed = true
            log("trace: \(error); the trace ends here, training goes on")
        }
    }

    static func hostName() -> String {
        peerText(localHostName(), limit: 255)
    }
}

extension Timeline {
    /// The end of training step `step`: its optimizer span and the "step N" span enclosing
    /// the step's other spans of this process; the events so far go to the file.
    public func stepDone(_ step: Int, started: ContinuousClock.Instant, optimizing: ContinuousClock.Instant) {
        let end = ContinuousClock.now
        let args: [(String, TraceValue)] = [("step", .int(step))]
        span("optimizer", from: optimizing, to: end, args: args)
        span("step \(step)", from: started, to: end, args: args)
        flush()
    }
}
