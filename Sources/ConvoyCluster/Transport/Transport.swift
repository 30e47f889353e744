import ConvoyEngine
import ConvoyInterop

/// A peer's address as the coordinator's transport knows it (a ZeroMQ routing id).
public typealias PeerID = [UInt8]

/// What the coordinator needs from a network: send a message to a peer, receive the next
/// frame from any peer. ZeroMQ in production; an in-memory loop in tests.
public protocol CoordinatorTransport: AnyObject {
    /// Returns the bytes sent: the encoded frame's size, or 0 when the peer is unknown or
    /// gone (a frame is never empty).
    @discardableResult
    func send(_ message: Message, to peer: PeerID) throws -> Int
    /// The next frame and its sender, or nil after `timeoutMs` without one.
    func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])?
}

/// The coordinator's ROUTER socket.
public final class ZMQCoordinatorTransport: CoordinatorTransport {
    let socket: ZMQSocket
    public let endpoint: String

    /// With `curveSecretKey`, only CURVE clients that the context's `ZAPAuthenticator`
    /// admits can connect.
    public init(
        context: ZMQContext, bind: String, curveSecretKey: String? = nil, authenticator: ZAPAuthenticator? = nil
    ) throws {
        socket = try ZMQSocket(context: context, kind: .router)
        if let curveSecretKey { try socket.makeCurveServer(secretKey: curveSecretKey) }
        try authenticator?.watchHandshakes(of: socket)
        try socket.setMaxMessageSize(Wire.maxMessageBytes)
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
        return try socket.send([peer, frame]) ? frame.count : 0
    }

    public func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
        guard let frames = try socket.receive(timeoutMs: timeoutMs) else { return nil }
        guard frames.count == 2 else {
            // A peer that sends multi-frame messages is not speaking this protocol; give
            // the caller an undecodable frame so it is refused and logged.
            return (frames.first ?? [], [])
        }
        return (frames[0], frames[1])
    }
}
