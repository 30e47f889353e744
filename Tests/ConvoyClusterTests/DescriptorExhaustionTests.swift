import ConvoyInterop
import Foundation
import Testing

/// A coordinator out of file descriptors must not spin: `accept` then fails with EMFILE while
/// the connection stays queued and the listener readable (SharedMemoryCoordinatorTransport).
@Suite(.serialized) struct DescriptorExhaustionTests {
    /// CPU seconds (user + system) a process has used, from /proc.
    func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the command name (which may hold spaces) start after its ")".
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test func aCoordinatorOutOfDescriptorsWaitsInsteadOfSpinning() throws {
        let dir = NSTemporaryDirectory() + "convoy-emfile-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/coordinator"
        let coordinator = try startConvoy([
            "coordinator", "--bind", "shm://" + path, "--workers", "8", "--join-timeout", "60",
            "--train-samples", "64", "--test-samples", "10", "--data", mnistDirectory, "--out", dir + "/m.convoy",
        ])
        defer {
            coordinator.terminate()
            coordinator.waitUntilExit()
        }
        // Up and listening: its socket exists.
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: path) && Date() < deadline { usleep(20_000) }
        try #require(FileManager.default.fileExists(atPath: path))
        usleep(200_000)
        // Room for exactly two connections: each costs the coordinator four descriptors (the
        // socket, the memfd and two eventfds), and descriptors are handed out lowest first.
        let open = Set(
            try FileManager.default.contentsOfDirectory(atPath: "/proc/\(coordinator.processIdentifier)/fd")
                .compactMap { Int($0) })
        // The smallest limit below which exactly eight descriptors are free.
        var limit = 0
        while limit - open.count(where: { $0 < limit }) < 8 { limit += 1 }
        let prlimit = Process()
        prlimit.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        prlimit.arguments = ["--pid", String(coordinator.processIdentifier), "--nofile=\(limit)"]
        try prlimit.run()
        prlimit.waitUntilExit()
        try #require(prlimit.terminationStatus == 0)
        // Two connections that fill the table, and a third that waits in the listen queue.
        var clients: [LocalSocket] = []
        for _ in 0..<3 {
            clients.append(try LocalSocket.connect(to: path))
            usleep(100_000)
        }
        let before = try cpuSeconds(coordinator.processIdentifier)
        usleep(1_500_000)
        let used = try cpuSeconds(coordinator.processIdentifier) - before
        #expect(coordinator.isRunning)
        #expect(used < 0.5, "the coordinator used \(used) s of CPU in 1.5 s while out of descriptors")
        withExtendedLifetime(clients) {}
    }
}
