import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Ask a running coordinator who is connected, which step each worker is on, and whom it waits on.",
        discussion:
            "Connects like a worker (the same key flags) but never joins the run. SIGUSR1 to a coordinator prints the "
            + "same report on its stderr."
    )

    @Argument(help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.") var endpoint: String
    @Option(name: .customLong("server-key"), help: "The coordinator's CURVE public key file (its .pub).") var serverKey:
        String?
    @Option(help: "A CURVE secret key file whose public key the coordinator authorizes.") var key: String?
    @Flag(help: "Allow asking a non-loopback address without CURVE.") var insecure = false
    @Option(help: "Seconds to wait for the answer.") var timeout: Double = 5
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard Endpoint.isKnown(endpoint) else {
            throw ValidationError("\(peerText(endpoint)) is not \(Endpoint.schemesText)")
        }
        try checkSeconds("timeout", timeout)
        if Endpoint.isSharedMemory(endpoint) && (key != nil || serverKey != nil) {
            throw ValidationError(ErrorWording.sharedMemoryTakesNoCurve(flag: "convoy status", endpoint: endpoint))
        }
        guard (serverKey == nil) == (key == nil) else { throw ValidationError("--server-key and --key go together") }
        if key == nil && !insecure && !isLoopback(endpoint) {
            throw ValidationError(
                "refusing to ask \(endpoint) without CURVE: the answer names hosts and processes; give --server-key "
                    + "and --key (see convoy keygen), or --insecure on a trusted network")
        }
    }

    func run() throws {
        reportingErrors {
            var curve: (serverKey: String, keys: CurveKeyPair)?
            if let serverKey, let key {
                curve = (
                    try CurveKeyPair.readKey(path: serverKey, what: "--server-key"),
                    try CurveKeyPair(secretKey: try CurveKeyPair.readSecretKey(path: key, what: "--key"))
                )
            }
            let (runID, report) = try StatusClient.query(endpoint: endpoint, curve: curve, timeout: timeout)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let line = try encoder.encode(StatusLine(runID: runID, report: report))
                ProgressPrinter.line(String(decoding: line, as: UTF8.self))
            } else {
                ProgressPrinter.line(report.text(runID: runID))
            }
        }
    }
}

/// `convoy status --json`: the report's keys, the run id in hex, and the names of the workers
/// the current round waits on.
struct StatusLine: Encodable {
    let runID: UInt64
    let report: StatusReport

    enum Keys: String, CodingKey {
        case run
        case waitingOn = "waiting_on"
    }

    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(String(runID, radix: 16), forKey: .run)
        try container.encode(report.waitingOn.map(\.name), forKey: .waitingOn)
    }
}

/// SIGUSR1 asks the coordinator for its status on stderr: the dispatch source only raises a
/// flag (nothing runs in signal context, and the coordinator's state is read on its own
/// thread), which the coordinator's transport takes at its next poll, within a second.
final class StatusOnSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    private let source: DispatchSourceSignal

    init() {
        // Ignored by default, so only the dispatch source sees it (SIGUSR1 would otherwise end the process).
        signal(SIGUSR1, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        source.setEventHandler { [weak self] in self?.raise() }
        source.resume()
    }

    private func raise() { lock.withLock { raised = true } }

    /// True once per signal (several before a poll count as one).
    func take() -> Bool {
        lock.withLock {
            defer { raised = false }
            return raised
        }
    }
}

extension ClusterStepRunner {
    /// SIGUSR1 prints the status report on stderr, each line prefixed like the coordinator's log.
    func printStatusOnSIGUSR1(_ signals: StatusOnSignal, stepsPerEpoch: Int) {
        printStatus(when: signals.take, stepsPerEpoch: stepsPerEpoch) { text in
            ProgressPrinter.error(
                text.split(separator: "\n").map { "coordinator: status: \($0)" }.joined(separator: "\n"))
        }
    }
}

/// `convoy local` passes SIGUSR1 on to its coordinator, whose status report then comes out
/// with the coordinator's other lines on local's stderr. Started once the coordinator has said
/// it listens, by when it handles SIGUSR1 itself (before that the signal would end it; local
/// ignores it until then).
enum StatusSignalRelay {
    /// Kept for the life of the process: a released source stops delivering.
    nonisolated(unsafe) private static var source: DispatchSourceSignal?

    static func start(to coordinator: Process) {
        let pid = coordinator.processIdentifier
        signal(SIGUSR1, SIG_IGN)
        let relay = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        relay.setEventHandler { kill(pid, SIGUSR1) }
        relay.resume()
        source = relay
    }
}
