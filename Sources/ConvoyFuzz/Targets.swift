import ConvoyCluster
import ConvoyEngine

/// What the fuzzer feeds: a wire frame, a checkpoint file or a model file.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case wire, checkpoint, model

    /// Decodes `bytes` and uses what decoded the way convoy would; returns whether it was
    /// accepted. A decoder that throws anything but its own error type, a decoded value
    /// that does not re-encode to the same bytes, or a crash while it is used is a bug
    /// (the process stops, and libFuzzer keeps the input).
    @discardableResult
    public func check(_ bytes: [UInt8]) -> Bool {
        // Files end in a CRC-32 of the rest: the fuzzer's inputs get theirs recomputed, so they
        // reach the decoder as crafted files do instead of stopping at the checksum.
        let crafted = bytes.count >= 4 ? FileMutator.withCRC(Array(bytes.dropLast(4))) : bytes
        switch self {
        case .wire: return checkFrame(bytes)
        case .checkpoint: return checkCheckpoint(crafted)
        case .model: return checkModelFile(crafted)
        }
    }
}

/// Decoding must return a message or throw a `ProtocolError`, and a decoded message must
/// re-encode to a frame that decodes to the same message.
func checkFrame(_ frame: [UInt8]) -> Bool {
    guard let message = try? Message(decoding: frame) else { return false }
    guard let again = try? Message(decoding: message.encoded()), again == message else {
        fatalError("a decoded message did not survive re-encoding")
    }
    return true
}

/// A checkpoint that decodes is used as a resume uses it: its state goes into the named
/// optimizer, which takes a step over the weights (an out-of-bounds state would be caught
/// here, by the address sanitizer in fuzzing builds).
func checkCheckpoint(_ bytes: [UInt8]) -> Bool {
    let checkpoint: Checkpoint
    do {
        checkpoint = try Checkpoint(decoding: bytes, name: "input")
        try checkpoint.validate(name: "input")
    } catch is DataError { return false } catch {
        fatalError("checkpoint decoding threw \(error), not a DataError")
    }
    guard (try? checkpoint.encoded()) == bytes else {
        fatalError("a decoded checkpoint did not re-encode to its bytes")
    }
    var optimizer = makeOptimizer(checkpoint.header.config.optimizer, parameterCount: checkpoint.parameters.count)
    optimizer.state = checkpoint.optimizerState
    guard optimizer.state == checkpoint.optimizerState else { fatalError("the optimizer did not take the state") }
    var weights = checkpoint.parameters
    let gradient = [Float](repeating: 0.001, count: weights.count)
    weights.withUnsafeMutableBufferPointer { w in
        gradient.withUnsafeBufferPointer { g in optimizer.update(parameters: w, gradient: g, learningRate: 0.01) }
    }
    return true
}

/// A model file that decodes is run as `evaluate` runs it: a forward pass of one sample
/// (for architectures small enough to allocate here).
func checkModelFile(_ bytes: [UInt8]) -> Bool {
    let model: ModelFile
    do { model = try ModelFile(decoding: bytes, name: "input") } catch is DataError { return false } catch {
        fatalError("model file decoding threw \(error), not a DataError")
    }
    guard (try? model.encoded()) == bytes else { fatalError("a decoded model file did not re-encode to its bytes") }
    guard let architecture = try? Architecture(model.spec) else {
        fatalError("a decoded model file has no architecture")
    }
    let floats = architecture.layers.reduce(Double(architecture.inputShape.count)) {
        $0 + Double($1.outputShape.count) + Double($1.scratchCount)
    }
    guard floats <= Double(1 << 24) else { return true }
    let network = Network(architecture, maxBatch: 1, parameters: model.parameters)
    network.forward(batch: 1)
    _ = network.predictions(batch: 1)
    return true
}
