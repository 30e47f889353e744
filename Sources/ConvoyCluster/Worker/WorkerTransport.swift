import ConvoyInterop

/// What a worker needs from a network: send a frame to its coordinator, receive the next
/// message. ZeroMQ in production; a scripted fake in tests.
public protocol WorkerTransport: AnyObject {
    /// Queues one frame. With `dontWait` it returns false at once when it cannot be queued
    /// (no connection yet) instead of waiting.
    @discardableResult
    func send(_ frame: [UInt8], dontWait: Bool) throws -> Bool
    /// The next message's frames, or nil after `timeoutMs` without one.
    func receive(timeoutMs: Int) throws -> [[UInt8]]?
    /// Lets the last frames leave (for a bounded time), then closes.
    func close()
}

extension WorkerTransport {
    public func close() {}
}

/// The transport an endpoint names: `shm://` (shared memory, this host and user) or ZeroMQ
/// (`tcp://`, `ipc://`). CURVE applies to ZeroMQ only: `shm://` never leaves this user.
public func makeWorkerTransport(
    endpoint: String, curve: (serverKey: String, keys: CurveKeyPair)?, maxMessageBytes: Int
) throws -> WorkerTransport {
    if Endpoint.isSharedMemory(endpoint) {
        return try SharedMemoryWorkerTransport(endpoint: endpoint, maxMessageBytes: maxMessageBytes)
    }
    return try ZMQWorkerTransport(endpoint: endpoint, curve: curve, maxMessageBytes: maxMessageBytes)
}

/// A worker's DEALER socket to its coordinator.
public final class ZMQWorkerTransport: WorkerTransport {
    let context: ZMQContext
    let socket: ZMQSocket

    /// Connects (in the background: ZeroMQ reconnects with backoff until the coordinator is
    /// there). With `curve`, the coordinator must prove it holds `serverKey`'s secret. A
    /// message over `maxMessageBytes` drops the connection before it is held in memory;
    /// libzmq fixes the limit per connection when it is made, so it is set once here, from
    /// the worker's memory bound (`MemoryBound.connectionMessageLimit`), and `WorkerCore`
    /// holds each run's messages to that run's own largest step.
    public init(
        endpoint: String, curve: (serverKey: String, keys: CurveKeyPair)?,
        maxMessageBytes: Int = Int(Wire.maxMessageBytes)
    ) throws {
        context = ZMQContext()
        socket = try ZMQSocket(context: context, kind: .dealer)
        try socket.setMaxMessageSize(Int64(maxMessageBytes))
        try socket.setReconnectInterval(100, max: 5000)
        try socket.setImmediate()
        // With ZMQ_IMMEDIATE a send waits while there is no connection: a result for a
        // coordinator that has gone would block the worker forever (its idle timeout and any
        // queued refusal never seen). Past 2 s the result is dropped; the coordinator has
        // reassigned that slice long before.
        try socket.setSendTimeout(milliseconds: 2000)
        try socket.setHeartbeat(intervalMs: 1000, timeoutMs: 5000)
        if Endpoint.isIPv6(endpoint) { try socket.enableIPv6() }
        if let curve { try socket.makeCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        try socket.connect(endpoint)
    }

    public func send(_ frame: [UInt8], dontWait: Bool) throws -> Bool {
        try socket.send([frame], dontWait: dontWait)
    }

    public func receive(timeoutMs: Int) throws -> [[UInt8]]? {
        try socket.receive(timeoutMs: timeoutMs)
    }

    /// Lets the last reply (the shutdown acknowledgement) leave, then closes.
    public func close() {
        try? socket.setLinger(milliseconds: 1000)
        socket.close()
        context.terminate()
    }
}
