import ConvoyInterop

/// What runs right after a convolution's GEMM, on the chunk's transposed output, before
/// anything is written to memory: the bias always, then the layers that `Network`'s plan
/// fused into the convolution (docs/SPEC.md §3.3, §4.5, §4.1).
enum ConvEpilogue {
    /// `y = conv + b`: the plain layer.
    case bias
    /// `y = max(conv + b, 0)`: Conv then ReLU.
    case biasReLU
    /// Conv, ReLU, 2×2/2 MaxPool: `y` is the pooled output, `indices` one byte per pooled
    /// value (arg-max in its window, or 4 for "no gradient"), sample-major like `y`.
    case biasReLUPool(indices: UnsafeMutablePointer<UInt8>)
}

/// How the gradient that reaches a (fused) convolution becomes `dL/d(conv output)` in the
/// chunk layout its GEMMs read; the adjoint of the epilogue.
enum ConvPrologue {
    /// `dy` is the convolution's own output gradient.
    case plain
    /// `dy` is the ReLU's output gradient; `y` that ReLU's output (the mask `y > 0`).
    case reluMask(y: UnsafePointer<Float>)
    /// `dy` is the pooled output's gradient; `indices` as saved by `.biasReLUPool`.
    case pool(indices: UnsafePointer<UInt8>)
}

extension Conv2d {
    /// Tests set this to run the general Swift `im2col`/`col2im` instead of the C kernels.
    nonisolated(unsafe) static var generalColumns = false
    /// Tests and measurements set this to false to run im2col and a GEMM where the direct kernel applies.
    nonisolated(unsafe) static var directConvolution = true

    /// One input channel at stride 1 with zero padding (LeNet-5's conv1): the direct C kernels, no columns.
    var usesDirect: Bool { Conv2d.directConvolution && geometry.cKernelsApply && Kernels.directApplies(kernelShape) }

    /// The general path (`im2col` in Swift) serves any padding; the C kernel zero padding.
    @inline(__always)
    func makeColumns(
        _ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, rowStride: Int, _ shape: Kernels.ConvShape
    ) {
        if Conv2d.generalColumns || !geometry.cKernelsApply {
            im2col(x, into: col, rowStride: rowStride, geometry)
        } else {
            Kernels.im2col(x, into: col, rowStride: rowStride, shape)
        }
    }

    @inline(__always)
    func scatterColumns(
        _ col: UnsafePointer<Float>, rowStride: Int, into dx: UnsafeMutablePointer<Float>, _ shape: Kernels.ConvShape
    ) {
        if Conv2d.generalColumns || !geometry.cKernelsApply {
            col2im(col, rowStride: rowStride, into: dx, geometry)
        } else {
            Kernels.col2im(col, rowStride: rowStride, into: dx, shape)
        }
    }

    /// The geometry for the C kernels. They implement zero padding only; any other padding
    /// mode must take the Swift `im2col`/`col2im` (the general path) instead.
    var kernelShape: Kernels.ConvShape {
        let g = geometry
        return Kernels.ConvShape(
            channels: g.inChannels, height: g.inHeight, width: g.inWidth,
            kernel: (g.kernelHeight, g.kernelWidth), stride: (g.strideHeight, g.strideWidth),
            padding: (g.paddingHeight, g.paddingWidth), output: (g.outHeight, g.outWidth))
    }

    /// Forward over `batch` samples, `chunk` at a time: im2col, one GEMM `Yᵀ = W·col` per
    /// chunk, then the epilogue writes `y` (sample-major) straight from `Yᵀ`. The bias,
    /// ReLU and pooling cost no pass of their own: the epilogue reads `Yᵀ` once, while it is
    /// still in L2. Where `usesDirect`, the direct kernel writes `Yᵀ` with no column matrix.
    func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) {
        let g = geometry
        let P = g.outPositions
        let shape = kernelShape
        let bias = parameters + weightCount
        let col = scratch
        let yT = scratch + chunk * g.patchSize * P
        let pooledSize = g.outChannels * (g.outHeight / 2) * (g.outWidth / 2)
        let direct = usesDirect
        for first in stride(from: 0, to: batch, by: chunk) {
            let b = min(chunk, batch - first)
            let width = b * P
            if direct {
                for k in 0..<b {
                    Kernels.convDirect(
                        x + (first + k) * g.inSize, weights: parameters, into: yT + k * P, ld: width,
                        outChannels: g.outChannels, shape)
                }
            } else {
                for k in 0..<b { makeColumns(x + (first + k) * g.inSize, into: col + k * P, rowStride: width, shape) }
                BLAS.sgemm(
                    transA: false, transB: false, m: g.outChannels, n: width, k: g.patchSize,
                    a: parameters, lda: g.patchSize, b: col, ldb: width, beta: 0, c: yT, ldc: width)
            }
            switch epilogue {
            case .bias, .biasReLU:
                let relu = if case .biasReLU = epilogue { true } else { false }
                Kernels.convUnpack(
                    yT, ld: width, bias: bias, into: y + first * g.outSize,
                    channels: g.outChannels, positions: P, samples: b, relu: relu)
            case let .biasReLUPool(indices):
                Kernels.convReLUPool2(
                    yT, ld: width, bias: bias, into: y + first * pooledSize,
                    indices: indices + first * pooledSize,
                    channels: g.outChannels, height: g.outHeight, width: g.outWidth, samples: b)
            }
        }
    }

    /// Backward over `batch` samples, `chunk` at a time: the prologue builds `dYᵀ` in the
    /// chunk layout (one pass over `dy`, with the ReLU mask or the pooling scatter folded in),
    /// then `dW += dYᵀ·colᵀ` (GEMM with β = 1: no separate accumulation pass),
    /// `db += Σ dYᵀ`, `dcol = Wᵀ·dYᵀ` (β = 0) and col2im into `dx`. Where `usesDirect`, the
    /// direct kernel adds each sample's `dW` in sample order instead (no `col`).
    func backward(
        x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, prologue: ConvPrologue
    ) {
        let g = geometry
        let P = g.outPositions
        let shape = kernelShape
        let biasGradient = gradient + weightCount
        let col = scratch
        let dyT = scratch + chunk * g.patchSize * P
        let pooledSize = g.outChannels * (g.outHeight / 2) * (g.outWidth / 2)
        let direct = usesDirect
        for first in stride(from: 0, to: batch, by: chunk) {
            let b = min(chunk, batch - first)
            let width = b * P
            if !direct {
                for k in 0..<b { makeColumns(x + (first + k) * g.inSize, into: col + k * P, rowStride: width, shape) }
            }
            switch prologue {
            case .plain:
                Kernels.convPack(
                    dy + first * g.outSize, reluOutput: nil, into: dyT, ld: width,
                    channels: g.outChannels, positions: P, samples: b)
            case let .reluMask(y):
                Kernels.convPack(
                    dy + first * g.outSize, reluOutput: y + first * g.outSize, into: dyT, ld: width,
                    channels: g.outChannels, positions: P, samples: b)
            case let .pool(indices):
                Kernels.pool2Scatter(
                    dy + first * pooledSize, indices: indices + first * pooledSize, into: dyT, ld: width,
                    channels: g.outChannels, height: g.outHeight, width: g.outWidth, samples: b)
            }
            if direct {
                for k in 0..<b {
                    Kernels.convDirectWeights(
                        x + (first + k) * g.inSize, dy: dyT + k * P, ld: width, outChannels: g.outChannels, shape,
                        into: gradient)
                }
            } else {
                BLAS.sgemm(
                    transA: false, transB: true, m: g.outChannels, n: g.patchSize, k: width,
                    a: dyT, lda: width, b: col, ldb: width, beta: 1, c: gradient, ldc: g.patchSize)
            }
            Kernels.addRowSums(dyT, ld: width, rows: g.outChannels, count: width, into: biasGradient)
            guard let dx else { continue }
            // dcol overwrites col, which the weight gradient above has finished with.
            BLAS.sgemm(
                transA: true, transB: false, m: g.patchSize, n: width, k: g.outChannels,
                a: parameters, lda: g.patchSize, b: dyT, ldb: width, beta: 0, c: col, ldc: width)
            for k in 0..<b { scatterColumns(col + k * P, rowStride: width, into: dx + (first + k) * g.inSize, shape) }
        }
    }
}
