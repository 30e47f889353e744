import CSharedMemory

#if canImport(Glibc)
    import Glibc
#endif

/// A failed system call of the shared-memory transport, with the call and errno's words.
public struct SharedMemoryError: Error, CustomStringConvertible {
    public let description: String
    public let code: Int32
    public init(_ operation: String, code: Int32 = errno) {
        self.code = code
        description = "\(operation): \(String(cString: strerror(code)))"
    }
}

/// Memory mapped by two processes: a sealed memfd (neither side can shrink it under the
/// other's mapping, which would turn a read into SIGBUS), unmapped and closed on deinit.
public final class SharedRegion {
    public let base: UnsafeMutableRawPointer
    public let size: Int
    /// The memfd, kept open so it can be passed to the peer.
    public let fd: Int32

    /// A new zero-filled region of `size` bytes.
    public init(creating size: Int, name: String) throws {
        let fd = cvy_sealed_memfd(name, UInt64(size))
        guard fd >= 0 else { throw SharedMemoryError("memfd_create \(name) of \(size) bytes") }
        do { base = try Self.map(fd, size) } catch {
            close(fd)
            throw error
        }
        (self.fd, self.size) = (fd, size)
    }

    /// Maps a region a peer passed; takes ownership of `fd`. Refuses one whose size is not
    /// `size` or that is not sealed against shrinking.
    public init(adopting fd: Int32, size: Int) throws {
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == size, cvy_is_shrink_sealed(fd) == 1 else {
            close(fd)
            throw SharedMemoryError("shared region: not a sealed memfd of \(size) bytes", code: EINVAL)
        }
        do { base = try Self.map(fd, size) } catch {
            close(fd)
            throw error
        }
        (self.fd, self.size) = (fd, size)
    }

    private static func map(_ fd: Int32, _ size: Int) throws -> UnsafeMutableRawPointer {
        guard let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), pointer != MAP_FAILED
        else { throw SharedMemoryError("mmap of \(size) bytes") }
        return pointer
    }

    deinit {
        munmap(base, size)
        close(fd)
    }
}

/// Atomic access to words of a `SharedRegion` (C11 atomics: another process writes them).
public enum SharedWord {
    public static func loadAcquire(_ address: UnsafeRawPointer) -> UInt64 { cvy_load_acquire_u64(address) }
    public static func storeRelease(_ address: UnsafeMutableRawPointer, _ value: UInt64) {
        cvy_store_release_u64(address, value)
    }
    public static func load(_ address: UnsafeRawPointer) -> UInt32 { cvy_load_u32(address) }
    public static func store(_ address: UnsafeMutableRawPointer, _ value: UInt32) { cvy_store_u32(address, value) }
    public static func exchange(_ address: UnsafeMutableRawPointer, _ value: UInt32) -> UInt32 {
        cvy_exchange_u32(address, value)
    }
    public static func fence() { cvy_fence() }
}

/// An eventfd: one process signals, another wakes from `poll`. A plain (not "sync") kernel
/// wake-up, so the woken process may go to an idle CPU: a Unix socket's wake-up hints that
/// the sender is about to sleep and pulls the receiver onto the sender's CPU, where on 2
/// vCPUs the coordinator preempted the worker that had just sent it a gradient while the
/// other CPU stood idle (a `convoy local --workers 2 --trace` timeline). Closed on deinit.
public final class WakeSignal {
    public let fd: Int32

    public init() throws {
        fd = cvy_eventfd()
        guard fd >= 0 else { throw SharedMemoryError("eventfd") }
    }

    /// Takes ownership of a descriptor a peer passed; refuses (and closes) one that is not
    /// an eventfd (a pipe could block the writer).
    public init(adopting fd: Int32) throws {
        guard cvy_adopt_eventfd(fd) == 1 else {
            close(fd)
            throw SharedMemoryError("a wake-up descriptor that is not an eventfd", code: EINVAL)
        }
        self.fd = fd
    }

    deinit { close(fd) }

    public func signal() { cvy_eventfd_signal(fd) }
    public func drain() { cvy_eventfd_drain(fd) }
}

/// A non-blocking Unix SOCK_SEQPACKET socket: the shared-memory transport's rendezvous, its
/// wake-up signal and its end-of-peer notice (a peer's death closes it). Closed on deinit.
public final class LocalSocket {
    public let fd: Int32
    private let path: String?

    private init(fd: Int32, path: String?) {
        self.fd = fd
        self.path = path
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// The longest path a socket address holds (`sun_path` with its NUL).
    public static let maxPath = 107

    /// Listens at `path`, replacing a socket file left there by a dead run (never any other
    /// kind of file); the file is removed on deinit.
    public static func listen(at path: String, backlog: Int32 = 128) throws -> LocalSocket {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw SharedMemoryError("\(path) exists and is not a socket", code: EEXIST)
            }
            unlink(path)
        }
        let socket = try make()
        do {
            try withAddress(path) { address, length in
                guard bind(socket, address, length) == 0 else { throw SharedMemoryError("bind \(path)") }
            }
            guard Glibc.listen(socket, backlog) == 0 else { throw SharedMemoryError("listen \(path)") }
        } catch {
            close(socket)
            throw error
        }
        return LocalSocket(fd: socket, path: path)
    }

    /// Connects to a listening socket; throws when nobody listens there (yet).
    public static func connect(to path: String) throws -> LocalSocket {
        let socket = try make()
        let result = LocalSocket(fd: socket, path: nil)
        try withAddress(path) { address, length in
            guard Glibc.connect(socket, address, length) == 0 else { throw SharedMemoryError("connect \(path)") }
        }
        return result
    }

    /// The next pending connection, or nil when there is none.
    public func accept() throws -> LocalSocket? {
        let socket = cvy_accept(fd)
        if socket >= 0 { return LocalSocket(fd: socket, path: nil) }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED { return nil }
        throw SharedMemoryError("accept")
    }

    /// The Unix user of the peer process.
    public func peerUID() throws -> UInt32 {
        var uid: UInt32 = 0
        guard cvy_peer_uid(fd, &uid) == 0 else { throw SharedMemoryError("SO_PEERCRED") }
        return uid
    }

    /// Sends one packet (with the descriptors `passing`, at most 4) without waiting; false
    /// when the peer's queue is full.
    @discardableResult
    public func send(_ bytes: [UInt8], passing descriptors: [Int32] = []) throws -> Bool {
        let sent = bytes.withUnsafeBytes { raw in
            descriptors.withUnsafeBufferPointer {
                cvy_send_with_fds(fd, raw.baseAddress, raw.count, $0.baseAddress, Int32($0.count))
            }
        }
        if sent >= 0 { return true }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return false }
        throw SharedMemoryError("send")
    }

    /// One received packet, or nil when none is waiting.
    public enum Received {
        /// The caller owns `descriptors` (at most 4; more were closed, and `truncated` set).
        case packet(bytes: [UInt8], descriptors: [Int32], truncated: Bool)
        case closed
    }

    public func receive(capacity: Int = 64) throws -> Received? {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var descriptors = [Int32](repeating: -1, count: 4)
        var received: Int32 = 0
        var truncated: Int32 = 0
        let count = buffer.withUnsafeMutableBytes { raw in
            descriptors.withUnsafeMutableBufferPointer {
                cvy_receive_with_fds(fd, raw.baseAddress, raw.count, $0.baseAddress, &received, &truncated)
            }
        }
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
            if errno == ECONNRESET { return .closed }
            throw SharedMemoryError("receive")
        }
        // A zero-byte read with no descriptor is the end of the stream (seqpacket packets
        // from convoy are never empty).
        if count == 0 && received == 0 { return .closed }
        return .packet(
            bytes: Array(buffer.prefix(count)), descriptors: Array(descriptors.prefix(Int(received))),
            truncated: truncated != 0)
    }

    /// Waits until one of `sockets` is readable (or hung up), at most `timeoutMs` (-1: no
    /// limit). Returns the indices that are.
    public static func waitReadable(_ sockets: [Int32], timeoutMs: Int) throws -> [Int] {
        var entries = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let count = poll(&entries, nfds_t(entries.count), Int32(clamping: timeoutMs))
        if count < 0 {
            if errno == EINTR { return [] }
            throw SharedMemoryError("poll")
        }
        return entries.indices.filter { entries[$0].revents != 0 }
    }

    private static func make() throws -> Int32 {
        let socket = Glibc.socket(
            AF_UNIX, Int32(SOCK_SEQPACKET.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw SharedMemoryError("socket") }
        return socket
    }

    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws
    {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxPath, !bytes.contains(0) else {
            throw SharedMemoryError("socket path \(path)", code: ENAMETOOLONG)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
