@testable import ConvoyEngine
import ConvoyInterop
import Testing

/// The fused Conv+ReLU(+MaxPool) blocks and the C kernels behind them, for every instruction
/// set this CPU can run: against the Double references, against the unfused layers (same
/// bits), across ISAs (same bits), and through the micro-batch offsets and the head/trunk
/// split that deterministic mode and the workers use.
///
/// Tests switch the kernels' ISA globally while others run in parallel; that is harmless
/// because every variant gives the same bits (which is what `variantsGiveTheSameBits` checks).
@Suite struct FusedKernelTests {
    static var isas: [Kernels.ISA] { Kernels.ISA.allCases.filter(\.isSupported) }

    /// Runs `body` once per supported ISA and restores the best one.
    static func forEachISA(_ body: (Kernels.ISA) throws -> Void) rethrows {
        defer { Kernels.select(Kernels.best) }
        for isa in isas {
            #expect(Kernels.select(isa))
            try body(isa)
        }
    }

    @Test(arguments: 0..<24)
    func fusedBlockMatchesReference(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 700)
        let c = 1 + rng.nextIndex(below: 4)
        let m = 1 + rng.nextIndex(below: 5)
        let fh = 1 + rng.nextIndex(below: 4)
        let fw = 1 + rng.nextIndex(below: 4)
        let sh = 1 + rng.nextIndex(below: 2)
        let sw = 1 + rng.nextIndex(below: 3)
        let ph = rng.nextIndex(below: 3)
        let pw = rng.nextIndex(below: 3)
        let h = max(2, fh - 2 * ph + 1) + rng.nextIndex(below: 9)
        let w = max(2, fw - 2 * pw + 1) + rng.nextIndex(below: 9)
        let n = 1 + rng.nextIndex(below: 13)
        let pooled = seed % 3 != 0
        let conv = try Conv2d(
            inputShape: Shape(c, h, w), outChannels: m, kernel: (fh, fw), stride: (sh, sw), padding: (ph, pw))
        let g = conv.geometry
        guard !pooled || (g.outHeight >= 2 && g.outWidth >= 2) else { return }
        let (oh, ow) = pooled ? (g.outHeight / 2, g.outWidth / 2) : (g.outHeight, g.outWidth)
        let x = randomFloats(n * g.inSize, &rng)
        let params = randomFloats(conv.parameterCount, &rng)
        let dy = randomFloats(n * m * oh * ow, &rng)

        // Reference: conv, ReLU, pool forward; pool, ReLU, conv backward, all in Double.
        let xd = x.map(Double.init)
        let wd = params[0..<conv.weightCount].map(Double.init)
        let bd = params[conv.weightCount...].map(Double.init)
        let a = Reference.conv2dForward(
            x: xd, w: wd, b: bd, n: n, c: c, h: h, wd: w, m: m, fh: fh, fw: fw, sh: sh, sw: sw, ph: ph, pw: pw
        ).y
        let relu = a.map { max($0, 0) }
        let pool =
            pooled
            ? Reference.pool(
                x: relu, dy: dy.map(Double.init), planes: n * m, h: g.outHeight, w: g.outWidth,
                wh: 2, ww: 2, sh: 2, sw: 2, max: true) : (relu, dy.map(Double.init))
        let da = zip(pool.1, a).map { $1 > 0 ? $0 : 0 }
        let back = Reference.conv2dBackward(
            x: xd, w: wd, dy: da, n: n, c: c, h: h, wd: w, m: m, fh: fh, fw: fw, sh: sh, sw: sw, ph: ph, pw: pw)
        let what = "block c\(c) m\(m) \(h)x\(w) k\(fh)x\(fw) s\(sh)x\(sw) p\(ph)x\(pw) n\(n) pooled \(pooled)"

        Self.forEachISA { isa in
            var y = [Float](repeating: .nan, count: dy.count)
            var dx = [Float](repeating: .nan, count: x.count)
            var gradient = [Float](repeating: 0, count: conv.parameterCount)
            var scratch = [Float](repeating: .nan, count: conv.scratchCount)
            var indices = [UInt8](repeating: 9, count: dy.count)
            indices.withUnsafeMutableBufferPointer { ip in
                conv.forward(
                    x: x, y: &y, batch: n, parameters: params, scratch: &scratch,
                    epilogue: pooled ? .biasReLUPool(indices: ip.baseAddress!) : .biasReLU)
            }
            y.withUnsafeBufferPointer { yp in
                indices.withUnsafeBufferPointer { ip in
                    conv.backward(
                        x: x, dy: dy, dx: &dx, batch: n, parameters: params, gradient: &gradient, scratch: &scratch,
                        prologue: pooled ? .pool(indices: ip.baseAddress!) : .reluMask(y: yp.baseAddress!))
                }
            }
            let tag = "\(what) \(isa.name)"
            expectClose(y, pool.0, atol: 1e-4, rtol: 1e-4, "\(tag) y")
            expectClose(dx, back.dx, atol: 1e-4, rtol: 1e-4, "\(tag) dx")
            expectClose(Array(gradient[0..<conv.weightCount]), back.dw, atol: 1e-3, rtol: 1e-4, "\(tag) dw")
            expectClose(Array(gradient[conv.weightCount...]), back.db, atol: 1e-3, rtol: 1e-4, "\(tag) db")
        }
    }

    /// Networks whose plans fuse: LeNet-5, the conv1d model, and odd shapes (pooling that
    /// leaves a row and a column uncovered, strides, a conv1d with stride 3).
    static let specs: [NetworkSpec] = [
        ModelZoo.lenet5, ModelZoo.conv1d,
        NetworkSpec(
            name: "odd", inputShape: Shape(2, 9, 11),
            layers: [
                .conv2d(3, kernel: 3, padding: 1), .relu, .maxPool(2),
                .conv2d(
                    outChannels: 4, kernelHeight: 2, kernelWidth: 1, strideHeight: 1, strideWidth: 2, paddingHeight: 0,
                    paddingWidth: 1),
                .relu, .flatten, .dense(outputs: 5), .relu, .dense(outputs: 3),
            ]),
        NetworkSpec(
            name: "odd1d", inputShape: Shape(3, 41),
            layers: [
                .conv1d(outChannels: 5, kernel: 4, stride: 3, padding: 2), .relu,
                .conv1d(outChannels: 2, kernel: 3, stride: 1, padding: 0),
                .tanh, .flatten, .dense(outputs: 4),
            ]),
    ]

    /// The gradient and logits of one batch, computed layer by layer with each layer's own
    /// (unfused) forward and backward.
    static func unfused(_ architecture: Architecture, parameters: [Float], input: [Float], labels: [UInt8], batch: Int)
        -> (logits: [Float], gradient: [Float])
    {
        let layers = architecture.layers
        let offsets = architecture.parameterOffsets
        var activations = [input]
        for (i, layer) in layers.enumerated() {
            let p = Array(parameters[offsets[i]..<offsets[i + 1]])
            activations.append(forwardOnly(layer, x: activations[i], parameters: p, batch: batch))
        }
        let classes = architecture.outputShape.count
        var dy = [Float](repeating: 0, count: batch * classes)
        activations.last!.withUnsafeBufferPointer { lp in
            labels.withUnsafeBufferPointer { lb in
                dy.withUnsafeMutableBufferPointer { dp in
                    _ = SoftmaxCrossEntropy.evaluate(
                        logits: lp.baseAddress!, labels: lb.baseAddress!, batch: batch, classes: classes,
                        dLogits: dp.baseAddress!, gradientScale: 1)
                }
            }
        }
        var gradient = [Float](repeating: 0, count: architecture.parameterCount)
        for (i, layer) in layers.enumerated().reversed() {
            let p = Array(parameters[offsets[i]..<offsets[i + 1]])
            let run = runLayer(layer, x: activations[i], parameters: p, dy: dy, batch: batch)
            gradient.replaceSubrange(offsets[i]..<offsets[i + 1], with: run.gradient)
            dy = run.dx
        }
        return (activations.last!, gradient)
    }

    static func fused(_ network: Network, input: [Float], labels: [UInt8], batch: Int) -> (
        logits: [Float], gradient: [Float]
    ) {
        (network.input.pointer).update(from: input, count: input.count)
        network.gradient.zero()
        labels.withUnsafeBufferPointer { _ = network.accumulateGradient(labels: $0.baseAddress!, batch: batch) }
        return (
            Array(UnsafeBufferPointer(start: network.logits, count: batch * network.classes)), network.gradient.array
        )
    }

    @Test(arguments: 0..<4)
    func fusedNetworkGivesTheUnfusedBits(spec: Int) throws {
        let architecture = try Architecture(Self.specs[spec])
        var rng = SeededRandom(seed: UInt64(spec) &+ 800)
        for batch in [1, 3, 7] {
            let network = Network(architecture, maxBatch: batch, parameters: architecture.initialParameters(seed: 5))
            let input = randomFloats(batch * architecture.inputShape.count, &rng)
            let labels = (0..<batch).map { _ in UInt8(rng.nextIndex(below: architecture.outputShape.count)) }
            let expected = Self.unfused(
                architecture, parameters: network.parameters.array, input: input, labels: labels, batch: batch)
            Self.forEachISA { isa in
                let got = Self.fused(network, input: input, labels: labels, batch: batch)
                #expect(got.logits == expected.logits, "\(architecture.spec.name) batch \(batch) \(isa.name): logits")
                #expect(
                    got.gradient == expected.gradient, "\(architecture.spec.name) batch \(batch) \(isa.name): gradient")
            }
        }
    }
}
