/// A spec can come from a file or a peer, so its numbers are hostile: a layer whose sizes
/// would overflow `Int` arithmetic (or could never be allocated) is refused here, computed
/// in `Double`, before the layer computes any size itself.
extension LayerSpec {
    /// Floats in any one of a layer's parameters, output or scratch: 256 GiB.
    static let maxFloats = Double(1 << 36)

    func checkSize(input: Shape) throws {
        let dims = input.dims.map(Double.init)
        let count = dims.reduce(1, *)
        var sizes: [Double] = [count]
        func convolution(_ out: Int, _ kernel: [Int], _ padding: [PaddingSize]) {
            guard dims.count == kernel.count + 1 else { return }
            let patch = dims[0] * kernel.map(Double.init).reduce(1, *)
            // An upper bound on the output positions: stride 1 over the padded input.
            // `same` pads less than the kernel on each side.
            let sides = zip(padding, kernel).map { padding, kernel in
                if case let .explicit(pixels) = padding { Double(pixels) } else { Double(kernel) }
            }
            let positions = zip(dims.dropFirst(), sides).map { $0 + 2 * $1 }.reduce(1, *)
            sizes += [patch * Double(out), Double(out) * positions, patch * positions]
        }
        switch self {
        case let .simpleConv1d(kernel): sizes.append(Double(kernel))
        case let .conv1d(out, kernel, _, padding, _): convolution(out, [kernel], [padding])
        case let .conv2d(out, kh, kw, _, _, ph, pw, _): convolution(out, [kh, kw], [ph, pw])
        case let .dense(outputs): sizes += [count * Double(outputs), Double(outputs)]
        case .maxPool2d, .avgPool2d, .flatten, .relu, .sigmoid, .tanh: break
        }
        if let largest = sizes.max(), largest > Self.maxFloats {
            throw ShapeError("on input \(input) it needs \(largest) values, more than \(Int(Self.maxFloats))")
        }
    }
}
