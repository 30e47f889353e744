import ConvoyEngine
import ConvoyInterop
import Foundation

extension Evaluate.Result {
    /// Accuracy, loss and the confusion matrix (rows: true label, columns: predicted) of
    /// `file` on `test`; what `convoy evaluate` prints and the run report draws.
    /// - Parameters:
    ///   - name: how errors name the model (its path).
    init(evaluating file: ModelFile, on test: Dataset, name: String) throws {
        let architecture = try Architecture(file.spec)
        guard architecture.inputShape.count == test.sampleSize else {
            throw FlagError(
                "--model-file \(name): the model takes \(architecture.inputShape.count) inputs, "
                    + "MNIST has \(test.sampleSize)"
            )
        }
        // A crafted file can describe huge activations with few parameters: bounded here.
        let batch = try file.evaluationBatch(
            preferred: Evaluate.batch, memoryBytes: ModelFile.evaluationMemory, name: name)
        let network = Network(architecture, maxBatch: batch, parameters: file.parameters)
        // confusion[true label][predicted]: test.classes x network.classes counts.
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: network.classes), count: test.classes)
        var lossSum = 0.0
        var start = 0
        test.pixels.withUnsafeBufferPointer { pixels in
            test.labels.withUnsafeBufferPointer { labels in
                while start < test.count {
                    let n = min(network.maxBatch, test.count - start)
                    network.loadPixels(pixels.baseAddress! + start * test.sampleSize, batch: n)
                    lossSum += network.evaluate(labels: labels.baseAddress! + start, batch: n).lossSum
                    for (k, predicted) in network.predictions(batch: n).enumerated() {
                        confusion[Int(labels[start + k])][predicted] += 1
                    }
                    start += n
                }
            }
        }
        let correct = (0..<min(confusion.count, network.classes)).reduce(0) { $0 + confusion[$1][$1] }
        self.init(
            model: file.spec.name, samples: test.count, accuracy: Double(correct) / Double(max(test.count, 1)),
            loss: lossSum / Double(max(test.count, 1)),
            parameterChecksum: String(format: "%08x", file.parameterChecksum), confusion: confusion,
            config: file.recipe.isEmpty ? nil : file.recipe)
    }
}

extension ModelFile {
    /// The recipe as flags, `--batch 64 --epochs 10 …` (file-supplied text made printable).
    var recipeText: String {
        recipe.sorted { $0.key < $1.key }.map { "--\(peerText($0.key)) \(peerText($0.value))" }.joined(separator: " ")
    }
}
