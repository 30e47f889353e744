@testable import ConvoyEngine
import ConvoyInterop
import Testing

/// The direct convolution kernels (one input channel, stride 1: LeNet-5's conv1) for every ISA
/// this CPU can run: against the Double references, with and without an input gradient, odd
/// batch sizes and channel counts that leave partial channel groups; the same bits across ISAs;
/// and each sample's output and weight gradient independent of the batch around it.
@Suite struct FusedDirectTests {
    /// (height, width, kernel, padding, output channels): LeNet-5's conv1 and odd shapes.
    static let shapes: [(Int, Int, (Int, Int), (Int, Int), Int)] = [
        (28, 28, (5, 5), (2, 2), 6), (20, 17, (3, 3), (1, 1), 5), (12, 31, (2, 4), (0, 1), 7),
        (9, 16, (1, 1), (0, 0), 1), (5, 30, (3, 5), (1, 2), 8),
    ]

    struct Run: Equatable {
        var y: [Float]
        var indices: [UInt8]
        var dx: [Float]
        var gradient: [Float]
    }

    static func run(
        _ conv: Conv2d, x: [Float], params: [Float], dy: [Float], batch n: Int, pooled: Bool, inputGradient: Bool
    ) -> Run {
        var r = Run(
            y: [Float](repeating: .nan, count: dy.count), indices: [UInt8](repeating: 9, count: dy.count),
            dx: [Float](repeating: inputGradient ? .nan : 0, count: x.count),
            gradient: [Float](repeating: 0, count: conv.parameterCount))
        var scratch = [Float](repeating: .nan, count: conv.scratchCount)
        r.indices.withUnsafeMutableBufferPointer { ip in
            conv.forward(
                x: x, y: &r.y, batch: n, parameters: params, scratch: &scratch,
                epilogue: pooled ? .biasReLUPool(indices: ip.baseAddress!) : .biasReLU)
        }
        r.y.withUnsafeBufferPointer { yp in
            r.indices.withUnsafeBufferPointer { ip in
                r.dx.withUnsafeMutableBufferPointer { dxp in
                    conv.backward(
                        x: x, dy: dy, dx: inputGradient ? dxp.baseAddress! : nil, batch: n, parameters: params,
                        gradient: &r.gradient, scratch: &scratch,
                        prologue: pooled ? .pool(indices: ip.baseAddress!) : .reluMask(y: yp.baseAddress!))
                }
            }
        }
        return r
    }

    @Test(arguments: 0..<10)
    func directMatchesReference(seed: Int) throws {
        let (h, w, k, p, m) = Self.shapes[seed % Self.shapes.count]
        var rng = SeededRandom(seed: UInt64(seed) &+ 900)
        let n = [1, 3, 13, 7, 65][seed % 5]
        let pooled = seed % 2 == 0
        let conv = try Conv2d(inputShape: Shape(1, h, w), outChannels: m, kernel: k, padding: p)
        #expect(conv.usesDirect, "direct kernel applies to \(h)x\(w)")
        let g = conv.geometry
        let (oh, ow) = pooled ? (g.outHeight / 2, g.outWidth / 2) : (g.outHeight, g.outWidth)
        let x = randomFloats(n * g.inSize, &rng)
        let params = randomFloats(conv.parameterCount, &rng)
        let dy = randomFloats(n * m * oh * ow, &rng)
        let a = Reference.conv2dForward(
            x: x.map(Double.init), w: params[0..<conv.weightCount].map(Double.init),
            b: params[conv.weightCount...].map(Double.init), n: n, c: 1, h: h, wd: w, m: m, fh: k.0, fw: k.1,
            sh: 1, sw: 1, ph: p.0, pw: p.1
        ).y
        let relu = a.map { max($0, 0) }
        let pool =
            pooled
            ? Reference.pool(
                x: relu, dy: dy.map(Double.init), planes: n * m, h: g.outHeight, w: g.outWidth,
                wh: 2, ww: 2, sh: 2, sw: 2, max: true) : (relu, dy.map(Double.init))
        let back = Reference.conv2dBackward(
            x: x.map(Double.init), w: params[0..<conv.weightCount].map(Double.init),
            dy: zip(pool.1, a).map { $1 > 0 ? $0 : 0 }, n: n, c: 1, h: h, wd: w, m: m, fh: k.0, fw: k.1,
            sh: 1, sw: 1, ph: p.0, pw: p.1)
        var first: Run?
        FusedKernelTests.forEachISA { isa in
            for inputGradient in [false, true] {
                let r = Self.run(
                    conv, x: x, params: params, dy: dy, batch: n, pooled: pooled, inputGradient: inputGradient)
                let tag = "direct \(h)x\(w) k\(k) p\(p) m\(m) n\(n) pooled \(pooled) dx \(inputGradient) \(isa.name)"
                expectClose(r.y, pool.0, atol: 1e-4, rtol: 1e-4, "\(tag) y")
                if inputGradient { expectClose(r.dx, back.dx, atol: 1e-4, rtol: 1e-4, "\(tag) dx") }
                expectClose(Array(r.gradient[0..<conv.weightCount]), back.dw, atol: 1e-3, rtol: 1e-4, "\(tag) dw")
                expectClose(Array(r.gradient[conv.weightCount...]), back.db, atol: 1e-3, rtol: 1e-4, "\(tag) db")
                if !inputGradient {
                    if let first { #expect(r == first, "\(tag): the same bits as \(FusedKernelTests.isas[0].name)") }
                    first = r
                }
            }
        }
    }

    /// Each sample's output, and its weight gradient added in sample order, do not depend on the
    /// batch or chunk it is computed in: a batch gives the bits of its samples run one at a time.
    @Test(arguments: 0..<5)
    func samplesGiveTheirOwnBits(seed: Int) throws {
        let (h, w, k, p, m) = Self.shapes[seed]
        var rng = SeededRandom(seed: UInt64(seed) &+ 950)
        let n = 2 * seed + 3
        let conv = try Conv2d(inputShape: Shape(1, h, w), outChannels: m, kernel: k, padding: p)
        let g = conv.geometry
        let x = randomFloats(n * g.inSize, &rng)
        let params = randomFloats(conv.parameterCount, &rng)
        let dy = randomFloats(n * g.outSize, &rng)
        FusedKernelTests.forEachISA { isa in
            let whole = Self.run(conv, x: x, params: params, dy: dy, batch: n, pooled: false, inputGradient: false)
            var weights = [Float](repeating: 0, count: conv.weightCount)
            for s in 0..<n {
                let one = Self.run(
                    conv, x: Array(x[(s * g.inSize)..<((s + 1) * g.inSize)]), params: params,
                    dy: Array(dy[(s * g.outSize)..<((s + 1) * g.outSize)]), batch: 1, pooled: false,
                    inputGradient: false)
                #expect(
                    Array(whole.y[(s * g.outSize)..<((s + 1) * g.outSize)]) == one.y, "\(isa.name) sample \(s) y")
                for i in 0..<conv.weightCount { weights[i] += one.gradient[i] }
            }
            #expect(Array(whole.gradient[0..<conv.weightCount]) == weights, "\(isa.name) weight gradient")
        }
    }
}
