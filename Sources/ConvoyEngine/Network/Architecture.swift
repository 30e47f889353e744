/// How the weights of a fresh network are drawn (SPEC.md), with `n_in` the layer's fan-in;
/// biases start at 0.
public enum Initializer: Codable, Equatable, Sendable {
    case gaussian(sigma: Double)
    /// σ = 1/√n_in
    case xavier
    /// σ = √(2/n_in)
    case he

    public func sigma(fanIn: Int) -> Double {
        switch self {
        case let .gaussian(sigma): sigma
        case .xavier: 1 / Double(fanIn).squareRoot()
        case .he: (2 / Double(fanIn)).squareRoot()
        }
    }
}

/// A network's serializable description: the input shape, the layers, the initializer.
public struct NetworkSpec: Codable, Equatable, Sendable {
    public var name: String
    public var inputShape: Shape
    public var layers: [LayerSpec]
    public var initializer: Initializer

    public init(name: String, inputShape: Shape, layers: [LayerSpec], initializer: Initializer = .he) {
        self.name = name; self.inputShape = inputShape; self.layers = layers; self.initializer = initializer
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
            throw ShapeError("\(spec.name): input shape \(shape) must have positive dimensions")
        }
        var layers: [any Layer] = []
        var offsets = [0]
        for (index, layerSpec) in spec.layers.enumerated() {
            do {
                let layer = try layerSpec.make(input: shape)
                layers.append(layer)
                offsets.append(offsets.last! + layer.parameterCount)
                shape = layer.outputShape
            } catch let error as ShapeError {
                throw ShapeError("\(spec.name) layer \(index + 1): \(error.description)")
            }
        }
        guard !layers.isEmpty else { throw ShapeError("\(spec.name): a network needs at least one layer") }
        self.spec = spec
        self.layers = layers
        parameterOffsets = offsets
    }

    public var inputShape: Shape { spec.inputShape }
    public var outputShape: Shape { layers.last!.outputShape }
    public var parameterCount: Int { parameterOffsets.last! }

    /// Draws fresh weights from the spec's initializer (biases 0), layer by layer, from one
    /// seeded generator, so a seed fixes every weight.
    public func initialParameters(seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed, stream: 0x1417)
        var parameters = [Float](repeating: 0, count: parameterCount)
        for (index, layer) in layers.enumerated() where layer.weightCount > 0 {
            let sigma = spec.initializer.sigma(fanIn: layer.fanIn)
            let start = parameterOffsets[index]
            for i in start..<(start + layer.weightCount) { parameters[i] = Float(rng.nextGaussian() * sigma) }
        }
        return parameters
    }

    /// One row per layer: kind, output shape, parameter count.
    public var summaryRows: [(layer: String, output: Shape, parameters: Int)] {
        layers.map { ($0.kind, $0.outputShape, $0.parameterCount) }
    }
}
