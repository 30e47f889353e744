/// A model as an ONNX graph (IR version 8, opset 13; docs/FORMATS.md §6): input `input`
/// `[N, C, H, W]` (or `[N, C, L]`, `[N, L]`) Float32 pixels already scaled to [0, 1] as convoy
/// scales them (p / 255), output `logits` `[N, classes]`. Each convoy layer becomes the ONNX
/// operator with the same arithmetic; the weights are initializers named as in
/// `namedParameters` (PyTorch's names).
public enum ONNXExport {
    static let opset = 13
    static let irVersion = 8

    public static func encode(_ architecture: Architecture, parameters: [Float], producerVersion: String) -> [UInt8] {
        var graph = GraphBuilder(architecture: architecture)
        for (index, layer) in architecture.layers.enumerated() { graph.add(layer, index: index) }
        graph.nameOutput("logits")
        var model = ProtobufWriter()
        model.int(1, irVersion)
        model.string(2, "convoy")
        model.string(3, producerVersion)
        model.message(7) { g in
            for node in graph.nodes { g.message(1) { node.write(to: &$0) } }
            g.string(2, architecture.spec.name)
            for tensor in architecture.namedParameters(parameters) {
                g.message(5) { writeTensor(&$0, name: tensor.name, dims: tensor.shape, floats: tensor.values) }
            }
            for (name, dims) in graph.shapeConstants {
                g.message(5) { writeTensor(&$0, name: name, dims: [dims.count], int64s: dims) }
            }
            g.message(11) { writeValueInfo(&$0, name: "input", dims: architecture.inputShape.dims) }
            g.message(12) { writeValueInfo(&$0, name: graph.current, dims: architecture.outputShape.dims) }
        }
        model.message(8) { opset in
            opset.string(1, "")
            opset.int(2, Self.opset)
        }
        return model.bytes
    }

    /// TensorProto: dims (1), data_type (2: FLOAT = 1, INT64 = 7), name (8), raw_data (9).
    static func writeTensor(_ t: inout ProtobufWriter, name: String, dims: [Int], floats: [Float]) {
        t.ints(1, dims)
        t.int(2, 1)
        t.string(8, name)
        var raw = ByteWriter(capacity: 4 * floats.count)
        floats.withUnsafeBufferPointer { raw.append(floats: $0) }
        t.bytes(9, raw.bytes)
    }

    static func writeTensor(_ t: inout ProtobufWriter, name: String, dims: [Int], int64s: [Int]) {
        t.ints(1, dims)
        t.int(2, 7)
        t.string(8, name)
        var raw = ByteWriter(capacity: 8 * int64s.count)
        for value in int64s { raw.append(Int64(value)) }
        t.bytes(9, raw.bytes)
    }

    /// ValueInfoProto: name (1), type (2) → tensor_type (1) → elem_type (1) FLOAT, shape (2),
    /// whose first dimension is the symbolic batch `N`.
    static func writeValueInfo(_ v: inout ProtobufWriter, name: String, dims: [Int]) {
        v.string(1, name)
        v.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, 1)
                tensor.message(2) { shape in
                    shape.message(1) { $0.string(2, "N") }
                    for dim in dims { shape.message(1) { $0.int(1, dim) } }
                }
            }
        }
    }
}

/// One ONNX node: NodeProto input (1), output (2), name (3), op_type (4), attribute (5).
struct ONNXNode {
    enum Attribute {
        case ints([Int])
        case int(Int)
        case string(String)
    }
    let op: String
    let inputs: [String]
    var output: String
    var attributes: [(String, Attribute)] = []

    /// AttributeProto: name (1), i (3), s (4), ints (8), type (20: INT 2, STRING 3, INTS 7).
    func write(to n: inout ProtobufWriter) {
        for input in inputs { n.string(1, input) }
        n.string(2, output)
        n.string(3, output)
        n.string(4, op)
        for (name, value) in attributes {
            n.message(5) { a in
                a.string(1, name)
                switch value {
                case let .int(i):
                    a.int(3, i)
                    a.int(20, 2)
                case let .string(s):
                    a.bytes(4, Array(s.utf8))
                    a.int(20, 3)
                case let .ints(list):
                    a.ints(8, list)
                    a.int(20, 7)
                }
            }
        }
    }
}

/// Turns convoy layers into ONNX nodes, threading the name of the current tensor.
struct GraphBuilder {
    let architecture: Architecture
    var nodes: [ONNXNode] = []
    var shapeConstants: [(String, [Int])] = []
    var current = "input"

    init(architecture: Architecture) { self.architecture = architecture }

    private mutating func append(_ op: String, _ inputs: [String], _ attributes: [(String, ONNXNode.Attribute)] = []) {
        let output = "\(nodes.count)_\(op.lowercased())"
        nodes.append(ONNXNode(op: op, inputs: [current] + inputs, output: output, attributes: attributes))
        current = output
    }

    /// Gives the last node's output the graph output's name.
    mutating func nameOutput(_ name: String) {
        nodes[nodes.count - 1].output = name
        current = name
    }

    private mutating func reshape(to dims: [Int]) {
        let name = "shape_\(shapeConstants.count)"
        shapeConstants.append((name, [-1] + dims))
        append("Reshape", [name])
    }

    mutating func add(_ layer: any Layer, index: Int) {
        let parameters = ["\(index).weight", "\(index).bias"]
        let input = layer.inputShape.dims
        switch layer.spec {
        case let .conv2d(_, kh, kw, sh, sw, ph, pw, mode):
            let v = ph.amounts(input: input[1], kernel: kh, stride: sh)
            let h = pw.amounts(input: input[2], kernel: kw, stride: sw)
            convolution(
                parameters, kernel: [kh, kw], strides: [sh, sw], before: [v.before, h.before],
                after: [v.after, h.after], edge: mode == .edge)
        case let .conv1d(_, kernel, stride, padding, mode):
            let p = padding.amounts(input: input[1], kernel: kernel, stride: stride)
            convolution(
                parameters, kernel: [kernel], strides: [stride], before: [p.before], after: [p.after],
                edge: mode == .edge)
        case let .simpleConv1d(kernel):
            reshape(to: [1, input[0]])
            convolution(parameters, kernel: [kernel], strides: [1], before: [0], after: [0], edge: false)
            reshape(to: layer.outputShape.dims)
        case let .maxPool2d(wh, ww, sh, sw):
            append("MaxPool", [], [("kernel_shape", .ints([wh, ww])), ("strides", .ints([sh, sw]))])
        case let .avgPool2d(wh, ww, sh, sw):
            append("AveragePool", [], [("kernel_shape", .ints([wh, ww])), ("strides", .ints([sh, sw]))])
        case .flatten: append("Flatten", [], [("axis", .int(1))])
        case .dense: append("Gemm", parameters, [("transB", .int(1))])  // weight is (out, in), as PyTorch's
        case .relu: append("Relu", [])
        case .sigmoid: append("Sigmoid", [])
        case .tanh: append("Tanh", [])
        }
    }

    /// Conv, after an edge-mode Pad where the padding repeats the border (docs/SPEC.md §2.2):
    /// ONNX's Conv pads with zeros only.
    private mutating func convolution(
        _ parameters: [String], kernel: [Int], strides: [Int], before: [Int], after: [Int], edge: Bool
    ) {
        var pads = before + after
        if edge && pads.contains(where: { $0 > 0 }) {
            let name = "pads_\(shapeConstants.count)"
            shapeConstants.append((name, [0, 0] + before + [0, 0] + after))
            append("Pad", [name], [("mode", .string("edge"))])
            pads = pads.map { _ in 0 }
        }
        append(
            "Conv", parameters, [("kernel_shape", .ints(kernel)), ("strides", .ints(strides)), ("pads", .ints(pads))])
    }
}
