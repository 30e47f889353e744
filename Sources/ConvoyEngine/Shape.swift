/// The shape of one sample (no batch dimension): `[features]`, `[channels, length]` or
/// `[channels, height, width]`. Buffers hold `batch × shape.count` floats, sample-major.
public struct Shape: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(_ dims: Int...) { self.dims = dims }

    /// Elements per sample. Only for shapes already checked (`Architecture` checks every
    /// shape it builds); a shape from a file or a peer is measured with `checkedCount`.
    public var count: Int { dims.reduce(1, *) }
    /// Elements per sample, or nil when a dimension is negative or the product overflows `Int`.
    public var checkedCount: Int? {
        var product = 1
        for dimension in dims {
            guard dimension >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            product = next
        }
        return product
    }
    public var rank: Int { dims.count }
    public var description: String { "(" + dims.map(String.init).joined(separator: ", ") + ")" }
}

/// A configuration that cannot be built: the message names the layer and what is wrong.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Output length along one spatial axis (docs/SPEC.md §2.1): `N_out = floor((N_in + 2P − F) / S) + 1`.
/// Throws for `F < 1`, `S < 1`, `P < 0` or `N_out < 1`.
public func convolutionOutputSize(input: Int, kernel: Int, stride: Int = 1, padding: Int = 0) throws -> Int {
    try convolutionOutputSize(input: input, kernel: kernel, stride: stride, padding: (padding, padding))
}

/// The same with `before` and `after` pixels of padding (`same` padding may be uneven):
/// `N_out = floor((N_in + before + after − F) / S) + 1`.
public func convolutionOutputSize(
    input: Int, kernel: Int, stride: Int,
    padding: (before: Int, after: Int)
) throws -> Int {
    guard kernel >= 1 else { throw ShapeError("kernel size \(kernel) must be at least 1") }
    guard stride >= 1 else { throw ShapeError("stride \(stride) must be at least 1") }
    guard padding.before >= 0, padding.after >= 0 else {
        throw ShapeError("padding \(min(padding.before, padding.after)) must not be negative")
    }
    guard input >= 1 else { throw ShapeError("input size \(input) must be at least 1") }
    let padded = input + padding.before + padding.after
    guard padded >= kernel else {
        throw ShapeError("kernel \(kernel) is larger than the padded input \(padded): output size would be < 1")
    }
    return (padded - kernel) / stride + 1
}

/// Parameters of a convolution layer (docs/SPEC.md §2.3): `(F_h·F_w·C_in + 1)·C_out`.
public func convolutionParameterCount(inChannels: Int, outChannels: Int, kernelHeight: Int, kernelWidth: Int = 1) -> Int
{
    (kernelHeight * kernelWidth * inChannels + 1) * outChannels
}
