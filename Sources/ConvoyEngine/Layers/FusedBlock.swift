/// Consecutive layers that `Network` runs as one pass: a convolution (Conv2d, Conv1d or
/// SimpleConv1d), the ReLU after it and, when one follows, a 2×2 stride-2 MaxPool2d.
///
/// Forward writes only the block's last output (and, with pooling, one arg-max byte per pooled
/// value); backward turns the gradient of that output into the convolution's output gradient
/// in the same pass that lays it out for the GEMMs. Unfused, LeNet-5 spent 13% of a training
/// step in ReLU backward, 12% in max-pool backward and 5% in their forwards (perf, Zen 4):
/// each touched every value of a 6×28×28 or 16×10×10 activation once more. The results are
/// the same bits as the separate layers': `max(relu(a)) = relu(max(a))`, and when the window's
/// maximum is ≤ 0 the ReLU passes no gradient whichever element holds it.
struct FusedBlock: Sendable {
    /// Index of the convolution; the block is `first..<first + count`.
    let first: Int
    let count: Int
    let conv: Conv2d
    var pooled: Bool { count == 3 }
    var last: Int { first + count - 1 }
    var layers: Range<Int> { first..<(first + count) }

    /// One step of a network's execution plan.
    enum Step: Sendable {
        case layer(Int)
        case block(FusedBlock)
    }

    /// Groups `layers` into single layers and fused blocks, in order.
    static func plan(_ layers: [any Layer]) -> [Step] {
        var steps: [Step] = []
        var index = 0
        while index < layers.count {
            guard let conv = convolution(layers[index]), index + 1 < layers.count,
                let relu = layers[index + 1] as? Activation, relu.function == .relu
            else {
                steps.append(.layer(index))
                index += 1
                continue
            }
            var count = 2
            if index + 2 < layers.count, let pool = layers[index + 2] as? MaxPool2d, pool.geometry.isTwoByTwo {
                count = 3
            }
            steps.append(.block(FusedBlock(first: index, count: count, conv: conv)))
            index += count
        }
        return steps
    }

    /// The Conv2d that computes `layer`, if it is a convolution.
    private static func convolution(_ layer: any Layer) -> Conv2d? {
        switch layer {
        case let conv as Conv2d: conv
        case let conv as Conv1d: conv.core
        case let conv as SimpleConv1d: conv.core.core
        default: nil
        }
    }

    /// Bytes of arg-max indices per sample (pooled blocks only).
    var indexCount: Int {
        let g = conv.geometry
        return pooled ? g.outChannels * (g.outHeight / 2) * (g.outWidth / 2) : 0
    }
}
