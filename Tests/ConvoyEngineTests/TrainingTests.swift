@testable import ConvoyEngine
import Testing

@Suite struct OptimizerTests {
    func apply(_ optimizer: inout any Optimizer, _ w: inout [Float], _ g: [Float], lr: Float) {
        w.withUnsafeMutableBufferPointer { wp in
            g.withUnsafeBufferPointer { optimizer.update(parameters: wp, gradient: $0, learningRate: lr) }
        }
    }

    @Test func sgd() {
        var o: any Optimizer = SGD()
        var w: [Float] = [1, 2]
        apply(&o, &w, [0.5, -1], lr: 0.1)
        #expect(w == [0.95, 2.1])
    }

    @Test func momentumAccumulatesVelocity() {
        var o: any Optimizer = Momentum(parameterCount: 1, mu: 0.5)
        var w: [Float] = [0]
        apply(&o, &w, [1], lr: 1)  // v = 1
        apply(&o, &w, [1], lr: 1)  // v = 1.5
        #expect(w == [-2.5])
        #expect(o.state == [1.5])
    }

    @Test func adagradFollowsSpec() {
        var o: any Optimizer = AdaGrad(parameterCount: 1, epsilon: 0)
        var w: [Float] = [0]
        apply(&o, &w, [2], lr: 1)  // h = 4, w −= 2/2
        apply(&o, &w, [2], lr: 1)  // h = 8, w −= 2/√8
        #expect(abs(w[0] - (-1 - 2 / Float(8).squareRoot())) < 1e-6)
    }

    @Test func adamFirstStepIsLearningRateSizedAndStateRoundTrips() {
        var o: any Optimizer = Adam(parameterCount: 2)
        var w: [Float] = [0, 0]
        apply(&o, &w, [3, -0.001], lr: 0.01)
        // With bias correction, the first step is ≈ lr·sign(g) whatever |g| is.
        #expect(abs(w[0] + 0.01) < 1e-5 && abs(w[1] - 0.01) < 1e-4)
        var restored: any Optimizer = Adam(parameterCount: 2)
        restored.state = o.state
        var a = w
        var b = w
        apply(&o, &a, [1, 1], lr: 0.01)
        apply(&restored, &b, [1, 1], lr: 0.01)
        #expect(a == b)
    }

    @Test func cosineScheduleDecaysToZero() {
        #expect(LearningRateSchedule.cosine.rate(base: 0.1, step: 0, totalSteps: 100) == 0.1)
        #expect(abs(LearningRateSchedule.cosine.rate(base: 0.1, step: 50, totalSteps: 100) - 0.05) < 1e-7)
        #expect(LearningRateSchedule.cosine.rate(base: 0.1, step: 100, totalSteps: 100) < 1e-9)
        #expect(LearningRateSchedule.constant.rate(base: 0.1, step: 70, totalSteps: 100) == 0.1)
    }

    /// docs/SPEC.md §7.5: a linear warm-up to the base rate, then the schedule over the rest.
    @Test func warmUpRisesLinearlyThenTheScheduleTakesOver() {
        let cosine = LearningRateSchedule.cosine
        #expect(cosine.rate(base: 0.2, step: 0, totalSteps: 100, warmupSteps: 10) == Float(0.2 * 1.0 / 10))
        #expect(cosine.rate(base: 0.2, step: 4, totalSteps: 100, warmupSteps: 10) == Float(0.2 * 5.0 / 10))
        #expect(cosine.rate(base: 0.2, step: 10, totalSteps: 100, warmupSteps: 10) == 0.2)
        #expect(abs(cosine.rate(base: 0.2, step: 55, totalSteps: 100, warmupSteps: 10) - 0.1) < 1e-7)
        #expect(cosine.rate(base: 0.2, step: 100, totalSteps: 100, warmupSteps: 10) < 1e-9)
        #expect(LearningRateSchedule.constant.rate(base: 0.2, step: 3, totalSteps: 100, warmupSteps: 4) == 0.2)
    }

    /// A shift moves every plane by (dy, dx) and fills with 0; shifts are a pure function of
    /// (seed, epoch, sample), stay in range, and vary.
    @Test func shiftAugmentationMovesPixelsDeterministically() {
        let augmentation = ShiftAugmentation(maxShift: 2, seed: 1, epoch: 3, imageShape: Shape(1, 5, 5))
        let shifts = (0..<200).map { augmentation.shift(of: Int32($0)) }
        #expect(shifts.allSatisfy { abs($0.dy) <= 2 && abs($0.dx) <= 2 })
        #expect(Set(shifts.map { "\($0.dy),\($0.dx)" }).count == 25)
        #expect(shifts.map(\.dy) == (0..<200).map { augmentation.shift(of: Int32($0)).dy })
        let other = ShiftAugmentation(maxShift: 2, seed: 1, epoch: 4, imageShape: Shape(1, 5, 5))
        #expect((0..<200).contains { other.shift(of: Int32($0)) != shifts[$0] })
        guard let index = (0..<200).first(where: { shifts[$0] == (dy: 1, dx: -1) }) else {
            Issue.record("no (1, -1) shift among 200 samples")
            return
        }
        var image = (0..<25).map { UInt8($0 + 1) }
        image.withUnsafeMutableBufferPointer { augmentation.apply(to: $0.baseAddress!, index: Int32(index)) }
        // Row y takes row y−1 of the source; column x takes column x+1; the rest is 0.
        for y in 0..<5 {
            for x in 0..<5 {
                let expected: UInt8 = y >= 1 && x <= 3 ? UInt8((y - 1) * 5 + (x + 1) + 1) : 0
                #expect(image[y * 5 + x] == expected, "(\(y), \(x))")
            }
        }
    }

    /// The row-copy shift equals the plain per-pixel loop for every shift, several channels,
    /// a non-square image and shifts past its edges.
    @Test func shiftAugmentationMatchesThePlainLoop() {
        let (channels, height, width) = (2, 4, 5)
        let augmentation = ShiftAugmentation(
            maxShift: 6, seed: 9, epoch: 0, imageShape: Shape(channels, height, width))
        let source = (0..<(channels * height * width)).map { UInt8($0 + 1) }
        var seen = Set<String>()
        for index in Int32(0)..<400 {
            let (dy, dx) = augmentation.shift(of: index)
            seen.insert("\(dy),\(dx)")
            var image = source
            image.withUnsafeMutableBufferPointer { augmentation.apply(to: $0.baseAddress!, index: index) }
            var expected = [UInt8](repeating: 0, count: source.count)
            for c in 0..<channels {
                for y in 0..<height {
                    for x in 0..<width where (0..<height).contains(y - dy) && (0..<width).contains(x - dx) {
                        expected[(c * height + y) * width + x] = source[(c * height + y - dy) * width + x - dx]
                    }
                }
            }
            #expect(image == expected, "shift (\(dy), \(dx))")
        }
        #expect(seen.count > 100, "most of the 13 × 13 shifts were tried")
    }

    /// Weight decay adds λ·w to the mean gradient before the optimizer (SGD here).
    @Test func weightDecayPullsWeightsTowardZero() {
        var config = TrainingConfig()
        config.optimizer = .sgd
        config.schedule = .constant
        config.learningRate = 0.5
        config.weightDecay = 0.1
        let server = ParameterServer(parameters: [2, -4], config: config, totalSteps: 10)
        let sum = GradientSum(mode: .float, count: 2)
        sum.float[0] = 1
        sum.float[1] = 1
        sum.addSamples(2)
        server.apply(sum)
        // g = 1/2 + 0.1·w; w' = w − 0.5·g
        let expected: [Float] = [2 - 0.5 * (0.5 + 0.2), -4 - 0.5 * (0.5 - 0.4)]
        #expect(server.parameters.array == expected)
    }
}

@Suite struct DeterminismTests {
    @Test func fixedPointSumsAreOrderIndependent() throws {
        var rng = SeededRandom(seed: 9)
        let terms = (0..<6).map { _ in randomFloats(100, &rng, scale: 1000) }
        func total(_ order: [Int]) throws -> [Int64] {
            var sums = [Int64](repeating: 0, count: 100)
            for k in order {
                try terms[k].withUnsafeBufferPointer { t in
                    try sums.withUnsafeMutableBufferPointer {
                        try FixedPoint.accumulate(t.baseAddress!, into: $0.baseAddress!, count: 100)
                    }
                }
            }
            return sums
        }
        let forward = try total([0, 1, 2, 3, 4, 5])
        #expect(try total([5, 3, 1, 0, 2, 4]) == forward)
        // Float addition in those two orders does differ somewhere, which is why this exists.
        let floatA = (0..<100).map { i in [0, 1, 2, 3, 4, 5].reduce(Float(0)) { $0 + terms[$1][i] } }
        let floatB = (0..<100).map { i in [5, 3, 1, 0, 2, 4].reduce(Float(0)) { $0 + terms[$1][i] } }
        #expect(floatA != floatB)
    }

    @Test func fixedPointRejectsNaNInfinityAndHugeValues() {
        for bad: Float in [.nan, .infinity, -.infinity, 1e9] {
            var sums = [Int64](repeating: 0, count: 3)
            let values: [Float] = [1, bad, 2]
            #expect(throws: FixedPoint.OverflowError.self) {
                try values.withUnsafeBufferPointer { v in
                    try sums.withUnsafeMutableBufferPointer {
                        try FixedPoint.accumulate(v.baseAddress!, into: $0.baseAddress!, count: 3)
                    }
                }
            }
        }
    }

    @Test func slicesAreContiguousAlignedAndCoverTheBatch() {
        for count in [1, 7, 8, 63, 64] {
            for parts in 1...5 {
                let slices = BatchPlan.slices(count: count, parts: parts, unit: 8)
                #expect(slices.count == parts)
                #expect(slices.first!.lowerBound == 0 && slices.last!.upperBound == count)
                for (a, b) in zip(slices, slices.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                // Cuts fall on micro-batch boundaries, except at the end of a short batch.
                for s in slices {
                    #expect(
                        (s.lowerBound % 8 == 0 || s.lowerBound == count)
                            && (s.upperBound % 8 == 0 || s.upperBound == count))
                }
                // As even as whole micro-batches allow.
                let units = slices.map { ($0.count + 7) / 8 }
                #expect(units.max()! - units.min()! <= 1)
            }
        }
        #expect(BatchPlan.slices(count: 64, parts: 3, unit: 8).map(\.count) == [24, 24, 16])
    }

    @Test func permutationDependsOnSeedAndEpochOnly() {
        let a = epochPermutation(count: 1000, seed: 1, epoch: 0)
        #expect(a == epochPermutation(count: 1000, seed: 1, epoch: 0))
        #expect(a != epochPermutation(count: 1000, seed: 1, epoch: 1))
        #expect(a != epochPermutation(count: 1000, seed: 2, epoch: 0))
        #expect(Set(a).count == 1000 && a.min() == 0 && a.max() == 999)
    }

    /// A batch split across 1, 2 or 3 gradient computers (as workers would) gives the same
    /// fixed-point total as one computer doing it all: the core of "same answer at any N".
    @Test func splittingAStepAcrossComputersIsBitIdentical() throws {
        let architecture = try Architecture(ModelZoo.lenet5)
        let parameters = architecture.initialParameters(seed: 4)
        var rng = SeededRandom(seed: 5)
        let count = 40
        let pixels = (0..<(count * 784)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let labels = (0..<count).map { _ in UInt8(rng.nextIndex(below: 10)) }
        func total(parts: Int) throws -> [Int64] {
            let total = GradientSum(mode: .fixedPoint, count: architecture.parameterCount)
            for slice in BatchPlan.slices(count: count, parts: parts, unit: 8) where !slice.isEmpty {
                let computer = GradientComputer(network: Network(architecture, maxBatch: 16, parameters: parameters))
                let sum = GradientSum(mode: .fixedPoint, count: architecture.parameterCount)
                _ = try pixels.withUnsafeBufferPointer { p in
                    try labels.withUnsafeBufferPointer { l in
                        try computer.compute(
                            pixels: p.baseAddress! + slice.lowerBound * 784, labels: l.baseAddress! + slice.lowerBound,
                            count: slice.count, microBatch: 8, into: sum)
                    }
                }
                total.add(sum)
            }
            #expect(total.samples == count)
            return Array(UnsafeBufferPointer(start: total.fixed, count: total.count))
        }
        let one = try total(parts: 1)
        #expect(one.contains { $0 != 0 })
        #expect(try total(parts: 2) == one)
        #expect(try total(parts: 3) == one)
    }

    /// Compute slots (threads of one worker) add their exact sums into the same bits as one
    /// computer, announce every bucket once in layout order, and a slot that fails (here a
    /// diverged gradient) makes the whole step throw instead of hanging.
    @Test func computeSlotsSumToTheSameBitsAndFailCleanly() throws {
        let architecture = try Architecture(ModelZoo.lenet5)
        var parameters = architecture.initialParameters(seed: 4)
        var rng = SeededRandom(seed: 6)
        let count = 56
        let pixels = (0..<(count * 784)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let labels = (0..<count).map { _ in UInt8(rng.nextIndex(below: 10)) }
        func run(slots: Int) throws -> ([Int64], [Range<Int>], Int) {
            let computeSlots = ComputeSlots(architecture: architecture, slots: slots, maxBatch: 64, mode: .fixedPoint)
            parameters.withUnsafeBufferPointer { computeSlots.load(weights: $0) }
            var announced: [Range<Int>] = []
            let totals = try pixels.withUnsafeBufferPointer { p in
                try labels.withUnsafeBufferPointer { l in
                    try computeSlots.compute(
                        pixels: p.baseAddress!, labels: l.baseAddress!, count: count, microBatch: 8,
                        unit: 8,
                        bucketReady: { range, totals in
                            #expect(totals.count == count)
                            announced.append(range)
                        })
                }
            }
            #expect(totals.count == count && computeSlots.total.samples == count)
            return (
                Array(UnsafeBufferPointer(start: computeSlots.total.fixed, count: computeSlots.total.count)),
                announced, totals.correct
            )
        }
        let one = try run(slots: 1)
        #expect(one.1 == architecture.gradientBuckets.map(\.parameters))
        for slots in [2, 3, 8] {
            let many = try run(slots: slots)
            #expect(many.0 == one.0, "\(slots) slots")
            #expect(many.1 == one.1 && many.2 == one.2)
        }
        for i in parameters.indices { parameters[i] *= 1e6 }
        #expect(throws: FixedPoint.OverflowError.self) { _ = try run(slots: 3) }
    }
}
