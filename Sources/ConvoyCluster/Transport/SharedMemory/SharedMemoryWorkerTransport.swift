import ConvoyInterop

#if canImport(Glibc)
    import Glibc
#endif

/// A worker's side of `shm://PATH`: connects to the coordinator's socket (again and again,
/// backing off from 0.1 to 5 s, while nobody listens or after the coordinator went away, as
/// ZeroMQ reconnects) and carries frames over the rings of the region the coordinator hands
/// over. All on the caller's thread.
public final class SharedMemoryWorkerTransport: WorkerTransport {
    private let path: String
    private let maxInbound: Int
    private var link: SharedLink?
    private var nextAttempt = ContinuousClock.now
    private var backoff = 0.1
    /// Frames a worker may have queued while the coordinator does not read (it sends a
    /// handful per step; hellos are not queued beyond this).
    static let maxQueued = 64
    /// How long a waiting send may take before the frame is left queued: as ZeroMQ's send
    /// timeout, so a coordinator that stopped reading cannot hold the worker forever.
    static let sendWaitMs = 2000

    public init(endpoint: String, maxMessageBytes: Int = Int(Wire.maxMessageBytes)) throws {
        guard endpoint.hasPrefix(SharedMemoryCoordinatorTransport.scheme) else {
            throw SharedMemoryError("\(endpoint) is not shm://", code: EINVAL)
        }
        path = String(endpoint.dropFirst(SharedMemoryCoordinatorTransport.scheme.count))
        guard !path.isEmpty, path.utf8.count <= LocalSocket.maxPath else {
            throw SharedMemoryError("socket path \(path)", code: ENAMETOOLONG)
        }
        maxInbound = maxMessageBytes
        connectIfDue()
    }

    /// Connects when there is no link and the backoff allows. A link that broke also backs
    /// off (a coordinator that accepts and drops at once must not make this loop spin); the
    /// backoff starts over once a frame arrives.
    private func connectIfDue() {
        if let current = link, current.broken != nil {
            link = nil
            backOff()
        }
        guard link == nil, ContinuousClock.now >= nextAttempt else { return }
        if let socket = try? LocalSocket.connect(to: path) {
            link = SharedLink(connected: socket, maxInbound: maxInbound)
        } else {
            backOff()
        }
    }

    /// The next attempt waits `backoff`, which doubles up to 5 s (ZeroMQ's reconnect pattern).
    private func backOff() {
        nextAttempt = ContinuousClock.now + .milliseconds(Int(backoff * 1000))
        backoff = min(backoff * 2, 5)
    }

    @discardableResult
    public func send(_ frame: [UInt8], dontWait: Bool) throws -> Bool {
        connectIfDue()
        guard let link, link.isOpen, link.queuedFrames < Self.maxQueued else { return false }
        link.enqueue(frame)
        if !dontWait { flush(waitingMs: Self.sendWaitMs) }
        return true
    }

    /// Writes queued frames, sleeping on the peer's wake-ups while the ring is full.
    private func flush(waitingMs: Int) {
        let deadline = ContinuousClock.now + .milliseconds(waitingMs)
        while let link, link.isOpen, link.queuedFrames > 0, ContinuousClock.now < deadline {
            link.takeWakeUps()
            link.pump()
            guard link.queuedFrames > 0, link.armForSleep() else { continue }
            _ = try? LocalSocket.waitReadable(link.pollDescriptors, timeoutMs: 10)
        }
    }

    public func receive(timeoutMs: Int) throws -> [[UInt8]]? {
        let deadline = timeoutMs < 0 ? nil : ContinuousClock.now + .milliseconds(timeoutMs)
        while true {
            connectIfDue()
            if let link {
                link.takeWakeUps()
                link.pump()
                if let frame = link.nextFrame() {
                    backoff = 0.1
                    return [frame]
                }
            }
            let left = deadline.map { max(0, Int(($0 - ContinuousClock.now).inSeconds * 1000)) }
            if left == 0 { return nil }
            if let link, link.broken == nil {
                guard link.armForSleep() else { continue }
                _ = try LocalSocket.waitReadable(link.pollDescriptors, timeoutMs: left ?? -1)
            } else {
                // Not connected: sleep until the next attempt (or the deadline).
                let untilAttempt = max(1, Int((nextAttempt - ContinuousClock.now).inSeconds * 1000))
                _ = try LocalSocket.waitReadable([], timeoutMs: min(untilAttempt, left ?? untilAttempt))
            }
        }
    }

    /// Waits until one of `transports` may have something to read, at most `timeoutMs`: one
    /// thread serving several connections (the coordinator benchmark's synthetic workers).
    public static func waitAny(_ transports: [SharedMemoryWorkerTransport], timeoutMs: Int) throws {
        var sockets: [Int32] = []
        for transport in transports {
            transport.connectIfDue()
            guard let link = transport.link, link.broken == nil else { continue }
            link.takeWakeUps()
            link.pump()
            guard link.armForSleep() else { return }
            sockets += link.pollDescriptors
        }
        _ = try LocalSocket.waitReadable(sockets, timeoutMs: timeoutMs)
    }

    /// Lets the last frames (the shutdown acknowledgement) leave for up to 1 s, then closes.
    public func close() {
        flush(waitingMs: 1000)
        link = nil
    }
}
