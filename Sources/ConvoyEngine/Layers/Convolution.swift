import ConvoyInterop

/// The geometry of a 2-D convolution over one sample; 1-D convolutions use height 1.
/// `paddingHeight`/`paddingWidth` are the pixels before the input (top, left); `same`
/// padding may add one more after it (docs/SPEC.md §2.2).
public struct ConvGeometry: Sendable, Equatable {
    public let inChannels, inHeight, inWidth: Int
    public let outChannels: Int
    public let kernelHeight, kernelWidth: Int
    public let strideHeight, strideWidth: Int
    public let paddingHeight, paddingWidth: Int
    public let outHeight, outWidth: Int
    /// The padding as specified, and what it holds.
    public let heightPadding, widthPadding: PaddingSize
    public let paddingMode: PaddingMode
    /// Whether the engine's C kernels compute this geometry: zeros, as many before the input
    /// as after it. Anything else (edge padding, `same` with an odd total) takes the Swift
    /// im2col/col2im, which handle every padding.
    public let cKernelsApply: Bool

    public init(
        inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int,
        kernel: (Int, Int), stride: (Int, Int), padding: (PaddingSize, PaddingSize), mode: PaddingMode
    ) throws {
        guard inChannels >= 1, outChannels >= 1 else {
            throw ShapeError("channels must be at least 1 (in \(inChannels), out \(outChannels))")
        }
        self.inChannels = inChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outChannels = outChannels
        (kernelHeight, kernelWidth) = kernel
        (strideHeight, strideWidth) = stride
        (heightPadding, widthPadding) = padding
        paddingMode = mode
        let vertical = padding.0.amounts(input: inHeight, kernel: kernel.0, stride: stride.0)
        let horizontal = padding.1.amounts(input: inWidth, kernel: kernel.1, stride: stride.1)
        (paddingHeight, paddingWidth) = (vertical.before, horizontal.before)
        cKernelsApply = mode == .zeros && vertical.before == vertical.after && horizontal.before == horizontal.after
        outHeight = try convolutionOutputSize(input: inHeight, kernel: kernel.0, stride: stride.0, padding: vertical)
        outWidth = try convolutionOutputSize(input: inWidth, kernel: kernel.1, stride: stride.1, padding: horizontal)
    }

    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }
    public var outPositions: Int { outHeight * outWidth }
    public var inSize: Int { inChannels * inHeight * inWidth }
    public var outSize: Int { outChannels * outPositions }
}

/// Conv2d (docs/SPEC.md §3.3): `a[n,m,i,j] = Σ_k Σ_s Σ_t x_pad[n,k,i·Sh+s,j·Sw+t] w[m,k,s,t] + b[m]`.
///
/// Fast path (ConvolutionFused.swift), a chunk of `b` samples at a time: im2col lays the chunk
/// out as one column matrix `col[patchSize × b·P]` (P output positions per sample), one GEMM
/// computes `Yᵀ[C_out × b·P] = W[C_out × patchSize] · col`, and the rows are copied out to the
/// sample-major `y` with the bias added. Backward rebuilds `col` and, per chunk,
/// `dW += dYᵀ · colᵀ`, `db += Σ dYᵀ`, `dcol = Wᵀ · dYᵀ`, then col2im scatters `dcol` back into
/// the (cropped) input gradient. Chunks are sized so `col` stays in L2: one GEMM per chunk
/// instead of one per sample roughly doubled the GEMM throughput.
/// Weights are `(out, in, Fh, Fw)`, then biases `(out)`.
public struct Conv2d: Layer {
    public let geometry: ConvGeometry
    public let inputShape: Shape
    public let outputShape: Shape
    /// Samples per GEMM.
    public let chunk: Int

    /// Budget for one chunk's column matrix (half of this machine class's 512 KiB L2).
    static let columnBudgetBytes = 256 * 1024
    static let maxChunk = 16

    /// Any padding size per axis (explicit, `same`, `valid`) filled with zeros or edge pixels.
    public init(
        inputShape: Shape, outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
        padding: (PaddingSize, PaddingSize), mode: PaddingMode
    ) throws {
        guard inputShape.rank == 3 else {
            throw ShapeError("Conv2d needs a (channels, height, width) input, got \(inputShape)")
        }
        let d = inputShape.dims
        let geometry: ConvGeometry
        do {
            geometry = try ConvGeometry(
                inChannels: d[0], inHeight: d[1], inWidth: d[2], outChannels: outChannels,
                kernel: kernel, stride: stride, padding: padding, mode: mode)
        } catch let error as ShapeError {
            throw ShapeError("Conv2d on input \(inputShape): \(error.description)")
        }
        self.init(
            geometry: geometry, inputShape: inputShape,
            outputShape: Shape(outChannels, geometry.outHeight, geometry.outWidth))
    }

    init(geometry: ConvGeometry, inputShape: Shape, outputShape: Shape) {
        self.geometry = geometry
        self.inputShape = inputShape
        self.outputShape = outputShape
        let perSample = geometry.patchSize * geometry.outPositions * MemoryLayout<Float>.size
        chunk = max(1, min(Self.maxChunk, Self.columnBudgetBytes / perSample))
    }

    public var kind: String { "Conv2d" }
    public var spec: LayerSpec {
        let g = geometry
        return .conv2d(
            outChannels: g.outChannels, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
            strideHeight: g.strideHeight, strideWidth: g.strideWidth,
            paddingHeight: g.heightPadding, paddingWidth: g.widthPadding, mode: g.paddingMode)
    }
    public var weightCount: Int { geometry.outChannels * geometry.patchSize }
    public var parameterCount: Int { weightCount + geometry.outChannels }
    public var fanIn: Int { geometry.patchSize }
    /// The chunk's column matrix, then its transposed output (or output gradient).
    public var scratchCount: Int { chunk * (geometry.patchSize + geometry.outChannels) * geometry.outPositions }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        forward(x: x, y: y, batch: batch, parameters: parameters, scratch: scratch, epilogue: .bias)
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        backward(
            x: x, dy: dy, dx: dx, batch: batch, parameters: parameters, gradient: gradient,
            scratch: scratch, prologue: .plain)
    }
}

/// Conv1d (docs/SPEC.md §3.2): `a[n,m,i] = Σ_k Σ_s x_pad[n,k,i·S+s] w[m,k,s] + b[m]` on `(channels,
/// length)` samples. It is Conv2d with height 1, so it shares that fast path; weights are
/// `(out, in, F)` then biases.
public struct Conv1d: Layer {
    let core: Conv2d
    public let inputShape: Shape
    public let outputShape: Shape

    /// Any padding size (explicit, `same`, `valid`) filled with zeros or edge pixels.
    public init(
        inputShape: Shape, outChannels: Int, kernel: Int, stride: Int = 1,
        padding: PaddingSize, mode: PaddingMode
    ) throws {
        guard inputShape.rank == 2 else {
            throw ShapeError("Conv1d needs a (channels, length) input, got \(inputShape)")
        }
        let geometry: ConvGeometry
        do {
            geometry = try ConvGeometry(
                inChannels: inputShape.dims[0], inHeight: 1, inWidth: inputShape.dims[1],
                outChannels: outChannels, kernel: (1, kernel), stride: (1, stride),
                padding: (.valid, padding), mode: mode)
        } catch let error as ShapeError {
            throw ShapeError("Conv1d on input \(inputShape): \(error.description)")
        }
        self.inputShape = inputShape
        outputShape = Shape(outChannels, geometry.outWidth)
        core = Conv2d(
            geometry: geometry, inputShape: Shape(geometry.inChannels, 1, geometry.inWidth),
            outputShape: Shape(outChannels, 1, geometry.outWidth))
    }

    public var kind: String { "Conv1d" }
    public var spec: LayerSpec {
        let g = core.geometry
        return .conv1d(
            outChannels: g.outChannels, kernel: g.kernelWidth, stride: g.strideWidth,
            padding: g.widthPadding, mode: g.paddingMode)
    }
    public var parameterCount: Int { core.parameterCount }
    public var weightCount: Int { core.weightCount }
    public var fanIn: Int { core.fanIn }
    public var scratchCount: Int { core.scratchCount }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        core.forward(x: x, y: y, batch: batch, parameters: parameters, scratch: scratch)
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        core.backward(
            x: x, y: y, dy: dy, dx: dx, batch: batch, parameters: parameters, gradient: gradient, scratch: scratch)
    }
}

/// SimpleConv1d (docs/SPEC.md §3.1): one channel, stride 1, no padding: `a_i = Σ_{s<F} x_{i+s} w_s + b`
/// on a plain `(length)` signal. Parameters are `w_0 … w_{F−1}, b`.
public struct SimpleConv1d: Layer {
    let core: Conv1d
    public let inputShape: Shape
    public let outputShape: Shape

    public init(inputShape: Shape, kernel: Int) throws {
        guard inputShape.rank == 1 else {
            throw ShapeError("SimpleConv1d needs a (length) input, got \(inputShape)")
        }
        do {
            core = try Conv1d(inputShape: Shape(1, inputShape.dims[0]), outChannels: 1, kernel: kernel)
        } catch let error as ShapeError {
            throw ShapeError(error.description.replacingOccurrences(of: "Conv1d", with: "SimpleConv1d"))
        }
        self.inputShape = inputShape
        outputShape = Shape(core.outputShape.dims[1])
    }

    public var kind: String { "SimpleConv1d" }
    public var spec: LayerSpec { .simpleConv1d(kernel: core.core.geometry.kernelWidth) }
    public var parameterCount: Int { core.parameterCount }
    public var weightCount: Int { core.weightCount }
    public var fanIn: Int { core.fanIn }
    public var scratchCount: Int { core.scratchCount }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        core.forward(x: x, y: y, batch: batch, parameters: parameters, scratch: scratch)
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        core.backward(
            x: x, y: y, dy: dy, dx: dx, batch: batch, parameters: parameters, gradient: gradient, scratch: scratch)
    }
}
