import ConvoyEngine
import ConvoyInterop
import Foundation

/// N workers that answer every step at once with a valid, precomputed gradient, so a
/// benchmark sees the coordinator's own cost and nothing else. Each worker has its own
/// connection (a DEALER socket, or a shared-memory link for `shm://`: its own routing id or
/// peer, as a worker process would), but one thread serves them all: on a small machine N
/// busy threads would take the CPU away from the coordinator being measured.
public final class SyntheticWorkers: @unchecked Sendable {
    public let count: Int
    private let endpoint: String
    private let gradientEncoding: GradientEncoding
    private let lock = NSLock()
    private var stopping = false
    private var answered: [Int] = []
    private var failure: Error?
    private let done = DispatchSemaphore(value: 0)

    /// Connects `count` workers to `endpoint` on a thread of their own; each says hello.
    public init(endpoint: String, count: Int, gradientEncoding: GradientEncoding = .packed) {
        precondition(count >= 1)
        self.endpoint = endpoint
        self.gradientEncoding = gradientEncoding
        self.count = count
        let thread = Thread { [self] in
            do { try serve() } catch { lock.withLock { failure = error } }
            done.signal()
        }
        thread.name = "synthetic-workers"
        thread.start()
    }

    /// Waits for every worker to have its shutdown acknowledged (or for `stop`); returns
    /// the training slices each one answered, in worker order. Throws what stopped them.
    public func join() throws -> [Int] {
        done.wait()
        return try lock.withLock {
            if let failure { throw failure }
            return answered
        }
    }

    /// Makes the workers leave without waiting for a shutdown (a failed benchmark).
    public func stop() { lock.withLock { stopping = true } }

    private var shouldStop: Bool { lock.withLock { stopping } }

    /// Every synthetic worker's hello (each is told apart by its connection).
    private static var hello: [UInt8] {
        Message(runID: 0, payload: .hello(Hello(host: "synthetic", pid: getpid(), threads: 1))).encoded()
    }

    private func serve() throws {
        if Endpoint.isSharedMemory(endpoint) { return try serveSharedMemory() }
        let context = ZMQContext()
        defer { context.terminate() }
        var workers: [SyntheticWorker] = []
        var sockets: [ZMQSocket] = []
        defer { for socket in sockets { socket.close() } }
        for index in 0..<count {
            let socket = try ZMQSocket(context: context, kind: .dealer)
            try socket.setMaxMessageSize(Wire.maxMessageBytes)
            try socket.connect(endpoint)
            // No ZMQ_IMMEDIATE: the hello waits in the queue until the connection is up.
            try socket.send([Self.hello])
            workers.append(SyntheticWorker(index: index, encoding: gradientEncoding) { _ = try socket.send([$0]) })
            sockets.append(socket)
        }
        while !workers.allSatisfy(\.finished) && !shouldStop {
            for (worker, ready) in zip(workers, try ZMQSocket.poll(sockets, timeoutMs: 50)) where ready {
                // Drain the socket: a poll says a message waits, not how many.
                while let frames = try sockets[worker.index].receive(timeoutMs: 0) {
                    guard let frame = frames.last else { continue }
                    try worker.handle(frame)
                }
            }
        }
        lock.withLock { answered = workers.map(\.slicesAnswered) }
    }

    /// The same over `shm://`: one shared-memory link per worker, all served by this thread.
    private func serveSharedMemory() throws {
        var transports: [SharedMemoryWorkerTransport] = []
        defer { for transport in transports { transport.close() } }
        var workers: [SyntheticWorker] = []
        for index in 0..<count {
            let transport = try SharedMemoryWorkerTransport(endpoint: endpoint)
            try transport.send(Self.hello, dontWait: true)
            transports.append(transport)
            workers.append(
                SyntheticWorker(index: index, encoding: gradientEncoding) {
                    _ = try transport.send($0, dontWait: false)
                })
        }
        while !workers.allSatisfy(\.finished) && !shouldStop {
            for worker in workers {
                while let frames = try transports[worker.index].receive(timeoutMs: 0) {
                    guard let frame = frames.last else { continue }
                    try worker.handle(frame)
                }
            }
            try SharedMemoryWorkerTransport.waitAny(transports, timeoutMs: 50)
        }
        lock.withLock { answered = workers.map(\.slicesAnswered) }
    }
}

/// One synthetic worker: its connection's send, its run, and its reply frames.
final class SyntheticWorker {
    let index: Int
    let send: ([UInt8]) throws -> Void
    private(set) var finished = false
    private(set) var slicesAnswered = 0
    private var runID: UInt64 = 0
    private var workerID: UInt32 = 0
    private var replies: SyntheticReplies?
    /// Whether the in-place reading of step frames was checked against the codec.
    private var peekChecked = false

    let encoding: GradientEncoding

    init(index: Int, encoding: GradientEncoding, send: @escaping ([UInt8]) throws -> Void) {
        self.index = index
        self.encoding = encoding
        self.send = send
    }

    func handle(_ frame: [UInt8]) throws {
        guard let peek = StepPeek(frame) else { return try handleControl(frame) }
        guard peek.runID == runID, let replies else { return }
        if !peekChecked {
            // Once per worker: if the codec's step layout ever moves, fail loudly, never
            // answer the wrong slice.
            guard let message = try? Message(decoding: frame), case let .step(work) = message.payload,
                StepPeek(message, work: work) == peek
            else { throw SyntheticWorkerError.stepLayoutChanged }
            peekChecked = true
        }
        if peek.evaluate {
            let totals = StepResult(
                slice: peek.slice, count: peek.count, correct: 0, lossSum: 0, computeSeconds: 0,
                gradient: .none)
            try send(
                Message(
                    runID: runID, step: peek.step, workerID: workerID,
                    payload: .result(totals)
                ).encoded())
            return
        }
        for frame in replies.frames(count: peek.count, step: peek.step, slice: peek.slice) {
            try send(frame)
        }
        slicesAnswered += 1
    }

    /// Welcome, shutdown and refuse are rare: decoded in full.
    private func handleControl(_ frame: [UInt8]) throws {
        // Weights sent ahead need no answer and are not read: the replies are precomputed.
        if frame.count >= Wire.headerSize && StepPeek.read(UInt16.self, frame, 6) == MessageType.weights.rawValue {
            return
        }
        guard let message = try? Message(decoding: frame) else { return }
        switch message.payload {
        case let .welcome(welcome):
            if replies != nil && runID == message.runID { return }  // a repeated welcome
            runID = message.runID
            workerID = welcome.workerID
            replies = try SyntheticReplies(welcome: welcome, runID: runID, encoding: encoding)
        case .shutdown:
            try send(Message(runID: runID, workerID: workerID, payload: .shutdown).encoded())
            finished = true
        case .refuse, .stop:
            finished = true
        default:
            break
        }
    }
}

/// The fields of a `step` frame a synthetic worker needs, read in place (docs/PROTOCOL.md:
/// header, then slice, flags, sample count), so answering costs no copy of the weights.
/// Nil for any other message type.
struct StepPeek: Equatable {
    let runID: UInt64
    let step: UInt64
    let slice: UInt32
    let evaluate: Bool
    let count: Int

    init?(_ frame: [UInt8]) {
        guard frame.count >= Wire.headerSize + 24,
            Self.read(UInt16.self, frame, 6) == MessageType.step.rawValue
        else { return nil }
        runID = Self.read(UInt64.self, frame, 8)
        step = Self.read(UInt64.self, frame, 16)
        slice = Self.read(UInt32.self, frame, 40)
        evaluate = Self.read(UInt32.self, frame, 44) & 1 != 0
        count = Int(Self.read(UInt32.self, frame, 48))
    }

    init(_ message: Message, work: StepWork) {
        runID = message.runID
        step = message.step
        slice = work.slice
        evaluate = work.evaluate
        count = work.count
    }

    static func read<T: FixedWidthInteger>(_: T.Type, _ frame: [UInt8], _ offset: Int) -> T {
        frame.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
