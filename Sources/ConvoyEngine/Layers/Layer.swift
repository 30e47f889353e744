/// One layer of a network: immutable configuration plus a forward and a backward pass over
/// raw buffers that the `Network` owns. Layers hold no buffers of their own, so a layer is a
/// small value and the whole model's parameters live in one contiguous buffer.
///
/// Buffer conventions (all sample-major, `batch` samples):
/// - `x`: `batch × inputShape.count`, `y`: `batch × outputShape.count`
/// - `parameters` / `gradient`: this layer's `parameterCount` floats inside the model's buffers
/// - `scratch`: `scratchCount` floats the layer may use freely during one call
public protocol Layer: Sendable {
    /// Short type name for summaries, e.g. "Conv2d".
    var kind: String { get }
    /// The serializable description this layer was built from.
    var spec: LayerSpec { get }
    var inputShape: Shape { get }
    var outputShape: Shape { get }
    var parameterCount: Int { get }
    var scratchCount: Int { get }
    /// Fan-in used by the initializers (`C_in·F_h·F_w` for convolutions); 0 without weights.
    var fanIn: Int { get }
    /// Number of leading parameters that are weights (the rest are biases, initialized to 0).
    var weightCount: Int { get }

    func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>)

    /// Accumulates (`+=`) the parameter gradient into `gradient`; overwrites `dx` when it is
    /// given (nil for the first layer, whose input gradient nobody needs).
    func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>)
}

extension Layer {
    public var parameterCount: Int { 0 }
    public var scratchCount: Int { 0 }
    public var fanIn: Int { 0 }
    public var weightCount: Int { 0 }
}

/// The serializable description of a layer; `make(input:)` infers shapes and validates.
public enum LayerSpec: Equatable, Sendable {
    case simpleConv1d(kernel: Int)
    /// Padding: pixels per side (an integer literal), `.same` or `.valid`; `mode` is what
    /// the padding holds (docs/SPEC.md §2.2).
    case conv1d(outChannels: Int, kernel: Int, stride: Int, padding: PaddingSize, mode: PaddingMode = .zeros)
    case conv2d(
        outChannels: Int, kernelHeight: Int, kernelWidth: Int,
        strideHeight: Int, strideWidth: Int, paddingHeight: PaddingSize, paddingWidth: PaddingSize,
        mode: PaddingMode = .zeros)
    case maxPool2d(windowHeight: Int, windowWidth: Int, strideHeight: Int, strideWidth: Int)
    case avgPool2d(windowHeight: Int, windowWidth: Int, strideHeight: Int, strideWidth: Int)
    case flatten
    case dense(outputs: Int)
    case relu
    case sigmoid
    case tanh

    /// Square-kernel convenience.
    public static func conv2d(
        _ outChannels: Int, kernel: Int, stride: Int = 1, padding: PaddingSize = 0,
        mode: PaddingMode = .zeros
    ) -> LayerSpec {
        .conv2d(
            outChannels: outChannels, kernelHeight: kernel, kernelWidth: kernel,
            strideHeight: stride, strideWidth: stride, paddingHeight: padding, paddingWidth: padding, mode: mode)
    }
    public static func maxPool(_ window: Int, stride: Int? = nil) -> LayerSpec {
        .maxPool2d(
            windowHeight: window, windowWidth: window, strideHeight: stride ?? window, strideWidth: stride ?? window)
    }
    public static func avgPool(_ window: Int, stride: Int? = nil) -> LayerSpec {
        .avgPool2d(
            windowHeight: window, windowWidth: window, strideHeight: stride ?? window, strideWidth: stride ?? window)
    }

    public func make(input: Shape) throws -> any Layer {
        switch self {
        case let .simpleConv1d(kernel):
            return try SimpleConv1d(inputShape: input, kernel: kernel)
        case let .conv1d(out, kernel, stride, padding, mode):
            return try Conv1d(
                inputShape: input, outChannels: out, kernel: kernel, stride: stride, padding: padding,
                mode: mode)
        case let .conv2d(out, kh, kw, sh, sw, ph, pw, mode):
            return try Conv2d(
                inputShape: input, outChannels: out, kernel: (kh, kw), stride: (sh, sw),
                padding: (ph, pw), mode: mode)
        case let .maxPool2d(wh, ww, sh, sw):
            return try MaxPool2d(inputShape: input, window: (wh, ww), stride: (sh, sw))
        case let .avgPool2d(wh, ww, sh, sw):
            return try AvgPool2d(inputShape: input, window: (wh, ww), stride: (sh, sw))
        case .flatten:
            return Flatten(inputShape: input)
        case let .dense(outputs):
            return try Dense(inputShape: input, outputs: outputs)
        case .relu: return Activation(.relu, shape: input)
        case .sigmoid: return Activation(.sigmoid, shape: input)
        case .tanh: return Activation(.tanh, shape: input)
        }
    }
}
