@testable import ConvoyEngine
import Testing

/// Finite differences against each layer's backward: for f = Σ r ⊙ layer(x; θ) with random r,
/// ∂f/∂x and ∂f/∂θ from backward (dy = r) must match (f(v+ε) − f(v−ε)) / 2ε. With ε = 1e-2 and
/// Float32 forward passes, rounding contributes ~1e-4 and curvature (tanh, sigmoid) ~ε², so
/// we allow 3e-3 + 2e-2·|numeric|. Inputs are kept away from ReLU's kink and pooling ties
/// (farther than ε), where the derivative does not exist.
@Suite struct GradientCheckTests {
    static let epsilon: Float = 1e-2

    static func check(_ layer: any Layer, batch: Int, seed: UInt64, avoidKinks: Bool = false) {
        var rng = SeededRandom(seed: seed)
        var x = randomFloats(batch * layer.inputShape.count, &rng)
        if avoidKinks {
            // Distinct values on a grid 0.05 apart: no ties within ε, no value near 0.
            let grid = (0..<x.count).map { Float($0 - x.count / 2) * 0.05 + 0.025 }
            var shuffled = grid
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, rng.nextIndex(below: i + 1)) }
            x = shuffled
        }
        let parameters = randomFloats(layer.parameterCount, &rng)
        let r = randomFloats(batch * layer.outputShape.count, &rng)
        let analytic = runLayer(layer, x: x, parameters: parameters, dy: r, batch: batch)
        func f(_ x: [Float], _ p: [Float]) -> Double {
            zip(forwardOnly(layer, x: x, parameters: p, batch: batch), r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        func numeric(_ vector: [Float], _ i: Int, isInput: Bool) -> Double {
            var plus = vector
            var minus = vector
            plus[i] += epsilon
            minus[i] -= epsilon
            let (fp, fm) = isInput ? (f(plus, parameters), f(minus, parameters)) : (f(x, plus), f(x, minus))
            return (fp - fm) / Double(2 * epsilon)
        }
        let sampled = { (count: Int) -> [Int] in
            count <= 30 ? Array(0..<count) : (0..<30).map { _ in rng.nextIndex(below: count) }
        }
        for i in sampled(x.count) {
            let n = numeric(x, i, isInput: true)
            #expect(
                abs(Double(analytic.dx[i]) - n) <= 3e-3 + 2e-2 * abs(n),
                "\(layer.kind) dx[\(i)] = \(analytic.dx[i]), numeric \(n)")
        }
        for i in sampled(parameters.count) {
            let n = numeric(parameters, i, isInput: false)
            #expect(
                abs(Double(analytic.gradient[i]) - n) <= 3e-3 + 2e-2 * abs(n),
                "\(layer.kind) dθ[\(i)] = \(analytic.gradient[i]), numeric \(n)")
        }
    }

    @Test func simpleConv1d() throws {
        Self.check(try SimpleConv1d(inputShape: Shape(9), kernel: 4), batch: 1, seed: 1)
    }
    @Test func conv1d() throws {
        Self.check(
            try Conv1d(inputShape: Shape(2, 11), outChannels: 3, kernel: 3, stride: 2, padding: 1), batch: 3, seed: 2)
    }
    @Test(arguments: [(1, 1, 0, 0), (2, 1, 1, 2), (1, 3, 2, 1)])
    func conv2d(strideH: Int, strideW: Int, padH: Int, padW: Int) throws {
        let layer = try Conv2d(
            inputShape: Shape(2, 7, 6), outChannels: 3, kernel: (3, 2), stride: (strideH, strideW),
            padding: (padH, padW))
        Self.check(layer, batch: 2, seed: 3)
    }
    /// `same` (uneven at stride 2) and explicit padding, filled with zeros or edge pixels.
    @Test(arguments: [PaddingMode.zeros, .edge])
    func paddingModes(mode: PaddingMode) throws {
        Self.check(
            try Conv2d(inputShape: Shape(2, 5, 6), outChannels: 2, kernel: (3, 2), padding: (.same, .same), mode: mode),
            batch: 2, seed: 13)
        Self.check(
            try Conv2d(
                inputShape: Shape(1, 6, 5), outChannels: 2, kernel: (3, 3), stride: (2, 2),
                padding: (.explicit(2), .same), mode: mode), batch: 2, seed: 14)
        Self.check(
            try Conv1d(inputShape: Shape(2, 9), outChannels: 3, kernel: 4, stride: 2, padding: .same, mode: mode),
            batch: 2, seed: 15)
        Self.check(
            try Conv1d(inputShape: Shape(1, 5), outChannels: 2, kernel: 3, padding: .explicit(3), mode: mode),
            batch: 1, seed: 16)
    }
    @Test func maxPool2d() throws {
        Self.check(try MaxPool2d(inputShape: Shape(2, 6, 5), window: (2, 2)), batch: 2, seed: 4, avoidKinks: true)
        Self.check(
            try MaxPool2d(inputShape: Shape(1, 7, 7), window: (3, 3), stride: (2, 2)), batch: 1, seed: 5,
            avoidKinks: true)
    }
    @Test func avgPool2d() throws {
        Self.check(try AvgPool2d(inputShape: Shape(2, 6, 6), window: (3, 2), stride: (2, 2)), batch: 2, seed: 6)
    }
    @Test func dense() throws { Self.check(try Dense(inputShape: Shape(7), outputs: 5), batch: 4, seed: 7) }
    @Test func activations() {
        Self.check(Activation(.relu, shape: Shape(20)), batch: 2, seed: 8, avoidKinks: true)
        Self.check(Activation(.sigmoid, shape: Shape(20)), batch: 2, seed: 9)
        Self.check(Activation(.tanh, shape: Shape(20)), batch: 2, seed: 10)
    }
    @Test func flatten() { Self.check(Flatten(inputShape: Shape(2, 3, 2)), batch: 2, seed: 11) }

    /// The whole chain: a small CNN's loss sum (softmax cross-entropy) against finite
    /// differences on parameters of every layer.
    @Test func networkLossGradient() throws {
        let spec = NetworkSpec(
            name: "check", inputShape: Shape(1, 8, 8),
            layers: [
                .conv2d(3, kernel: 3, padding: 1), .tanh, .avgPool(2), .conv2d(4, kernel: 2, stride: 2), .sigmoid,
                .flatten, .dense(outputs: 6), .tanh, .dense(outputs: 3),
            ])
        let network = try Network(spec, maxBatch: 4, seed: 3)
        var rng = SeededRandom(seed: 12)
        let inputs = randomFloats(4 * 64, &rng)
        let labels: [UInt8] = [0, 2, 1, 2]
        func loss() -> Double {
            network.input.load(inputs)
            return labels.withUnsafeBufferPointer { network.evaluate(labels: $0.baseAddress!, batch: 4).lossSum }
        }
        network.input.load(inputs)
        network.gradient.zero()
        labels.withUnsafeBufferPointer { _ = network.accumulateGradient(labels: $0.baseAddress!, batch: 4) }
        let analytic = network.gradient.array
        let offsets = network.architecture.parameterOffsets
        var indices: [Int] = []
        for layer in 0..<(offsets.count - 1) where offsets[layer + 1] > offsets[layer] {
            for _ in 0..<6 {
                indices.append(offsets[layer] + rng.nextIndex(below: offsets[layer + 1] - offsets[layer]))
            }
        }
        for i in indices {
            let original = network.parameters[i]
            network.parameters[i] = original + Self.epsilon
            let plus = loss()
            network.parameters[i] = original - Self.epsilon
            let minus = loss()
            network.parameters[i] = original
            let numeric = (plus - minus) / Double(2 * Self.epsilon)
            #expect(
                abs(Double(analytic[i]) - numeric) <= 3e-3 + 2e-2 * abs(numeric),
                "θ[\(i)] = \(analytic[i]), numeric \(numeric)")
        }
    }
}
