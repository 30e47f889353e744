import ArgumentParser
import ConvoyEngine
import ConvoyInterop
import Foundation

/// `convoy export`: a model's weights for NumPy and PyTorch, or the whole model as ONNX.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model as .npz (NumPy arrays, PyTorch's layouts and names) or ONNX (opset 13).")

    @Option(help: "npz or onnx (default: from OUT's extension).") var format: String?
    @Argument(help: "A model file saved by train, local or coordinator.") var model: String
    @Argument(help: "The file to write.") var out: String

    var resolvedFormat: String { format ?? (out.lowercased().hasSuffix(".onnx") ? "onnx" : "npz") }

    func validate() throws {
        guard ["npz", "onnx"].contains(resolvedFormat) else {
            throw ValidationError("--format \(resolvedFormat) is unknown; use npz or onnx")
        }
    }

    func run() throws {
        reportingErrors {
            let file = try ModelFile.load(path: model)
            let architecture = try Architecture(file.spec)
            let bytes: [UInt8]
            if resolvedFormat == "onnx" {
                bytes = ONNXExport.encode(
                    architecture, parameters: file.parameters,
                    producerVersion: Convoy.configuration.version)
            } else {
                bytes = try NumPyArchive.encode(
                    architecture.namedParameters(file.parameters).map {
                        ($0.name, NumPyArray(shape: $0.shape, floats: $0.values))
                    })
            }
            try writeAtomically(bytes, to: out)
            ProgressPrinter.line("\(out): \(file.spec.name) as \(resolvedFormat), \(grouped(bytes.count)) bytes")
        }
    }
}

/// `convoy predict`: classify image files with a trained model.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify PNG, PGM or IDX image files with a saved model (images are resized to its input).")

    @Option(name: .customLong("model-file"), help: "A model saved by train, local or coordinator.") var modelFile:
        String
    @Option(help: "Invert light-background images to MNIST's light-on-dark: auto, yes or no.") var invert = "auto"
    @Flag(help: "Print one JSON object per image.") var json = false
    @Argument(help: "Image files: PNG, PGM, or IDX image files (each image in them).") var images: [String]

    struct Prediction: Encodable {
        let file: String
        let index: Int?
        let predicted: Int
        let probabilities: [Double]
        let inverted: Bool
    }

    func validate() throws {
        guard ["auto", "yes", "no"].contains(invert) else {
            throw ValidationError("--invert \(invert) is unknown; use auto, yes or no")
        }
        guard !images.isEmpty else { throw ValidationError("name at least one image file") }
    }

    func run() throws {
        reportingErrors {
            BLAS.setThreads(1)
            let file = try ModelFile.load(path: modelFile)
            let architecture = try Architecture(file.spec)
            let input = architecture.inputShape.dims
            guard input.count == 3, input[0] == 1 else {
                throw FlagError(
                    "--model-file \(modelFile): \(file.spec.name) takes \(architecture.inputShape) inputs, "
                        + "not one-channel images")
            }
            let network = Network(architecture, maxBatch: 1, parameters: file.parameters)
            for path in images {
                let pictures = try ImageFile.load(path: path)
                for (index, picture) in pictures.enumerated() {
                    let flip = invert == "yes" || (invert == "auto" && picture.hasLightBackground)
                    let image = (flip ? picture.inverted : picture).resized(width: input[2], height: input[1])
                    let probabilities = classify(image, network)
                    let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
                    report(
                        Prediction(
                            file: path, index: pictures.count > 1 ? index : nil, predicted: best,
                            probabilities: probabilities, inverted: flip))
                }
            }
        }
    }

    private func classify(_ image: GrayImage, _ network: Network) -> [Double] {
        image.pixels.withUnsafeBufferPointer { network.loadPixels($0.baseAddress!, batch: 1) }
        network.forward(batch: 1)
        let logits = (0..<network.classes).map { Double(network.logits[$0]) }
        let top = logits.max()!
        let exps = logits.map { Foundation.exp($0 - top) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    private func report(_ p: Prediction) {
        if json { return ProgressPrinter.line(ProgressPrinter.jsonLine(p)) }
        let best = p.predicted
        let name = p.index.map { "\(p.file)[\($0)]" } ?? p.file
        let ranked = p.probabilities.indices.sorted { p.probabilities[$0] > p.probabilities[$1] }.prefix(3)
        let others = ranked.dropFirst().map { "\($0): \(percent(p.probabilities[$0]))" }.joined(separator: ", ")
        ProgressPrinter.line(
            "\(name): \(best) (\(percent(p.probabilities[best])); then \(others))\(p.inverted ? " [inverted]" : "")")
    }
}
