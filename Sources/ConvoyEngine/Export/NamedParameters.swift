/// A model's parameters as named tensors in PyTorch's layouts and names: layer `i` of the
/// network (counting every layer, as `nn.Sequential` does) gives `i.weight` and `i.bias`, so
/// `model.load_state_dict({k: torch.from_numpy(v) ...})` loads them into a `Sequential` of the
/// same layers (benchmarks/pytorch_lenet.py builds LeNet-5 that way).
public struct NamedTensor: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]
}

extension Architecture {
    /// Layer `index`'s weight and bias, converted from convoy's storage order: convolutions are
    /// stored `(out, in, Fh, Fw)` as PyTorch does; Dense stores `W` as `(inputs, outputs)` for
    /// its GEMM (docs/SPEC.md §4.4), PyTorch's `Linear` as `(out, in)`, so it is transposed.
    public func namedParameters(_ parameters: [Float]) -> [NamedTensor] {
        precondition(parameters.count == parameterCount)
        var tensors: [NamedTensor] = []
        for (index, layer) in layers.enumerated() where layer.parameterCount > 0 {
            let start = parameterOffsets[index]
            let weights = Array(parameters[start..<(start + layer.weightCount)])
            let bias = Array(parameters[(start + layer.weightCount)..<parameterOffsets[index + 1]])
            let weightShape: [Int]
            var weightValues = weights
            switch layer.spec {
            case let .conv2d(out, kh, kw, _, _, _, _, _):
                weightShape = [out, layer.inputShape.dims[0], kh, kw]
            case let .conv1d(out, kernel, _, _, _):
                weightShape = [out, layer.inputShape.dims[0], kernel]
            case let .simpleConv1d(kernel):
                weightShape = [1, 1, kernel]
            case let .dense(outputs):
                let inputs = layer.inputShape.dims[0]
                weightShape = [outputs, inputs]
                weightValues = transposed(weights, rows: inputs, columns: outputs)
            default:
                preconditionFailure("\(layer.kind) has parameters but no export layout")
            }
            tensors.append(NamedTensor(name: "\(index).weight", shape: weightShape, values: weightValues))
            tensors.append(NamedTensor(name: "\(index).bias", shape: [bias.count], values: bias))
        }
        return tensors
    }
}

/// `m` (rows × columns, row-major) transposed.
func transposed(_ m: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: m.count)
    for r in 0..<rows {
        for c in 0..<columns { out[c * rows + r] = m[r * columns + c] }
    }
    return out
}
