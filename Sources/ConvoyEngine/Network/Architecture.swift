/// How the weights of a fresh network are drawn (docs/SPEC.md §6), with `n_in` the layer's fan-in;
/// biases start at 0.
public enum Initializer: Equatable, Sendable {
    case gaussian(sigma: Double)
    /// σ = 1/√n_in
    case xavier
    /// σ = √(2/n_in)
    case he
    /// Weights and biases uniform in ±1/√n_in: PyTorch's default for Conv and Linear layers.
    case uniform

    /// Parses `he`, `xavier`, `uniform` or `gaussian:SIGMA`.
    public init?(argument: String) {
        switch argument.lowercased() {
        case "he": self = .he
        case "xavier": self = .xavier
        case "uniform": self = .uniform
        default:
            let parts = argument.split(separator: ":")
            guard parts.count == 2, parts[0].lowercased() == "gaussian", let sigma = Double(parts[1]), sigma > 0,
                sigma.isFinite
            else { return nil }
            self = .gaussian(sigma: sigma)
        }
    }

    /// Draws one layer's weights and biases.
    func fill(weights: inout ArraySlice<Float>, biases: inout ArraySlice<Float>, fanIn: Int, rng: inout SeededRandom) {
        let n = Double(max(fanIn, 1))
        switch self {
        case .uniform:
            let bound = 1 / n.squareRoot()
            for i in weights.indices { weights[i] = Float((rng.nextUnit() * 2 - 1) * bound) }
            for i in biases.indices { biases[i] = Float((rng.nextUnit() * 2 - 1) * bound) }
        case .gaussian, .xavier, .he:
            let sigma: Double =
                switch self {
                case let .gaussian(sigma): sigma
                case .xavier: 1 / n.squareRoot()
                default: (2 / n).squareRoot()
                }
            for i in weights.indices { weights[i] = Float(rng.nextGaussian() * sigma) }
        }
    }
}

/// A network's serializable description: the input shape, the layers, the initializer.
/// The default initializer is `.uniform` (PyTorch's): with He's larger σ, LeNet-5 with the
/// default recipe overfits and ends at 98.9% instead of 99.2%.
public struct NetworkSpec: Equatable, Sendable {
    public var name: String
    public var inputShape: Shape
    public var layers: [LayerSpec]
    public var initializer: Initializer

    public init(name: String, inputShape: Shape, layers: [LayerSpec], initializer: Initializer = .uniform) {
        self.name = name
        self.inputShape = inputShape
        self.layers = layers
        self.initializer = initializer
    }
}

/// The built layers of a spec with every shape inferred and every parameter's offset in the
/// model's single parameter buffer. Holds no weights, so AlexNet or VGG16 can be summarized
/// without allocating them.
public struct Architecture: Sendable {
    public let spec: NetworkSpec
    public let layers: [any Layer]
    /// `parameterOffsets[i]` is where layer i's parameters start; the last entry is the total.
    public let parameterOffsets: [Int]

    public init(_ spec: NetworkSpec) throws {
        var shape = spec.inputShape
        guard !shape.dims.isEmpty, shape.dims.allSatisfy({ $0 >= 1 }) else {
            throw ShapeError("\(peerText(spec.name)): input shape \(shape) must have positive dimensions")
        }
        // Checked before any layer multiplies the dimensions: a spec can come from a peer.
        guard let inputCount = shape.checkedCount, Double(inputCount) <= LayerSpec.maxFloats else {
            throw ShapeError(
                "\(peerText(spec.name)): input shape \(shape) has more than \(Int(LayerSpec.maxFloats)) values")
        }
        var layers: [any Layer] = []
        var offsets = [0]
        for (index, layerSpec) in spec.layers.enumerated() {
            do {
                try layerSpec.checkSize(input: shape)
                let layer = try layerSpec.make(input: shape)
                layers.append(layer)
                let (end, overflow) = offsets.last!.addingReportingOverflow(layer.parameterCount)
                guard !overflow else { throw ShapeError("the parameter count overflows") }
                offsets.append(end)
                shape = layer.outputShape
            } catch let error as ShapeError {
                throw ShapeError("\(peerText(spec.name)) layer \(index + 1): \(error.description)")
            }
        }
        guard !layers.isEmpty else { throw ShapeError("\(peerText(spec.name)): a network needs at least one layer") }
        self.spec = spec
        self.layers = layers
        parameterOffsets = offsets
    }

    /// Where the network splits into a trunk and a head for overlapped shipping: the first
    /// Flatten, when both sides have parameters. The head's gradient is final before the
    /// trunk's backward pass starts, so a worker can send it (LeNet-5: 59,134 of 61,706
    /// parameters) while it is still computing.
    public var headStart: Int? {
        guard let flatten = layers.firstIndex(where: { $0 is Flatten }) else { return nil }
        let trunk = parameterOffsets[flatten]
        let total = parameterCount
        return trunk > 0 && trunk < total ? flatten : nil
    }

    public var inputShape: Shape { spec.inputShape }
    public var outputShape: Shape { layers.last!.outputShape }
    public var parameterCount: Int { parameterOffsets.last! }

    /// Draws fresh parameters layer by layer from one seeded generator, so a seed fixes
    /// every weight. `initializer` overrides the spec's.
    public func initialParameters(seed: UInt64, initializer: Initializer? = nil) -> [Float] {
        var rng = SeededRandom(seed: seed, stream: 0x1417)
        var parameters = [Float](repeating: 0, count: parameterCount)
        for (index, layer) in layers.enumerated() where layer.weightCount > 0 {
            let start = parameterOffsets[index]
            let split = start + layer.weightCount
            let end = parameterOffsets[index + 1]
            var weights = parameters[start..<split]
            var biases = parameters[split..<end]
            (initializer ?? spec.initializer).fill(weights: &weights, biases: &biases, fanIn: layer.fanIn, rng: &rng)
            parameters[start..<split] = weights
            parameters[split..<end] = biases
        }
        return parameters
    }

    /// One row per layer: kind, output shape, parameter count, forward multiply-adds per sample.
    public var summaryRows: [(layer: String, output: Shape, parameters: Int, multiplyAdds: Int)] {
        layers.map { ($0.kind, $0.outputShape, $0.parameterCount, $0.multiplyAdds) }
    }
}
