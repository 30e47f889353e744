import ConvoyEngine

/// What a worker checks of a coordinator's messages before it believes them.
extension Welcome {
    /// The values of a welcome built in memory rather than decoded (the decoder checks the same).
    func checkValues() throws {
        guard (1...Wire.maxSamples).contains(microBatch) else {
            throw ProtocolError("micro-batch \(microBatch) is outside 1...\(Wire.maxSamples)")
        }
        guard (1...Wire.maxSampleSize).contains(sampleSize) else {
            throw ProtocolError("sample size \(sampleSize) is outside 1...\(Wire.maxSampleSize)")
        }
        guard workerID < Wire.maxWorkers else {
            throw ProtocolError("worker id \(workerID) is outside 0..<\(Wire.maxWorkers)")
        }
    }
}

/// The fixed header fields of a frame that may not decode, to answer it in kind.
struct FrameHeader {
    let type: MessageType
    let runID: UInt64
    let step: UInt64

    init?(_ frame: [UInt8]) {
        guard frame.count >= Wire.headerSize, Array(frame[0..<4]) == Wire.magic else { return nil }
        func field(_ offset: Int, _ size: Int) -> UInt64 {
            (0..<size).reduce(0) { $0 | UInt64(frame[offset + $1]) << (8 * $1) }
        }
        guard let type = MessageType(rawValue: UInt16(field(6, 2))), field(16, 8) < 1 << 48 else { return nil }
        self.type = type
        runID = field(8, 8)
        step = field(16, 8)
    }
}

/// A worker's own results: what it may not send.
extension WorkerCore {
    /// What an honest worker may not send: the same bounds the coordinator checks.
    struct DivergedResult: Error, CustomStringConvertible {
        let description: String
    }

    static func checkDiverged(_ totals: GradientComputer.Totals, _ gradient: StepResult.Gradient, samples: Int)
        throws
    {
        guard SumBounds.lossIsPossible(totals.lossSum, samples: totals.count) else {
            throw DivergedResult(description: "the loss sum is \(totals.lossSum): the training has diverged")
        }
        if case let .float(values) = gradient,
            !values.withUnsafeBufferPointer({ SumBounds.floatIsPossible($0, samples: samples) })
        {
            throw DivergedResult(
                description: "a gradient sum is not finite or beyond \(samples) samples × 2^18: the training has "
                    + "diverged")
        }
    }
}
