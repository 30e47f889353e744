/// The protobuf wire format, write side only, for the ONNX export and TensorBoard's event
/// files: varints, fixed-width numbers, length-delimited fields and nested messages. ONNX
/// needs six message types and about twenty fields, all written once; swift-protobuf would
/// need its code generator built here (measured 9.5 min for a first build) and a 300 KB
/// generated file for the whole onnx.proto, for what these lines do. The output is checked
/// by onnxruntime and `onnx.checker`, and by TensorBoard's own reader, in the tests.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func tag(_ field: Int, wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    /// An int64, int32 or enum field (wire type 0). Negative values take ten bytes, as
    /// protobuf's int64 does.
    mutating func int(_ field: Int, _ value: Int) {
        tag(field, wireType: 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// Repeated int64, packed (proto3's default encoding).
    mutating func ints(_ field: Int, _ values: [Int]) {
        var packed = ProtobufWriter()
        for value in values { packed.varint(UInt64(bitPattern: Int64(value))) }
        bytes(field, packed.bytes)
    }

    mutating func float(_ field: Int, _ value: Float) {
        tag(field, wireType: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A double field (wire type 1, fixed64, little-endian IEEE 754), for TensorBoard's wall time.
    mutating func double(_ field: Int, _ value: Double) {
        tag(field, wireType: 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        tag(field, wireType: 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        build(&nested)
        bytes(field, nested.bytes)
    }
}
