#if canImport(Glibc)
    import Glibc
#endif
import ConvoyInterop
import Foundation

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing.
/// Not zlib's CRC-32: the same byte-at-a-time algorithm with another polynomial, so zlib's
/// `crc32` cannot be reused.
public enum CRC32C {
    /// The CRC of every byte value, built once.
    static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord stores CRCs rotated and offset, so a CRC of data that holds CRCs stays strong.
    public static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }
}

/// TensorBoard's event file: TFRecord framing around protobuf `Event` messages (docs/FORMATS.md
/// §10). Only what scalars need is written: `wall_time` (1, double), `step` (2, int64),
/// `file_version` (3, string) and `summary` (5) → `Summary.value` (1, repeated) → `Value.tag`
/// (1, string), `Value.simple_value` (2, float).
public enum TensorBoardEvents {
    /// What TensorFlow writes as the first event; TensorBoard reads files without it as v1.
    public static let fileVersion = "brain.Event:2"

    /// One record: u64 length, masked CRC-32C of the length, the data, masked CRC-32C of the
    /// data, all little-endian.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        var out = length
        appendLittleEndian(CRC32C.masked(CRC32C.checksum(length)), to: &out)
        out += data
        appendLittleEndian(CRC32C.masked(CRC32C.checksum(data)), to: &out)
        return out
    }

    /// The first event of a file: its wall time and the format version.
    public static func versionEvent(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.string(3, fileVersion)
        return event.bytes
    }

    /// An event holding scalars, in the order given. Step 0 is left out, as proto3 does.
    public static func scalarEvent(wallTime: Double, step: Int, scalars: [(tag: String, value: Float)]) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        if step != 0 { event.int(2, step) }
        event.message(5) { summary in
            for scalar in scalars {
                summary.message(1) { value in
                    value.string(1, scalar.tag)
                    value.float(2, scalar.value)
                }
            }
        }
        return event.bytes
    }

    /// The scalars of one epoch, under the tags docs/FORMATS.md §10 lists; TensorBoard keeps
    /// floats, so each value is rounded to Float32.
    public static func scalars(_ report: EpochReport) -> [(tag: String, value: Float)] {
        [
            ("loss/train", Float(report.loss)), ("accuracy/train", Float(report.trainAccuracy)),
            ("accuracy/test", Float(report.testAccuracy)), ("loss/test", Float(report.testLoss)),
            ("throughput/samples_per_sec", Float(report.samplesPerSec)),
            ("learning_rate", Float(report.learningRate)),
        ]
    }

    private static func appendLittleEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
