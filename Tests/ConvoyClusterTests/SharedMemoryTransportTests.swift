@testable import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

/// The shared-memory transport (`shm://`) between real processes' halves in one test process:
/// a real Unix socket in a private directory, a real sealed memfd, rings small enough that
/// messages wrap and stream. Peers that break the rules are played by a raw socket that maps
/// the region itself. Every wait is bounded.
@Suite(.serialized) struct SharedMemoryTransportTests {
    /// What the echo thread ran into, if anything.
    final class EchoOutcome: @unchecked Sendable {
        private let lock = NSLock()
        private var problem = "none"
        func set(_ text: String) { lock.withLock { problem = text } }
        var text: String { lock.withLock { problem } }
    }

    final class Place {
        let directory: PrivateSocketDirectory
        var endpoint: String { directory.sharedMemoryEndpoint }
        var path: String { directory.socketPath }
        init() throws { directory = try PrivateSocketDirectory.make() }
        deinit { directory.remove() }
    }

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    /// The next frame the coordinator receives while the workers get their turns: in one
    /// thread, a worker's queued frames leave only when it next calls the transport (after
    /// the coordinator's hand-over arrived), as a real worker does in its receive loop.
    static func nextFrame(
        _ coordinator: SharedMemoryCoordinatorTransport, serving workers: [SharedMemoryWorkerTransport],
        seconds: Double = 5
    ) throws -> (peer: PeerID, frame: [UInt8])? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if let next = try coordinator.receive(timeoutMs: 5) { return next }
            for worker in workers { #expect(try worker.receive(timeoutMs: 0) == nil) }
        }
        return nil
    }

    static let message = Message(runID: 7, payload: .refuse(Refusal(.worker, "weights would go here")))

    @Test func framesCrossBothWaysIntact() throws {
        let place = try Place()
        let coordinator = try SharedMemoryCoordinatorTransport(bind: place.endpoint)
        defer { coordinator.close() }
        let worker = try SharedMemoryWorkerTransport(endpoint: place.endpoint)
        defer { worker.close() }
        let hello = Self.bytes(1000, seed: 3)
        #expect(try worker.send(hello, dontWait: true))
        let (peer, frame) = try #require(try Self.nextFrame(coordinator, serving: [worker]))
        #expect(frame == hello)
        #expect(try coordinator.send(Self.message, to: peer) == Self.message.encoded().count)
        #expect(try worker.receive(timeoutMs: 5000) == [Self.message.encoded()])
        #expect(try coordinator.send(Self.message, to: [9, 9, 9, 9]) == 0, "an unknown peer takes nothing")
        #expect(try coordinator.receive(timeoutMs: 0) == nil)
    }

    /// Messages many times the ring's size stream through it in both directions, wrapping
    /// around, while the other side reads on its own thread.
    @Test func messagesLargerThanTheRingStream() throws {
        let place = try Place()
        let coordinator = try SharedMemoryCoordinatorTransport(
            bind: place.endpoint, limits: CoordinatorLimits(maxMessageBytes: 1 << 20, sendQueueMessages: 8),
            ringCapacity: 4096)
        defer { coordinator.close() }
        let endpoint = place.endpoint
        let rounds = 5
        let outcome = EchoOutcome()
        let echo = Thread {
            do {
                let worker = try SharedMemoryWorkerTransport(endpoint: endpoint)
                defer { worker.close() }
                try worker.send([1], dontWait: true)
                for round in 0..<rounds {
                    guard let frames = try worker.receive(timeoutMs: 10_000) else {
                        return outcome.set("round \(round): nothing in 10 s")
                    }
                    // Back with a different size, so the ring's positions move unevenly.
                    try worker.send(frames[0] + Self.bytes(777, seed: 1), dontWait: false)
                }
            } catch { outcome.set("\(error)") }
        }
        echo.start()
        let (peer, first) = try #require(try coordinator.receive(timeoutMs: 10_000))
        #expect(first == [1])
        for round in 0..<rounds {
            let sent = Message(
                runID: UInt64(round), payload: .refuse(Refusal(.worker, String(repeating: "w", count: 30_000 + round))))
            _ = try coordinator.send(sent, to: peer)
            let (from, frame) = try #require(
                try coordinator.receive(timeoutMs: 10_000), "round \(round); the echo: \(outcome.text)")
            #expect(from == peer)
            #expect(frame == sent.encoded() + Self.bytes(777, seed: 1), "round \(round)")
        }
    }

    /// What a peer wrote just before it ended is still delivered (its shutdown acknowledgement,
    /// say), as TCP delivers the bytes before a FIN; then the link is gone.
    @Test func aFrameWrittenJustBeforeThePeerEndsIsStillDelivered() throws {
        let place = try Place()
        let coordinator = try SharedMemoryCoordinatorTransport(bind: place.endpoint)
        defer { coordinator.close() }
        let worker = try SharedMemoryWorkerTransport(endpoint: place.endpoint)
        #expect(try worker.send([1], dontWait: true))
        let (peer, _) = try #require(try Self.nextFrame(coordinator, serving: [worker]))
        #expect(try worker.send([2, 2], dontWait: false))
        worker.close()
        #expect(try coordinator.receive(timeoutMs: 2000)?.frame == [2, 2])
        #expect(try coordinator.receive(timeoutMs: 200) == nil)
        #expect(try coordinator.send(Self.message, to: peer) == 0, "the link is gone")
    }

    /// A frame over the run's largest message ends that link before it is held; the
    /// coordinator goes on, and a send to that peer then takes nothing.
    @Test func anOversizedFrameDropsOnlyThatLink() throws {
        let place = try Place()
        let coordinator = try SharedMemoryCoordinatorTransport(
            bind: place.endpoint, limits: CoordinatorLimits(maxMessageBytes: 10_000, sendQueueMessages: 8))
        defer { coordinator.close() }
        let good = try SharedMemoryWorkerTransport(endpoint: place.endpoint)
        let bad = try SharedMemoryWorkerTransport(endpoint: place.endpoint)
        defer {
            good.close()
            bad.close()
        }
        #expect(try bad.send(Self.bytes(10_001, seed: 2), dontWait: true))
        #expect(try good.send([5, 5], dontWait: true))
        let (peer, frame) = try #require(try Self.nextFrame(coordinator, serving: [good, bad]))
        #expect(frame == [5, 5])
        #expect(try Self.nextFrame(coordinator, serving: [good, bad], seconds: 0.2) == nil)
        #expect(try coordinator.send(Self.message, to: peer) > 0)
        #expect(try good.receive(timeoutMs: 5000) == [Self.message.encoded()])
    }

    /// Sends to a peer that never reads fail with `queueFull` once its queue is full; none waits.
    @Test func sendsToAPeerThatDoesNotReadNeverWait() throws {
        let place = try Place()
        let coordinator = try SharedMemoryCoordinatorTransport(
            bind: place.endpoint, limits: CoordinatorLimits(maxMessageBytes: 1 << 20, sendQueueMessages: 4),
            ringCapacity: 4096)
        defer { coordinator.close() }
        let worker = try SharedMemoryWorkerTransport(endpoint: place.endpoint)
        defer { worker.close() }
        #expect(try worker.send([1], dontWait: true))
        let (peer, _) = try #require(try Self.nextFrame(coordinator, serving: [worker]))
        let big = Message(runID: 1, payload: .refuse(Refusal(.worker, String(repeating: "x", count: 100_000))))
        let started = ContinuousClock.now
        var failure: (any Error)?
        var sent = 0
        while failure == nil && sent < 100 {
            do { sent += try coordinator.send(big, to: peer) > 0 ? 1 : 0 } catch { failure = error }
        }
        #expect(failure as? CoordinatorSendError == .queueFull)
        #expect(sent == 4)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// A peer that writes its ring's shared positions out of bounds (or a length over the
    /// limit) loses its link; the coordinator neither crashes nor reads past the ring.
    @Test(arguments: ["tail", "length"])
    func aPeerThatCorruptsTheRingIsDropped(corruption: String) throws {
        let place = try Place()
        let coordinator = try SharedMemoryCoordinatorTransport(
            bind: place.endpoint, limits: CoordinatorLimits(maxMessageBytes: 4096, sendQueueMessages: 8),
            ringCapacity: 4096)
        defer { coordinator.close() }
        let raw = try LocalSocket.connect(to: place.path)
        #expect(try coordinator.receive(timeoutMs: 50) == nil, "accepts and hands the region over")
        var handOver: (bytes: [UInt8], fds: [Int32])?
        for _ in 0..<100 where handOver == nil {
            if case let .packet(bytes, fds, _)? = try raw.receive(capacity: 64), !fds.isEmpty {
                handOver = (bytes, fds)
            }
            usleep(10_000)
        }
        let (setup, fds) = try #require(handOver)
        #expect(fds.count == 3, "the region and two eventfds")
        let fd = fds[0]
        let coordinatorWake = try WakeSignal(adopting: fds[1])
        _ = try WakeSignal(adopting: fds[2])
        // Golden bytes of the hand-over (docs/PROTOCOL.md): magic, version 1, capacity u32 LE.
        #expect(setup == Array("CVYSHM".utf8) + [1, 0] + [0x00, 0x10, 0x00, 0x00])
        let region = try SharedRegion(adopting: fd, size: SharedLink.regionSize(capacity: 4096))
        let upstream = region.base + 2048
        if corruption == "tail" {
            SharedWord.storeRelease(upstream + ByteRing.tailOffset, 1 << 40)
        } else {
            // A length prefix of 1 MiB, announced in the stream.
            (region.base + 4096 + 4096).storeBytes(of: UInt32(1 << 20).littleEndian, as: UInt32.self)
            SharedWord.storeRelease(upstream + ByteRing.tailOffset, 4)
        }
        coordinatorWake.signal()
        let good = try SharedMemoryWorkerTransport(endpoint: place.endpoint)
        defer { good.close() }
        #expect(try good.send([4, 2], dontWait: true))
        let (_, frame) = try #require(try Self.nextFrame(coordinator, serving: [good]))
        #expect(frame == [4, 2], "the good peer is served")
        #expect(try Self.nextFrame(coordinator, serving: [good], seconds: 0.1) == nil, "nothing from the corrupt peer")
        var closed = false
        for _ in 0..<100 where !closed {
            if case .closed? = try raw.receive(capacity: 64) { closed = true } else { usleep(10_000) }
        }
        #expect(closed, "the coordinator ended the corrupt peer's link")
    }

    /// A worker whose coordinator went away reconnects to the next one at the same path and
    /// is served there, as over ZeroMQ.
    @Test func aWorkerReconnectsToARestartedCoordinator() throws {
        let place = try Place()
        var coordinator: SharedMemoryCoordinatorTransport? = try SharedMemoryCoordinatorTransport(bind: place.endpoint)
        let worker = try SharedMemoryWorkerTransport(endpoint: place.endpoint)
        defer { worker.close() }
        #expect(try worker.send([1], dontWait: true))
        #expect(try Self.nextFrame(try #require(coordinator), serving: [worker])?.frame == [1])
        coordinator?.close()
        coordinator = nil
        #expect(try worker.receive(timeoutMs: 100) == nil, "notices the end")
        let second = try SharedMemoryCoordinatorTransport(bind: place.endpoint)
        defer { second.close() }
        var received: (peer: PeerID, frame: [UInt8])?
        let deadline = ContinuousClock.now + .seconds(10)
        while received == nil && ContinuousClock.now < deadline {
            _ = try worker.send([2], dontWait: true)
            _ = try worker.receive(timeoutMs: 50)
            received = try second.receive(timeoutMs: 50)
        }
        let (peer, frame) = try #require(received)
        #expect(frame == [2])
        #expect(try second.send(Self.message, to: peer) > 0)
        #expect(try worker.receive(timeoutMs: 5000) == [Self.message.encoded()])
    }

    /// A region that is not sealed against shrinking (a peer could make our reads fault) or
    /// of the wrong size is refused before it is mapped.
    @Test func anUnsealedOrMisSizedRegionIsRefused() throws {
        let sealed = try SharedRegion(creating: 8192, name: "test")
        #expect(throws: SharedMemoryError.self) { try SharedRegion(adopting: dup(sealed.fd), size: 4096) }
        // A plain file: nothing stops its owner from truncating it under the mapping.
        let path = NSTemporaryDirectory() + "convoy-unsealed-" + UUID().uuidString
        let unsealed = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        defer { unlink(path) }
        #expect(unsealed >= 0)
        #expect(ftruncate(unsealed, 8192) == 0)
        #expect(throws: SharedMemoryError.self) { try SharedRegion(adopting: unsealed, size: 8192) }
    }

    @Test func endpointsOfSharedMemoryReachOnlyThisUser() {
        #expect(Endpoint.reach("shm:///tmp/x/coordinator") == .thisUser)
        #expect(SharedMemoryCoordinatorTransport.ringCapacity(maxMessageBytes: 617_432) == 1 << 20)
        #expect(SharedMemoryCoordinatorTransport.ringCapacity(maxMessageBytes: 1 << 40) == 4 << 20)
        #expect(SharedMemoryCoordinatorTransport.ringCapacity(maxMessageBytes: 10) == 64 << 10)
    }
}
