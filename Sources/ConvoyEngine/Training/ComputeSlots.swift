import ConvoyInterop
import Foundation

/// K gradient computers on K threads of one process, whose sums are added before the caller
/// sees them: per-host aggregation. A worker with K slots is one peer with one gradient per
/// step, however many cores it keeps busy. In fixed-point mode the slots' sums add exactly,
/// so any number of slots gives the same bits as one; in float mode the slots' sums are
/// added in slot order, so a run repeats for a fixed K.
///
/// Slot 0 runs on the caller's thread; slots 1..<K each have a thread of their own, which
/// waits for work on a semaphore. A slice is cut into K sub-slices on micro-batch
/// boundaries (`BatchPlan.slices`), each computed by one slot into its own `GradientSum`.
/// When slot 0 announces a bucket (head first), it waits for the other slots' same bucket,
/// adds them all into `total` and hands the bucket on, so the head still leaves while every
/// slot computes its trunk.
public final class ComputeSlots {
    public let computers: [GradientComputer]
    private let sums: [GradientSum]
    /// The slots' summed gradient of the last `compute`.
    public let total: GradientSum
    private let helpers: [SlotThread]

    /// `cpus`: CPU of each slot's thread (nil: not pinned); slot 0's is the caller's, which
    /// the caller pins itself.
    public init(architecture: Architecture, slots: Int, maxBatch: Int, mode: SumMode, cpus: [Int]? = nil) {
        precondition(slots >= 1)
        computers = (0..<slots).map { _ in GradientComputer(network: Network(architecture, maxBatch: maxBatch)) }
        sums = (0..<slots).map { _ in GradientSum(mode: mode, count: architecture.parameterCount) }
        total = GradientSum(mode: mode, count: architecture.parameterCount)
        helpers = (1..<slots).map { SlotThread(name: "convoy-slot-\($0)", cpu: cpus?[$0]) }
    }

    deinit { for helper in helpers { helper.stop() } }

    public var count: Int { computers.count }

    /// Gives every slot the step's weights.
    public func load(weights: UnsafeBufferPointer<Float>, at offset: Int = 0) {
        precondition(offset >= 0 && offset + weights.count <= computers[0].network.parameters.count)
        for computer in computers {
            (computer.network.parameters.pointer + offset).update(from: weights.baseAddress!, count: weights.count)
        }
    }

    /// Computes the gradient sum of `count` samples into `total` (reset first), calling
    /// `bucketReady(parameters, totals)` once per bucket of `Architecture.gradientBuckets`
    /// when the summed bucket is final. `unit`: sub-slices are cut only at multiples of it.
    @discardableResult
    public func compute(
        pixels: UnsafePointer<UInt8>, labels: UnsafePointer<UInt8>, count: Int, microBatch: Int,
        unit: Int, bucketReady: (Range<Int>, GradientComputer.Totals) throws -> Void
    ) throws
        -> GradientComputer.Totals
    {
        let inputSize = computers[0].network.architecture.inputShape.count
        let parts = BatchPlan.slices(count: count, parts: self.count, unit: unit)
        let bucketCount = computers[0].network.architecture.gradientBuckets.count
        total.reset()
        for sum in sums { sum.reset() }
        // Slots 1..<K: each signals its bucket semaphores in order (all of them, also on error).
        let progress = (1..<self.count).map { _ in SlotProgress(buckets: bucketCount) }
        for (slot, helper) in zip(1..<self.count, helpers) {
            let part = parts[slot]
            let computer = computers[slot]
            let sum = sums[slot]
            let done = progress[slot - 1]
            let (x, y) = (pixels + part.lowerBound * inputSize, labels + part.lowerBound)
            helper.run {
                do {
                    done.totals = try computer.compute(
                        pixels: x, labels: y, count: part.count, microBatch: microBatch,
                        into: sum, bucketReady: { _, totals in done.finishBucket(totals) })
                } catch {
                    done.error = error
                }
                done.finishAll()
            }
        }
        // The other slots read `pixels`: never return before they are done.
        defer { for done in progress { done.waitAll() } }
        var announced = 0
        var totals = try withoutActuallyEscaping(bucketReady) { bucketReady in
            try computers[0].compute(
                pixels: pixels, labels: labels, count: parts[0].count, microBatch: microBatch,
                into: sums[0],
                bucketReady: { parameters, own in
                    try self.gather(parameters, own: own, from: progress, bucket: announced, then: bucketReady)
                    announced += 1
                })
        }
        for done in progress {
            done.waitAll()
            if let error = done.error { throw error }
            totals.add(done.totals)
        }
        for sum in sums { total.addSamples(sum.samples) }
        return totals
    }

    /// Waits for bucket `bucket` of every other slot, adds all slots' values over `parameters`
    /// into `total`, and announces it with the summed totals known so far (final: every
    /// slot's forward pass is done before its first bucket).
    private func gather(
        _ parameters: Range<Int>, own: GradientComputer.Totals, from progress: [SlotProgress],
        bucket: Int, then bucketReady: (Range<Int>, GradientComputer.Totals) throws -> Void
    ) throws {
        var totals = own
        for done in progress {
            done.waitBucket(bucket)
            if let error = done.error { throw error }
            totals.add(done.forwardTotals)
        }
        for sum in sums { total.add(sum, range: parameters) }
        try bucketReady(parameters, totals)
    }

    /// Loss and hits of `count` samples, spread over the slots.
    public func evaluate(pixels: UnsafePointer<UInt8>, labels: UnsafePointer<UInt8>, count: Int)
        -> GradientComputer.Totals
    {
        let inputSize = computers[0].network.architecture.inputShape.count
        let parts = BatchPlan.slices(count: count, parts: self.count, unit: 1)
        let progress = (1..<self.count).map { _ in SlotProgress(buckets: 0) }
        for (slot, helper) in zip(1..<self.count, helpers) {
            let part = parts[slot]
            let computer = computers[slot]
            let done = progress[slot - 1]
            let (x, y) = (pixels + part.lowerBound * inputSize, labels + part.lowerBound)
            helper.run {
                done.totals = computer.evaluate(pixels: x, labels: y, count: part.count)
                done.finishAll()
            }
        }
        var totals = computers[0].evaluate(pixels: pixels, labels: labels, count: parts[0].count)
        for done in progress {
            done.waitAll()
            totals.add(done.totals)
        }
        return totals
    }
}

/// What one helper slot has finished, for the calling thread: one semaphore per bucket and
/// one for the whole slice. Values are written before the signal that publishes them.
private final class SlotProgress: @unchecked Sendable {
    private let buckets: [DispatchSemaphore]
    private let finished = DispatchSemaphore(value: 0)
    private var signaled = 0
    private var collected = false
    var totals = GradientComputer.Totals()
    /// The slot's totals when its first bucket was ready (its forward pass is done then).
    var forwardTotals = GradientComputer.Totals()
    var error: Error?

    init(buckets count: Int) { buckets = (0..<count).map { _ in DispatchSemaphore(value: 0) } }

    /// On the slot's thread.
    func finishBucket(_ totals: GradientComputer.Totals) {
        forwardTotals = totals
        buckets[signaled].signal()
        signaled += 1
    }

    /// On the slot's thread, last: also releases buckets an error left unannounced.
    func finishAll() {
        while signaled < buckets.count {
            buckets[signaled].signal()
            signaled += 1
        }
        finished.signal()
    }

    func waitBucket(_ index: Int) { buckets[index].wait() }

    /// Idempotent: only the calling thread waits here.
    func waitAll() {
        guard !collected else { return }
        collected = true
        finished.wait()
    }
}

/// A thread that runs one job at a time, handed over by `run`.
private final class SlotThread: @unchecked Sendable {
    private let wake = DispatchSemaphore(value: 0)
    private var job: (() -> Void)?
    private var stopping = false

    init(name: String, cpu: Int?) {
        let thread = Thread { [self] in
            // A CPU that cannot be had leaves the slot unpinned: slower, never wrong.
            if let cpu { try? CPUAffinity.pinCurrentThread(to: cpu) }
            while true {
                wake.wait()
                if stopping { return }
                // Taken before it runs: the job's last act wakes the caller, who may hand
                // over the next job at once.
                let current = job
                job = nil
                current?()
            }
        }
        thread.name = name
        thread.start()
    }

    func run(_ job: @escaping () -> Void) {
        self.job = job
        wake.signal()
    }

    func stop() {
        stopping = true
        wake.signal()
    }
}
