@testable import ConvoyEngine
import Testing

/// docs/SPEC.md §10's worked vectors, asserted exactly (every value is a small integer or an exact
/// binary fraction, so Float32 arithmetic must reproduce it bit for bit).
@Suite struct SpecVectorTests {
    @Test func vector1SimpleConv1d() throws {
        let layer = try SimpleConv1d(inputShape: Shape(4), kernel: 3)
        #expect(layer.outputShape == Shape(2))
        #expect(try convolutionOutputSize(input: 4, kernel: 3) == 2)
        let run = runLayer(layer, x: [1, 2, 3, 4], parameters: [3, 5, 7, 1], dy: [10, 20], batch: 1)
        #expect(run.y == [35, 50])
        #expect(run.gradient == [50, 80, 110, 30])  // dw, then db
        #expect(run.dx == [30, 110, 170, 140])
    }

    @Test func vector2Conv1dChannels() throws {
        let layer = try Conv1d(inputShape: Shape(2, 4), outChannels: 3, kernel: 3)
        let parameters = [Float](repeating: 1, count: 18) + [1, 2, 3]
        let y = forwardOnly(layer, x: [1, 2, 3, 4, 2, 3, 4, 5], parameters: parameters, batch: 1)
        #expect(y == [16, 22, 17, 23, 18, 24])
    }

    @Test func vector3Conv1dPaddingStride() throws {
        let padded = try Conv1d(inputShape: Shape(1, 4), outChannels: 1, kernel: 3, stride: 1, padding: 1)
        #expect(forwardOnly(padded, x: [1, 2, 3, 4], parameters: [3, 5, 7, 1], batch: 1) == [20, 35, 50, 30])
        let strided = try Conv1d(inputShape: Shape(1, 4), outChannels: 1, kernel: 3, stride: 2, padding: 1)
        #expect(forwardOnly(strided, x: [1, 2, 3, 4], parameters: [3, 5, 7, 1], batch: 1) == [20, 50])
    }

    @Test func vector3Conv1dMiniBatch() throws {
        // The same signal twice in a batch gives the same output twice.
        let layer = try Conv1d(inputShape: Shape(1, 4), outChannels: 1, kernel: 3, stride: 2, padding: 1)
        #expect(
            forwardOnly(layer, x: [1, 2, 3, 4, 1, 2, 3, 4], parameters: [3, 5, 7, 1], batch: 2) == [20, 50, 20, 50])
    }

    @Test func vector4Conv2d() throws {
        let layer = try Conv2d(inputShape: Shape(1, 4, 4), outChannels: 2, kernel: (3, 3))
        let w0: [Float] = [0, 0, 0, 0, 1, 0, 0, -1, 0]
        let w1: [Float] = [0, 0, 0, 0, -1, 1, 0, 0, 0]
        let x = (1...16).map(Float.init)
        let run = runLayer(layer, x: x, parameters: w0 + w1 + [0, 0], dy: [-4, -4, 10, 11, 1, -7, 1, -11], batch: 1)
        #expect(run.y == [-4, -4, -4, -4, 1, 1, 1, 1])
        #expect(run.dx == [0, 0, 0, 0, 0, -5, 4, -7, 0, 13, 27, -11, 0, -10, -11, 0])
        #expect(Array(run.gradient[0..<9]) == [104, 117, 130, 156, 169, 182, 208, 221, 234])
        #expect(Array(run.gradient[9..<18]) == [-74, -90, -106, -138, -154, -170, -202, -218, -234])
        #expect(Array(run.gradient[18...]) == [13, -16])
    }

    @Test func vector5MaxPool() throws {
        let layer = try MaxPool2d(inputShape: Shape(1, 4, 4), window: (2, 2))
        let run = runLayer(layer, x: (1...16).map(Float.init), parameters: [], dy: [6, 8, 14, 16], batch: 1)
        #expect(run.y == [6, 8, 14, 16])
        #expect(run.dx == [0, 0, 0, 0, 0, 6, 0, 8, 0, 0, 0, 0, 0, 14, 0, 16])
    }

    @Test func maxPoolTiesGoToTheFirstElement() throws {
        let layer = try MaxPool2d(inputShape: Shape(1, 2, 2), window: (2, 2))
        #expect(runLayer(layer, x: [5, 5, 5, 5], parameters: [], dy: [1], batch: 1).dx == [1, 0, 0, 0])
        let generic = try MaxPool2d(inputShape: Shape(1, 2, 3), window: (2, 2), stride: (1, 1))
        #expect(
            runLayer(generic, x: [1, 5, 5, 1, 5, 5], parameters: [], dy: [1, 2], batch: 1).dx == [0, 3, 0, 0, 0, 0])
    }

    @Test func vector6AvgPool() throws {
        let layer = try AvgPool2d(inputShape: Shape(1, 4, 4), window: (2, 2))
        let run = runLayer(layer, x: (1...16).map(Float.init), parameters: [], dy: [6, 8, 14, 16], batch: 1)
        #expect(run.y == [3.5, 5.5, 11.5, 13.5])
        #expect(run.dx == [1.5, 1.5, 2, 2, 1.5, 1.5, 2, 2, 3.5, 3.5, 4, 4, 3.5, 3.5, 4, 4])
    }

    @Test(arguments: [
        (144, 3, 6, 1, 142, 168), (60, 24, 48, 1, 58, 10_416), (20, 10, 20, 2, 9, 1_820),
    ])
    func vector7OutputSizeAndParameters(
        input: Int, inChannels: Int, outChannels: Int, stride: Int, expectedSize: Int, expectedParameters: Int
    ) throws {
        #expect(try convolutionOutputSize(input: input, kernel: 3, stride: stride) == expectedSize)
        #expect(
            convolutionParameterCount(inChannels: inChannels, outChannels: outChannels, kernelHeight: 3, kernelWidth: 3)
                == expectedParameters)
        let layer = try Conv2d(
            inputShape: Shape(inChannels, input, input), outChannels: outChannels, kernel: (3, 3),
            stride: (stride, stride))
        #expect(layer.outputShape == Shape(outChannels, expectedSize, expectedSize))
        #expect(layer.parameterCount == expectedParameters)
    }

    @Test(arguments: [("lenet5", 61_706), ("vgg16", 138_357_544), ("alexnet", 61_100_840)])
    func vector8ModelTotals(model: String, total: Int) throws {
        #expect(try Architecture(try ModelZoo.spec(named: model)).parameterCount == total)
    }

    @Test func lenet5ShapesFollowTheSpec() throws {
        let architecture = try Architecture(ModelZoo.lenet5)
        #expect(
            architecture.layers.map(\.outputShape) == [
                Shape(6, 28, 28), Shape(6, 28, 28), Shape(6, 14, 14), Shape(16, 10, 10), Shape(16, 10, 10),
                Shape(16, 5, 5),
                Shape(400), Shape(120), Shape(120), Shape(84), Shape(84), Shape(10),
            ])
    }

    @Test func impossibleConfigurationsAreErrors() throws {
        #expect(throws: ShapeError.self) { try convolutionOutputSize(input: 4, kernel: 5) }
        #expect(throws: ShapeError.self) { try convolutionOutputSize(input: 4, kernel: 0) }
        #expect(throws: ShapeError.self) { try convolutionOutputSize(input: 4, kernel: 3, stride: 0) }
        #expect(throws: ShapeError.self) { try convolutionOutputSize(input: 4, kernel: 3, padding: -1) }
        // A channel mismatch: Dense on an unflattened input, Conv2d on a flat one.
        #expect(throws: ShapeError.self) {
            try Architecture(NetworkSpec(name: "bad", inputShape: Shape(1, 28, 28), layers: [.dense(outputs: 10)]))
        }
        #expect(throws: ShapeError.self) {
            try Architecture(NetworkSpec(name: "bad", inputShape: Shape(784), layers: [.conv2d(6, kernel: 5)]))
        }
        do {
            _ = try Architecture(
                NetworkSpec(
                    name: "tiny", inputShape: Shape(1, 4, 4), layers: [.conv2d(2, kernel: 3), .conv2d(2, kernel: 3)]))
            Issue.record("a 2×2 input to a 3×3 kernel must not build")
        } catch let error as ShapeError {
            #expect(error.description.contains("tiny layer 2"), "\(error)")
        }
    }
}
