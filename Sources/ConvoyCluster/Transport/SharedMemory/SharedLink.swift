import ConvoyInterop

#if canImport(Glibc)
    import Glibc
#endif

/// One connection of the shared-memory transport (docs/PROTOCOL.md, "Shared memory on one
/// host"): a Unix socket for the hand-over and the peer's end, two eventfds for wake-ups (one
/// each way), and two `ByteRing`s in a memfd the coordinator made, one per direction.
/// Messages are length-prefixed (u32 LE) in the byte stream, so one larger than a ring streams
/// through it. All I/O happens on the caller's thread: no I/O thread, no hand-off between
/// threads.
final class SharedLink {
    /// The hand-over packet: magic, version, ring capacity (u32 LE), with the memfd, the
    /// coordinator's eventfd and the worker's attached.
    static let magic: [UInt8] = Array("CVYSHM".utf8) + [1, 0]
    static let setupBytes = magic.count + 4
    /// Ring capacities a peer may propose: a page up to 256 MiB, powers of two.
    static let capacities = 4096...(1 << 28)
    /// The region: a page of control blocks, then the coordinator's ring, then the worker's.
    static func regionSize(capacity: Int) -> Int { 4096 + 2 * capacity }

    let socket: LocalSocket
    /// Largest message accepted from the peer; a longer length prefix breaks the link.
    let maxInbound: Int
    private var region: SharedRegion?
    /// Signalled by the peer when it wrote (or freed room) while this side slept; and the peer's.
    private var wakeMine: WakeSignal?
    private var wakeTheirs: WakeSignal?
    private var inbound: ByteRing?
    private var outbound: ByteRing?
    /// Frames waiting to be written, and how much of the first one (prefix included) is.
    private var queue: [[UInt8]] = []
    private var queueStart = 0
    private var writtenOfFirst = 0
    /// The frame being read: its length prefix so far, then its bytes so far.
    private var prefix = [UInt8]()
    private var assembling: [UInt8]?
    private var filled = 0
    /// Why the link is unusable; it is then dropped.
    private(set) var broken: String?
    /// The peer closed its end: what it wrote before is still read (as TCP delivers the bytes
    /// before a FIN), then the link breaks. Without this, a worker's last message (a shutdown
    /// acknowledgement written just before it exits) could be lost to the race between the
    /// end of its socket and the reading of its ring.
    private var peerEnded = false

    /// Whether frames sent now may still be read: not broken, and the peer has not ended.
    var isOpen: Bool { broken == nil && !peerEnded }
    var queuedFrames: Int { queue.count - queueStart }

    /// The coordinator's end of a freshly accepted connection: makes the region and hands it over.
    init(accepted socket: LocalSocket, capacity: Int, maxInbound: Int) throws {
        precondition(Self.capacities.contains(capacity) && capacity & (capacity - 1) == 0)
        (self.socket, self.maxInbound) = (socket, maxInbound)
        let region = try SharedRegion(creating: Self.regionSize(capacity: capacity), name: "convoy-link")
        let (mine, theirs) = (try WakeSignal(), try WakeSignal())
        attach(region, capacity: capacity, coordinator: true, wakes: (mine, theirs))
        let setup = Self.magic + withUnsafeBytes(of: UInt32(capacity).littleEndian, Array.init)
        guard try socket.send(setup, passing: [region.fd, mine.fd, theirs.fd]) else {
            throw SharedMemoryError("hand-over of the shared region", code: EAGAIN)
        }
    }

    /// A worker's end of a connection; ready once the coordinator's hand-over arrives.
    init(connected socket: LocalSocket, maxInbound: Int) {
        (self.socket, self.maxInbound) = (socket, maxInbound)
    }

    private func attach(
        _ region: SharedRegion, capacity: Int, coordinator: Bool, wakes: (mine: WakeSignal, theirs: WakeSignal)
    ) {
        (wakeMine, wakeTheirs) = wakes
        let downstream = ByteRing(
            control: region.base + 1024, data: region.base + 4096, capacity: capacity)
        let upstream = ByteRing(
            control: region.base + 2048, data: region.base + 4096 + capacity, capacity: capacity)
        (outbound, inbound) = coordinator ? (downstream, upstream) : (upstream, downstream)
        self.region = region
    }

    private func fail(_ reason: String) {
        if broken == nil { broken = reason }
    }

    // MARK: the socket and the wake-ups

    /// What to `poll` for this link: its socket (the hand-over, the peer's end) and its eventfd.
    var pollDescriptors: [Int32] { [socket.fd] + (wakeMine.map { [$0.fd] } ?? []) }

    /// Takes the wake-ups and reads what the socket holds: the hand-over, the peer's end, or
    /// packets that mean nothing. At most 1,024 packets a call: a peer that floods them cannot
    /// hold the caller here (the rest wake it again).
    func takeWakeUps() {
        wakeMine?.drain()
        for _ in 0..<1024 where broken == nil {
            let packet: LocalSocket.Received?
            do { packet = try socket.receive(capacity: Self.setupBytes) } catch {
                return fail("\(error)")
            }
            guard case let .packet(bytes, descriptors, truncated)? = packet else {
                if packet != nil { peerEnded = true }
                return
            }
            guard !descriptors.isEmpty else { continue }
            guard region == nil, !truncated, descriptors.count == 3, bytes.count == Self.setupBytes,
                bytes.starts(with: Self.magic)
            else {
                for descriptor in descriptors { close(descriptor) }
                return fail("the peer sent a shared region it should not have")
            }
            let capacity = Int(bytes.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard Self.capacities.contains(capacity), capacity & (capacity - 1) == 0 else {
                for descriptor in descriptors { close(descriptor) }
                return fail("the coordinator proposed rings of \(capacity) bytes")
            }
            // Each init owns its descriptor from here, closing it when it refuses.
            let region = Result {
                try SharedRegion(adopting: descriptors[0], size: Self.regionSize(capacity: capacity))
            }
            let theirs = Result { try WakeSignal(adopting: descriptors[1]) }
            let mine = Result { try WakeSignal(adopting: descriptors[2]) }
            do {
                attach(
                    try region.get(), capacity: capacity, coordinator: false, wakes: (try mine.get(), try theirs.get()))
            } catch { return fail("\(error)") }
            // Frames queued while the hand-over was on its way leave now.
            pump()
        }
    }

    private func wakePeer() { wakeTheirs?.signal() }

    // MARK: writing

    /// Queues a frame (written at once as far as the ring has room).
    func enqueue(_ frame: [UInt8]) {
        queue.append(frame)
        pump()
    }

    /// Writes queued frames until the ring is full; wakes a sleeping reader.
    @discardableResult
    func pump() -> Bool {
        // Nobody reads what is written to a peer that ended.
        guard broken == nil, !peerEnded, var ring = outbound else { return false }
        var wrote = false
        defer {
            outbound = ring
            if wrote && ring.readerNeedsWaking() { wakePeer() }
        }
        do {
            while queueStart < queue.count {
                let frame = queue[queueStart]
                if writtenOfFirst < 4 {
                    let prefix = withUnsafeBytes(of: UInt32(frame.count).littleEndian, Array.init)
                    let n = try prefix[writtenOfFirst...].withUnsafeBytes { try ring.write($0) }
                    writtenOfFirst += n
                    wrote = wrote || n > 0
                    if writtenOfFirst < 4 { return wrote }
                }
                let n = try frame[(writtenOfFirst - 4)...].withUnsafeBytes { try ring.write($0) }
                writtenOfFirst += n
                wrote = wrote || n > 0
                guard writtenOfFirst == frame.count + 4 else { return wrote }
                queue[queueStart] = []
                queueStart += 1
                writtenOfFirst = 0
            }
            queue.removeAll(keepingCapacity: true)
            queueStart = 0
        } catch { fail("\(error)") }
        return wrote
    }

    // MARK: reading

    /// The next whole frame from the peer, or nil when none is complete yet. After the peer
    /// ended, nil means none will be: the link breaks.
    func nextFrame() -> [UInt8]? {
        let frame = readFrame()
        if frame == nil && peerEnded { fail("the peer closed the connection") }
        return frame
    }

    private func readFrame() -> [UInt8]? {
        guard broken == nil, var ring = inbound else { return nil }
        var took = false
        defer {
            inbound = ring
            if took && ring.writerNeedsWaking() { wakePeer() }
        }
        do {
            if assembling == nil {
                var word: UInt32 = 0
                let n = try withUnsafeMutableBytes(of: &word) {
                    try ring.read(into: .init(rebasing: $0[..<(4 - prefix.count)]))
                }
                took = n > 0
                prefix += withUnsafeBytes(of: word) { Array($0.prefix(n)) }
                guard prefix.count == 4 else { return nil }
                let length = Int(prefix.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                guard length > 0, length <= maxInbound else {
                    fail("the peer announced a message of \(length) bytes (limit \(maxInbound))")
                    return nil
                }
                prefix.removeAll(keepingCapacity: true)
                if try ring.available() >= length {
                    // The common case: the whole frame is in the ring; one copy, no zero fill.
                    // `buffer` spans the array's whole allocation, which may be longer than
                    // `length`: read exactly `length`, never the next frame's bytes.
                    let frame = try [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
                        count = try ring.read(
                            into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[..<length]))
                        )
                    }
                    took = true
                    guard frame.count == length else {
                        fail("the peer's ring lost bytes it had published")
                        return nil
                    }
                    return frame
                }
                (assembling, filled) = ([UInt8](repeating: 0, count: length), 0)
            }
            let n = try assembling!.withUnsafeMutableBytes { try ring.read(into: .init(rebasing: $0[filled...])) }
            took = took || n > 0
            filled += n
            guard filled == assembling!.count else { return nil }
            defer { assembling = nil }
            return assembling
        } catch {
            fail("\(error)")
            return nil
        }
    }

    // MARK: sleeping

    /// Asks to be woken for bytes to read (and for room to write when frames wait); returns
    /// false when there is already something to do, so the caller must not sleep.
    func armForSleep() -> Bool {
        // A peer that ended leaves work: reading what it wrote, then breaking the link.
        guard broken == nil, !peerEnded, let inbound, let outbound else { return broken == nil && !peerEnded }
        inbound.readerWillSleep()
        if queueStart < queue.count { outbound.writerWillSleep() }
        do {
            if try inbound.available() > 0 { return false }
            if queueStart < queue.count, try outbound.space() > 0 { return false }
        } catch {
            fail("\(error)")
            return false
        }
        return true
    }
}
