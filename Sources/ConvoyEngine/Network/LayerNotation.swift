import Foundation

/// A text notation for layers, so a network can be written on a command line
/// (`convoy summary --input 3x144x144 --layers "conv2d(6, 3)"`; docs/MODELS.md):
///
///     conv2d(OUT, KERNEL[, stride=S][, padding=P][, mode=zeros|edge])   KERNEL, S, P: N or HxW
///     conv1d(OUT, KERNEL[, stride=S][, padding=P][, mode=zeros|edge])   P: N, same or valid
///     simpleconv1d(KERNEL)   maxpool(WINDOW[, stride=S])   avgpool(WINDOW[, stride=S])
///     dense(OUTPUTS)   flatten   relu   sigmoid   tanh
///
/// Layers are separated by spaces, commas or semicolons outside parentheses.
extension NetworkSpec {
    public init(name: String, inputShape: Shape, notation: String, initializer: Initializer = .uniform) throws {
        let items = try LayerNotation.split(notation)
        guard !items.isEmpty else { throw ShapeError("no layers in \"\(notation)\"") }
        let layers = try items.enumerated().map { index, item in
            do { return try LayerSpec(notation: item) } catch let error as ShapeError {
                throw ShapeError("layer \(index + 1) \"\(item)\": \(error.description)")
            }
        }
        self.init(name: name, inputShape: inputShape, layers: layers, initializer: initializer)
    }
}

extension Shape {
    /// `C`, `CxL` or `CxHxW` (also with `,` or `×`), each dimension at least 1.
    public init(notation: String) throws {
        let parts = notation.split(whereSeparator: { "x×,".contains($0) })
        let dims = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.count <= 3, dims.count == parts.count, dims.allSatisfy({ $0 >= 1 }) else {
            throw ShapeError("input shape \"\(notation)\" is not C, CxL or CxHxW with positive sizes")
        }
        self.init(dims)
    }
}

extension LayerSpec {
    public init(notation item: String) throws {
        let (name, positional, named) = try LayerNotation.parse(item)
        var arguments = LayerNotation.Arguments(positional: positional, named: named)
        switch name {
        case "conv2d", "conv1d":
            let out = try arguments.int("out", position: 0)
            let kernel = try arguments.pair("kernel", position: 1)
            let stride = try arguments.pair("stride", default: "1")
            let padding = try arguments.paddings(default: "0")
            let mode = try arguments.mode()
            if name == "conv2d" {
                self = .conv2d(
                    outChannels: out, kernelHeight: kernel.0, kernelWidth: kernel.1, strideHeight: stride.0,
                    strideWidth: stride.1, paddingHeight: padding.0, paddingWidth: padding.1, mode: mode)
            } else {
                guard kernel.0 == kernel.1, stride.0 == stride.1, padding.0 == padding.1 else {
                    throw ShapeError("conv1d takes one kernel, stride and padding size, not HxW")
                }
                self = .conv1d(outChannels: out, kernel: kernel.1, stride: stride.1, padding: padding.1, mode: mode)
            }
        case "simpleconv1d": self = .simpleConv1d(kernel: try arguments.int("kernel", position: 0))
        case "maxpool", "avgpool":
            let window = try arguments.pair("window", position: 0)
            let stride = try arguments.pair("stride", default: "\(window.0)x\(window.1)")
            let (wh, ww, sh, sw) = (window.0, window.1, stride.0, stride.1)
            self =
                name == "maxpool"
                ? .maxPool2d(windowHeight: wh, windowWidth: ww, strideHeight: sh, strideWidth: sw)
                : .avgPool2d(windowHeight: wh, windowWidth: ww, strideHeight: sh, strideWidth: sw)
        case "dense": self = .dense(outputs: try arguments.int("outputs", position: 0))
        case "flatten": self = .flatten
        case "relu": self = .relu
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        default:
            throw ShapeError(
                "unknown layer \"\(name)\"; known: conv2d, conv1d, simpleconv1d, maxpool, avgpool, "
                    + "dense, flatten, relu, sigmoid, tanh")
        }
        try arguments.finish()
    }

    /// The notation that parses back to this layer.
    public var notation: String {
        func pair(_ a: Int, _ b: Int) -> String { a == b ? "\(a)" : "\(a)x\(b)" }
        func pads(_ a: PaddingSize, _ b: PaddingSize) -> String { a == b ? "\(a)" : "\(a)x\(b)" }
        switch self {
        case let .simpleConv1d(kernel): return "simpleconv1d(\(kernel))"
        case let .conv1d(out, kernel, stride, padding, mode):
            return "conv1d(\(out), \(kernel), stride=\(stride), padding=\(padding), mode=\(mode))"
        case let .conv2d(out, kh, kw, sh, sw, ph, pw, mode):
            return "conv2d(\(out), \(pair(kh, kw)), stride=\(pair(sh, sw)), padding=\(pads(ph, pw)), mode=\(mode))"
        case let .maxPool2d(wh, ww, sh, sw): return "maxpool(\(pair(wh, ww)), stride=\(pair(sh, sw)))"
        case let .avgPool2d(wh, ww, sh, sw): return "avgpool(\(pair(wh, ww)), stride=\(pair(sh, sw)))"
        case let .dense(outputs): return "dense(\(outputs))"
        case .flatten: return "flatten"
        case .relu: return "relu"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        }
    }
}
