import ConvoyInterop

/// The geometry of a 2-D convolution over one sample; 1-D convolutions use height 1.
public struct ConvGeometry: Sendable, Equatable {
    public let inChannels, inHeight, inWidth: Int
    public let outChannels: Int
    public let kernelHeight, kernelWidth: Int
    public let strideHeight, strideWidth: Int
    public let paddingHeight, paddingWidth: Int
    public let outHeight, outWidth: Int

    public init(inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int,
                kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) throws {
        guard inChannels >= 1, outChannels >= 1 else {
            throw ShapeError("channels must be at least 1 (in \(inChannels), out \(outChannels))")
        }
        self.inChannels = inChannels; self.inHeight = inHeight; self.inWidth = inWidth
        self.outChannels = outChannels
        (kernelHeight, kernelWidth) = kernel
        (strideHeight, strideWidth) = stride
        (paddingHeight, paddingWidth) = padding
        outHeight = try convolutionOutputSize(input: inHeight, kernel: kernel.0, stride: stride.0, padding: padding.0)
        outWidth = try convolutionOutputSize(input: inWidth, kernel: kernel.1, stride: stride.1, padding: padding.1)
    }

    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }
    public var outPositions: Int { outHeight * outWidth }
    public var inSize: Int { inChannels * inHeight * inWidth }
    public var outSize: Int { outChannels * outPositions }
    /// A 1×1 kernel with stride 1 and no padding reads the input as its own column matrix.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1
            && paddingHeight == 0 && paddingWidth == 0
    }
}

/// Conv2d (SPEC.md): `a[n,m,i,j] = Σ_k Σ_s Σ_t x_pad[n,k,i·Sh+s,j·Sw+t] w[m,k,s,t] + b[m]`.
///
/// Fast path per sample: im2col turns the input into `col[patchSize × outPositions]`, then
/// `y_n[C_out × outPositions] = W[C_out × patchSize] · col + b`. Backward reuses the column
/// matrix: `dW += dy_n · colᵀ`, `db += Σ dy_n`, `dcol = Wᵀ · dy_n`, and col2im scatters `dcol`
/// back into the (cropped) input gradient. Weights are `(out, in, Fh, Fw)` then biases `(out)`.
public struct Conv2d: Layer {
    public let geometry: ConvGeometry
    public let inputShape: Shape
    public let outputShape: Shape

    public init(inputShape: Shape, outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0)) throws {
        guard inputShape.rank == 3 else {
            throw ShapeError("Conv2d needs a (channels, height, width) input, got \(inputShape)")
        }
        let d = inputShape.dims
        do {
            geometry = try ConvGeometry(inChannels: d[0], inHeight: d[1], inWidth: d[2], outChannels: outChannels,
                                        kernel: kernel, stride: stride, padding: padding)
        } catch let error as ShapeError {
            throw ShapeError("Conv2d on input \(inputShape): \(error.description)")
        }
        self.inputShape = inputShape
        outputShape = Shape(outChannels, geometry.outHeight, geometry.outWidth)
    }

    init(geometry: ConvGeometry, inputShape: Shape, outputShape: Shape) {
        self.geometry = geometry; self.inputShape = inputShape; self.outputShape = outputShape
    }

    public var kind: String { "Conv2d" }
    public var spec: LayerSpec {
        let g = geometry
        return .conv2d(outChannels: g.outChannels, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
                       strideHeight: g.strideHeight, strideWidth: g.strideWidth,
                       paddingHeight: g.paddingHeight, paddingWidth: g.paddingWidth)
    }
    public var weightCount: Int { geometry.outChannels * geometry.patchSize }
    public var parameterCount: Int { weightCount + geometry.outChannels }
    public var fanIn: Int { geometry.patchSize }
    public var scratchCount: Int { geometry.isPointwise ? 0 : geometry.patchSize * geometry.outPositions }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
                        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let g = geometry
        let bias = parameters + weightCount
        for n in 0..<batch {
            let xn = x + n * g.inSize, yn = y + n * g.outSize
            for m in 0..<g.outChannels {
                (yn + m * g.outPositions).update(repeating: bias[m], count: g.outPositions)
            }
            let col: UnsafePointer<Float>
            if g.isPointwise { col = xn } else { im2col(xn, into: scratch, g); col = UnsafePointer(scratch) }
            BLAS.sgemm(transA: false, transB: false, m: g.outChannels, n: g.outPositions, k: g.patchSize,
                       a: parameters, lda: g.patchSize, b: col, ldb: g.outPositions,
                       beta: 1, c: yn, ldc: g.outPositions)
        }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int,
                         parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>) {
        let g = geometry
        let biasGradient = gradient + weightCount
        for n in 0..<batch {
            let xn = x + n * g.inSize, dyn = dy + n * g.outSize
            let col: UnsafePointer<Float>
            if g.isPointwise { col = xn } else { im2col(xn, into: scratch, g); col = UnsafePointer(scratch) }
            BLAS.sgemm(transA: false, transB: true, m: g.outChannels, n: g.patchSize, k: g.outPositions,
                       a: dyn, lda: g.outPositions, b: col, ldb: g.outPositions,
                       beta: 1, c: gradient, ldc: g.patchSize)
            for m in 0..<g.outChannels {
                biasGradient[m] += sum(dyn + m * g.outPositions, g.outPositions)
            }
            guard let dx else { continue }
            let dxn = dx + n * g.inSize
            // dcol overwrites col, which the weight gradient above has finished with.
            let dcol = g.isPointwise ? dxn : scratch
            BLAS.sgemm(transA: true, transB: false, m: g.patchSize, n: g.outPositions, k: g.outChannels,
                       a: parameters, lda: g.patchSize, b: dyn, ldb: g.outPositions,
                       beta: 0, c: dcol, ldc: g.outPositions)
            if !g.isPointwise { col2im(UnsafePointer(dcol), into: dxn, g) }
        }
    }
}

@inline(__always)
func sum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var total: Float = 0
    for i in 0..<count { total += p[i] }
    return total
}

/// The output columns `j` whose input column `j·S + t − P` lies inside `[0, width)`.
@inline(__always)
private func validColumns(kernelOffset t: Int, stride: Int, padding: Int, width: Int, outWidth: Int) -> Range<Int> {
    let low = max(0, (padding - t + stride - 1) / stride)          // ceil, numerator may be ≤ 0
    let highNumerator = width - 1 + padding - t
    guard highNumerator >= 0 else { return 0..<0 }
    let high = min(outWidth - 1, highNumerator / stride)
    return low <= high ? low..<(high + 1) : 0..<0
}

/// `col[(c·Fh + s)·Fw + t][i·Wo + j] = x[c][i·Sh + s − Ph][j·Sw + t − Pw]`, 0 in the padding.
func im2col(_ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let (H, W, Ho, Wo) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
    var row = col
    for c in 0..<g.inChannels {
        let plane = x + c * H * W
        for s in 0..<g.kernelHeight {
            for t in 0..<g.kernelWidth {
                let cols = validColumns(kernelOffset: t, stride: g.strideWidth, padding: g.paddingWidth, width: W, outWidth: Wo)
                for i in 0..<Ho {
                    let dst = row + i * Wo
                    let h = i * g.strideHeight + s - g.paddingHeight
                    if h < 0 || h >= H || cols.isEmpty { dst.update(repeating: 0, count: Wo); continue }
                    if cols.lowerBound > 0 { dst.update(repeating: 0, count: cols.lowerBound) }
                    if cols.upperBound < Wo { (dst + cols.upperBound).update(repeating: 0, count: Wo - cols.upperBound) }
                    let src = plane + h * W + t - g.paddingWidth
                    if g.strideWidth == 1 {
                        (dst + cols.lowerBound).update(from: src + cols.lowerBound, count: cols.count)
                    } else {
                        for j in cols { dst[j] = src[j * g.strideWidth] }
                    }
                }
                row += Ho * Wo
            }
        }
    }
}

/// The adjoint of `im2col`: `dx` is zeroed, then every column entry is added back to the
/// input element it was copied from; entries that came from the padding are dropped.
func col2im(_ col: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let (H, W, Ho, Wo) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
    dx.update(repeating: 0, count: g.inSize)
    var row = col
    for c in 0..<g.inChannels {
        let plane = dx + c * H * W
        for s in 0..<g.kernelHeight {
            for t in 0..<g.kernelWidth {
                let cols = validColumns(kernelOffset: t, stride: g.strideWidth, padding: g.paddingWidth, width: W, outWidth: Wo)
                if !cols.isEmpty {
                    for i in 0..<Ho {
                        let h = i * g.strideHeight + s - g.paddingHeight
                        if h < 0 || h >= H { continue }
                        let src = row + i * Wo
                        let dst = plane + h * W + t - g.paddingWidth
                        if g.strideWidth == 1 {
                            for j in cols { dst[j] += src[j] }
                        } else {
                            for j in cols { dst[j * g.strideWidth] += src[j] }
                        }
                    }
                }
                row += Ho * Wo
            }
        }
    }
}

/// Conv1d (SPEC.md): `a[n,m,i] = Σ_k Σ_s x_pad[n,k,i·S+s] w[m,k,s] + b[m]` on `(channels,
/// length)` samples. It is Conv2d with height 1, so it shares that fast path; weights are
/// `(out, in, F)` then biases.
public struct Conv1d: Layer {
    let core: Conv2d
    public let inputShape: Shape
    public let outputShape: Shape

    public init(inputShape: Shape, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) throws {
        guard inputShape.rank == 2 else {
            throw ShapeError("Conv1d needs a (channels, length) input, got \(inputShape)")
        }
        let geometry: ConvGeometry
        do {
            geometry = try ConvGeometry(inChannels: inputShape.dims[0], inHeight: 1, inWidth: inputShape.dims[1],
                                        outChannels: outChannels, kernel: (1, kernel), stride: (1, stride), padding: (0, padding))
        } catch let error as ShapeError {
            throw ShapeError("Conv1d on input \(inputShape): \(error.description)")
        }
        self.inputShape = inputShape
        outputShape = Shape(outChannels, geometry.outWidth)
        core = Conv2d(geometry: geometry, inputShape: Shape(geometry.inChannels, 1, geometry.inWidth),
                      outputShape: Shape(outChannels, 1, geometry.outWidth))
    }

    public var kind: String { "Conv1d" }
    public var spec: LayerSpec {
        let g = core.geometry
        return .conv1d(outChannels: g.outChannels, kernel: g.kernelWidth, stride: g.strideWidth, padding: g.paddingWidth)
    }
    public var parameterCount: Int { core.parameterCount }
    public var weightCount: Int { core.weightCount }
    public var fanIn: Int { core.fanIn }
    public var scratchCount: Int { core.scratchCount }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
                        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        core.forward(x: x, y: y, batch: batch, parameters: parameters, scratch: scratch)
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int,
                         parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>) {
        core.backward(x: x, y: y, dy: dy, dx: dx, batch: batch, parameters: parameters, gradient: gradient, scratch: scratch)
    }
}

/// SimpleConv1d (SPEC.md): one channel, stride 1, no padding: `a_i = Σ_{s<F} x_{i+s} w_s + b`
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

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
                        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        core.forward(x: x, y: y, batch: batch, parameters: parameters, scratch: scratch)
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int,
                         parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>) {
        core.backward(x: x, y: y, dy: dy, dx: dx, batch: batch, parameters: parameters, gradient: gradient, scratch: scratch)
    }
}
