import Foundation

/// Softmax + cross-entropy (docs/SPEC.md §5): a stable softmax (the row max is subtracted), the loss
/// `−log p_label` per sample, and `dL/dlogits = (p − onehot) · gradientScale`. Returning the
/// loss *sum* and using `gradientScale = 1` gives gradient sums, which is what workers ship;
/// `1/batch` gives the gradient of the mean loss.
public enum SoftmaxCrossEntropy {
    public struct Result: Equatable, Sendable {
        public var lossSum: Double
        public var correct: Int
    }

    public static func evaluate(
        logits: UnsafePointer<Float>, labels: UnsafePointer<UInt8>, batch: Int, classes: Int,
        dLogits: UnsafeMutablePointer<Float>?, gradientScale: Float
    ) -> Result {
        var lossSum = 0.0
        var correct = 0
        for n in 0..<batch {
            let row = logits + n * classes
            var maxValue = row[0]
            var predicted = 0
            for c in 1..<max(classes, 1) where row[c] > maxValue {
                maxValue = row[c]
                predicted = c
            }
            var denominator: Float = 0
            for c in 0..<classes { denominator += Foundation.exp(row[c] - maxValue) }
            let label = Int(labels[n])
            if predicted == label { correct += 1 }
            lossSum += Double(Foundation.log(denominator) - (row[label] - maxValue))
            if let dLogits {
                let out = dLogits + n * classes
                for c in 0..<classes {
                    let p = Foundation.exp(row[c] - maxValue) / denominator
                    out[c] = (p - (c == label ? 1 : 0)) * gradientScale
                }
            }
        }
        return Result(lossSum: lossSum, correct: correct)
    }
}
