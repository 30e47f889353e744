import ConvoyEngine
import ConvoyInterop
import Foundation

/// What `convoy bench` reports beside samples/s: arithmetic done, GEMM share, per-layer times.
enum BenchReport {
    /// Floating-point operations (2 per multiply-add) per sample of the weighted layers:
    /// forward `W·x`, and in training also the weight gradient and the input gradient (which
    /// the first layer skips). A weighted layer's multiply-adds are its weights times the
    /// output positions each weight is applied at (biases are one per output channel).
    static func flopsPerSample(_ architecture: Architecture, training: Bool) -> Double {
        var total = 0.0
        for (index, layer) in architecture.layers.enumerated() where layer.weightCount > 0 {
            let channels = layer.parameterCount - layer.weightCount
            let macs = Double(layer.weightCount) * Double(layer.outputShape.count / max(channels, 1))
            total += 2 * macs * (training ? (index == 0 ? 2 : 3) : 1)
        }
        return total
    }

    /// The share of `body`'s wall time spent inside GEMM calls.
    static func gemmShare(_ body: () throws -> Void) rethrows -> Double {
        BLAS.gemmNanoseconds = 0
        BLAS.timing = true
        defer { BLAS.timing = false }
        let started = ContinuousClock.now
        try body()
        return Double(BLAS.gemmNanoseconds) / 1e9 / secondsSince(started)
    }

    /// Inference samples/s on `data` in one batch (2 warm-up rounds, 10 timed).
    static func inferenceRate(_ architecture: Architecture, parameters: [Float], data: Dataset) -> Double {
        let network = Network(architecture, maxBatch: data.count, parameters: parameters)
        func infer(_ times: Int) {
            data.pixels.withUnsafeBufferPointer { p in
                data.labels.withUnsafeBufferPointer { l in
                    for _ in 0..<times {
                        network.loadPixels(p.baseAddress!, batch: data.count)
                        _ = network.evaluate(labels: l.baseAddress!, batch: data.count)
                    }
                }
            }
        }
        infer(2)
        let started = ContinuousClock.now
        let rounds = 10
        infer(rounds)
        return Double(rounds * data.count) / secondsSince(started)
    }

    struct LayerTime: Encodable {
        let step: String
        let forwardMilliseconds: Double, backwardMilliseconds: Double
        enum CodingKeys: String, CodingKey {
            case step, forwardMilliseconds = "forward_ms", backwardMilliseconds = "backward_ms"
        }
    }

    /// Mean forward and backward time per step of the network's plan (fused blocks as one)
    /// over `rounds` training steps of `batch` samples.
    static func layerTimes(
        _ architecture: Architecture, parameters: [Float], batch: Int, rounds: Int,
        pixels: [UInt8], labels: [UInt8]
    ) -> [LayerTime] {
        let network = Network(architecture, maxBatch: batch, parameters: parameters)
        var order: [String] = []
        var totals: [String: (forward: UInt64, backward: UInt64)] = [:]
        network.onStepTimed = { step, backward, nanoseconds in
            if totals[step] == nil {
                order.append(step)
                totals[step] = (0, 0)
            }
            if backward { totals[step]!.backward += nanoseconds } else { totals[step]!.forward += nanoseconds }
        }
        for round in 0...rounds {
            if round == 1 { totals = totals.mapValues { _ in (0, 0) } }  // round 0 warms up
            pixels.withUnsafeBufferPointer { network.loadPixels($0.baseAddress!, batch: batch) }
            _ = labels.withUnsafeBufferPointer { network.accumulateGradient(labels: $0.baseAddress!, batch: batch) }
        }
        return order.map { step in
            LayerTime(
                step: step, forwardMilliseconds: Double(totals[step]!.forward) / Double(rounds) / 1e6,
                backwardMilliseconds: Double(totals[step]!.backward) / Double(rounds) / 1e6)
        }
    }

    static func printTable(_ rows: [LayerTime]) {
        ProgressPrinter.line("step                                forward ms  backward ms")
        for row in rows {
            let name = row.step.padding(toLength: 34, withPad: " ", startingAt: 0)
            ProgressPrinter.line(
                "\(name)  \(format(row.forwardMilliseconds, 4).leftPadded(10))  "
                    + "\(format(row.backwardMilliseconds, 4).leftPadded(11))"
            )
        }
        let forward = rows.map(\.forwardMilliseconds).reduce(0, +)
        let backward = rows.map(\.backwardMilliseconds).reduce(0, +)
        ProgressPrinter.line(
            "\("total".padding(toLength: 34, withPad: " ", startingAt: 0))  \(format(forward, 4).leftPadded(10))  "
                + "\(format(backward, 4).leftPadded(11))"
        )
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
