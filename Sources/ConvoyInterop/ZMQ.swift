import CZMQ
#if canImport(Glibc)
    import Glibc
#endif

/// A libzmq failure, with the operation and zmq's reason.
public struct ZMQError: Error, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public var description: String { "\(operation): \(String(cString: zmq_strerror(code)))" }
    public var isInterrupted: Bool { code == EINTR }

    static func last(_ operation: String) -> ZMQError { ZMQError(operation: operation, code: zmq_errno()) }
}

/// A ZeroMQ context. Thread-safe, so it may be shared; sockets keep a strong reference to it
/// because terminating a context with live sockets blocks forever.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private var terminated = false

    public init() {
        handle = zmq_ctx_new()
    }

    deinit { terminate() }

    /// Waits until every socket is closed and their pending messages are sent (or their
    /// linger expired). Call it after closing the sockets, before the process exits: a
    /// message still queued at exit is lost.
    public func terminate() {
        guard !terminated else { return }
        terminated = true
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Whether this libzmq was built with CURVE security.
    public static var hasCurve: Bool { zmq_has("curve") != 0 }

    public static var version: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}

/// One ZeroMQ socket; not thread-safe (use it from one thread). Messages are lists of frames.
public final class ZMQSocket {
    public enum Kind { case router, dealer, reply, pair }

    private let context: ZMQContext
    private let handle: UnsafeMutableRawPointer
    private var closed = false

    public init(context: ZMQContext, kind: Kind) throws {
        self.context = context
        let type: Int32 =
            switch kind {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .reply: ZMQ_REP
            case .pair: ZMQ_PAIR
            }
        guard let socket = zmq_socket(context.handle, type) else {
            throw ZMQError.last("zmq_socket")
        }
        handle = socket
        // Closing must never wait for unsent messages: a coordinator that is done, or a
        // worker whose peer died, exits at once.
        try setOption(ZMQ_LINGER, int32: 0)
        // Messages here are 0.1–1 MB: bigger kernel buffers and I/O batches move one in a
        // few system calls instead of hundreds of 8 KiB pieces.
        try? setOption(ZMQ_SNDBUF, int32: 4 << 20)
        try? setOption(ZMQ_RCVBUF, int32: 4 << 20)
        try? setOption(101 /* ZMQ_IN_BATCH_SIZE (draft) */, int32: 1 << 20)
        try? setOption(102 /* ZMQ_OUT_BATCH_SIZE (draft) */, int32: 1 << 20)
    }

    deinit { close() }

    /// Closes the socket; its unsent messages go out within its linger time.
    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    public func setOption(_ option: Int32, int32 value: Int32) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(option))")
        }
    }

    public func setOption(_ option: Int32, int64 value: Int64) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(option))")
        }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    /// ZMTP heartbeats: a PING every `intervalMs`; a peer silent for `timeoutMs` has its
    /// connection closed (a killed or unplugged host is noticed even while idle).
    public func setHeartbeat(intervalMs: Int32, timeoutMs: Int32) throws {
        try setOption(ZMQ_HEARTBEAT_IVL, int32: intervalMs)
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, int32: timeoutMs)
        try setOption(ZMQ_HEARTBEAT_TTL, int32: timeoutMs)
    }

    /// How long closing waits for unsent messages.
    public func setLinger(milliseconds: Int32) throws { try setOption(ZMQ_LINGER, int32: milliseconds) }

    /// Largest message accepted; a bigger one drops the connection instead of being read.
    public func setMaxMessageSize(_ bytes: Int64) throws { try setOption(ZMQ_MAXMSGSIZE, int64: bytes) }
    /// Milliseconds between reconnection attempts, growing to `max` (zmq's own backoff).
    public func setReconnectInterval(_ ms: Int32, max: Int32) throws {
        try setOption(ZMQ_RECONNECT_IVL, int32: ms)
        try setOption(ZMQ_RECONNECT_IVL_MAX, int32: max)
    }
    /// How long a blocking send may wait; past it the send fails as a full queue would.
    public func setSendTimeout(milliseconds: Int32) throws { try setOption(ZMQ_SNDTIMEO, int32: milliseconds) }
    /// Messages go only to completed connections: a send with no peer fails at once
    /// instead of queueing, so a worker's hello is not replayed to a stale connection.
    public func setImmediate() throws { try setOption(ZMQ_IMMEDIATE, int32: 1) }
    /// IPv6 addresses (`tcp://[::1]:5555`) as well as IPv4 ones.
    public func enableIPv6() throws { try setOption(ZMQ_IPV6, int32: 1) }
    /// A ROUTER reports an unroutable peer as an error instead of dropping silently.
    public func setRouterMandatory() throws { try setOption(ZMQ_ROUTER_MANDATORY, int32: 1) }
    /// Messages queued per peer before a send reports `.queueFull` (ZeroMQ counts whole
    /// messages, not bytes).
    public func setSendHighWaterMark(_ messages: Int32) throws { try setOption(ZMQ_SNDHWM, int32: messages) }
    /// Milliseconds a new connection has to finish its ZMTP (and CURVE) handshake before
    /// libzmq closes it.
    public func setHandshakeTimeout(_ ms: Int32) throws { try setOption(ZMQ_HANDSHAKE_IVL, int32: ms) }
    /// Bytes each connection reads from the kernel at once (its decoder's buffer). A draft
    /// option: false where this libzmq was built without the draft API.
    @discardableResult
    public func setReadBatch(_ bytes: Int32) -> Bool { (try? setOption(101, int32: bytes)) != nil }

    public func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("connect \(endpoint)") }
    }

    /// The endpoint actually bound, e.g. `tcp://127.0.0.1:43125` after binding port `*`.
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What became of a message handed to `trySend`.
    public enum SendOutcome: Equatable, Sendable {
        case sent
        /// The peer is unknown or gone (ROUTER with mandatory routing).
        case unroutable
        /// The peer's queue is at its high-water mark: it is not reading.
        case queueFull
    }

    /// Sends the frames of one message. Returns false if the peer is unknown or gone
    /// (ROUTER with mandatory routing) or the send would block.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        try trySend(frames, dontWait: dontWait) == .sent
    }

    /// Sends the frames of one message, saying why it could not be queued. With `dontWait`
    /// it never waits: a full queue is `.queueFull` at once. (A ROUTER checks the queue on
    /// the first frame only, so a message is queued whole or not at all.)
    public func trySend(_ frames: [[UInt8]], dontWait: Bool = true) throws -> SendOutcome {
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if rc < 0 {
                let error = ZMQError.last("zmq_send")
                if error.code == EHOSTUNREACH { return .unroutable }
                if error.code == EAGAIN { return .queueFull }
                throw error
            }
        }
        return .sent
    }

    /// Waits up to `timeoutMs` (−1: forever) for a message; nil on timeout.
    public func receive(timeoutMs: Int) throws -> [[UInt8]]? {
        try receive(timeoutMs: timeoutMs, keeping: Int.max)?.frames
    }

    /// One received message: its first frames, how many more there were, and the ZAP user
    /// id its connection was admitted with (nil without ZAP).
    public struct Received {
        public var frames: [[UInt8]]
        public var discardedFrames: Int
        public var userID: String?
    }

    /// Waits up to `timeoutMs` for a message and keeps at most its first `keeping` frames:
    /// the others are read and freed one by one, never collected, so a peer that sends many
    /// frames costs one frame of memory here.
    public func receive(timeoutMs: Int, keeping: Int) throws -> Received? {
        guard try poll(timeoutMs: timeoutMs) else { return nil }
        var received = Received(frames: [], discardedFrames: 0, userID: nil)
        var more: Int32 = 1
        repeat {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            guard zmq_msg_recv(&message, handle, 0) >= 0 else { throw ZMQError.last("zmq_msg_recv") }
            if received.frames.count < keeping {
                let size = zmq_msg_size(&message)
                let data = zmq_msg_data(&message)!
                received.frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                received.discardedFrames += 1
            }
            if received.userID == nil, let user = zmq_msg_gets(&message, "User-Id") {
                received.userID = String(cString: user)
            }
            var optionSize = MemoryLayout<Int32>.size
            zmq_getsockopt(handle, ZMQ_RCVMORE, &more, &optionSize)
        } while more != 0
        return received
    }

    /// Publishes this socket's `events` as messages on a PAIR endpoint (`zmq_socket_monitor`).
    public func monitor(endpoint: String, events: Int32) throws {
        guard zmq_socket_monitor(handle, endpoint, events) == 0 else { throw ZMQError.last("zmq_socket_monitor") }
    }

    /// Which of `sockets` have a message to read, waiting up to `timeoutMs` for any.
    public static func poll(_ sockets: [ZMQSocket], timeoutMs: Int) throws -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let rc = zmq_poll(&items, Int32(items.count), timeoutMs)
        if rc < 0 {
            let error = ZMQError.last("zmq_poll")
            if error.isInterrupted { return sockets.map { _ in false } }
            throw error
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }

    /// True if a message can be read within `timeoutMs`.
    public func poll(timeoutMs: Int) throws -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, timeoutMs)
        if rc < 0 {
            let error = ZMQError.last("zmq_poll")
            if error.isInterrupted { return false }
            throw error
        }
        return rc > 0
    }
}
