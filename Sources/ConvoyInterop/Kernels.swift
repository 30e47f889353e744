import ConvoyKernels

/// Thin wrappers over the engine's C kernels (Sources/ConvoyKernels): the glue around the
/// GEMMs, in portable, AVX2 and AVX-512 variants chosen once by CPUID. Shapes are in the
/// argument names; the C header documents each layout.
public enum Kernels {
    /// An instruction-set variant of the kernels.
    public enum ISA: Int32, CaseIterable, Sendable {
        case portable = 0, avx2 = 1, avx512 = 2
        public var name: String { String(cString: ck_isa_name(rawValue)) }
        public init?(name: String) {
            guard let isa = ISA.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
            self = isa
        }
        public var isSupported: Bool { ck_isa_supported(rawValue) != 0 }
    }

    public static var best: ISA { ISA(rawValue: ck_best_isa())! }
    public static var selected: ISA { ISA(rawValue: ck_selected_isa()) ?? .portable }
    /// Selects `isa` for every later call; false (and nothing changes) when the CPU lacks it.
    @discardableResult
    public static func select(_ isa: ISA) -> Bool { ck_select_isa(isa.rawValue) != 0 }

    /// Zero-padded convolution geometry of one sample, `(channels, height, width)`.
    public struct ConvShape: Sendable {
        var raw: ck_conv_geometry
        public init(
            channels: Int, height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int),
            padding: (Int, Int), output: (Int, Int)
        ) {
            raw = ck_conv_geometry(
                channels: channels, height: height, width: width,
                kernelHeight: kernel.0, kernelWidth: kernel.1,
                strideHeight: stride.0, strideWidth: stride.1,
                padHeight: padding.0, padWidth: padding.1,
                outHeight: output.0, outWidth: output.1)
        }
    }

    @inline(__always)
    public static func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        ck_relu_forward(x, y, count)
    }
    @inline(__always)
    public static func reluBackward(
        y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        ck_relu_backward(y, dy, dx, count)
    }
    /// `y[k][m][p] = src[m·ld + k·positions + p] + bias[m]`, then ReLU if `relu`.
    @inline(__always)
    public static func convUnpack(
        _ src: UnsafePointer<Float>, ld: Int, bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
        channels: Int, positions: Int, samples: Int, relu: Bool
    ) {
        ck_conv_unpack(src, ld, bias, y, channels, positions, samples, relu ? 1 : 0)
    }
    /// `dst[m·ld + k·positions + p] = dy[k][m][p]`, masked by `y > 0` when `reluOutput` is given.
    @inline(__always)
    public static func convPack(
        _ dy: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?, into dst: UnsafeMutablePointer<Float>,
        ld: Int, channels: Int, positions: Int, samples: Int
    ) {
        ck_conv_pack(dy, reluOutput, dst, ld, channels, positions, samples)
    }
    /// Bias + ReLU + 2×2/2 max pooling from the chunk layout; `indices` one byte per output.
    @inline(__always)
    public static func convReLUPool2(
        _ src: UnsafePointer<Float>, ld: Int, bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
        indices: UnsafeMutablePointer<UInt8>, channels: Int, height: Int, width: Int, samples: Int
    ) {
        ck_conv_relu_pool2(src, ld, bias, y, indices, channels, height, width, samples)
    }
    /// The adjoint of `convReLUPool2`'s pooling and ReLU into the chunk layout.
    @inline(__always)
    public static func pool2Scatter(
        _ dy: UnsafePointer<Float>, indices: UnsafePointer<UInt8>, into dst: UnsafeMutablePointer<Float>,
        ld: Int, channels: Int, height: Int, width: Int, samples: Int
    ) {
        ck_pool2_scatter(dy, indices, dst, ld, channels, height, width, samples)
    }
    @inline(__always)
    public static func im2col(
        _ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, rowStride: Int, _ shape: ConvShape
    ) {
        withUnsafePointer(to: shape.raw) { ck_im2col(x, col, rowStride, $0) }
    }
    @inline(__always)
    public static func col2im(
        _ col: UnsafePointer<Float>, rowStride: Int, into dx: UnsafeMutablePointer<Float>, _ shape: ConvShape
    ) {
        withUnsafePointer(to: shape.raw) { ck_col2im(col, rowStride, dx, $0) }
    }
    /// `out[m] += Σ_{i<n} src[m·ld + i]` for `m < rows`, in a fixed order of 16 partial sums.
    @inline(__always)
    public static func addRowSums(
        _ src: UnsafePointer<Float>, ld: Int, rows: Int, count: Int, into out: UnsafeMutablePointer<Float>
    ) {
        ck_add_row_sums(src, ld, rows, count, out)
    }
    /// Whether `convDirect`/`convDirectWeights` serve `shape` (one input channel, stride 1, 16–32 columns).
    public static func directApplies(_ shape: ConvShape) -> Bool {
        withUnsafePointer(to: shape.raw) { ck_conv_direct_applies($0) != 0 }
    }
    /// One sample's convolution (no bias) into the chunk layout: channel m's plane at `dst + m·ld`.
    @inline(__always)
    public static func convDirect(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, ld: Int,
        outChannels: Int, _ shape: ConvShape
    ) {
        withUnsafePointer(to: shape.raw) { ck_conv_direct(x, weights, dst, ld, outChannels, $0) }
    }
    /// `gradient[m][s][t] +=` one sample's weight gradient, from its output gradient in the chunk layout.
    @inline(__always)
    public static func convDirectWeights(
        _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, ld: Int, outChannels: Int, _ shape: ConvShape,
        into gradient: UnsafeMutablePointer<Float>
    ) {
        withUnsafePointer(to: shape.raw) { ck_conv_direct_weights(x, dy, ld, outChannels, $0, gradient) }
    }
}
