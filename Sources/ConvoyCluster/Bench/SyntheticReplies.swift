import ConvoyEngine

/// Why a synthetic worker gave up: the wire format moved under its shortcuts.
public enum SyntheticWorkerError: Error, CustomStringConvertible {
    case stepLayoutChanged

    public var description: String {
        "a step message no longer has the layout of docs/PROTOCOL.md where the synthetic worker reads it"
    }
}

/// A synthetic worker's result frames: one per bucket of `Architecture.gradientBuckets`, in
/// that order (head first), of the run's kind (fixed point or float), encoded once per slice
/// size. Each answer only patches the step and slice numbers into them, so a worker answers
/// in a few memcpy's and the coordinator sees exactly the bytes a real worker would send.
final class SyntheticReplies {
    private let runID: UInt64
    private let workerID: UInt32
    private let gradients: [(offset: Int, values: StepResult.Gradient)]
    private let encoding: GradientEncoding
    private var count = -1
    private var frames: [[UInt8]] = []
    /// Whether patching the header and payload in place gives the message the codec would
    /// encode (checked on the first frames); if not, every answer is encoded in full.
    private var patchable = true

    init(welcome: Welcome, runID: UInt64, encoding: GradientEncoding) throws {
        self.runID = runID
        self.encoding = encoding
        workerID = welcome.workerID
        let architecture = try Architecture(welcome.spec)
        // Small varied values: realistic bytes, and the sum can never overflow.
        gradients = architecture.gradientBuckets.map { bucket in
            (bucket.parameters.lowerBound, Self.gradient(bucket.parameters, deterministic: welcome.deterministic))
        }
    }

    /// A bucket's synthetic values: small and varied, like a real slice's sums (a fixed-point
    /// value takes 3–4 bytes as a varint, as LeNet-5's do), and their sum can never overflow.
    static func gradient(_ range: Range<Int>, deterministic: Bool) -> StepResult.Gradient {
        deterministic
            ? .fixedPoint(range.map { Int64($0 % 7 - 3) << 20 }) : .float(range.map { Float($0 % 7 - 3) * 1e-4 })
    }

    /// The frames answering slice `slice` of `count` samples at step `step`.
    func frames(count: Int, step: UInt64, slice: UInt32) -> [[UInt8]] {
        guard patchable else { return encoded(count: count, step: step, slice: slice) }
        if count != self.count {
            self.count = count
            frames = encoded(count: count, step: step, slice: slice)
            patchable = checkPatching()
            return patchable ? frames : encoded(count: count, step: step, slice: slice)
        }
        for i in frames.indices { Self.patch(&frames[i], step: step, slice: slice) }
        return frames
    }

    private func encoded(count: Int, step: UInt64, slice: UInt32) -> [[UInt8]] {
        gradients.map { bucket in
            Message(
                runID: runID, step: step, workerID: workerID,
                payload: .result(
                    StepResult(
                        slice: slice, count: count, correct: 0, lossSum: Double(count) * 2.3, computeSeconds: 0,
                        gradientOffset: bucket.offset, gradient: bucket.values))
            ).encoded(gradients: encoding)
        }
    }

    /// Step at header offset 16, slice at the start of the result payload (offset 40).
    private static func patch(_ frame: inout [UInt8], step: UInt64, slice: UInt32) {
        frame.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: step.littleEndian, toByteOffset: 16, as: UInt64.self)
            bytes.storeBytes(of: slice.littleEndian, toByteOffset: 40, as: UInt32.self)
        }
    }

    private func checkPatching() -> Bool {
        var trial = frames
        for i in trial.indices { Self.patch(&trial[i], step: 0x1234_5678, slice: 77) }
        return trial == encoded(count: count, step: 0x1234_5678, slice: 77)
    }
}
