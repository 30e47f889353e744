import ConvoyInterop
import Foundation

/// Element-wise activations (docs/SPEC.md §4.5). Each backward needs only the saved output `y`:
/// ReLU `dx = dy·[y > 0]`, Sigmoid `dx = dy·y·(1 − y)`, Tanh `dx = dy·(1 − y²)`.
public struct Activation: Layer {
    public enum Function: String, Sendable { case relu, sigmoid, tanh }

    public let function: Function
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }

    public init(_ function: Function, shape: Shape) {
        self.function = function
        inputShape = shape
    }

    public var kind: String {
        switch function {
        case .relu: "ReLU"
        case .sigmoid: "Sigmoid"
        case .tanh: "Tanh"
        }
    }
    public var spec: LayerSpec {
        switch function {
        case .relu: .relu
        case .sigmoid: .sigmoid
        case .tanh: .tanh
        }
    }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let count = batch * inputShape.count
        switch function {
        case .relu: Kernels.reluForward(x, y, count: count)  // branch-free, vectorized (C)
        case .sigmoid: for i in 0..<count { y[i] = 1 / (1 + Foundation.exp(-x[i])) }
        case .tanh: for i in 0..<count { y[i] = Foundation.tanh(x[i]) }
        }
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        guard let dx else { return }
        let count = batch * inputShape.count
        switch function {
        case .relu: Kernels.reluBackward(y: y, dy: dy, dx: dx, count: count)
        case .sigmoid: for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
        case .tanh: for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
        }
    }
}

/// Flatten (docs/SPEC.md §4.3): `(n, c, h, w) → (n, c·h·w)`; the memory layout is already flat, so
/// both passes are copies.
public struct Flatten: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { Shape(inputShape.count) }

    public init(inputShape: Shape) { self.inputShape = inputShape }

    public var kind: String { "Flatten" }
    public var spec: LayerSpec { .flatten }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        y.update(from: x, count: batch * inputShape.count)
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        dx?.update(from: dy, count: batch * inputShape.count)
    }
}
