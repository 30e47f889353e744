import ArgumentParser
import ConvoyEngine

/// `convoy summary`: a model's layer table, from the zoo or written out with `--layers`
/// (the notation of LayerNotation.swift), with parameters and forward multiply-adds.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Layer table, parameter count and multiply-adds of a model.",
        discussion: """
            Either a model of the zoo, or --input and --layers, e.g.
              convoy summary --input 3x144x144 --layers "conv2d(6, 3)"
              convoy summary --input 1x28x28 --layers "conv2d(6, 5, padding=same, mode=edge) relu maxpool(2)"
            """)

    @Argument(help: "Model: \(ModelZoo.all.joined(separator: ", ")).") var model: String?
    @Option(help: "Input shape of --layers: C, CxL or CxHxW.") var input: String?
    @Option(help: "Layers, e.g. \"conv2d(16, 3, stride=2, padding=same) relu flatten dense(10)\".") var layers: String?
    @Flag(help: "Print one JSON object.") var json = false

    func spec() throws -> NetworkSpec {
        switch (model, layers, input) {
        case let (model?, nil, nil): return try ModelZoo.spec(named: model)
        case let (nil, layers?, input?):
            let shape: Shape
            do { shape = try Shape(notation: input) } catch { throw FlagError("--input \(input): \(error)") }
            do { return try NetworkSpec(name: "layers", inputShape: shape, notation: layers) } catch {
                throw FlagError("--layers (on --input \(input)): \(ErrorWording.line(for: error))")
            }
        case (nil, _?, nil): throw FlagError("--layers needs --input (the input shape, e.g. 3x32x32)")
        case (nil, nil, _?): throw FlagError("--input needs --layers")
        case (nil, nil, nil):
            throw FlagError("name a model (\(ModelZoo.all.joined(separator: ", "))) or give --layers")
        default: throw FlagError("give a model name or --input and --layers, not both")
        }
    }

    func run() throws {
        reportingErrors {
            let spec = try spec()
            let architecture: Architecture
            do { architecture = try Architecture(spec) } catch  where layers != nil {
                // Sizes too large for memory or arithmetic (SizeLimits.swift) come from --layers or --input.
                throw FlagError("--layers (on --input \(input ?? "")): \(ErrorWording.line(for: error))")
            }
            let rows = architecture.summaryRows
            if json { return ProgressPrinter.line(ProgressPrinter.jsonLine(SummaryTable(architecture))) }
            ProgressPrinter.line("\(architecture.spec.name), input \(architecture.inputShape)")
            ProgressPrinter.line(
                padRight("layer", 16) + padRight("output shape", 20) + pad("parameters", 14)
                    + pad("mult-adds", 17))
            for row in rows {
                ProgressPrinter.line(
                    padRight(row.layer, 16) + padRight(row.output.description, 20)
                        + pad(grouped(row.parameters), 14) + pad(grouped(row.multiplyAdds), 17))
            }
            ProgressPrinter.line("total parameters: \(grouped(architecture.parameterCount))")
            ProgressPrinter.line("multiply-adds per sample, forward: \(grouped(architecture.multiplyAdds))")
        }
    }
}

/// `convoy summary --json`: the table as one object.
struct SummaryTable: Encodable {
    struct Row: Encodable {
        let layer: String, output: [Int], parameters: Int, multiplyAdds: Int
        enum CodingKeys: String, CodingKey {
            case layer, output, parameters
            case multiplyAdds = "multiply_adds"
        }
    }
    let model: String, input: [Int], layers: [Row], total: Int, multiplyAdds: Int
    enum CodingKeys: String, CodingKey {
        case model, input, layers, total
        case multiplyAdds = "multiply_adds"
    }

    init(_ architecture: Architecture) {
        model = architecture.spec.name
        input = architecture.inputShape.dims
        layers = architecture.summaryRows.map {
            Row(layer: $0.layer, output: $0.output.dims, parameters: $0.parameters, multiplyAdds: $0.multiplyAdds)
        }
        total = architecture.parameterCount
        multiplyAdds = architecture.multiplyAdds
    }
}
