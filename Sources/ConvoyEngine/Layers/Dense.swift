import ConvoyInterop

/// Dense (docs/SPEC.md §4.4): `a = x·W + b` with `W` stored `(inputs, outputs)` then `b` `(outputs)`.
/// Backward: `dW += xᵀ·da`, `db += Σ_n da`, `dx = da·Wᵀ`; each product is one GEMM.
public struct Dense: Layer {
    public let inputShape: Shape
    public let outputShape: Shape
    public let inputs: Int
    public let outputs: Int

    public init(inputShape: Shape, outputs: Int) throws {
        guard inputShape.rank == 1 else {
            throw ShapeError("Dense needs a flat (features) input, got \(inputShape): add a Flatten layer before it")
        }
        guard outputs >= 1 else { throw ShapeError("Dense outputs \(outputs) must be at least 1") }
        self.inputShape = inputShape
        inputs = inputShape.dims[0]
        self.outputs = outputs
        outputShape = Shape(outputs)
    }

    public var kind: String { "Dense" }
    public var spec: LayerSpec { .dense(outputs: outputs) }
    public var weightCount: Int { inputs * outputs }
    public var parameterCount: Int { weightCount + outputs }
    public var fanIn: Int { inputs }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let bias = parameters + weightCount
        for n in 0..<batch { (y + n * outputs).update(from: bias, count: outputs) }
        BLAS.sgemm(
            transA: false, transB: false, m: batch, n: outputs, k: inputs,
            a: x, lda: inputs, b: parameters, ldb: outputs, beta: 1, c: y, ldc: outputs)
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        BLAS.sgemm(
            transA: true, transB: false, m: inputs, n: outputs, k: batch,
            a: x, lda: inputs, b: dy, ldb: outputs, beta: 1, c: gradient, ldc: outputs)
        let biasGradient = gradient + weightCount
        for n in 0..<batch {
            let row = dy + n * outputs
            for o in 0..<outputs { biasGradient[o] += row[o] }
        }
        if let dx {
            BLAS.sgemm(
                transA: false, transB: true, m: batch, n: inputs, k: outputs,
                a: dy, lda: outputs, b: parameters, ldb: outputs, beta: 0, c: dx, ldc: inputs)
        }
    }
}
