import ConvoyEngine
import ConvoyInterop
import Foundation

/// A worker process's loop: a DEALER socket to the coordinator, hello with backoff until
/// welcomed (so start order does not matter), then steps until shutdown.
public struct WorkerRunner {
    public var endpoint: String
    public var threads: Int
    /// Seconds to keep trying to reach a coordinator before giving up.
    public var connectTimeout: Double = 300
    /// Seconds without any message from a coordinator (after joining) before giving up.
    public var idleTimeout: Double = 300
    /// CPU to pin the computing thread to (ZeroMQ's I/O thread stays free to run anywhere).
    public var cpu: Int?
    /// The coordinator's CURVE public key and this worker's key pair; nil: plain TCP.
    public var curve: (serverKey: String, keys: CurveKeyPair)?
    public var log: (String) -> Void

    public init(endpoint: String, threads: Int, log: @escaping (String) -> Void) {
        self.endpoint = endpoint; self.threads = threads; self.log = log
    }

    public func run() throws {
        let context = ZMQContext()
        let socket = try ZMQSocket(context: context, kind: .dealer)
        try socket.setMaxMessageSize(Wire.maxMessageBytes)
        try socket.setReconnectInterval(100, max: 5000)
        try socket.setImmediate()
        try socket.setHeartbeat(intervalMs: 1000, timeoutMs: 5000)
        if let curve { try socket.makeCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        try socket.connect(endpoint)
        // After the context exists, so its I/O thread is not pinned with us.
        if let cpu { try CPUAffinity.pinCurrentThread(to: cpu) }
        let hostName = ProcessInfo.processInfo.hostName
        let core = WorkerCore(hello: Hello(host: hostName, pid: getpid(), threads: threads))
        log("connecting to \(endpoint)")
        var backoff = 0.1
        var nextHello = Date()
        var lastHeard = Date()
        let started = Date()
        while !core.isFinished {
            if core.runID == nil && Date() >= nextHello {
                if try socket.send([core.helloMessage.encoded()], dontWait: true) {
                    nextHello = Date().addingTimeInterval(backoff)
                } else {
                    nextHello = Date().addingTimeInterval(backoff)
                }
                backoff = min(backoff * 2, 5)
                if Date().timeIntervalSince(started) > connectTimeout {
                    throw ClusterError("no coordinator answered at \(endpoint) within \(Int(connectTimeout)) s" + (curve == nil ? "" : " (with CURVE: is --server-key the coordinator's, and this worker's public key in its authorized keys?)"))
                }
            }
            guard let frames = try socket.receive(timeoutMs: 200) else {
                let silent = Date().timeIntervalSince(lastHeard)
                if core.runID != nil && silent > idleTimeout {
                    throw ClusterError("coordinator at \(endpoint) silent for \(Int(idleTimeout)) s")
                }
                // A quiet coordinator may have been restarted (say, resumed from a
                // checkpoint): say hello again so a new one admits this worker; the old one
                // just repeats its welcome.
                if core.runID != nil && silent > 2 && Date() >= nextHello {
                    try socket.send([core.helloMessage.encoded()], dontWait: true)
                    nextHello = Date().addingTimeInterval(2)
                }
                continue
            }
            lastHeard = Date()
            guard frames.count == 1 else {
                log("refused a message of \(frames.count) frames")
                continue
            }
            if let line = core.handle(frames[0], send: { try socket.send([$0.encoded()]) }) { log(line) }
        }
        // Let the last reply (the shutdown acknowledgement) leave before the process exits.
        try? socket.setLinger(milliseconds: 1000)
        socket.close()
        context.terminate()
        if let refusal = core.refusal { throw ClusterError(refusal) }
    }
}
