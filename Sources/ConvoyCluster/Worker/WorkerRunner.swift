import ConvoyEngine
import ConvoyInterop
import Foundation

/// When a worker says hello and when it gives up.
public struct WorkerTiming: Sendable {
    /// Seconds to keep trying to reach a coordinator before giving up.
    public var connectTimeout: Double = 300
    /// Seconds without any message from a coordinator (after joining) before giving up.
    public var idleTimeout: Double = 300
    /// The first hello's repeat interval; it doubles up to `maxHelloInterval`.
    public var firstHelloInterval = 0.1
    public var maxHelloInterval = 5.0
    /// Seconds of coordinator silence after which a joined worker says hello again (a
    /// restarted coordinator admits it; the old one just repeats its welcome), and how often.
    public var rehelloAfterSilence = 2.0
    /// How long one receive waits before the loop checks its clocks.
    public var pollMilliseconds = 200
    public init() {}
}

/// A worker's loop over any `WorkerTransport`: hello with backoff until welcomed (so start
/// order does not matter), then steps until shutdown; hello again when the coordinator goes
/// quiet. Tested with a scripted transport; `WorkerRunner` runs it over ZeroMQ.
public struct WorkerLoop {
    public var timing = WorkerTiming()
    public var endpoint: String
    /// Whether CURVE is in use, for the words of a failed connection.
    public var usesCurve = false
    public var log: (String) -> Void
    /// The time: monotonic, so a wall-clock jump cannot fire or postpone a timeout; tests drive a virtual one.
    public var now: () -> ContinuousClock.Instant = { ContinuousClock.now }
    /// Corrupts some results on purpose (`--inject-fault`, tests of audit mode only).
    public var fault: FaultInjection?
    public var gradientEncoding = GradientEncoding.varint
    /// Told the number a coordinator gave this worker, before the line that says so is logged.
    public var joined: (UInt32) -> Void = { _ in }

    public init(endpoint: String, log: @escaping (String) -> Void) {
        self.endpoint = endpoint
        self.log = log
    }

    public func run(_ core: WorkerCore, over transport: WorkerTransport) throws {
        // Timeouts stay Doubles, compared with elapsed seconds: a Duration made from an
        // infinite or NaN flag value would trap.
        func seconds(since instant: ContinuousClock.Instant) -> Double { instant.duration(to: now()).inSeconds }
        var interval = timing.firstHelloInterval
        var lastHello: ContinuousClock.Instant?
        var helloGap = 0.0
        var lastHeard = now()
        let started = now()
        while !core.isFinished {
            if core.runID == nil && lastHello.map({ seconds(since: $0) >= helloGap }) ?? true {
                try transport.send(core.helloMessage.encoded(), dontWait: true)
                (lastHello, helloGap) = (now(), interval)
                interval = min(interval * 2, timing.maxHelloInterval)
                if seconds(since: started) > timing.connectTimeout {
                    throw ClusterError.noCoordinator(
                        endpoint: endpoint, seconds: Int(timing.connectTimeout), curve: usesCurve)
                }
            }
            guard let frames = try transport.receive(timeoutMs: timing.pollMilliseconds) else {
                let silent = seconds(since: lastHeard)
                if core.runID != nil && silent > timing.idleTimeout {
                    throw ClusterError.coordinatorSilent(endpoint: endpoint, seconds: Int(timing.idleTimeout))
                }
                if core.runID != nil && silent > timing.rehelloAfterSilence
                    && lastHello.map({ seconds(since: $0) >= helloGap }) ?? true
                {
                    try transport.send(core.helloMessage.encoded(), dontWait: true)
                    (lastHello, helloGap) = (now(), timing.rehelloAfterSilence)
                }
                continue
            }
            lastHeard = now()
            guard frames.count == 1 else {
                log("refused a message of \(frames.count) frames")
                continue
            }
            let number = core.workerID
            let line = core.handle(
                frames[0],
                send: {
                    try transport.send(
                        (fault?.apply($0, log: log) ?? $0).encoded(gradients: gradientEncoding), dontWait: false)
                })
            if let id = core.workerID, id != number { joined(id) }
            // A refusal that ends the worker is its error, printed once when `run` throws it.
            if let line, core.refusal == nil { log(line) }
        }
        if let refusal = core.refusal { throw ClusterError.runRefused(reason: refusal) }
        if let reason = core.stopReason { throw ClusterError.coordinatorStopped(reason: reason) }
    }
}

/// A worker process: a connection to the coordinator (ZeroMQ or shared memory) and the loop over it.
public struct WorkerRunner {
    public var endpoint: String
    public var threads: Int
    public var timing = WorkerTiming()
    /// CPU to pin the computing thread to (ZeroMQ's I/O thread stays free to run anywhere).
    public var cpu: Int?
    /// Compute threads (`ComputeSlots`); with `cpu`, slot k is pinned to CPU `cpu + k`.
    public var slots = 1
    /// The coordinator's CURVE public key and this worker's key pair; nil: plain TCP.
    public var curve: (serverKey: String, keys: CurveKeyPair)?
    /// `--inject-fault` (tests only).
    public var fault: FaultInjection?
    /// The most memory a run may take; it also sizes the connection's largest message.
    public var memory = MemoryBound.hostDefault()
    public var gradientEncoding = GradientEncoding.varint
    public var log: (String) -> Void
    /// Told the number a coordinator gave this worker (`WorkerLoop.joined`).
    public var joined: (UInt32) -> Void = { _ in }

    public init(endpoint: String, threads: Int, log: @escaping (String) -> Void) {
        self.endpoint = endpoint
        self.threads = threads
        self.log = log
    }

    public func run() throws {
        let messageLimit = memory.connectionMessageLimit
        let transport = try makeWorkerTransport(endpoint: endpoint, curve: curve, maxMessageBytes: messageLimit)
        defer { transport.close() }
        // After the transport exists, so ZeroMQ's I/O thread is not pinned with us.
        if let cpu { try CPUAffinity.pinCurrentThread(to: cpu) }
        let core = WorkerCore(
            hello: Hello(host: ProcessInfo.processInfo.hostName, pid: getpid(), threads: threads),
            slots: slots, cpus: cpu.map { first in (0..<slots).map { first + $0 * threads } }, memory: memory,
            messageLimit: messageLimit)
        log("connecting to \(endpoint); memory bound \(memory), messages up to \(mebibytes(messageLimit))")
        var loop = WorkerLoop(endpoint: endpoint, log: log)
        loop.timing = timing
        loop.usesCurve = curve != nil
        loop.fault = fault
        loop.gradientEncoding = gradientEncoding
        loop.joined = joined
        try loop.run(core, over: transport)
    }
}
