@testable import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

/// libzmq option numbers the tests set on their raw peers (zmq.h).
private let zmqRcvbuf: Int32 = 12
private let zmqRcvhwm: Int32 = 24

/// The coordinator's ZeroMQ socket against peers that do not play by the rules: one that
/// does not read, one that sends many frames, one that sends more than the run's largest
/// message. Real sockets on 127.0.0.1, bounded in time.
@Suite(.serialized) struct TransportAdmissionTests {
    func hello(_ host: String = "raw") -> [UInt8] {
        Message(runID: 0, payload: .hello(Hello(host: host, pid: 1, threads: 1))).encoded()
    }

    /// Issue 14 row 1: sends to a peer that never reads fail with `queueFull` once its
    /// queue is full; none of them waits.
    @Test func sendsToAPeerThatDoesNotReadNeverWait() throws {
        let context = ZMQContext()
        let transport = try ZMQCoordinatorTransport(
            context: context, bind: "tcp://127.0.0.1:*",
            limits: CoordinatorLimits(maxMessageBytes: 1 << 20, sendQueueMessages: 4))
        let peer = try ZMQSocket(context: context, kind: .dealer)
        try peer.setOption(zmqRcvhwm, int32: 1)
        try peer.setOption(zmqRcvbuf, int32: 4096)
        try peer.connect(transport.endpoint)
        defer {
            peer.close()
            transport.close()
            context.terminate()
        }
        try peer.send([hello()])
        let (id, _) = try #require(try transport.receive(timeoutMs: 10_000))
        let big = Message(runID: 1, payload: .refuse(Refusal(.worker, String(repeating: "x", count: (1 << 20) - 2))))
        let started = ContinuousClock.now
        var failure: (any Error)?
        var sent = 0
        while failure == nil && sent < 1000 {
            do { sent += try transport.send(big, to: id) > 0 ? 1 : 0 } catch { failure = error }
        }
        #expect(failure as? CoordinatorSendError == .queueFull, "sent \(sent) MiB without a full queue")
        #expect(sent < 100)
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    /// A message of many frames arrives as one undecodable frame (its extra frames are
    /// freed one by one), and the next message from the same peer is intact.
    @Test func aMultiFrameMessageIsDrainedAndRefused() throws {
        let context = ZMQContext()
        let transport = try ZMQCoordinatorTransport(context: context, bind: "tcp://127.0.0.1:*")
        let peer = try ZMQSocket(context: context, kind: .dealer)
        try peer.connect(transport.endpoint)
        defer {
            peer.close()
            transport.close()
            context.terminate()
        }
        try peer.send(Array(repeating: [UInt8](repeating: 7, count: 1000), count: 1000))
        try peer.send([hello()])
        let first = try #require(try transport.receive(timeoutMs: 10_000))
        #expect(first.frame.isEmpty)
        let second = try #require(try transport.receive(timeoutMs: 10_000))
        #expect(second.peer == first.peer)
        #expect(second.frame == hello())
    }

    /// A message over the run's largest is never delivered (libzmq closes that connection);
    /// a peer within the limit is heard.
    @Test func aMessageOverTheRunsLimitIsNeverDelivered() throws {
        let context = ZMQContext()
        let transport = try ZMQCoordinatorTransport(
            context: context, bind: "tcp://127.0.0.1:*",
            limits: CoordinatorLimits(maxMessageBytes: 2000, sendQueueMessages: 4))
        let big = try ZMQSocket(context: context, kind: .dealer)
        let small = try ZMQSocket(context: context, kind: .dealer)
        try big.connect(transport.endpoint)
        try small.connect(transport.endpoint)
        defer {
            big.close()
            small.close()
            transport.close()
            context.terminate()
        }
        try big.send([[UInt8](repeating: 1, count: 4000)])
        usleep(200_000)
        try small.send([hello()])
        var frames: [[UInt8]] = []
        while let (_, frame) = try transport.receive(timeoutMs: 1000) { frames.append(frame) }
        #expect(frames == [hello()])
    }

    /// Strangers cannot hold more than `maxHandshaking` connections in their handshake: of
    /// 40 raw TCP connections that never authenticate, all past the first 8 are cut at
    /// once; once libzmq closes those at the handshake interval, an authorized worker joins.
    @Test func connectionsStillInTheirHandshakeAreCapped() throws {
        let context = ZMQContext()
        let server = try CurveKeyPair.generate()
        let worker = try CurveKeyPair.generate()
        let authenticator = try ZAPAuthenticator(
            context: context, policy: AuthorizedKeys([worker.publicKey]).decide, log: { _ in })
        var limits = CoordinatorLimits(maxMessageBytes: 1 << 16, sendQueueMessages: 4)
        limits.maxHandshaking = 8
        limits.handshakeMs = 1500
        let transport = try ZMQCoordinatorTransport(
            context: context, bind: "tcp://127.0.0.1:*", curveSecretKey: server.secretKey,
            authenticator: authenticator, limits: limits)
        let port = try #require(UInt16(transport.endpoint.split(separator: ":").last ?? ""))
        usleep(300_000)  // the authenticator's thread connects its monitor
        let strangers = (0..<40).map { _ in rawConnect(port: port) }
        defer { for fd in strangers where fd >= 0 { close(fd) } }
        #expect(strangers.allSatisfy { $0 >= 0 })
        usleep(700_000)  // less than the handshake interval: the first 8 are still open
        let cut = strangers.filter(closedByPeer).count
        #expect(cut == 32, "\(cut) of 40 cut")

        let client = try ZMQSocket(context: context, kind: .dealer)
        try client.makeCurveClient(serverKey: server.publicKey, keys: worker)
        try client.connect(transport.endpoint)
        defer {
            client.close()
            transport.close()
            authenticator.stop()
            context.terminate()
        }
        try client.send([hello()])
        let received = try #require(try transport.receive(timeoutMs: 15_000))
        #expect(received.frame == hello())
    }
}

/// A plain TCP connection to 127.0.0.1:`port`; its descriptor, or −1.
private func rawConnect(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return rc == 0 ? fd : -1
}

/// Whether the other end has closed `fd` (what it sent is read and dropped); never waits.
private func closedByPeer(_ fd: Int32) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        var item = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&item, 1, 0) > 0 else { return false }
        if recv(fd, &buffer, buffer.count, 0) <= 0 { return true }
    }
}
