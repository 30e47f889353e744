@testable import ConvoyEngine
import Testing

/// The fast paths (im2col + GEMM, unrolled pooling) against the plain-loop references on
/// random shapes, strides and paddings. Tolerance: Float32 sums of up to a few hundred
/// products of values in [−1, 1] differ from Double by well under 1e-4; we allow 1e-4 + 1e-4·|ref|.
@Suite struct LayerReferenceTests {
    static let atol = 1e-4, rtol = 1e-4

    @Test(arguments: 0..<40)
    func conv2dMatchesReference(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 100)
        let c = 1 + rng.nextIndex(below: 4)
        let m = 1 + rng.nextIndex(below: 5)
        let fh = 1 + rng.nextIndex(below: 5)
        let fw = 1 + rng.nextIndex(below: 5)
        let sh = 1 + rng.nextIndex(below: 3)
        let sw = 1 + rng.nextIndex(below: 3)
        let ph = rng.nextIndex(below: 3)
        let pw = rng.nextIndex(below: 3)
        let h = max(1, fh - 2 * ph) + rng.nextIndex(below: 9)
        let w = max(1, fw - 2 * pw) + rng.nextIndex(below: 9)
        let n = 1 + rng.nextIndex(below: 20)  // crosses the chunk size, so chunking is exercised
        let layer = try Conv2d(
            inputShape: Shape(c, h, w), outChannels: m, kernel: (fh, fw), stride: (sh, sw), padding: (ph, pw))
        let x = randomFloats(n * c * h * w, &rng)
        let params = randomFloats(layer.parameterCount, &rng)
        let dy = randomFloats(n * layer.outputShape.count, &rng)
        let run = runLayer(layer, x: x, parameters: params, dy: dy, batch: n)
        let wCount = layer.weightCount
        let xd = x.map(Double.init)
        let wd = params[0..<wCount].map(Double.init)
        let bd = params[wCount...].map(Double.init)
        let ref = Reference.conv2dForward(
            x: xd, w: wd, b: bd, n: n, c: c, h: h, wd: w, m: m, fh: fh, fw: fw, sh: sh, sw: sw, ph: ph, pw: pw)
        #expect(layer.outputShape == Shape(m, ref.ho, ref.wo))
        let back = Reference.conv2dBackward(
            x: xd, w: wd, dy: dy.map(Double.init), n: n, c: c, h: h, wd: w, m: m,
            fh: fh, fw: fw, sh: sh, sw: sw, ph: ph, pw: pw)
        let what = "conv2d c\(c) m\(m) \(h)x\(w) k\(fh)x\(fw) s\(sh)x\(sw) p\(ph)x\(pw) n\(n)"
        expectClose(run.y, ref.y, atol: Self.atol, rtol: Self.rtol, "\(what) y")
        expectClose(run.dx, back.dx, atol: Self.atol, rtol: Self.rtol, "\(what) dx")
        expectClose(Array(run.gradient[0..<wCount]), back.dw, atol: 1e-3, rtol: Self.rtol, "\(what) dw")
        expectClose(Array(run.gradient[wCount...]), back.db, atol: 1e-3, rtol: Self.rtol, "\(what) db")
    }

    @Test(arguments: 0..<25)
    func conv1dMatchesReference(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 200)
        let c = 1 + rng.nextIndex(below: 4)
        let m = 1 + rng.nextIndex(below: 4)
        let f = 1 + rng.nextIndex(below: 6)
        let stride = 1 + rng.nextIndex(below: 3)
        let pad = rng.nextIndex(below: 3)
        let l = max(1, f - 2 * pad) + rng.nextIndex(below: 20)
        let n = 1 + rng.nextIndex(below: 5)
        let layer = try Conv1d(inputShape: Shape(c, l), outChannels: m, kernel: f, stride: stride, padding: pad)
        let x = randomFloats(n * c * l, &rng)
        let params = randomFloats(layer.parameterCount, &rng)
        let y = forwardOnly(layer, x: x, parameters: params, batch: n)
        let ref = Reference.conv1dForward(
            x: x.map(Double.init), w: params[0..<layer.weightCount].map(Double.init),
            b: params[layer.weightCount...].map(Double.init), n: n, c: c, l: l, m: m, f: f, stride: stride, pad: pad)
        expectClose(y, ref, atol: Self.atol, rtol: Self.rtol, "conv1d c\(c) m\(m) l\(l) f\(f) s\(stride) p\(pad)")
    }

    @Test(arguments: 0..<30)
    func poolingMatchesReference(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 300)
        let c = 1 + rng.nextIndex(below: 3)
        let n = 1 + rng.nextIndex(below: 3)
        // Half the cases are the unrolled 2×2/2 path, including odd sizes.
        let square = seed % 2 == 0
        let wh = square ? 2 : 1 + rng.nextIndex(below: 3)
        let ww = square ? 2 : 1 + rng.nextIndex(below: 3)
        let sh = square ? 2 : 1 + rng.nextIndex(below: 3)
        let sw = square ? 2 : 1 + rng.nextIndex(below: 3)
        let h = wh + rng.nextIndex(below: 7)
        let w = ww + rng.nextIndex(below: 7)
        let x = randomFloats(n * c * h * w, &rng)
        for isMax in [true, false] {
            let layer: any Layer =
                isMax
                ? try MaxPool2d(inputShape: Shape(c, h, w), window: (wh, ww), stride: (sh, sw))
                : try AvgPool2d(inputShape: Shape(c, h, w), window: (wh, ww), stride: (sh, sw))
            let dy = randomFloats(n * layer.outputShape.count, &rng)
            let run = runLayer(layer, x: x, parameters: [], dy: dy, batch: n)
            let ref = Reference.pool(
                x: x.map(Double.init), dy: dy.map(Double.init), planes: n * c, h: h, w: w,
                wh: wh, ww: ww, sh: sh, sw: sw, max: isMax)
            let what = "\(layer.kind) \(h)x\(w) window \(wh)x\(ww) stride \(sh)x\(sw)"
            expectClose(run.y, ref.y, atol: 1e-6, rtol: 1e-6, "\(what) y")
            expectClose(run.dx, ref.dx, atol: 1e-6, rtol: 1e-6, "\(what) dx")
        }
    }

    @Test(arguments: 0..<15)
    func denseMatchesReference(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 400)
        let n = 1 + rng.nextIndex(below: 9)
        let inputs = 1 + rng.nextIndex(below: 40)
        let outputs = 1 + rng.nextIndex(below: 20)
        let layer = try Dense(inputShape: Shape(inputs), outputs: outputs)
        let x = randomFloats(n * inputs, &rng)
        let params = randomFloats(layer.parameterCount, &rng)
        let dy = randomFloats(n * outputs, &rng)
        let run = runLayer(layer, x: x, parameters: params, dy: dy, batch: n)
        let ref = Reference.dense(
            x: x.map(Double.init), w: params[0..<layer.weightCount].map(Double.init),
            b: params[layer.weightCount...].map(Double.init), dy: dy.map(Double.init), n: n, inputs: inputs,
            outputs: outputs)
        expectClose(run.y, ref.y, atol: Self.atol, rtol: Self.rtol, "dense y")
        expectClose(run.dx, ref.dx, atol: Self.atol, rtol: Self.rtol, "dense dx")
        expectClose(Array(run.gradient[0..<layer.weightCount]), ref.dw, atol: Self.atol, rtol: Self.rtol, "dense dW")
        expectClose(Array(run.gradient[layer.weightCount...]), ref.db, atol: Self.atol, rtol: Self.rtol, "dense db")
    }

    @Test func activationsAndFlatten() throws {
        var rng = SeededRandom(seed: 5)
        let x = randomFloats(24, &rng, scale: 3)
        let dy = randomFloats(24, &rng)
        for function in [Activation.Function.relu, .sigmoid, .tanh] {
            let run = runLayer(Activation(function, shape: Shape(2, 3, 2)), x: x, parameters: [], dy: dy, batch: 2)
            let (y, dx): ([Double], [Double]) = {
                let xs = x.map(Double.init)
                let ds = dy.map(Double.init)
                switch function {
                case .relu: return (xs.map { max($0, 0) }, zip(xs, ds).map { $0 > 0 ? $1 : 0 })
                case .sigmoid:
                    let s = xs.map { 1 / (1 + Foundation.exp(-$0)) }
                    return (s, zip(s, ds).map { $0 * (1 - $0) * $1 })
                case .tanh:
                    let t = xs.map { Foundation.tanh($0) }
                    return (t, zip(t, ds).map { (1 - $0 * $0) * $1 })
                }
            }()
            expectClose(run.y, y, atol: 1e-6, rtol: 1e-5, "\(function) y")
            expectClose(run.dx, dx, atol: 1e-6, rtol: 1e-5, "\(function) dx")
        }
        let flatten = Flatten(inputShape: Shape(2, 3, 2))
        #expect(flatten.outputShape == Shape(12))
        let run = runLayer(flatten, x: x, parameters: [], dy: dy, batch: 2)
        #expect(run.y == x && run.dx == dy)
    }

    @Test func softmaxCrossEntropyMatchesFormula() {
        let logits: [Float] = [1, 2, 3, -1, 0, 5]
        let labels: [UInt8] = [2, 0]
        var d = [Float](repeating: 0, count: 6)
        let result = logits.withUnsafeBufferPointer { l in
            labels.withUnsafeBufferPointer { y in
                d.withUnsafeMutableBufferPointer {
                    SoftmaxCrossEntropy.evaluate(
                        logits: l.baseAddress!, labels: y.baseAddress!, batch: 2, classes: 3,
                        dLogits: $0.baseAddress!, gradientScale: 0.5)
                }
            }
        }
        var expectedLoss = 0.0
        var expectedGradient: [Double] = []
        for (row, label) in [(0, 2), (1, 0)] {
            let z = logits[(row * 3)..<(row * 3 + 3)].map(Double.init)
            let total = z.map { Foundation.exp($0) }.reduce(0, +)
            expectedLoss += -Foundation.log(Foundation.exp(z[label]) / total)
            for c in 0..<3 { expectedGradient.append((Foundation.exp(z[c]) / total - (c == label ? 1 : 0)) * 0.5) }
        }
        #expect(abs(result.lossSum - expectedLoss) < 1e-5)
        #expect(result.correct == 1)
        expectClose(d, expectedGradient, atol: 1e-6, rtol: 1e-5, "dlogits")
    }
}

import Foundation
