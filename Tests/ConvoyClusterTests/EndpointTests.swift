@testable import ConvoyCluster
import Foundation
import Testing

/// Who can reach an endpoint (issue 14, "Local runs are private to their user"): the rules
/// behind the coordinator's warning and the worker's refusal to send plaintext.
@Suite struct EndpointRulesTests {
    @Test(arguments: [
        ("tcp://127.0.0.1:5555", Endpoint.Reach.thisHost), ("tcp://127.3.4.5:1", .thisHost),
        ("tcp://localhost:5555", .thisHost), ("tcp://[::1]:*", .thisHost), ("tcp://::1:5555", .thisHost),
        ("tcp://[0:0:0:0:0:0:0:1]:7", .thisHost), ("tcp://[::ffff:127.0.0.1]:7", .thisHost),
        ("ipc://@abstract-name", .thisHost), ("inproc://x", .thisUser),
        // A name that starts like an address is a name, resolved who knows where.
        ("tcp://127.0.0.1.example.org:5555", .network), ("tcp://10.0.0.1:5555", .network),
        ("tcp://0.0.0.0:5555", .network), ("tcp://*:5555", .network), ("tcp://[::]:5555", .network),
        ("tcp://[2001:db8::1]:5555", .network), ("tcp://[::2]:5555", .network),
        ("tcp://[::ffff:10.0.0.1]:5555", .network), ("tcp://127.0.0.256:5555", .network),
        // A ZeroMQ source address: the destination is after the semicolon, not trusted.
        ("tcp://127.0.0.1;10.0.0.1:5555", .network), ("pgm://eth0;239.0.0.1:5555", .network),
    ])
    func reachOfEndpoints(endpoint: String, reach: Endpoint.Reach) {
        #expect(Endpoint.reach(endpoint) == reach, "\(endpoint)")
        #expect(Endpoint.isLoopback(endpoint) == (reach != .network), "\(endpoint)")
    }

    @Test func ipv6IsSetOnlyForIPv6Addresses() {
        #expect(Endpoint.isIPv6("tcp://[::1]:5555"))
        #expect(Endpoint.isIPv6("tcp://[2001:db8::1]:*"))
        #expect(!Endpoint.isIPv6("tcp://127.0.0.1:5555"))
        #expect(!Endpoint.isIPv6("tcp://localhost:5555"))
        #expect(!Endpoint.isIPv6("ipc:///tmp/a:b"))
    }

    /// The directory `convoy local` binds in: ours, 0700, an ipc path ZeroMQ accepts; a
    /// socket there reaches only this user, one in an open directory any user.
    @Test func privateSocketDirectoryIsClosedToOthersAndRemoved() throws {
        let directory = try PrivateSocketDirectory.make()
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        #expect((attributes[.ownerAccountID] as? UInt) == UInt(geteuid()))
        #expect(directory.socketPath.utf8.count <= PrivateSocketDirectory.maxSocketPath)
        #expect(Endpoint.reach(directory.endpoint) == .thisUser)
        // Opened to the group, it is no longer private.
        chmod(directory.path, 0o750)
        #expect(Endpoint.reach(directory.endpoint) == .thisHost)
        directory.remove()
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(Endpoint.reach(directory.endpoint) == .thisHost, "a missing directory is not private")
        #expect(Endpoint.reach("ipc:///tmp/convoy-socket") == .thisHost, "/tmp is open to every user")
    }

    /// A base too long for a socket path, or one another user could rename things in, is
    /// passed over for the next (here /tmp, sticky).
    @Test func privateSocketDirectorySkipsUnfitBases() throws {
        let scratch = try PrivateSocketDirectory.make()
        defer { scratch.remove() }
        let long = scratch.path + "/" + String(repeating: "d", count: 100)
        let shared = scratch.path + "/shared"
        for path in [long, shared] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }
        chmod(shared, 0o777)
        #expect(!PrivateSocketDirectory.isSafeBase(shared))
        #expect(PrivateSocketDirectory.isSafeBase("/tmp"))
        for base in [long, shared] {
            let directory = try PrivateSocketDirectory.make(environment: ["XDG_RUNTIME_DIR": base])
            defer { directory.remove() }
            #expect(directory.path.hasPrefix("/tmp/convoy-"), "\(base): \(directory.path)")
            #expect(directory.socketPath.utf8.count <= PrivateSocketDirectory.maxSocketPath)
        }
        let preferred = try PrivateSocketDirectory.make(environment: ["XDG_RUNTIME_DIR": scratch.path])
        defer { preferred.remove() }
        #expect(preferred.path.hasPrefix(scratch.path + "/convoy-"), "\(preferred.path)")
    }
}

/// The same rules seen from the command line.
@Suite(.serialized) struct EndpointCommandTests {
    static let tiny = [
        "--epochs", "1", "--train-samples", "128", "--test-samples", "32", "--data", mnistDirectory,
    ]

    @Test(arguments: ["tcp://10.255.255.1:5555", "tcp://127.0.0.1.example.org:5555", "tcp://[2001:db8::1]:5555"])
    func workerRefusesPlaintextOffLoopback(endpoint: String) throws {
        let result = try runConvoy(["worker", "--connect", endpoint, "--connect-timeout", "1"], timeout: 60)
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("refusing to connect to \(endpoint) without CURVE"), "\(result.stderr)")
    }

    /// With --insecure the worker tries (TEST-NET-1 does not answer) and says so.
    @Test func workerWithInsecureConnectsOffLoopback() throws {
        let result = try runConvoy(
            ["worker", "--connect", "tcp://192.0.2.1:5555", "--insecure", "--connect-timeout", "1"], timeout: 60)
        #expect(result.status != 0)
        #expect(!result.stderr.contains("refusing"), "\(result.stderr)")
        #expect(result.stderr.contains("no coordinator answered at tcp://192.0.2.1:5555"), "\(result.stderr)")
    }

    /// A keyless coordinator says who can join: any local user on loopback TCP or an open
    /// ipc directory, nobody else in a private one.
    @Test func keylessCoordinatorWarnsWhenOtherUsersCanJoin() throws {
        let directory = try PrivateSocketDirectory.make()
        defer { directory.remove() }
        let open = directory.path + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false)
        chmod(open, 0o755)
        for (bind, warned) in [
            ("tcp://127.0.0.1:*", true), ("ipc://\(open)/c", true), (directory.endpoint, false),
        ] {
            let result = try runConvoy(
                ["coordinator", "--bind", bind, "--workers", "1", "--join-timeout", "0.5", "--out", open + "/m.convoy"]
                    + Self.tiny, timeout: 120)
            #expect(result.status != 0, "no worker joined")
            #expect(result.stderr.contains("listening on"), "\(result.stderr)")
            let warning = result.stderr.contains("has no CURVE: any user of this host can join the run")
            #expect(warning == warned, "\(bind): \(result.stderr)")
        }
    }

    /// `convoy local` binds a private socket (shm:// by default, ipc:// with --transport zmq;
    /// no TCP port, no warning) and removes its directory when it ends.
    @Test(arguments: [("shm", "shm://"), ("zmq", "ipc://")])
    func localRunsOnAPrivateSocketAndCleansUp(transport: String, scheme: String) throws {
        let out = NSTemporaryDirectory() + "convoy-local-ipc-\(UUID().uuidString).convoy"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try runConvoy(["local", "--workers", "1", "--transport", transport, "--out", out] + Self.tiny)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("warning"), "\(result.stderr)")
        let line = result.stderr.split(separator: "\n").first { $0.contains("listening on \(scheme)") }
        let path = line.map { String($0[$0.range(of: scheme)!.upperBound...]) } ?? ""
        #expect(!path.isEmpty, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: (path as NSString).deletingLastPathComponent))
    }

    static let hasIPv6Loopback =
        (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8))?.contains(
            "00000000000000000000000000000001") ?? false

    /// `tcp://[::1]` works like 127.0.0.1: a coordinator and a worker train over it.
    @Test(.enabled(if: hasIPv6Loopback, "no ::1 on this host")) func ipv6LoopbackTrains() throws {
        let out = NSTemporaryDirectory() + "convoy-ipv6-\(UUID().uuidString).convoy"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let coordinator = Process()
        coordinator.executableURL = URL(fileURLWithPath: convoyBinary)
        coordinator.arguments =
            ["coordinator", "--bind", "tcp://[::1]:*", "--workers", "1", "--join-timeout", "60", "--out", out]
            + Self.tiny
        let stderr = Pipe()
        coordinator.standardError = stderr
        try coordinator.run()
        defer { if coordinator.isRunning { kill(coordinator.processIdentifier, SIGKILL) } }
        var said = ""
        // Up to the line after the bind and its warning.
        while !said.contains("waiting for"), coordinator.isRunning {
            let chunk = stderr.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said += String(decoding: chunk, as: UTF8.self)
        }
        let endpoint = said.split(separator: "\n").compactMap { line in
            line.range(of: "listening on ").map { String(line[$0.upperBound...]) }
        }.first
        // Keep reading, so the coordinator never blocks on a full pipe.
        let handle = stderr.fileHandleForReading
        DispatchQueue.global().async { _ = handle.readDataToEndOfFile() }
        #expect(endpoint?.hasPrefix("tcp://[::1]:") == true, "\(said)")
        #expect(said.contains("any user of this host can join"), "loopback, so the warning: \(said)")
        let worker = try runConvoy(["worker", "--connect", endpoint ?? "", "--connect-timeout", "60"], timeout: 180)
        #expect(worker.status == 0, "\(worker.stderr)")
        #expect(worker.stderr.contains("joined run"), "\(worker.stderr)")
        let deadline = Date().addingTimeInterval(60)
        while coordinator.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!coordinator.isRunning && coordinator.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: out))
    }
}
