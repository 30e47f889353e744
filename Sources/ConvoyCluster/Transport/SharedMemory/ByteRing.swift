import ConvoyInterop

/// One direction of a shared-memory link: a single-producer, single-consumer byte ring in a
/// region both processes map (docs/PROTOCOL.md, "Shared memory on one host"). The writer owns
/// `tail`, the reader owns `head`; each keeps its own copy and only publishes it, so a peer that
/// scribbles on the shared words can corrupt only the stream it reads, and every count read
/// from the peer is checked before it is used. The reader copies bytes out before anyone looks
/// at them: the peer may rewrite the ring at any time.
struct ByteRing {
    /// Layout of one ring's control block (each word on its own cache line).
    static let controlBytes = 1024
    static let tailOffset = 0
    static let headOffset = 256
    static let readerWaitingOffset = 512
    static let writerWaitingOffset = 768

    /// Why a link is given up.
    struct Broken: Error, CustomStringConvertible {
        let description: String
    }

    let control: UnsafeMutableRawPointer
    let data: UnsafeMutableRawPointer
    /// A power of two.
    let capacity: Int
    /// This side's own count: bytes written (writer) or consumed (reader) since the start.
    private(set) var position: UInt64 = 0

    init(control: UnsafeMutableRawPointer, data: UnsafeMutableRawPointer, capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0)
        (self.control, self.data, self.capacity) = (control, data, capacity)
    }

    private var tailWord: UnsafeMutableRawPointer { control + Self.tailOffset }
    private var headWord: UnsafeMutableRawPointer { control + Self.headOffset }
    private var readerWaitingWord: UnsafeMutableRawPointer { control + Self.readerWaitingOffset }
    private var writerWaitingWord: UnsafeMutableRawPointer { control + Self.writerWaitingOffset }

    // MARK: writer

    /// Bytes the writer may add now.
    func space() throws(Broken) -> Int {
        let head = SharedWord.loadAcquire(headWord)
        let used = position &- head
        guard used <= UInt64(capacity) else { throw Broken(description: "its reader's position is out of bounds") }
        return capacity - Int(used)
    }

    /// Copies as much of `bytes` as fits and publishes it; returns the count copied.
    mutating func write(_ bytes: UnsafeRawBufferPointer) throws(Broken) -> Int {
        let count = min(bytes.count, try space())
        guard count > 0, let source = bytes.baseAddress else { return 0 }
        let start = Int(position & UInt64(capacity - 1))
        let first = min(count, capacity - start)
        (data + start).copyMemory(from: source, byteCount: first)
        if first < count { data.copyMemory(from: source + first, byteCount: count - first) }
        position &+= UInt64(count)
        SharedWord.storeRelease(tailWord, position)
        return count
    }

    // MARK: reader

    /// Bytes the reader may take now.
    func available() throws(Broken) -> Int {
        let tail = SharedWord.loadAcquire(tailWord)
        let ready = tail &- position
        guard ready <= UInt64(capacity) else { throw Broken(description: "its writer's position is out of bounds") }
        return Int(ready)
    }

    /// Copies up to `target.count` available bytes into `target` and frees them; returns the count.
    mutating func read(into target: UnsafeMutableRawBufferPointer) throws(Broken) -> Int {
        let count = min(target.count, try available())
        guard count > 0, let destination = target.baseAddress else { return 0 }
        let start = Int(position & UInt64(capacity - 1))
        let first = min(count, capacity - start)
        destination.copyMemory(from: data + start, byteCount: first)
        if first < count { (destination + first).copyMemory(from: data, byteCount: count - first) }
        position &+= UInt64(count)
        SharedWord.storeRelease(headWord, position)
        return count
    }

    // MARK: sleeping and waking (store, full fence, load on both sides: one of them sees the other)

    /// The reader is about to sleep: after this, a writer that adds bytes rings the bell.
    func readerWillSleep() {
        SharedWord.store(readerWaitingWord, 1)
        SharedWord.fence()
    }
    /// The writer found the ring full: after this, a reader that frees bytes rings the bell.
    func writerWillSleep() {
        SharedWord.store(writerWaitingWord, 1)
        SharedWord.fence()
    }
    /// After writing: whether the reader asked to be woken (and is now told).
    func readerNeedsWaking() -> Bool {
        SharedWord.fence()
        return SharedWord.load(readerWaitingWord) != 0 && SharedWord.exchange(readerWaitingWord, 0) != 0
    }
    /// After reading: whether the writer asked to be woken (and is now told).
    func writerNeedsWaking() -> Bool {
        SharedWord.fence()
        return SharedWord.load(writerWaitingWord) != 0 && SharedWord.exchange(writerWaitingWord, 0) != 0
    }
}
