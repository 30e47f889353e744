/// Sizes computed from numbers that came from a peer or a file: every product and sum is
/// checked, so an absurd layer or batch is an error naming the quantity, never a trap.
public struct CheckedSize: Sendable {
    public private(set) var value: Int
    /// What is being counted, for the error: "bytes of the worker's buffers".
    public let what: String

    public init(_ what: String, _ value: Int = 0) {
        self.what = what
        self.value = value
    }

    /// `value += a × b × …`, or a `ShapeError` when it overflows.
    public mutating func add(_ factors: Int...) throws { try add(factors: factors) }

    /// A copy with `a × b × …` added.
    public func adding(_ factors: Int...) throws -> CheckedSize {
        var copy = self
        try copy.add(factors: factors)
        return copy
    }

    public mutating func add(factors: [Int]) throws {
        var product = 1
        for factor in factors {
            let (next, overflow) = product.multipliedReportingOverflow(by: factor)
            guard !overflow, factor >= 0 else { throw ShapeError("the \(what) overflow a 64-bit count") }
            product = next
        }
        let (sum, overflow) = value.addingReportingOverflow(product)
        guard !overflow else { throw ShapeError("the \(what) overflow a 64-bit count") }
        value = sum
    }
}

extension Network {
    /// Bytes that `Network(architecture, maxBatch:)` allocates, computed without allocating
    /// (checked arithmetic; an architecture from `Architecture.init` keeps each of its
    /// shapes and layer sizes below 2^36 values, but `maxBatch` and the sums are checked
    /// here). Mirrors `init`: parameters and gradient; input, every layer's output, two
    /// delta buffers and the boundary buffer at the widest shape, and the output gradient,
    /// each for `maxBatch` samples; the largest layer scratch; one arg-max byte per pooled
    /// value (counted for every max-pooling layer, fused or not: an upper bound).
    public static func estimatedBytes(_ architecture: Architecture, maxBatch: Int) throws -> Int {
        guard maxBatch >= 1 else { throw ShapeError("a batch of \(maxBatch) samples is not possible") }
        let float = MemoryLayout<Float>.size
        var bytes = CheckedSize("bytes of the network's buffers")
        try bytes.add(2, architecture.parameterCount, float)
        let shapes = [architecture.inputShape] + architecture.layers.map(\.outputShape)
        for shape in shapes { try bytes.add(maxBatch, shape.count, float) }
        let widest = shapes.map(\.count).max() ?? 0
        try bytes.add(3, maxBatch, widest, float)
        try bytes.add(maxBatch, architecture.outputShape.count, float)
        try bytes.add(architecture.layers.map(\.scratchCount).max() ?? 0, float)
        for layer in architecture.layers where layer is MaxPool2d { try bytes.add(maxBatch, layer.outputShape.count) }
        return bytes.value
    }
}
