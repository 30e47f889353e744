import ConvoyEngine

extension Message {
    /// A `weights` payload (docs/PROTOCOL.md): offset u32, count u32, then count Float32
    /// values. Every value must be finite: weights no worker can use are refused for the run.
    static func decodeWeights(_ reader: inout ByteReader, length: Int) throws -> WeightsUpdate {
        let offset = Int(try reader.read(UInt32.self, "weight offset"))
        let count = Int(try reader.read(UInt32.self, "weight count"))
        guard count >= 1, count <= Wire.maxParameters, offset <= Wire.maxParameters - count else {
            throw ProtocolError("weights \(offset)+\(count) are out of range")
        }
        guard length == 8 + 4 * count else {
            throw ProtocolError("weights payload is \(length) bytes, \(count) weights need \(8 + 4 * count)")
        }
        let values = try reader.readFloats(count, "weights")
        if let bad = FloatChecks.firstNonFinite(values) {
            throw ProtocolError("weight \(offset + bad) is \(values[bad])", runScope: true)
        }
        return WeightsUpdate(offset: offset, values: values)
    }
}
