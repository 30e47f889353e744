/// One bucket of a gradient: a range of the parameter layout and the layers that produce it.
public struct GradientBucket: Sendable, Equatable {
    public let parameters: Range<Int>
    public let layers: Range<Int>
}

extension Architecture {
    /// The buckets a slice's gradient is shipped in, in the order they are sent: the head
    /// (the layers from `headStart` on) first, because its gradient is final while the trunk
    /// is still being back-propagated, then the trunk. One bucket, the whole model, for a
    /// network without a head. Workers send exactly these, the coordinator accepts exactly
    /// these, in this order.
    public var gradientBuckets: [GradientBucket] {
        let total = parameterCount
        let layerCount = layers.count
        guard let split = headStart else { return [GradientBucket(parameters: 0..<total, layers: 0..<layerCount)] }
        let trunkEnd = parameterOffsets[split]
        return [
            GradientBucket(parameters: trunkEnd..<total, layers: split..<layerCount),
            GradientBucket(parameters: 0..<trunkEnd, layers: 0..<split),
        ]
    }
}
