import ConvoyInterop

/// The start-up self-check (KernelChoice): one small GEMM per transpose combination and one
/// fused convolution, compared with plain loops in Double. Some BLAS builds compute wrong
/// results on CPUs newer than they are; this refuses such a kernel before it trains anything.
/// Takes well under a millisecond.
enum SelfCheck {
    /// Deterministic values in [-1, 1) without the engine's RNG (no state shared with tests).
    static func values(_ count: Int, seed: UInt32) -> [Float] {
        var state = seed &* 2_654_435_761 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            return Float(Int(state % 2001) - 1000) / 1000
        }
    }

    /// Tolerance: Float32 rounding of a k-term product sum is far below 1e-5 of Σ|a·b|.
    static func close(_ a: Float, _ reference: Double, scale: Double) -> Bool {
        abs(Double(a) - reference) <= 1e-5 * scale + 1e-6
    }

    /// C = A·B (+ C, β = 1) for all four transposes, with sizes that leave vector-width tails.
    static func gemmAgrees(on backend: BLAS.Backend) -> Bool {
        let (m, n, k) = (7, 37, 27)
        let a = values(m * k, seed: 1)
        let b = values(k * n, seed: 2)
        let c0 = values(m * n, seed: 3)
        for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
            var c = c0
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    BLAS.sgemm(
                        on: backend, transA: transA, transB: transB, m: m, n: n, k: k,
                        a: ap.baseAddress!, lda: transA ? m : k, b: bp.baseAddress!, ldb: transB ? k : n,
                        beta: 1, c: &c, ldc: n)
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var total = Double(c0[i * n + j])
                    var scale = abs(total)
                    for p in 0..<k {
                        let x = Double(transA ? a[p * m + i] : a[i * k + p])
                        let y = Double(transB ? b[j * k + p] : b[p * n + j])
                        total += x * y
                        scale += abs(x * y)
                    }
                    if !close(c[i * n + j], total, scale: scale) { return false }
                }
            }
        }
        return true
    }

    /// The im2col path (2 channels on 7×9 planes) and the direct kernel (1 channel on 6×20
    /// planes): forward with bias, ReLU and pooling, and the direct kernel's weight gradient.
    static func convolutionAgrees() -> Bool {
        convolutionAgrees(Shape(2, 7, 9)) && convolutionAgrees(Shape(1, 6, 20)) && directWeightsAgree()
    }

    /// Conv2d to 3 channels, 3×3, padding 1, two samples, with the fused bias, ReLU and 2×2 max
    /// pooling, against the same computed in Double.
    static func convolutionAgrees(_ shape: Shape) -> Bool {
        guard let conv = try? Conv2d(inputShape: shape, outChannels: 3, kernel: (3, 3), padding: (1, 1))
        else { return false }
        let g = conv.geometry
        let batch = 2
        let x = values(batch * g.inSize, seed: 4)
        let parameters = values(conv.parameterCount, seed: 5)
        let (oh, ow) = (g.outHeight / 2, g.outWidth / 2)
        var y = [Float](repeating: .nan, count: batch * g.outChannels * oh * ow)
        var indices = [UInt8](repeating: 0, count: y.count)
        var scratch = [Float](repeating: .nan, count: conv.scratchCount)
        indices.withUnsafeMutableBufferPointer { ip in
            conv.forward(
                x: x, y: &y, batch: batch, parameters: parameters, scratch: &scratch,
                epilogue: .biasReLUPool(indices: ip.baseAddress!))
        }
        func reference(_ n: Int, _ m: Int, _ i: Int, _ j: Int) -> (Double, Double) {
            var total = Double(parameters[conv.weightCount + m])
            var scale = abs(total)
            for c in 0..<g.inChannels {
                for s in 0..<3 {
                    for t in 0..<3 {
                        let h = i + s - 1
                        let w = j + t - 1
                        guard h >= 0, h < g.inHeight, w >= 0, w < g.inWidth else { continue }
                        let term =
                            Double(x[n * g.inSize + (c * g.inHeight + h) * g.inWidth + w])
                            * Double(parameters[((m * g.inChannels + c) * 3 + s) * 3 + t])
                        total += term
                        scale += abs(term)
                    }
                }
            }
            return (total, scale)
        }
        for n in 0..<batch {
            for m in 0..<g.outChannels {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var best = 0.0
                        var scale = 0.0
                        for (di, dj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            let (value, s) = reference(n, m, 2 * i + di, 2 * j + dj)
                            best = max(best, value)
                            scale = max(scale, s)
                        }
                        if !close(y[((n * g.outChannels + m) * oh + i) * ow + j], best, scale: scale) { return false }
                    }
                }
            }
        }
        return true
    }

    /// The direct kernel's weight gradient (1 channel, 6×20, 3×3, padding 1, three samples)
    /// against Double loops.
    static func directWeightsAgree() -> Bool {
        guard let conv = try? Conv2d(inputShape: Shape(1, 6, 20), outChannels: 3, kernel: (3, 3), padding: (1, 1))
        else { return false }
        guard conv.usesDirect else { return true }
        let g = conv.geometry
        let batch = 3
        let x = values(batch * g.inSize, seed: 6)
        let dy = values(batch * g.outSize, seed: 7)
        let parameters = values(conv.parameterCount, seed: 8)
        var gradient = [Float](repeating: 0, count: conv.parameterCount)
        var scratch = [Float](repeating: .nan, count: conv.scratchCount)
        conv.backward(
            x: x, dy: dy, dx: nil, batch: batch, parameters: parameters, gradient: &gradient, scratch: &scratch,
            prologue: .plain)
        for m in 0..<3 {
            for s in 0..<3 {
                for t in 0..<3 {
                    var total = 0.0
                    var scale = 0.0
                    for n in 0..<batch {
                        for i in 0..<g.outHeight {
                            for j in 0..<g.outWidth {
                                let (h, w) = (i + s - 1, j + t - 1)
                                guard h >= 0, h < g.inHeight, w >= 0, w < g.inWidth else { continue }
                                let term =
                                    Double(x[n * g.inSize + h * g.inWidth + w])
                                    * Double(dy[n * g.outSize + (m * g.outHeight + i) * g.outWidth + j])
                                total += term
                                scale += abs(term)
                            }
                        }
                    }
                    if !close(gradient[(m * 3 + s) * 3 + t], total, scale: scale) { return false }
                }
            }
        }
        return true
    }
}
