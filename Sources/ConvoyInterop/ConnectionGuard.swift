#if canImport(Glibc)
    import Glibc
#endif

/// Bounds how many connections a listening socket holds before they could have proved who
/// they are. libzmq accepts every TCP connection (up to the open-file limit) and gives each
/// a decoder that may hold one frame of up to `ZMQ_MAXMSGSIZE` before CURVE and ZAP have
/// decided; it has no option to limit them. This guard sees each accepted connection (the
/// socket monitor's ACCEPTED event carries its descriptor) and cuts new ones while `limit`
/// connections younger than the handshake interval are still open. Older connections either
/// finished their handshake (libzmq closes the others at `ZMQ_HANDSHAKE_IVL`) or are gone.
struct ConnectionGuard {
    let limit: Int
    /// The socket's `ZMQ_HANDSHAKE_IVL`: a connection open longer has authenticated.
    let handshake: Duration
    /// Descriptors of open connections still inside their handshake interval.
    private var young: [Int32: ContinuousClock.Instant] = [:]

    init(limit: Int, handshake: Duration) {
        self.limit = limit
        self.handshake = handshake
    }

    /// A connection was accepted on descriptor `fd`; true when it was cut (too many others
    /// are still in their handshake).
    mutating func accepted(fd: Int32, now: ContinuousClock.Instant = .now) -> Bool {
        young = young.filter { now - $0.value < handshake }
        guard young.count >= limit else {
            young[fd] = now
            return false
        }
        Self.cut(fd)
        return true
    }

    /// The connection on `fd` closed.
    mutating func closed(fd: Int32) { young[fd] = nil }

    /// Shuts down (does not close: libzmq owns the descriptor and closes it when it sees
    /// the end) a TCP connection. Checked first to be a stream socket: should libzmq have
    /// closed it and the number been reused meanwhile by a file, nothing happens.
    private static func cut(_ fd: Int32) {
        var type: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0, type == Int32(SOCK_STREAM.rawValue) else {
            return
        }
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }
}
