/// A fixed-size Float buffer allocated once; the hot path works on its pointer directly so a
/// training step neither allocates nor copies on write.
public final class FloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        load(values)
    }

    deinit { pointer.deallocate() }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public func load(_ values: [Float]) {
        precondition(values.count == count, "FloatBuffer.load: \(values.count) values into \(count)")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }
    public func zero() { pointer.update(repeating: 0, count: count) }
    public subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }
}

import Dispatch

/// An architecture with its buffers: one contiguous parameter buffer, one gradient buffer of
/// the same layout, and every activation, delta and scratch buffer sized for `maxBatch`
/// samples up front, so steady-state training allocates nothing.
public final class Network {
    public let architecture: Architecture
    public let maxBatch: Int
    /// All parameters, layer after layer (`architecture.parameterOffsets`).
    public let parameters: FloatBuffer
    /// Gradient sums with the same layout; `backward` adds to it, callers zero it.
    public let gradient: FloatBuffer
    /// `maxBatch × inputShape.count`: fill with `loadPixels` or directly, then `forward`.
    public let input: FloatBuffer
    private let outputs: [FloatBuffer]
    private let deltas: (FloatBuffer, FloatBuffer)
    /// The input gradient left by a partial `backward`, per sample at its offset.
    private let boundary: FloatBuffer
    private let scratch: FloatBuffer
    private let dLogits: FloatBuffer
    /// Layers grouped into fused blocks (FusedBlock): what forward and backward run.
    private let plan: [FusedBlock.Step]
    /// Arg-max bytes of each pooled block, by its first layer, `maxBatch × indexCount`.
    private let poolIndices: [Int: UnsafeMutablePointer<UInt8>]
    /// Backward steps of the ranges a training step uses (all layers, head, trunk), made
    /// once so a step allocates nothing.
    private var stepCache: [Range<Int>: [FusedBlock.Step]] = [:]
    /// When set, every forward and backward step is timed and reported: the name of the
    /// layer or fused block ("3 Conv2d+ReLU+MaxPool2d"), backward or not, nanoseconds
    /// (`convoy bench --layers`).
    public var onStepTimed: ((_ step: String, _ backward: Bool, _ nanoseconds: UInt64) -> Void)?
    /// Bytes of every buffer above as allocated; `Network.estimatedBytes` is an upper bound of it.
    public let allocatedBytes: Int

    public init(_ architecture: Architecture, maxBatch: Int, parameters initial: [Float]? = nil) {
        precondition(maxBatch >= 1)
        _ = KernelChoice.current  // chooses and self-checks the kernels once per process
        self.architecture = architecture
        self.maxBatch = maxBatch
        parameters = FloatBuffer(count: architecture.parameterCount)
        if let initial { parameters.load(initial) }
        gradient = FloatBuffer(count: architecture.parameterCount)
        input = FloatBuffer(count: maxBatch * architecture.inputShape.count)
        outputs = architecture.layers.map { FloatBuffer(count: maxBatch * $0.outputShape.count) }
        let widest = ([architecture.inputShape] + architecture.layers.map(\.outputShape)).map(\.count).max()!
        deltas = (FloatBuffer(count: maxBatch * widest), FloatBuffer(count: maxBatch * widest))
        boundary = FloatBuffer(count: maxBatch * widest)
        scratch = FloatBuffer(count: architecture.layers.map(\.scratchCount).max() ?? 0)
        dLogits = FloatBuffer(count: maxBatch * architecture.outputShape.count)
        plan = FusedBlock.plan(architecture.layers)
        var indices: [Int: UnsafeMutablePointer<UInt8>] = [:]
        var indexBytes = 0
        for case let .block(block) in plan where block.pooled {
            let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: maxBatch * block.indexCount)
            pointer.initialize(repeating: 4, count: maxBatch * block.indexCount)
            indices[block.first] = pointer
            indexBytes += maxBatch * block.indexCount
        }
        poolIndices = indices
        let floats = [parameters, gradient, input, deltas.0, deltas.1, boundary, scratch, dLogits] + outputs
        allocatedBytes = floats.map(\.count).reduce(0, +) * MemoryLayout<Float>.size + indexBytes
        let count = architecture.layers.count
        var ranges = [0..<count]
        if let split = architecture.headStart { ranges += [0..<split, split..<count] }
        for range in ranges where !cutsBlock(range) {
            stepCache[range] = backwardSteps(range, batch: 1, at: 0)
        }
    }

    private func cutsBlock(_ range: Range<Int>) -> Bool {
        plan.contains { step in
            guard case let .block(block) = step else { return false }
            return range.overlaps(block.layers) && !(range.lowerBound <= block.first && block.last < range.upperBound)
        }
    }

    deinit { for pointer in poolIndices.values { pointer.deallocate() } }

    public convenience init(_ spec: NetworkSpec, maxBatch: Int, seed: UInt64) throws {
        let architecture = try Architecture(spec)
        self.init(architecture, maxBatch: maxBatch, parameters: architecture.initialParameters(seed: seed))
    }

    public var classes: Int { architecture.outputShape.count }
    public var logits: UnsafePointer<Float> { UnsafePointer(outputs.last!.pointer) }

    /// Scales 8-bit pixels to [0, 1] into the input buffer, from sample `offset` on.
    public func loadPixels(_ pixels: UnsafePointer<UInt8>, batch: Int, at offset: Int = 0) {
        let size = architecture.inputShape.count
        precondition(offset >= 0 && offset + batch <= maxBatch)
        let x = input.pointer + offset * size
        for i in 0..<(batch * size) { x[i] = Float(pixels[i]) * (1 / 255) }
    }

    /// Runs every layer on samples `offset..<offset+batch` of `input`; the result is in
    /// `logits` at the same offset. Samples at other offsets are left alone, so several
    /// micro-batches can be forwarded one by one and back-propagated later. Fused blocks
    /// write only their last layer's output.
    public func forward(batch: Int, at offset: Int = 0) {
        precondition(
            batch >= 1 && offset >= 0 && offset + batch <= maxBatch,
            "batch \(batch) at \(offset) outside 0..<\(maxBatch)")
        for step in plan {
            let start = onStepTimed == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            defer { report(step, backward: false, since: start) }
            switch step {
            case let .layer(index): forwardLayer(index, batch: batch, at: offset)
            case let .block(block):
                let layers = architecture.layers
                let epilogue: ConvEpilogue =
                    block.pooled
                    ? .biasReLUPool(indices: poolIndices[block.first]! + offset * block.indexCount) : .biasReLU
                block.conv.forward(
                    x: layerInput(block.first) + offset * layers[block.first].inputShape.count,
                    y: outputs[block.last].pointer + offset * layers[block.last].outputShape.count,
                    batch: batch, parameters: parameters.pointer + architecture.parameterOffsets[block.first],
                    scratch: scratch.pointer, epilogue: epilogue)
            }
        }
    }

    private func report(_ step: FusedBlock.Step, backward: Bool, since start: UInt64) {
        guard let onStepTimed else { return }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        let layers = architecture.layers
        let name =
            switch step {
            case let .layer(index): "\(index + 1) \(layers[index].kind)"
            case let .block(block): "\(block.first + 1) " + block.layers.map { layers[$0].kind }.joined(separator: "+")
            }
        onStepTimed(name, backward, elapsed)
    }

    private func layerInput(_ index: Int) -> UnsafePointer<Float> {
        UnsafePointer(index == 0 ? input.pointer : outputs[index - 1].pointer)
    }

    /// One layer's own forward pass; also fills a fused block's inner outputs when a
    /// `backward` range ends inside the block.
    private func forwardLayer(_ index: Int, batch: Int, at offset: Int) {
        let layer = architecture.layers[index]
        layer.forward(
            x: layerInput(index) + offset * layer.inputShape.count,
            y: outputs[index].pointer + offset * layer.outputShape.count, batch: batch,
            parameters: parameters.pointer + architecture.parameterOffsets[index], scratch: scratch.pointer)
    }

    /// Softmax cross-entropy of samples `offset..<offset+batch` after `forward`; keeps
    /// `dL/dlogits` for `backward`.
    public func lossGradient(labels: UnsafePointer<UInt8>, batch: Int, at offset: Int = 0) -> SoftmaxCrossEntropy.Result
    {
        SoftmaxCrossEntropy.evaluate(
            logits: logits + offset * classes, labels: labels, batch: batch, classes: classes,
            dLogits: dLogits.pointer + offset * classes, gradientScale: 1)
    }

    /// Back-propagates through `layers` (all by default) for samples `offset..<offset+batch`,
    /// adding each layer's parameter gradient into `gradient`. A range that ends at the last
    /// layer starts from the saved `dL/dlogits`; one that ends earlier starts from the input
    /// gradient that a previous call over the following layers left behind. So the head of
    /// the network can be back-propagated (and its gradient shipped) before the trunk.
    public func backward(batch: Int, at offset: Int = 0, layers range: Range<Int>? = nil) {
        let layers = architecture.layers
        let range = range ?? 0..<layers.count
        var dy =
            range.upperBound == layers.count
            ? UnsafePointer(dLogits.pointer + offset * classes)
            : UnsafePointer(boundary.pointer + offset * layers[range.upperBound].inputShape.count)
        var target = deltas.0
        for step in stepCache[range] ?? backwardSteps(range, batch: batch, at: offset) {
            let start = onStepTimed == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            defer { report(step, backward: true, since: start) }
            let (first, last) =
                switch step {
                case let .layer(index): (index, index)
                case let .block(block): (block.first, block.last)
                }
            // The input gradient of the range's first layer is kept for the next call.
            let destination = first == range.lowerBound ? boundary : target
            let dx: UnsafeMutablePointer<Float>? =
                first == 0 ? nil : destination.pointer + offset * layers[first].inputShape.count
            let x = layerInput(first) + offset * layers[first].inputShape.count
            let parameterOffset = architecture.parameterOffsets[first]
            switch step {
            case .layer:
                layers[first].backward(
                    x: x, y: outputs[first].pointer + offset * layers[first].outputShape.count,
                    dy: dy, dx: dx, batch: batch, parameters: parameters.pointer + parameterOffset,
                    gradient: gradient.pointer + parameterOffset, scratch: scratch.pointer)
            case let .block(block):
                let prologue: ConvPrologue =
                    block.pooled
                    ? .pool(indices: poolIndices[block.first]! + offset * block.indexCount)
                    : .reluMask(y: outputs[last].pointer + offset * layers[last].outputShape.count)
                block.conv.backward(
                    x: x, dy: dy, dx: dx, batch: batch, parameters: parameters.pointer + parameterOffset,
                    gradient: gradient.pointer + parameterOffset, scratch: scratch.pointer, prologue: prologue)
            }
            if let dx { dy = UnsafePointer(dx) }
            target = target === deltas.0 ? deltas.1 : deltas.0
        }
    }

    /// The plan's steps inside `range`, last first. A block that the range cuts is split into
    /// its layers, whose inner outputs (which the fused forward did not write) are computed
    /// first, so the layers' own backward passes see exactly what they would have unfused.
    private func backwardSteps(_ range: Range<Int>, batch: Int, at offset: Int) -> [FusedBlock.Step] {
        var steps: [FusedBlock.Step] = []
        for step in plan.reversed() {
            switch step {
            case let .layer(index) where range.contains(index): steps.append(step)
            case .layer: break
            case let .block(block) where range.lowerBound <= block.first && block.last < range.upperBound:
                steps.append(step)
            case let .block(block) where range.overlaps(block.layers):
                for index in block.layers.dropLast() { forwardLayer(index, batch: batch, at: offset) }
                steps += block.layers.clamped(to: range).reversed().map { .layer($0) }
            case .block: break
            }
        }
        return steps
    }

    /// Forward, softmax cross-entropy and backward on the first `batch` inputs: adds the
    /// gradient of the loss *sum* into `gradient` and returns the loss sum and hits.
    @discardableResult
    public func accumulateGradient(labels: UnsafePointer<UInt8>, batch: Int) -> SoftmaxCrossEntropy.Result {
        forward(batch: batch)
        let result = lossGradient(labels: labels, batch: batch)
        backward(batch: batch)
        return result
    }

    /// Loss sum and hits without touching the gradient.
    public func evaluate(labels: UnsafePointer<UInt8>, batch: Int) -> SoftmaxCrossEntropy.Result {
        forward(batch: batch)
        return SoftmaxCrossEntropy.evaluate(
            logits: logits, labels: labels, batch: batch, classes: classes,
            dLogits: nil, gradientScale: 1)
    }

    /// Class predicted for each of the first `batch` samples after `forward`.
    public func predictions(batch: Int) -> [Int] {
        (0..<batch).map { n in
            let row = logits + n * classes
            var best = 0
            for c in 1..<classes where row[c] > row[best] { best = c }
            return best
        }
    }
}
