import CZMQ
import Foundation

/// CurveZMQ keys as Z85 text (40 characters for 32 bytes), the form `convoy keygen` writes.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public static func generate() throws -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: z85String(publicKey), secretKey: z85String(secretKey))
    }

    /// The pair of a secret key.
    public init(secretKey: String) throws {
        guard Self.isValidKey(secretKey) else { throw CurveKeyError("not a 40-character Z85 CURVE key") }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { throw ZMQError.last("zmq_curve_public") }
        self.init(publicKey: z85String(publicKey), secretKey: secretKey)
    }

    init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    public static func isValidKey(_ key: String) -> Bool {
        guard key.utf8.count == 40 else { return false }
        var bytes = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&bytes, key) != nil
    }

    /// Z85 text of a 32-byte binary key (as a ZAP request carries it).
    public static func z85(_ key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, key, 32) != nil else { return nil }
        return z85String(text)
    }
}

public struct CurveKeyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Moves a socket to the one thread that will use it.
private final class SocketHandover: @unchecked Sendable {
    let socket: ZMQSocket
    init(_ socket: ZMQSocket) { self.socket = socket }
}

private func z85String(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension ZMQSocket {
    /// This socket authenticates clients with CURVE; ZAP (see `ZAPAuthenticator`) decides who
    /// gets in.
    public func makeCurveServer(secretKey: String) throws {
        try setOption(ZMQ_CURVE_SERVER, int32: 1)
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8) + [0])
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array("convoy".utf8))
        // ZMQ_ZAP_ENFORCE_DOMAIN (93; zmq.h lists it as draft, libzmq 4.3.4 accepts it): with
        // it, a CURVE connection is refused when no ZAP handler answers, instead of admitted.
        // Where a library refuses the option the coordinator's own rule still holds: the
        // `ZAPAuthenticator` is bound before any CURVE socket exists.
        try? setOption(93, int32: 1)
    }

    /// This socket connects to a CURVE server whose public key is `serverKey`.
    public func makeCurveClient(serverKey: String, keys: CurveKeyPair) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8) + [0])
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(keys.publicKey.utf8) + [0])
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8) + [0])
    }
}

/// A ZAP request as the policy sees it: the security mechanism ("NULL", "PLAIN", "CURVE")
/// and, for CURVE, the client's public key in Z85.
public struct ZAPRequest: Sendable {
    public let mechanism: String
    public let curveKey: String?
    public init(mechanism: String, curveKey: String?) {
        self.mechanism = mechanism
        self.curveKey = curveKey
    }
}

/// A policy's answer: admit or not, and why (logged for refusals).
public struct ZAPDecision: Sendable {
    public let allowed: Bool
    public let reason: String
    public init(allowed: Bool, reason: String) {
        self.allowed = allowed
        self.reason = reason
    }
}

/// The ZAP handler (RFC 27) of a context: asks `policy` about each client and refuses (and
/// reports) those it turns away. Who may join is the caller's policy, not this wrapper's.
/// Runs on its own thread with its own socket, from before the server socket binds until
/// `stop()`.
public final class ZAPAuthenticator: @unchecked Sendable {
    private let context: ZMQContext
    private let policy: @Sendable (ZAPRequest) -> ZAPDecision
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var stopping = false
    private var monitorEndpoint: String?
    /// Bound on connections still in their handshake (see `ConnectionGuard`).
    private var guardSettings = (limit: Int.max, handshake: Duration.seconds(30))
    /// How often each refusal was seen: a worker retrying with a wrong key would otherwise
    /// log a line every few seconds. Bounded: past `maxReported` distinct lines, new ones
    /// are counted together, so strangers cannot grow it.
    private var refusals: [String: Int] = [:]
    static let maxReported = 1024
    /// Keys already logged as admitted (bounded like `refusals`).
    private var admitted: Set<String> = []
    private let finished = DispatchSemaphore(value: 0)

    public init(
        context: ZMQContext, policy: @escaping @Sendable (ZAPRequest) -> ZAPDecision,
        log: @escaping @Sendable (String) -> Void
    ) throws {
        self.context = context
        self.policy = policy
        self.log = log
        // Bound here, before any CURVE socket exists; then owned by the thread alone.
        let handover = SocketHandover(try ZMQSocket(context: context, kind: .reply))
        try handover.socket.bind("inproc://zeromq.zap.01")
        let thread = Thread { [self] in
            serve(handover.socket)
            handover.socket.close()
            finished.signal()
        }
        thread.name = "convoy-zap"
        thread.start()
    }

    /// Also reports peers that fail the handshake before ZAP is asked (a worker without
    /// CURVE keys, or with the wrong server key): libzmq's monitor events of `socket`. And
    /// cuts new connections while `maxHandshaking` others accepted less than `handshakeMs`
    /// ago are still open (`ConnectionGuard`), so strangers cannot hold more than that many.
    public func watchHandshakes(of socket: ZMQSocket, maxHandshaking: Int = .max, handshakeMs: Int32 = 30_000) throws {
        let endpoint = "inproc://convoy-handshake-monitor"
        try socket.monitor(
            endpoint: endpoint,
            events: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)
        lock.withLock {
            monitorEndpoint = endpoint
            guardSettings = (maxHandshaking, .milliseconds(handshakeMs))
        }
    }

    /// Stops the handler thread and waits for it; calling it again does nothing.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopping = true }
            return !stopping
        }
        if first { finished.wait() }
    }

    private func serve(_ socket: ZMQSocket) {
        var monitor: ZMQSocket?
        var connections = ConnectionGuard(limit: .max, handshake: .seconds(30))
        while !lock.withLock({ stopping }) {
            if monitor == nil, let endpoint = lock.withLock({ monitorEndpoint }) {
                monitor = try? ZMQSocket(context: context, kind: .pair)
                try? monitor?.connect(endpoint)
                let settings = lock.withLock { guardSettings }
                connections = ConnectionGuard(limit: settings.limit, handshake: settings.handshake)
            }
            let ready = (try? ZMQSocket.poll([socket] + (monitor.map { [$0] } ?? []), timeoutMs: 100)) ?? []
            if ready.count > 1 && ready[1], let event = try? monitor?.receive(timeoutMs: 0) {
                handle(event, connections: &connections)
            }
            guard ready.first == true, let request = try? socket.receive(timeoutMs: 0) else { continue }
            // version, request id, domain, address, identity, mechanism, credentials...
            guard request.count >= 6 else { continue }
            let address = String(decoding: request[3], as: UTF8.self)
            let mechanism = String(decoding: request[5], as: UTF8.self)
            let key = mechanism == "CURVE" && request.count >= 7 ? CurveKeyPair.z85(request[6]) : nil
            let decision = policy(ZAPRequest(mechanism: mechanism, curveKey: key))
            let (allowed, reason) = (decision.allowed, decision.reason)
            // Each key is its own user (as ssh logs a key's fingerprint): the coordinator reads
            // it back from every message (`User-Id`) and names workers by it.
            let user = allowed ? (key ?? "anonymous") : ""
            if !allowed {
                report("refused a connection from \(address): \(reason)")
            } else if admitted.count < Self.maxReported, admitted.insert(user).inserted {
                log("admitted a connection from \(address) as key \(user)")
            }
            let reply: [[UInt8]] = [
                request[0], request[1], Array((allowed ? "200" : "400").utf8), Array(reason.utf8),
                Array(user.utf8), [],
            ]
            _ = try? socket.send(reply)
        }
        monitor?.close()
    }

    /// A monitor event: 2 bytes event, 4 bytes value (little-endian; a descriptor for
    /// ACCEPTED and DISCONNECTED), then the endpoint.
    private func handle(_ frames: [[UInt8]], connections: inout ConnectionGuard) {
        guard frames.count >= 2, frames[0].count >= 6 else { return }
        let event = Int32(frames[0][0]) | Int32(frames[0][1]) << 8
        let value = (2..<6).reduce(UInt32(0)) { $0 | UInt32(frames[0][$1]) << (8 * UInt32($1 - 2)) }
        let endpoint = String(decoding: frames[1], as: UTF8.self)
        switch event {
        case ZMQ_EVENT_ACCEPTED:
            if connections.accepted(fd: Int32(bitPattern: value)) {
                report("cut a connection on \(endpoint): \(connections.limit) others are still in their handshake")
            }
        case ZMQ_EVENT_DISCONNECTED: connections.closed(fd: Int32(bitPattern: value))
        default: reportHandshakeFailure(event: event, value: value, endpoint: endpoint)
        }
    }

    private func reportHandshakeFailure(event: Int32, value: UInt32, endpoint: String) {
        let why =
            value == UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            ? "the peer has no CURVE keys"
            : value == UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
                ? "the peer's keys do not match (wrong server key?)"
                : event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                    ? "its key is not authorized"
                    : "handshake failed (event 0x\(String(event, radix: 16)), code 0x\(String(value, radix: 16)))"
        report("refused a connection on \(endpoint): \(why)")
    }

    /// Logs a refusal the 1st, 10th, 100th… time it happens.
    private func report(_ line: String) {
        let line = refusals[line] != nil || refusals.count < Self.maxReported ? line : "refused other connections"
        let count = (refusals[line] ?? 0) + 1
        refusals[line] = count
        var power = 1
        while power < count { power *= 10 }
        if power == count { log(count == 1 ? line : "\(line) (\(count) times)") }
    }
}
