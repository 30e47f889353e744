import ConvoyEngine
import ConvoyInterop

#if canImport(Glibc)
    import Glibc
#endif

/// The coordinator's side of `shm://PATH` (docs/PROTOCOL.md, "Shared memory on one host"): a
/// Unix socket at PATH where workers of this host connect, and per worker a `SharedLink` whose
/// rings carry the messages. Everything happens on the coordinator's own thread inside `send`
/// and `receive`; a message too big for the ring's free room stays queued and is written while
/// the coordinator waits in `receive`, so no send waits on a worker. Only processes of this Unix
/// user are accepted (SO_PEERCRED).
public final class SharedMemoryCoordinatorTransport: ListeningTransport {
    public static let scheme = "shm://"
    public let endpoint: String
    private var listener: LocalSocket?
    private let limits: CoordinatorLimits
    private let capacity: Int
    private var links: [(peer: PeerID, link: SharedLink)] = []
    private var nextPeer: UInt32 = 0
    private var cursor = 0
    private var closed = false
    /// Whether connections may be waiting: set at first and when `poll` says so, so a receive
    /// does not pay an `accept` system call each time (4% of a coordinator's CPU).
    private var listenerReadable = true
    /// Set when `accept` failed for want of descriptors or memory (EMFILE, ENFILE, ENOMEM):
    /// the connection stays queued and the listener readable, so watching it would spin. It
    /// is left alone until then (`acceptPause`), and tried again after.
    private var acceptPausedUntil: ContinuousClock.Instant?
    static let acceptPause = Duration.milliseconds(100)
    /// Connections held at once: every worker the protocol allows, and room for status clients.
    static let maxConnections = Int(Wire.maxWorkers) + 64

    /// `ringCapacity` (a power of two in `SharedLink.capacities`) overrides the size that fits
    /// `limits` (tests use small rings to make messages stream).
    public init(bind: String, limits: CoordinatorLimits = .protocolMaximum, ringCapacity: Int? = nil) throws {
        guard bind.hasPrefix(Self.scheme) else { throw SharedMemoryError("\(bind) is not shm://", code: EINVAL) }
        let capacity = ringCapacity ?? Self.ringCapacity(maxMessageBytes: limits.maxMessageBytes)
        guard SharedLink.capacities.contains(capacity), capacity & (capacity - 1) == 0 else {
            throw SharedMemoryError("ring capacity \(capacity)", code: EINVAL)
        }
        listener = try LocalSocket.listen(at: String(bind.dropFirst(Self.scheme.count)))
        endpoint = bind
        self.limits = limits
        self.capacity = capacity
    }

    /// A ring holds the run's largest message when that is at most 4 MiB (a LeNet-5 step's
    /// gradient is 0.5 MB: rings of 1 MiB); bigger messages stream through it. Small rings
    /// stay in cache: rings of 16 MiB (any message whole) made `bench-coordinator --workers 1
    /// --transport shm` 2.1× slower than 1 MiB rings (1.68 against 0.79 ms a step, on a loaded
    /// machine), every write landing on cold memory.
    static func ringCapacity(maxMessageBytes: Int64) -> Int {
        let wanted = Int(clamping: min(max(maxMessageBytes + 4, 64 << 10), 4 << 20))
        var capacity = 4096
        while capacity < wanted { capacity <<= 1 }
        return capacity
    }

    public func send(_ message: Message, to peer: PeerID) throws -> Int {
        guard let link = links.first(where: { $0.peer == peer })?.link, link.isOpen else { return 0 }
        guard link.queuedFrames < Int(limits.sendQueueMessages) else { throw CoordinatorSendError.queueFull }
        let frame = message.encoded()
        link.enqueue(frame)
        return frame.count
    }

    public func receive(timeoutMs: Int) throws -> (peer: PeerID, frame: [UInt8])? {
        let deadline = timeoutMs < 0 ? nil : ContinuousClock.now + .milliseconds(timeoutMs)
        while true {
            if let until = acceptPausedUntil, ContinuousClock.now >= until {
                (acceptPausedUntil, listenerReadable) = (nil, true)
            }
            if listenerReadable && acceptPausedUntil == nil {
                acceptWaiting()
                listenerReadable = false
            }
            if let next = nextFrame() { return next }
            links.removeAll { $0.link.broken != nil }
            let left = deadline.map { max(0, Int(($0 - ContinuousClock.now).inSeconds * 1000)) }
            if left == 0 { return nil }
            // A paused listener is not watched (-1: poll skips it), and the sleep ends with the pause.
            let pause = acceptPausedUntil.map {
                max(1, Int((($0 - ContinuousClock.now).inSeconds * 1000).rounded(.up)))
            }
            let sleep = [left, pause].compactMap { $0 }.min()
            // Every link asks to be woken before the last look; one with work skips the sleep.
            guard links.allSatisfy({ $0.link.armForSleep() }) else { continue }
            var descriptors = [acceptPausedUntil == nil ? listener?.fd ?? -1 : -1]
            var owners: [SharedLink?] = [nil]
            for (_, link) in links {
                let linkDescriptors = link.pollDescriptors
                descriptors += linkDescriptors
                owners += Array(repeating: link, count: linkDescriptors.count)
            }
            for index in try LocalSocket.waitReadable(descriptors, timeoutMs: sleep ?? -1) {
                if index == 0 { listenerReadable = true }
                owners[index]?.takeWakeUps()
            }
        }
    }

    /// One frame, taking the links in turn so none is starved; writes what waits on the way.
    private func nextFrame() -> (peer: PeerID, frame: [UInt8])? {
        guard !links.isEmpty else { return nil }
        for offset in 0..<links.count {
            let index = (cursor + offset) % links.count
            let (peer, link) = links[index]
            link.pump()
            if let frame = link.nextFrame() {
                cursor = index + 1
                return (peer, frame)
            }
        }
        return nil
    }

    private func acceptWaiting() {
        while true {
            let accepted: LocalSocket?
            do { accepted = try listener?.accept() } catch {
                acceptPausedUntil = ContinuousClock.now + Self.acceptPause
                return
            }
            guard let socket = accepted else { return }
            guard links.count < Self.maxConnections, (try? socket.peerUID()) == geteuid() else { continue }
            nextPeer &+= 1
            let peer = withUnsafeBytes(of: nextPeer.bigEndian, Array.init)
            guard let link = try? SharedLink(accepted: socket, capacity: capacity, maxInbound: maxInbound) else {
                continue
            }
            links.append((peer, link))
        }
    }

    private var maxInbound: Int { Int(clamping: limits.maxMessageBytes) }

    /// Writes what is still queued for up to 2 s (workers that are gone are not waited for),
    /// then closes every link and removes the socket file.
    public func close() {
        guard !closed else { return }
        closed = true
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            links.removeAll { $0.link.broken != nil }
            for (_, link) in links {
                link.takeWakeUps()
                link.pump()
            }
            let waiting = links.filter { $0.link.queuedFrames > 0 && $0.link.isOpen }
            guard !waiting.isEmpty else { break }
            guard waiting.allSatisfy({ $0.link.armForSleep() }) else { continue }
            _ = try? LocalSocket.waitReadable(waiting.flatMap { $0.link.pollDescriptors }, timeoutMs: 50)
        }
        links.removeAll()
        listener = nil
    }
}
