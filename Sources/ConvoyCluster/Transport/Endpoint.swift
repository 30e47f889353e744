import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Who can reach a ZeroMQ endpoint, judged from its text and the file system, never from a
/// name lookup: the rules behind the coordinator's refusal to bind and the worker's refusal
/// to connect without CURVE, and behind the warning that any user of this host can join.
public enum Endpoint {
    /// How far an endpoint reaches.
    public enum Reach: Equatable, Sendable {
        /// Only this Unix user (and root): an `ipc://` socket in a directory that is ours
        /// and closed to group and others, `inproc://`, or `shm://`.
        case thisUser
        /// Any process of this host: loopback TCP, or an `ipc://` socket others can reach
        /// (an open directory, or Linux's abstract namespace `ipc://@name`, which has no
        /// permissions at all).
        case thisHost
        /// Other hosts.
        case network
    }

    /// What `--bind`, `--connect` and `convoy status` take: ZeroMQ's `tcp://` and `ipc://`, and
    /// shared memory; `schemesText` names them for error lines.
    public static let schemes = ["tcp://", "ipc://", SharedMemoryCoordinatorTransport.scheme]
    public static let schemesText = "a tcp://, ipc:// or shm:// endpoint"
    public static func isKnown(_ endpoint: String) -> Bool { schemes.contains(where: endpoint.hasPrefix) }
    /// Whether `endpoint` names the shared-memory transport (no ZeroMQ, no CURVE).
    public static func isSharedMemory(_ endpoint: String) -> Bool {
        endpoint.hasPrefix(SharedMemoryCoordinatorTransport.scheme)
    }

    public static func reach(_ endpoint: String) -> Reach {
        if endpoint.hasPrefix("inproc://") { return .thisUser }
        // The shared-memory transport admits only processes of this Unix user (SO_PEERCRED).
        if isSharedMemory(endpoint) { return .thisUser }
        if endpoint.hasPrefix("ipc://") {
            let path = String(endpoint.dropFirst("ipc://".count))
            return !path.hasPrefix("@") && isPrivateDirectory(parent(of: path)) ? .thisUser : .thisHost
        }
        guard let host = tcpHost(endpoint) else { return .network }
        return host == "localhost" || isLoopbackAddress(host) ? .thisHost : .network
    }

    /// Whether an endpoint is reachable only from this host.
    public static func isLoopback(_ endpoint: String) -> Bool { reach(endpoint) != .network }

    /// Whether a `tcp://` endpoint names an IPv6 address (`tcp://[::1]:5555`). ZeroMQ needs
    /// `ZMQ_IPV6` for those; it is not set for the others because with it a name such as
    /// `localhost` may resolve to `::1` first, where a coordinator bound to 127.0.0.1 is not.
    public static func isIPv6(_ endpoint: String) -> Bool { tcpHost(endpoint)?.contains(":") ?? false }

    /// The host of a `tcp://` endpoint without brackets or port ("127.0.0.1", "::1",
    /// "localhost", "*"); nil for other transports. A ZeroMQ source address
    /// (`tcp://src;dst:port`) stays in the result, so it is never taken for loopback.
    static func tcpHost(_ endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        let rest = endpoint.dropFirst("tcp://".count)
        if rest.first == "[" {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            return String(rest[rest.index(after: rest.startIndex)..<close])
        }
        // An unbracketed IPv6 address ends with its port after the last colon too.
        guard let colon = rest.lastIndex(of: ":") else { return String(rest) }
        return String(rest[..<colon])
    }

    /// 127.0.0.0/8, `::1` and IPv4-mapped 127.0.0.0/8, written as numbers. A name that
    /// merely starts with "127." (`127.0.0.1.example.org`) is not an address.
    static func isLoopbackAddress(_ host: String) -> Bool {
        if let v4 = ipv4Bytes(host) { return v4[0] == 127 }
        guard let v6 = ipv6Bytes(host) else { return false }
        if v6 == [UInt8](repeating: 0, count: 15) + [1] { return true }
        return v6.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] && v6[12] == 127
    }

    static func ipv4Bytes(_ text: some StringProtocol) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { part in
            part.count <= 3 && part.allSatisfy(\.isASCII) ? UInt8(part) : nil
        }
        return bytes.count == 4 ? bytes : nil
    }

    /// The 16 bytes of an IPv6 address in text form (RFC 4291 §2.2: hex groups, one `::`,
    /// an optional dotted IPv4 tail); nil when it is not one.
    static func ipv6Bytes(_ text: String) -> [UInt8]? {
        let halves = text.lowercased().components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains("."), let v4 = ipv4Bytes(piece) {
                    bytes += v4
                } else {
                    guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
                        let value = UInt16(piece, radix: 16)
                    else { return nil }
                    bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
                }
            }
            return bytes
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    static func parent(of path: String) -> String {
        let parent = (path as NSString).deletingLastPathComponent
        return parent.isEmpty ? "." : parent
    }

    /// A directory owned by this user that group and others cannot enter: nobody else can
    /// connect to a socket inside it (connecting needs search permission on the directory).
    static func isPrivateDirectory(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return false }
        return info.st_uid == geteuid() && info.st_mode & 0o077 == 0
    }
}
