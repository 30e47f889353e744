@testable import ConvoyEngine
import Testing

/// Runs a layer's fast forward and backward on Float buffers.
struct LayerRun {
    let y: [Float]
    let dx: [Float]
    let gradient: [Float]
}

func runLayer(_ layer: any Layer, x: [Float], parameters: [Float], dy: [Float], batch: Int) -> LayerRun {
    var y = [Float](repeating: .nan, count: batch * layer.outputShape.count)
    var dx = [Float](repeating: .nan, count: batch * layer.inputShape.count)
    var gradient = [Float](repeating: 0, count: layer.parameterCount)
    var scratch = [Float](repeating: .nan, count: max(layer.scratchCount, 1))
    let params = parameters.isEmpty ? [Float](repeating: 0, count: 1) : parameters
    x.withUnsafeBufferPointer { xp in
        params.withUnsafeBufferPointer { pp in
            y.withUnsafeMutableBufferPointer { yp in
                scratch.withUnsafeMutableBufferPointer { sp in
                    layer.forward(
                        x: xp.baseAddress!, y: yp.baseAddress!, batch: batch, parameters: pp.baseAddress!,
                        scratch: sp.baseAddress!)
                }
            }
            dy.withUnsafeBufferPointer { dyp in
                y.withUnsafeBufferPointer { yp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        gradient.withUnsafeMutableBufferPointer { gp in
                            scratch.withUnsafeMutableBufferPointer { sp in
                                var g = gp.baseAddress
                                var dummy: Float = 0
                                if gp.count == 0 { g = withUnsafeMutablePointer(to: &dummy) { $0 } }
                                layer.backward(
                                    x: xp.baseAddress!, y: yp.baseAddress!, dy: dyp.baseAddress!, dx: dxp.baseAddress!,
                                    batch: batch, parameters: pp.baseAddress!, gradient: g!, scratch: sp.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
    }
    return LayerRun(y: y, dx: dx, gradient: gradient)
}

func forwardOnly(_ layer: any Layer, x: [Float], parameters: [Float], batch: Int) -> [Float] {
    runLayer(
        layer, x: x, parameters: parameters, dy: [Float](repeating: 0, count: batch * layer.outputShape.count),
        batch: batch
    ).y
}

func randomFloats(_ count: Int, _ rng: inout SeededRandom, scale: Double = 1) -> [Float] {
    (0..<count).map { _ in Float((rng.nextUnit() * 2 - 1) * scale) }
}

/// `|a − b| ≤ atol + rtol·|b|` elementwise, with a message naming the first offender.
func expectClose(
    _ a: [Float], _ b: [Double], atol: Double, rtol: Double, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(a.count == b.count, "\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
    for i in 0..<min(a.count, b.count) where !(abs(Double(a[i]) - b[i]) <= atol + rtol * abs(b[i])) {
        Issue.record("\(what)[\(i)] = \(a[i]), reference \(b[i])", sourceLocation: sourceLocation)
        return
    }
}
