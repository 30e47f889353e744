/// The geometry of a 2-D pooling window over `(channels, height, width)` samples.
public struct PoolGeometry: Sendable, Equatable {
    public let channels, inHeight, inWidth: Int
    public let windowHeight, windowWidth, strideHeight, strideWidth: Int
    public let outHeight, outWidth: Int

    init(layer: String, input: Shape, window: (Int, Int), stride: (Int, Int)) throws {
        guard input.rank == 3 else {
            throw ShapeError("\(layer) needs a (channels, height, width) input, got \(input)")
        }
        (channels, inHeight, inWidth) = (input.dims[0], input.dims[1], input.dims[2])
        (windowHeight, windowWidth) = window
        (strideHeight, strideWidth) = stride
        do {
            outHeight = try convolutionOutputSize(input: inHeight, kernel: window.0, stride: stride.0)
            outWidth = try convolutionOutputSize(input: inWidth, kernel: window.1, stride: stride.1)
        } catch let error as ShapeError {
            throw ShapeError("\(layer) on input \(input): \(error.description)")
        }
    }

    /// 2×2 windows with stride 2, the common case, has unrolled loops.
    var isTwoByTwo: Bool { windowHeight == 2 && windowWidth == 2 && strideHeight == 2 && strideWidth == 2 }
    var inPlane: Int { inHeight * inWidth }
    var outPlane: Int { outHeight * outWidth }
    var outputShape: Shape { Shape(channels, outHeight, outWidth) }
}

/// MaxPool2d (docs/SPEC.md §4.1): the max over each window; backward sends each output gradient to
/// the first arg-max of its window (overlapping windows accumulate). The arg-max is found
/// again in backward by comparing the input with the saved output, so nothing is stored.
public struct MaxPool2d: Layer {
    public let geometry: PoolGeometry
    public let inputShape: Shape
    public var outputShape: Shape { geometry.outputShape }

    public init(inputShape: Shape, window: (Int, Int), stride: (Int, Int)? = nil) throws {
        geometry = try PoolGeometry(layer: "MaxPool2d", input: inputShape, window: window, stride: stride ?? window)
        self.inputShape = inputShape
    }

    public var kind: String { "MaxPool2d" }
    public var spec: LayerSpec {
        .maxPool2d(
            windowHeight: geometry.windowHeight, windowWidth: geometry.windowWidth,
            strideHeight: geometry.strideHeight, strideWidth: geometry.strideWidth)
    }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        if g.isTwoByTwo {
            // LeNet's case, unrolled: the generic loop below was 10% of a training step.
            for plane in 0..<(batch * g.channels) {
                let xp = x + plane * g.inPlane
                let yp = y + plane * g.outPlane
                for i in 0..<g.outHeight {
                    let top = xp + 2 * i * g.inWidth
                    let bottom = top + g.inWidth
                    let out = yp + i * g.outWidth
                    for j in 0..<g.outWidth {
                        out[j] = Swift.max(
                            Swift.max(top[2 * j], top[2 * j + 1]), Swift.max(bottom[2 * j], bottom[2 * j + 1]))
                    }
                }
            }
            return
        }
        for plane in 0..<(batch * g.channels) {
            let xp = x + plane * g.inPlane
            let yp = y + plane * g.outPlane
            for i in 0..<g.outHeight {
                for j in 0..<g.outWidth {
                    let corner = xp + i * g.strideHeight * g.inWidth + j * g.strideWidth
                    var best = corner[0]
                    for s in 0..<g.windowHeight {
                        let row = corner + s * g.inWidth
                        for t in 0..<g.windowWidth where row[t] > best { best = row[t] }
                    }
                    yp[i * g.outWidth + j] = best
                }
            }
        }
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        guard let dx else { return }
        let g = geometry
        if g.isTwoByTwo { return backwardTwoByTwo(x: x, y: y, dy: dy, dx: dx, batch: batch) }
        dx.update(repeating: 0, count: batch * g.channels * g.inPlane)
        for plane in 0..<(batch * g.channels) {
            let xp = x + plane * g.inPlane
            let dxp = dx + plane * g.inPlane
            let yp = y + plane * g.outPlane
            let dyp = dy + plane * g.outPlane
            for i in 0..<g.outHeight {
                for j in 0..<g.outWidth {
                    let offset = i * g.strideHeight * g.inWidth + j * g.strideWidth
                    let best = yp[i * g.outWidth + j]
                    var argmax = offset
                    search: for s in 0..<g.windowHeight {
                        for t in 0..<g.windowWidth where xp[offset + s * g.inWidth + t] == best {
                            argmax = offset + s * g.inWidth + t
                            break search
                        }
                    }
                    dxp[argmax] += dyp[i * g.outWidth + j]
                }
            }
        }
    }

    /// 2×2 windows at stride 2 do not overlap: every input element is written exactly once,
    /// so no zeroing pass is needed.
    private func backwardTwoByTwo(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, batch: Int
    ) {
        let g = geometry
        do {
            for plane in 0..<(batch * g.channels) {
                let xp = x + plane * g.inPlane
                let dxp = dx + plane * g.inPlane
                let yp = y + plane * g.outPlane
                let dyp = dy + plane * g.outPlane
                for i in 0..<g.outHeight {
                    let top = 2 * i * g.inWidth
                    let bottom = top + g.inWidth
                    for j in 0..<g.outWidth {
                        let best = yp[i * g.outWidth + j]
                        let grad = dyp[i * g.outWidth + j]
                        let a = top + 2 * j
                        let b = a + 1
                        let c = bottom + 2 * j
                        let d = c + 1
                        // First arg-max in window order: a, b, c, d.
                        let pick = xp[a] == best ? a : xp[b] == best ? b : xp[c] == best ? c : d
                        dxp[a] = pick == a ? grad : 0
                        dxp[b] = pick == b ? grad : 0
                        dxp[c] = pick == c ? grad : 0
                        dxp[d] = pick == d ? grad : 0
                    }
                }
                // Rows and columns that no window covers (odd sizes) get no gradient.
                if g.inHeight > 2 * g.outHeight {
                    (dxp + 2 * g.outHeight * g.inWidth).update(
                        repeating: 0, count: (g.inHeight - 2 * g.outHeight) * g.inWidth)
                }
                if g.inWidth > 2 * g.outWidth {
                    for r in 0..<(2 * g.outHeight) {
                        (dxp + r * g.inWidth + 2 * g.outWidth).update(repeating: 0, count: g.inWidth - 2 * g.outWidth)
                    }
                }
            }
        }
    }
}

/// AvgPool2d (docs/SPEC.md §4.2): the mean over each window; backward spreads `da/(Ph·Pw)` over it.
public struct AvgPool2d: Layer {
    public let geometry: PoolGeometry
    public let inputShape: Shape
    public var outputShape: Shape { geometry.outputShape }

    public init(inputShape: Shape, window: (Int, Int), stride: (Int, Int)? = nil) throws {
        geometry = try PoolGeometry(layer: "AvgPool2d", input: inputShape, window: window, stride: stride ?? window)
        self.inputShape = inputShape
    }

    public var kind: String { "AvgPool2d" }
    public var spec: LayerSpec {
        .avgPool2d(
            windowHeight: geometry.windowHeight, windowWidth: geometry.windowWidth,
            strideHeight: geometry.strideHeight, strideWidth: geometry.strideWidth)
    }

    public func forward(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        let scale = 1 / Float(g.windowHeight * g.windowWidth)
        for plane in 0..<(batch * g.channels) {
            let xp = x + plane * g.inPlane
            let yp = y + plane * g.outPlane
            for i in 0..<g.outHeight {
                for j in 0..<g.outWidth {
                    let corner = xp + i * g.strideHeight * g.inWidth + j * g.strideWidth
                    var total: Float = 0
                    for s in 0..<g.windowHeight {
                        for t in 0..<g.windowWidth { total += corner[s * g.inWidth + t] }
                    }
                    yp[i * g.outWidth + j] = total * scale
                }
            }
        }
    }

    public func backward(
        x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, batch: Int,
        parameters: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        guard let dx else { return }
        let g = geometry
        let scale = 1 / Float(g.windowHeight * g.windowWidth)
        dx.update(repeating: 0, count: batch * g.channels * g.inPlane)
        for plane in 0..<(batch * g.channels) {
            let dxp = dx + plane * g.inPlane
            let dyp = dy + plane * g.outPlane
            for i in 0..<g.outHeight {
                for j in 0..<g.outWidth {
                    let share = dyp[i * g.outWidth + j] * scale
                    let corner = dxp + i * g.strideHeight * g.inWidth + j * g.strideWidth
                    for s in 0..<g.windowHeight {
                        for t in 0..<g.windowWidth { corner[s * g.inWidth + t] += share }
                    }
                }
            }
        }
    }
}
