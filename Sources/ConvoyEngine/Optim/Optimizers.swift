import Foundation

/// The update rules, each on a flat parameter buffer and a flat gradient buffer of the same
/// layout, so the coordinator runs them without a model. All state is a flat `[Float]` too,
/// which checkpoints save as it is.
public enum OptimizerKind: String, CaseIterable, Sendable {
    case sgd, momentum, adagrad, adam
}

public protocol Optimizer {
    var kind: OptimizerKind { get }
    /// Everything the optimizer carries between steps (velocity, squared sums, step count).
    var state: [Float] { get set }
    /// Updates `parameters[range]` with `gradient[range]` as step number `step` (1-based) of
    /// the run. Every rule is elementwise, so a step may be applied in several disjoint
    /// ranges (the coordinator updates the head while the workers still compute the trunk)
    /// with the same bits as in one piece.
    mutating func update(
        _ range: Range<Int>, parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        learningRate: Float, step: Int)
    /// Steps taken so far, where the rule counts them (Adam's bias correction).
    var stepsTaken: Int { get }
}

extension Optimizer {
    public var stepsTaken: Int { 0 }

    /// One whole step over every parameter.
    public mutating func update(
        parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, learningRate: Float
    ) {
        update(
            0..<parameters.count, parameters: parameters, gradient: gradient, learningRate: learningRate,
            step: stepsTaken + 1)
    }
}

public func makeOptimizer(_ kind: OptimizerKind, parameterCount: Int) -> any Optimizer {
    switch kind {
    case .sgd: SGD()
    case .momentum: Momentum(parameterCount: parameterCount)
    case .adagrad: AdaGrad(parameterCount: parameterCount)
    case .adam: Adam(parameterCount: parameterCount)
    }
}

/// `w' = w − α·g` (docs/SPEC.md §7.1).
public struct SGD: Optimizer {
    public init() {}
    public var kind: OptimizerKind { .sgd }
    public var state: [Float] {
        get { [] }
        set {}
    }
    public mutating func update(
        _ range: Range<Int>, parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        learningRate: Float, step: Int
    ) {
        for i in range { parameters[i] -= learningRate * gradient[i] }
    }
}

/// Heavy-ball momentum as PyTorch does it (docs/SPEC.md §7.2): `v = μ·v + g`, `w −= α·v`.
public struct Momentum: Optimizer {
    public var velocity: [Float]
    public let mu: Float
    public init(parameterCount: Int, mu: Float = 0.9) {
        velocity = [Float](repeating: 0, count: parameterCount)
        self.mu = mu
    }
    public var kind: OptimizerKind { .momentum }
    public var state: [Float] {
        get { velocity }
        set { velocity = newValue }
    }
    public mutating func update(
        _ range: Range<Int>, parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        learningRate: Float, step: Int
    ) {
        let mu = mu
        velocity.withUnsafeMutableBufferPointer { v in
            for i in range {
                v[i] = mu * v[i] + gradient[i]
                parameters[i] -= learningRate * v[i]
            }
        }
    }
}

/// AdaGrad (docs/SPEC.md §7.3): `h += g²`, `w −= α·g/(√h + ε)`.
public struct AdaGrad: Optimizer {
    public var squares: [Float]
    public let epsilon: Float
    public init(parameterCount: Int, epsilon: Float = 1e-7) {
        squares = [Float](repeating: 0, count: parameterCount)
        self.epsilon = epsilon
    }
    public var kind: OptimizerKind { .adagrad }
    public var state: [Float] {
        get { squares }
        set { squares = newValue }
    }
    public mutating func update(
        _ range: Range<Int>, parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        learningRate: Float, step: Int
    ) {
        let epsilon = epsilon
        squares.withUnsafeMutableBufferPointer { h in
            for i in range {
                let g = gradient[i]
                h[i] += g * g
                parameters[i] -= learningRate * g / (h[i].squareRoot() + epsilon)
            }
        }
    }
}

/// Adam (Kingma & Ba; docs/SPEC.md §7.4) with bias correction: `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`,
/// `w −= α·m̂/(√v̂ + ε)`. State: m, v, then the step count.
public struct Adam: Optimizer {
    public var m: [Float]
    public var v: [Float]
    public var step: Int = 0
    public let beta1: Float, beta2: Float, epsilon: Float
    public init(parameterCount: Int, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        m = [Float](repeating: 0, count: parameterCount)
        v = m
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
    public var kind: OptimizerKind { .adam }
    public var state: [Float] {
        get { m + v + [Float(step)] }
        set {
            let n = m.count
            guard newValue.count == 2 * n + 1 else { return }
            m = Array(newValue[0..<n])
            v = Array(newValue[n..<(2 * n)])
            step = Int(newValue[2 * n])
        }
    }
    public var stepsTaken: Int { step }
    public mutating func update(
        _ range: Range<Int>, parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        learningRate: Float, step: Int
    ) {
        self.step = step
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        let correction1 = 1 - Float(Foundation.pow(Double(b1), Double(step)))
        let correction2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                for i in range {
                    let g = gradient[i]
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    parameters[i] -= learningRate * (m[i] / correction1) / ((v[i] / correction2).squareRoot() + eps)
                }
            }
        }
    }
}

/// Learning rate per step (docs/SPEC.md §7.5). Cosine decay to zero over the run is the default: on LeNet-5 it
/// ends ~0.3 points above a constant rate after 10 epochs (SGD momentum 0.9, lr 0.05).
public enum LearningRateSchedule: String, CaseIterable, Sendable {
    case cosine, constant

    /// The rate of step `step` (0-based) of `totalSteps` (docs/SPEC.md §7.5): a linear
    /// warm-up over the first `warmupSteps` steps, `base · (step + 1) / warmupSteps`, then
    /// this schedule over the steps after the warm-up.
    public func rate(base: Float, step: Int, totalSteps: Int, warmupSteps: Int = 0) -> Float {
        if step < warmupSteps { return Float(Double(base) * Double(step + 1) / Double(warmupSteps)) }
        switch self {
        case .constant: return base
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let progress = Double(min(step - warmupSteps, span)) / Double(span)
            return Float(Double(base) * 0.5 * (1 + Foundation.cos(Double.pi * progress)))
        }
    }
}
