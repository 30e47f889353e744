@testable import ConvoyEngine
import Testing

/// What `convoy summary` computes (docs/MODELS.md): multiply-adds per layer, the worked
/// output-size and parameter examples written in the layer notation, and that notation.
@Suite struct SummaryTests {
    /// LeNet-5, multiply-adds of one sample's forward pass (docs/SPEC.md §2.4):
    /// conv1 6·28·28·(1·5·5), conv2 16·10·10·(6·5·5), then the Dense layers' in·out.
    @Test func lenet5MultiplyAdds() throws {
        let architecture = try Architecture(ModelZoo.lenet5)
        #expect(
            architecture.summaryRows.map(\.multiplyAdds) == [
                117_600, 0, 0, 240_000, 0, 0, 0, 48_000, 0, 10_080, 0, 840,
            ])
        #expect(architecture.multiplyAdds == 416_520)
    }

    /// docs/SPEC.md §10 vector 7 as `convoy summary --input … --layers …` computes it.
    @Test(arguments: [
        ("3x144x144", "conv2d(6, 3)", Shape(6, 142, 142), 168, 3_266_568),
        ("24x60x60", "conv2d(48, 3)", Shape(48, 58, 58), 10_416, 34_877_952),
        ("10x20x20", "conv2d(20, 3, stride=2)", Shape(20, 9, 9), 1_820, 145_800),
    ])
    func workedExamples(input: String, layers: String, output: Shape, parameters: Int, multiplyAdds: Int) throws {
        let spec = try NetworkSpec(name: "example", inputShape: try Shape(notation: input), notation: layers)
        let architecture = try Architecture(spec)
        #expect(architecture.outputShape == output)
        #expect(architecture.parameterCount == parameters)
        #expect(architecture.multiplyAdds == multiplyAdds)
    }

    /// Every layer of the zoo, and every padding, prints in a notation that parses back to it.
    @Test func notationRoundTrips() throws {
        var layers = ModelZoo.all.flatMap { (try? ModelZoo.spec(named: $0).layers) ?? [] }
        layers += [
            .conv2d(
                outChannels: 2, kernelHeight: 3, kernelWidth: 2, strideHeight: 2, strideWidth: 1,
                paddingHeight: .same, paddingWidth: 1, mode: .edge),
            .conv1d(outChannels: 4, kernel: 3, stride: 2, padding: .same, mode: .edge),
            .simpleConv1d(kernel: 3), .avgPool(3, stride: 2), .sigmoid, .tanh,
        ]
        for layer in layers { #expect(try LayerSpec(notation: layer.notation) == layer, "\(layer.notation)") }
        let spec = try NetworkSpec(
            name: "n", inputShape: Shape(1, 28, 28),
            notation: "conv2d(6, 5, padding=2); relu, maxpool(2)  flatten dense(10)")
        #expect(spec.layers == [.conv2d(6, kernel: 5, padding: 2), .relu, .maxPool(2), .flatten, .dense(outputs: 10)])
    }

    @Test(arguments: [
        ("conv2d(6)", "kernel is missing"),
        ("conv2d(6, 3, paddin=1)", "unknown argument paddin"),
        ("conv2d(6, 3, mode=reflect)", "mode reflect is not zeros or edge"),
        ("conv2d(0, 3)", "out 0 is not a positive integer"),
        ("conv1d(4, 3x2)", "conv1d takes one kernel"),
        ("pool(2)", "unknown layer \"pool\""),
        ("dense(10", "unbalanced '('"),
        ("dense(10, 3)", "unexpected argument 3"),
    ])
    func notationErrorsNameTheProblem(notation: String, message: String) {
        do {
            _ = try NetworkSpec(name: "n", inputShape: Shape(3, 8, 8), notation: notation)
            Issue.record("accepted \(notation)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
}
