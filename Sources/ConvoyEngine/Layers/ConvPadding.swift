/// How many pixels a convolution adds before and after the input along one axis
/// (docs/SPEC.md §2.2).
public enum PaddingSize: Equatable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    /// The same number of pixels on both sides.
    case explicit(Int)
    /// Output length `ceil(N / S)`: the input length at stride 1. The total padding
    /// `max((N_out − 1)·S + F − N, 0)` is split with the odd pixel after (TensorFlow's rule;
    /// PyTorch's `padding='same'` is the same at stride 1 and refuses other strides).
    case same

    /// No padding.
    public static let valid = PaddingSize.explicit(0)

    public init(integerLiteral value: Int) { self = .explicit(value) }

    public var description: String {
        switch self {
        case let .explicit(pixels): pixels == 0 ? "valid" : String(pixels)
        case .same: "same"
        }
    }

    /// Pixels before and after an input of length `input` for a kernel `kernel` at `stride`.
    public func amounts(input: Int, kernel: Int, stride: Int) -> (before: Int, after: Int) {
        switch self {
        case let .explicit(pixels): return (pixels, pixels)
        case .same:
            guard stride >= 1 else { return (0, 0) }  // refused by the output-size check
            let output = (input + stride - 1) / stride
            let total = max((output - 1) * stride + kernel - input, 0)
            return (total / 2, total - total / 2)
        }
    }
}

/// What the padding pixels hold (docs/SPEC.md §2.2).
public enum PaddingMode: Equatable, Sendable, CaseIterable, CustomStringConvertible {
    /// Zeros (the default everywhere).
    case zeros
    /// The nearest edge pixel of the input, repeated (PyTorch's `padding_mode='replicate'`,
    /// NumPy's `mode='edge'`). Backward adds the padding's gradient to that edge pixel.
    case edge

    public var description: String { self == .zeros ? "zeros" : "edge" }
}

/// The integer-padding forms (zeros on both sides), as before padding sizes and modes existed.
extension ConvGeometry {
    public init(
        inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int,
        kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)
    ) throws {
        try self.init(
            inChannels: inChannels, inHeight: inHeight, inWidth: inWidth, outChannels: outChannels,
            kernel: kernel, stride: stride, padding: (.explicit(padding.0), .explicit(padding.1)),
            mode: .zeros)
    }
}

extension Conv2d {
    public init(
        inputShape: Shape, outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
        padding: (Int, Int) = (0, 0)
    ) throws {
        try self.init(
            inputShape: inputShape, outChannels: outChannels, kernel: kernel, stride: stride,
            padding: (.explicit(padding.0), .explicit(padding.1)), mode: .zeros)
    }
}

extension Conv1d {
    public init(inputShape: Shape, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) throws {
        try self.init(
            inputShape: inputShape, outChannels: outChannels, kernel: kernel, stride: stride,
            padding: .explicit(padding), mode: .zeros)
    }
}

/// The edge-padding variants of im2col and col2im (Convolution.swift): every coordinate is
/// clamped into the input, so a padding entry copies the nearest edge pixel in forward and
/// its gradient is added to that pixel in backward. A plain loop: edge padding is rare and
/// this keeps the zero-padding fast path untouched.
func im2colEdge(
    _ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, rowStride: Int,
    _ g: ConvGeometry
) {
    let (H, W, Ho, Wo) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
    var row = col
    for c in 0..<g.inChannels {
        let plane = x + c * H * W
        for s in 0..<g.kernelHeight {
            for t in 0..<g.kernelWidth {
                for i in 0..<Ho {
                    let source = plane + clamp(i * g.strideHeight + s - g.paddingHeight, H) * W
                    let destination = row + i * Wo
                    for j in 0..<Wo { destination[j] = source[clamp(j * g.strideWidth + t - g.paddingWidth, W)] }
                }
                row += rowStride
            }
        }
    }
}

func col2imEdge(
    _ col: UnsafePointer<Float>, rowStride: Int, into dx: UnsafeMutablePointer<Float>,
    _ g: ConvGeometry
) {
    let (H, W, Ho, Wo) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
    dx.update(repeating: 0, count: g.inSize)
    var row = col
    for c in 0..<g.inChannels {
        let plane = dx + c * H * W
        for s in 0..<g.kernelHeight {
            for t in 0..<g.kernelWidth {
                for i in 0..<Ho {
                    let destination = plane + clamp(i * g.strideHeight + s - g.paddingHeight, H) * W
                    let source = row + i * Wo
                    for j in 0..<Wo { destination[clamp(j * g.strideWidth + t - g.paddingWidth, W)] += source[j] }
                }
                row += rowStride
            }
        }
    }
}

@inline(__always)
private func clamp(_ index: Int, _ size: Int) -> Int { min(max(index, 0), size - 1) }
