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
        let big = Message(runID: 1, payload: .refuse(String(repeating: "x", count: (1 << 20) - 1)))
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
}
