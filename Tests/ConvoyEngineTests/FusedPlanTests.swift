@testable import ConvoyEngine
import ConvoyInterop
import Testing

/// The fused plan under the calls deterministic mode and the workers make: micro-batches
/// forwarded at offsets and back-propagated later, the head before the trunk, backward ranges
/// that cut a fused block; and the kernel choice (GEMM back ends, self-check, names).
@Suite struct FusedPlanTests {
    /// Each micro-batch's gradient, forwarded at its offset among others and back-propagated
    /// head first then trunk, is the same bits as that micro-batch run alone at offset 0.
    @Test(arguments: [0, 1, 3])
    func microBatchesAtOffsetsGiveTheirOwnBits(spec: Int) throws {
        let architecture = try Architecture(FusedKernelTests.specs[spec])
        var rng = SeededRandom(seed: UInt64(spec) &+ 900)
        let micro = 3
        let count = 3 * micro + 2  // a short last micro-batch
        let size = architecture.inputShape.count
        let classes = architecture.outputShape.count
        let input = randomFloats(count * size, &rng)
        let labels = (0..<count).map { _ in UInt8(rng.nextIndex(below: classes)) }
        let parameters = architecture.initialParameters(seed: 9)
        let network = Network(architecture, maxBatch: count, parameters: parameters)
        network.input.pointer.update(from: input, count: input.count)
        let ranges = stride(from: 0, to: count, by: micro).map { $0..<min($0 + micro, count) }
        for range in ranges {
            network.forward(batch: range.count, at: range.lowerBound)
            _ = labels.withUnsafeBufferPointer {
                network.lossGradient(
                    labels: $0.baseAddress! + range.lowerBound, batch: range.count, at: range.lowerBound)
            }
        }
        let split = architecture.headStart ?? 0
        let layers = architecture.layers.count
        var heads: [[Float]] = []
        var trunks: [[Float]] = []
        for range in ranges {
            network.gradient.zero()
            network.backward(batch: range.count, at: range.lowerBound, layers: split..<layers)
            heads.append(network.gradient.array)
        }
        for range in ranges {
            network.gradient.zero()
            network.backward(batch: range.count, at: range.lowerBound, layers: 0..<split)
            trunks.append(network.gradient.array)
        }
        let alone = Network(architecture, maxBatch: micro, parameters: parameters)
        for (k, range) in ranges.enumerated() {
            let own = FusedKernelTests.fused(
                alone, input: Array(input[(range.lowerBound * size)..<(range.upperBound * size)]),
                labels: Array(labels[range]), batch: range.count)
            let combined = zip(heads[k], trunks[k]).map { $0 + $1 }  // disjoint parameters: one of each pair is 0
            #expect(combined == own.gradient, "\(architecture.spec.name) micro-batch \(k) at \(range.lowerBound)")
        }
    }

    /// Backward ranges that end inside a fused block (the block's inner outputs are then
    /// computed on demand) give the same gradient as one full backward.
    @Test func rangesThatCutABlock() throws {
        let architecture = try Architecture(ModelZoo.lenet5)
        var rng = SeededRandom(seed: 950)
        let batch = 5
        let layers = architecture.layers.count
        let input = randomFloats(batch * architecture.inputShape.count, &rng)
        let labels = (0..<batch).map { _ in UInt8(rng.nextIndex(below: 10)) }
        let network = Network(architecture, maxBatch: batch, parameters: architecture.initialParameters(seed: 4))
        let whole = FusedKernelTests.fused(network, input: input, labels: labels, batch: batch).gradient
        for cut in [1, 2, 4, 5] {  // inside the first and the second Conv+ReLU+MaxPool block
            network.gradient.zero()
            network.forward(batch: batch)
            _ = labels.withUnsafeBufferPointer { network.lossGradient(labels: $0.baseAddress!, batch: batch) }
            network.backward(batch: batch, layers: cut..<layers)
            network.backward(batch: batch, layers: 0..<cut)
            #expect(network.gradient.array == whole, "cut at layer \(cut)")
        }
    }

    /// The general Swift im2col/col2im (which other padding modes use) and the C kernels give
    /// the same bits: the same columns, and col2im adds in the same order.
    @Test(arguments: 0..<4)
    func generalColumnsGiveTheKernelBits(spec: Int) throws {
        let architecture = try Architecture(FusedKernelTests.specs[spec])
        var rng = SeededRandom(seed: 960 &+ UInt64(spec))
        let batch = 4
        let input = randomFloats(batch * architecture.inputShape.count, &rng)
        let labels = (0..<batch).map { _ in UInt8(rng.nextIndex(below: architecture.outputShape.count)) }
        let network = Network(architecture, maxBatch: batch, parameters: architecture.initialParameters(seed: 6))
        let kernels = FusedKernelTests.fused(network, input: input, labels: labels, batch: batch)
        Conv2d.generalColumns = true
        defer { Conv2d.generalColumns = false }
        let general = FusedKernelTests.fused(network, input: input, labels: labels, batch: batch)
        #expect(general.logits == kernels.logits, "\(architecture.spec.name)")
        #expect(general.gradient.map(\.bitPattern) == kernels.gradient.map(\.bitPattern), "\(architecture.spec.name)")
    }

    /// Every GEMM back end this machine has agrees with the Double reference on the
    /// self-check and on LeNet-5's conv2 weight-gradient shape.
    @Test func gemmBackendsAgreeWithTheReference() {
        for backend in BLAS.Backend.allCases where BLAS.isAvailable(backend) {
            #expect(SelfCheck.gemmAgrees(on: backend), "\(backend.rawValue)")
            let (m, n, k) = (16, 150, 400)
            let a = SelfCheck.values(m * k, seed: 11)
            let b = SelfCheck.values(n * k, seed: 12)
            var c = [Float](repeating: 0, count: m * n)
            var r = c
            BLAS.sgemm(
                on: backend, transA: false, transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, beta: 0, c: &c,
                ldc: n)
            BLAS.sgemm(
                on: .reference, transA: false, transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, beta: 0,
                c: &r, ldc: n)
            let worst = zip(c, r).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-4, "\(backend.rawValue): worst difference \(worst)")
        }
        #expect(SelfCheck.convolutionAgrees())
    }

    @Test func kernelNamesAreCheckedAndNamed() throws {
        #expect(throws: KernelChoiceError.self) { try KernelChoice.configure("sse9") }
        if !Kernels.ISA.avx512.isSupported {
            #expect(throws: KernelChoiceError.self) { try KernelChoice.configure("avx512") }
        }
        let current = KernelChoice.current
        #expect(current.name.hasSuffix("+\(current.isa)"))
        #expect(current.note.contains("self-check passed"))
    }

    /// OpenBLAS 0.3.21 on an Emerald Rapids reports Prescott: oneDNN is tried first; a
    /// user-named core or GEMM is honoured; a kernel that fits the CPU stays; the plain
    /// reference is always the last resort.
    @Test func gemmCandidatesFollowTheCPU() {
        let prescott = KernelChoice.gemmCandidates(
            named: nil, userCore: nil, core: "Prescott", vectorCPU: true, oneDNN: true)
        #expect(prescott.gemms == [.onednn, .openblas, .reference])
        #expect(prescott.notes.joined().contains("Prescott"))
        let noDNNL = KernelChoice.gemmCandidates(
            named: nil, userCore: nil, core: "Prescott", vectorCPU: true, oneDNN: false)
        #expect(noDNNL.gemms == [.openblas, .reference])
        #expect(noDNNL.notes.joined().contains("not installed"))
        for core in ["Zen", "Haswell", "SkylakeX", "Cooperlake"] {
            #expect(
                KernelChoice.gemmCandidates(named: nil, userCore: nil, core: core, vectorCPU: true, oneDNN: true).gemms
                    == [.openblas, .reference])
        }
        #expect(
            KernelChoice.gemmCandidates(
                named: nil, userCore: "Cooperlake", core: "Prescott", vectorCPU: true, oneDNN: true
            ).gemms
                == [.openblas, .reference])
        #expect(
            KernelChoice.gemmCandidates(named: .onednn, userCore: nil, core: "Zen", vectorCPU: true, oneDNN: true).gemms
                == [.onednn, .reference])
        #expect(
            KernelChoice.gemmCandidates(named: nil, userCore: nil, core: "Prescott", vectorCPU: false, oneDNN: true)
                .gemms
                == [.openblas, .reference])
    }
}
