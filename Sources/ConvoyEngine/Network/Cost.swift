/// The compute a layer needs, for summaries (docs/SPEC.md §2.4): multiply-adds of one
/// sample's forward pass, from the layer's spec and shapes alone, so it does not depend on
/// how a layer computes (im2col, fused kernels).
extension Layer {
    public var multiplyAdds: Int {
        switch spec {
        case let .simpleConv1d(kernel): outputShape.count * kernel
        case let .conv1d(_, kernel, _, _, _): outputShape.count * inputShape.dims[0] * kernel
        case let .conv2d(_, kh, kw, _, _, _, _, _): outputShape.count * inputShape.dims[0] * kh * kw
        case let .dense(outputs): inputShape.count * outputs
        case .maxPool2d, .avgPool2d, .flatten, .relu, .sigmoid, .tanh: 0
        }
    }
}

extension Architecture {
    /// Multiply-adds of one sample's forward pass through the whole network.
    public var multiplyAdds: Int { layers.reduce(0) { $0 + $1.multiplyAdds } }
}
