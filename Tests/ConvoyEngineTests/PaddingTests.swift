@testable import ConvoyEngine
import Testing

/// Padding sizes (`same`, `valid`, explicit) and modes (zeros, edge) for Conv1d and Conv2d
/// (docs/SPEC.md §2.2): worked vectors, the plain-loop references on random shapes, and the
/// spec encoding. Tolerances as in `LayerReferenceTests`.
@Suite struct PaddingTests {
    static func amounts(_ padding: PaddingSize, input: Int, kernel: Int, stride: Int) -> (before: Int, after: Int) {
        switch padding {
        case let .explicit(pixels): (pixels, pixels)
        case .same: Reference.samePadding(input: input, kernel: kernel, stride: stride)
        }
    }

    /// docs/SPEC.md §10 vector 13: x = [1,2,3,4], w = [3,5,7], b = 1.
    @Test func vector13Conv1dEdgeAndSame() throws {
        let edge = try Conv1d(inputShape: Shape(1, 4), outChannels: 1, kernel: 3, padding: 1, mode: .edge)
        let run = runLayer(edge, x: [1, 2, 3, 4], parameters: [3, 5, 7, 1], dy: [1, 1, 1, 1], batch: 1)
        #expect(run.y == [23, 35, 50, 58])  // x_pad = [1,1,2,3,4,4]
        #expect(run.dx == [11, 15, 15, 19])  // the padding's gradient lands on x₀ and x₃
        #expect(run.gradient == [7, 10, 13, 4])
        let same = try Conv1d(inputShape: Shape(1, 4), outChannels: 1, kernel: 3, padding: .same, mode: .zeros)
        #expect(forwardOnly(same, x: [1, 2, 3, 4], parameters: [3, 5, 7, 1], batch: 1) == [20, 35, 50, 30])
        // An even kernel pads its odd pixel after: x_pad = [1,2,3,4,0] or [1,2,3,4,4].
        for (mode, last): (PaddingMode, Float) in [(.zeros, 12), (.edge, 32)] {
            let even = try Conv1d(inputShape: Shape(1, 4), outChannels: 1, kernel: 2, padding: .same, mode: mode)
            #expect(forwardOnly(even, x: [1, 2, 3, 4], parameters: [3, 5, 0], batch: 1) == [13, 21, 29, last])
        }
        // Stride 2: output ceil(4/2) = 2, total padding (2−1)·2 + 3 − 4 = 1, after the input.
        let strided = try Conv1d(
            inputShape: Shape(1, 4), outChannels: 1, kernel: 3, stride: 2,
            padding: .same, mode: .zeros)
        #expect(forwardOnly(strided, x: [1, 2, 3, 4], parameters: [3, 5, 7, 1], batch: 1) == [35, 30])
        #expect(
            try Conv1d(inputShape: Shape(1, 5), outChannels: 1, kernel: 3, stride: 2, padding: .same, mode: .zeros)
                .core.geometry.paddingWidth == 1)
        #expect(
            try Conv1d(inputShape: Shape(1, 4), outChannels: 1, kernel: 3, padding: .valid, mode: .edge)
                .outputShape == Shape(1, 2))
    }

    /// docs/SPEC.md §10 vector 14: x = 1…16 (4×4), one all-ones 3×3 filter, `same`.
    @Test func vector14Conv2dSameZerosAndEdge() throws {
        let x = (1...16).map(Float.init)
        let cases: [(PaddingMode, [Float], [Float])] = [
            (
                .zeros, [14, 24, 30, 22, 33, 54, 63, 45, 57, 90, 99, 69, 46, 72, 78, 54],
                [696, 962, 732, 1112, 1496, 1112, 732, 962, 696]
            ),
            (
                .edge, [24, 30, 39, 45, 48, 54, 63, 69, 84, 90, 99, 105, 108, 114, 123, 129],
                [884, 992, 1088, 1388, 1496, 1592, 1700, 1808, 1904]
            ),
        ]
        for (mode, y, dw) in cases {
            let layer = try Conv2d(
                inputShape: Shape(1, 4, 4), outChannels: 1, kernel: (3, 3),
                padding: (.same, .same), mode: mode)
            let run = runLayer(layer, x: x, parameters: [Float](repeating: 1, count: 9) + [0], dy: x, batch: 1)
            #expect(run.y == y, "\(mode)")
            #expect(run.dx == y, "\(mode)")  // all-ones weights: dx is the same sum, transposed
            #expect(Array(run.gradient[0..<9]) == dw, "\(mode)")
            #expect(run.gradient[9] == 136)
        }
    }

    @Test(arguments: 0..<40)
    func conv2dMatchesReference(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 500)
        let c = 1 + rng.nextIndex(below: 3)
        let m = 1 + rng.nextIndex(below: 4)
        let fh = 1 + rng.nextIndex(below: 5)
        let fw = 1 + rng.nextIndex(below: 5)
        let sh = 1 + rng.nextIndex(below: 3)
        let sw = 1 + rng.nextIndex(below: 3)
        let h = fh + rng.nextIndex(below: 7)
        let w = fw + rng.nextIndex(below: 7)
        let n = 1 + rng.nextIndex(below: 18)
        let mode: PaddingMode = seed % 2 == 0 ? .edge : .zeros
        let sizes = (0..<2).map { _ in
            rng.nextIndex(below: 2) == 0 ? PaddingSize.same : .explicit(rng.nextIndex(below: 4))
        }
        let layer = try Conv2d(
            inputShape: Shape(c, h, w), outChannels: m, kernel: (fh, fw), stride: (sh, sw),
            padding: (sizes[0], sizes[1]), mode: mode)
        let vertical = Self.amounts(sizes[0], input: h, kernel: fh, stride: sh)
        let horizontal = Self.amounts(sizes[1], input: w, kernel: fw, stride: sw)
        if sizes[0] == .same && sh == 1 { #expect(layer.outputShape.dims[1] == h) }
        let x = randomFloats(n * c * h * w, &rng)
        let params = randomFloats(layer.parameterCount, &rng)
        let dy = randomFloats(n * layer.outputShape.count, &rng)
        let run = runLayer(layer, x: x, parameters: params, dy: dy, batch: n)
        let wCount = layer.weightCount
        let xd = x.map(Double.init)
        let wd = params[0..<wCount].map(Double.init)
        let ref = Reference.conv2dForward(
            x: xd, w: wd, b: params[wCount...].map(Double.init), n: n, c: c, h: h, wd: w,
            m: m, fh: fh, fw: fw, sh: sh, sw: sw,
            ph: vertical.before, pw: horizontal.before,
            phAfter: vertical.after, pwAfter: horizontal.after, edge: mode == .edge)
        #expect(layer.outputShape == Shape(m, ref.ho, ref.wo))
        let back = Reference.conv2dBackward(
            x: xd, w: wd, dy: dy.map(Double.init), n: n, c: c, h: h, wd: w, m: m,
            fh: fh, fw: fw, sh: sh, sw: sw, ph: vertical.before, pw: horizontal.before,
            phAfter: vertical.after, pwAfter: horizontal.after, edge: mode == .edge)
        let what = "conv2d \(h)x\(w) k\(fh)x\(fw) s\(sh)x\(sw) pad \(sizes[0])/\(sizes[1]) \(mode) n\(n)"
        expectClose(run.y, ref.y, atol: 1e-4, rtol: 1e-4, "\(what) y")
        expectClose(run.dx, back.dx, atol: 1e-4, rtol: 1e-4, "\(what) dx")
        expectClose(Array(run.gradient[0..<wCount]), back.dw, atol: 1e-3, rtol: 1e-4, "\(what) dw")
        expectClose(Array(run.gradient[wCount...]), back.db, atol: 1e-3, rtol: 1e-4, "\(what) db")
    }

    @Test(arguments: 0..<20)
    func conv1dMatchesReference(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 600)
        let c = 1 + rng.nextIndex(below: 3)
        let m = 1 + rng.nextIndex(below: 3)
        let f = 1 + rng.nextIndex(below: 6)
        let stride = 1 + rng.nextIndex(below: 3)
        let l = f + rng.nextIndex(below: 15)
        let n = 1 + rng.nextIndex(below: 5)
        let mode: PaddingMode = seed % 2 == 0 ? .edge : .zeros
        let size: PaddingSize = seed % 4 < 2 ? .same : .explicit(rng.nextIndex(below: 4))
        let layer = try Conv1d(
            inputShape: Shape(c, l), outChannels: m, kernel: f, stride: stride,
            padding: size, mode: mode)
        let pad = Self.amounts(size, input: l, kernel: f, stride: stride)
        let x = randomFloats(n * c * l, &rng)
        let params = randomFloats(layer.parameterCount, &rng)
        let y = forwardOnly(layer, x: x, parameters: params, batch: n)
        let ref = Reference.conv1dForward(
            x: x.map(Double.init), w: params[0..<layer.weightCount].map(Double.init),
            b: params[layer.weightCount...].map(Double.init),
            n: n, c: c, l: l, m: m, f: f,
            stride: stride, pad: pad.before, padAfter: pad.after, edge: mode == .edge)
        expectClose(y, ref, atol: 1e-4, rtol: 1e-4, "conv1d l\(l) f\(f) s\(stride) pad \(size) \(mode)")
    }

    /// The spec encoding carries padding sizes and modes (docs/FORMATS.md §2.3).
    @Test func specEncodingRoundTripsEveryPadding() throws {
        let spec = NetworkSpec(
            name: "pads", inputShape: Shape(1, 9, 9),
            layers: [
                .conv2d(
                    outChannels: 2, kernelHeight: 3, kernelWidth: 2, strideHeight: 2, strideWidth: 1,
                    paddingHeight: .same, paddingWidth: 1, mode: .edge),
                .conv2d(2, kernel: 3, padding: .valid), .flatten,
            ])
        var writer = ByteWriter()
        spec.write(to: &writer)
        var reader = ByteReader(writer.bytes, name: "spec")
        #expect(try NetworkSpec(reading: &reader, "spec") == spec)
        let architecture = try Architecture(spec)
        #expect(architecture.layers.map(\.spec) == spec.layers)
        #expect(architecture.layers[0].outputShape == Shape(2, 5, 10))
    }
}
