import ConvoyEngine
import ConvoyInterop

/// A peer's address as the coordinator's transport knows it (a ZeroMQ routing id).
public typealias PeerID = [UInt8]

/// What the coordinator needs from a network: send a message to a peer, receive the next
/// frame from any peer. ZeroMQ in production; an in-memory loop in tests.
public protocol CoordinatorTransport: AnyObject {
    /// Queues a message for a peer and returns at once, never waiting on the peer. Returns
    /// the bytes queued: the encoded frame's size, or 0 when the peer is unknown or gone (a
    /// frame is never empty). Throws `CoordinatorSendError.queueFull` when the peer's queue
    /// is full (it does not read).
    @discardableResult
    func send(_ message: Message, to peer: PeerID) throws -> Int
    /// The next frame and its sender, or nil after `timeoutMs` without one.
    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])?
    /// The CURVE key (ZAP user id) the sender of the frame just received authenticated
    /// with, when `peer` is that sender and the transport knows it.
    func key(of peer: PeerID) -> String?
}

extension CoordinatorTransport {
    public func key(of peer: PeerID) -> String? { nil }
}

/// A coordinator transport that is only a way to reach it: its endpoint and its end.
public protocol ListeningTransport: CoordinatorTransport {
    var endpoint: String { get }
    /// Lets queued messages leave (for a bounded time), then closes.
    func close()
}

public enum CoordinatorSendError: Error, Equatable {
    /// The peer's send queue is at its high-water mark: it is not reading what it is sent.
    case queueFull
}

/// What one run lets a peer cost the coordinator's socket (docs/PROTOCOL.md, "Admission").
public struct CoordinatorLimits: Sendable, Equatable {
    /// Largest message accepted from any connection, authenticated or not; a bigger one
    /// closes that connection before its bytes are kept.
    public var maxMessageBytes: Int64
    /// Messages queued per peer before a send fails with `queueFull`.
    public var sendQueueMessages: Int32
    /// Milliseconds a new connection has to finish its handshake.
    public var handshakeMs: Int32 = 5000
    /// Most connections younger than `handshakeMs` held open at once (CURVE coordinators:
    /// the ZAP authenticator's monitor cuts the others).
    public var maxHandshaking = 64

    public init(maxMessageBytes: Int64, sendQueueMessages: Int32) {
        self.maxMessageBytes = maxMessageBytes
        self.sendQueueMessages = sendQueueMessages
    }

    /// No run-specific bound: the protocol's largest message (for tools such as the bench).
    public static let protocolMaximum = CoordinatorLimits(maxMessageBytes: Wire.maxMessageBytes, sendQueueMessages: 64)

    /// The limits of a run of a model with `parameters` parameters and `workers` workers.
    /// The largest message a worker sends is a result bucket of every parameter as zigzag
    /// varints (at most 10 bytes each) after the 40-byte header, 40 bytes of result fields and
    /// a timeline appendix (at most 2 + 290 bytes); hellos (≤ 1,074 bytes) and refusals (cut
    /// at 64 KiB here) are smaller. One step sends a worker one slice, plus one more for each
    /// slice it takes over from a dropped worker, plus a welcome: `workers + 8` messages hold
    /// a step with room to spare.
    public static func forRun(parameters: Int, workers: Int) -> CoordinatorLimits {
        let (gradient, overflow) = parameters.multipliedReportingOverflow(by: 10)
        let result =
            overflow
            ? Wire.maxMessageBytes : min(Int64(gradient) + 80 + Int64(SpanCoding.capacity), Wire.maxMessageBytes)
        let queue = Int32(clamping: min(max(workers, 1), Int(Wire.maxWorkers)) + 8)
        return CoordinatorLimits(maxMessageBytes: max(result, 64 << 10), sendQueueMessages: queue)
    }

    /// The limits of a run of the zoo's `model` (the coordinator's and the benchmark's).
    public static func forRun(model: String, workers: Int) throws -> CoordinatorLimits {
        forRun(parameters: try Architecture(try ModelZoo.spec(named: model)).parameterCount, workers: workers)
    }
}

/// The coordinator's ROUTER socket.
public final class ZMQCoordinatorTransport: ListeningTransport {
    let socket: ZMQSocket
    public let endpoint: String
    /// The last message's sender and its ZAP user id (one entry: it is asked right after).
    private var lastUser: (peer: PeerID, user: String)?

    /// With `curveSecretKey`, only CURVE clients that the context's `ZAPAuthenticator`
    /// admits can connect; a CURVE key without an authenticator is refused (fail closed).
    public init(
        context: ZMQContext, bind: String, curveSecretKey: String? = nil, authenticator: ZAPAuthenticator? = nil,
        limits: CoordinatorLimits = .protocolMaximum
    ) throws {
        guard curveSecretKey == nil || authenticator != nil else {
            throw CurveKeyError("a CURVE coordinator needs a ZAP authenticator (authorized keys)")
        }
        socket = try ZMQSocket(context: context, kind: .router)
        if let curveSecretKey { try socket.makeCurveServer(secretKey: curveSecretKey) }
        try authenticator?.watchHandshakes(
            of: socket, maxHandshaking: limits.maxHandshaking, handshakeMs: limits.handshakeMs)
        // Every option below is copied into the listener at bind: it holds for every
        // connection, from its first byte, before CURVE or ZAP have said who it is.
        try socket.setMaxMessageSize(limits.maxMessageBytes)
        try socket.setSendHighWaterMark(limits.sendQueueMessages)
        try socket.setHandshakeTimeout(limits.handshakeMs)
        socket.setReadBatch(1 << 16)
        try socket.setRouterMandatory()
        if Endpoint.isIPv6(bind) { try socket.enableIPv6() }
        try socket.setHeartbeat(intervalMs: 1000, timeoutMs: 5000)
        // The final shutdown messages must leave before the process exits; messages to
        // peers that are gone are dropped at once, so this never waits on a dead worker.
        try socket.setLinger(milliseconds: 2000)
        try socket.bind(bind)
        endpoint = socket.lastEndpoint
    }

    /// Closes the socket; the context's `terminate()` then waits for the last messages.
    public func close() { socket.close() }

    public func send(_ message: Message, to peer: PeerID) throws -> Int {
        let frame = message.encoded()
        switch try socket.trySend([peer, frame], dontWait: true) {
        case .sent: return frame.count
        case .unroutable: return 0
        case .queueFull: throw CoordinatorSendError.queueFull
        }
    }

    public func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
        // Routing id and one frame are kept; the frames of a longer message are freed as they
        // are read.
        guard let message = try socket.receive(timeoutMs: timeoutMs, keeping: 2) else { return nil }
        lastUser = message.userID.flatMap { $0.isEmpty ? nil : (message.frames.first ?? [], $0) }
        guard message.frames.count == 2, message.discardedFrames == 0 else {
            // A peer that sends multi-frame messages is not speaking this protocol; give
            // the caller an undecodable frame so it is refused and logged.
            return (message.frames.first ?? [], [])
        }
        return (message.frames[0], message.frames[1])
    }

    public func key(of peer: PeerID) -> String? { lastUser?.peer == peer ? lastUser?.user : nil }
}
