/// The binary encoding of a network's description (docs/FORMATS.md §2), shared by the
/// `welcome` message and model files. Cases are written as the numeric tags below, never as
/// their Swift names: renaming a case changes no byte, and changing a tag or a field is a
/// format change that needs a version bump (the golden-bytes tests fail otherwise).

/// Layer kinds. Never renumber or reuse a tag; a new kind takes the next free one.
enum LayerTag: UInt8 {
    case simpleConv1d = 1
    case conv1d = 2
    case conv2d = 3
    case maxPool2d = 4
    case avgPool2d = 5
    case flatten = 6
    case dense = 7
    case relu = 8
    case sigmoid = 9
    case tanh = 10
}

enum InitializerTag: UInt8 {
    case gaussian = 1
    case xavier = 2
    case he = 3
    case uniform = 4
}

/// Bounds on decoded values: generous for any real network, small enough that no size
/// computed from them overflows (`Architecture` then checks the products).
enum SpecBounds {
    static let nameBytes = 256
    static let maxLayers = 1024
    static let maxDimension = 1 << 24
    static let maxInputCount = 1 << 28
    /// Kernel, window, stride and padding sizes.
    static let maxWindow = 4096
    /// Output channels and Dense outputs.
    static let maxUnits = 1 << 20
}

extension NetworkSpec {
    /// Name (string), input shape (rank u8 1…3, then u32 per dimension), initializer,
    /// layer count (u16), layers.
    public func write(to writer: inout ByteWriter) {
        writer.append(string: name)
        writer.append(inputShape.rank, as: UInt8.self)
        for dimension in inputShape.dims { writer.append(dimension, as: UInt32.self) }
        initializer.write(to: &writer)
        writer.append(layers.count, as: UInt16.self)
        for layer in layers { layer.write(to: &writer) }
    }

    public init(reading reader: inout ByteReader, _ field: String) throws {
        let name = try reader.readString("\(field) name", maxBytes: SpecBounds.nameBytes)
        let rank = try reader.read(UInt8.self, "\(field) input rank", in: 1...3)
        var dims: [Int] = []
        for axis in 0..<rank {
            let field = "\(field) input dimension \(axis + 1)"
            dims.append(try reader.read(UInt32.self, field, in: 1...SpecBounds.maxDimension))
        }
        let (count, overflow) = dims.reduce((1, false)) { partial, dimension in
            let product = partial.0.multipliedReportingOverflow(by: dimension)
            return (product.partialValue, partial.1 || product.overflow)
        }
        guard !overflow, count <= SpecBounds.maxInputCount else {
            let problem = "\(Shape(dims)) has more than \(SpecBounds.maxInputCount) values"
            throw reader.error("\(field) input shape", problem)
        }
        let initializer = try Initializer(reading: &reader, "\(field) initializer")
        let layerCount = try reader.read(UInt16.self, "\(field) layer count", in: 1...SpecBounds.maxLayers)
        var layers: [LayerSpec] = []
        for index in 0..<layerCount {
            layers.append(try LayerSpec(reading: &reader, "\(field) layer \(index + 1)"))
        }
        self.init(name: name, inputShape: Shape(dims), layers: layers, initializer: initializer)
    }
}

extension Initializer {
    /// Tag u8; `gaussian` is followed by σ as Float64.
    public func write(to writer: inout ByteWriter) {
        switch self {
        case let .gaussian(sigma):
            writer.append(InitializerTag.gaussian.rawValue)
            writer.append(sigma)
        case .xavier: writer.append(InitializerTag.xavier.rawValue)
        case .he: writer.append(InitializerTag.he.rawValue)
        case .uniform: writer.append(InitializerTag.uniform.rawValue)
        }
    }

    public init(reading reader: inout ByteReader, _ field: String) throws {
        let raw = try reader.read(UInt8.self, field)
        guard let tag = InitializerTag(rawValue: raw) else {
            throw reader.error(field, "unknown initializer tag \(raw)")
        }
        switch tag {
        case .gaussian:
            let sigma = try reader.readDouble("\(field) sigma")
            guard sigma > 0 else { throw reader.error("\(field) sigma", "\(sigma) must be positive") }
            self = .gaussian(sigma: sigma)
        case .xavier: self = .xavier
        case .he: self = .he
        case .uniform: self = .uniform
        }
    }
}

extension LayerSpec {
    /// Tag u8, then the case's fields as u32 in declaration order (docs/FORMATS.md §2.2).
    public func write(to writer: inout ByteWriter) {
        func put(_ tag: LayerTag, _ values: Int...) {
            writer.append(tag.rawValue)
            for value in values { writer.append(value, as: UInt32.self) }
        }
        switch self {
        case let .simpleConv1d(kernel): put(.simpleConv1d, kernel)
        case let .conv1d(out, kernel, stride, padding, mode):
            put(.conv1d, out, kernel, stride)
            PaddingCoding.write(padding, to: &writer)
            PaddingCoding.write(mode, to: &writer)
        case let .conv2d(out, kh, kw, sh, sw, ph, pw, mode):
            put(.conv2d, out, kh, kw, sh, sw)
            PaddingCoding.write(ph, to: &writer)
            PaddingCoding.write(pw, to: &writer)
            PaddingCoding.write(mode, to: &writer)
        case let .maxPool2d(wh, ww, sh, sw): put(.maxPool2d, wh, ww, sh, sw)
        case let .avgPool2d(wh, ww, sh, sw): put(.avgPool2d, wh, ww, sh, sw)
        case .flatten: put(.flatten)
        case let .dense(outputs): put(.dense, outputs)
        case .relu: put(.relu)
        case .sigmoid: put(.sigmoid)
        case .tanh: put(.tanh)
        }
    }

    public init(reading reader: inout ByteReader, _ field: String) throws {
        let raw = try reader.read(UInt8.self, "\(field) kind")
        guard let tag = LayerTag(rawValue: raw) else { throw reader.error("\(field) kind", "unknown layer tag \(raw)") }
        func window(_ name: String) throws -> Int {
            try reader.read(UInt32.self, "\(field) \(name)", in: 1...SpecBounds.maxWindow)
        }
        func units(_ name: String) throws -> Int {
            try reader.read(UInt32.self, "\(field) \(name)", in: 1...SpecBounds.maxUnits)
        }
        switch tag {
        case .simpleConv1d: self = .simpleConv1d(kernel: try window("kernel"))
        case .conv1d:
            let out = try units("output channels")
            let kernel = try window("kernel")
            let stride = try window("stride")
            let padding = try PaddingCoding.read(&reader, "\(field) padding")
            let mode = try PaddingCoding.readMode(&reader, "\(field) padding mode")
            self = .conv1d(outChannels: out, kernel: kernel, stride: stride, padding: padding, mode: mode)
        case .conv2d:
            let out = try units("output channels")
            let kh = try window("kernel height")
            let kw = try window("kernel width")
            let sh = try window("stride height")
            let sw = try window("stride width")
            let ph = try PaddingCoding.read(&reader, "\(field) padding height")
            let pw = try PaddingCoding.read(&reader, "\(field) padding width")
            let mode = try PaddingCoding.readMode(&reader, "\(field) padding mode")
            self = .conv2d(
                outChannels: out, kernelHeight: kh, kernelWidth: kw, strideHeight: sh, strideWidth: sw,
                paddingHeight: ph, paddingWidth: pw, mode: mode)
        case .maxPool2d, .avgPool2d:
            let wh = try window("window height")
            let ww = try window("window width")
            let sh = try window("stride height")
            let sw = try window("stride width")
            self =
                tag == .maxPool2d
                ? .maxPool2d(windowHeight: wh, windowWidth: ww, strideHeight: sh, strideWidth: sw)
                : .avgPool2d(windowHeight: wh, windowWidth: ww, strideHeight: sh, strideWidth: sw)
        case .flatten: self = .flatten
        case .dense: self = .dense(outputs: try units("outputs"))
        case .relu: self = .relu
        case .sigmoid: self = .sigmoid
        case .tanh: self = .tanh
        }
    }
}

/// A convolution's padding: per axis a size tag u8 (1 = explicit, 2 = same) and a u32
/// (pixels per side; 0 for same); after the axes, a mode tag u8 (1 = zeros, 2 = edge).
enum PaddingCoding {
    enum SizeTag: UInt8 { case explicit = 1, same = 2 }
    enum ModeTag: UInt8 { case zeros = 1, edge = 2 }

    static func write(_ padding: PaddingSize, to writer: inout ByteWriter) {
        switch padding {
        case let .explicit(pixels):
            writer.append(SizeTag.explicit.rawValue)
            writer.append(pixels, as: UInt32.self)
        case .same:
            writer.append(SizeTag.same.rawValue)
            writer.append(UInt32(0))
        }
    }

    static func read(_ reader: inout ByteReader, _ field: String) throws -> PaddingSize {
        let raw = try reader.read(UInt8.self, field)
        guard let tag = SizeTag(rawValue: raw) else { throw reader.error(field, "unknown padding tag \(raw)") }
        switch tag {
        case .explicit: return .explicit(try reader.read(UInt32.self, field, in: 0...SpecBounds.maxWindow))
        case .same:
            _ = try reader.read(UInt32.self, field, in: 0...0)
            return .same
        }
    }

    static func write(_ mode: PaddingMode, to writer: inout ByteWriter) {
        writer.append((mode == .zeros ? ModeTag.zeros : ModeTag.edge).rawValue)
    }

    static func readMode(_ reader: inout ByteReader, _ field: String) throws -> PaddingMode {
        let raw = try reader.read(UInt8.self, field)
        guard let tag = ModeTag(rawValue: raw) else { throw reader.error(field, "unknown padding mode tag \(raw)") }
        return tag == .zeros ? .zeros : .edge
    }
}
