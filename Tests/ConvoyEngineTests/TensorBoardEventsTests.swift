@testable import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

/// TensorBoard's event file (docs/FORMATS.md §10): the CRC, one record's golden bytes built by
/// hand from the format, and the file the writer leaves. The Python `tensorboard` reader checks
/// a real run's file in scripts/tensorboard-test.sh.
@Suite struct TensorBoardEventsTests {
    @Test func crc32cCheckVector() {
        // The standard check value of CRC-32C (zlib's CRC-32 gives 0xCBF43926 here).
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
    }

    @Test func oneScalarRecordGolden() {
        let event = TensorBoardEvents.scalarEvent(wallTime: 1.5, step: 32, scalars: [("loss/train", 0.25)])
        let golden = hexBytes(
            [
                // length 32 (u64 LE), masked CRC-32C of those 8 bytes
                "2000000000000000 29eda950",
                // Event.wall_time (field 1, fixed64): 1.5
                "09 000000000000f83f",
                // Event.step (field 2, varint): 32
                "10 20",
                // Event.summary (field 5, 19 bytes) → Summary.value (field 1, 17 bytes)
                "2a 13 0a 11",
                // Value.tag (field 1): "loss/train"; Value.simple_value (field 2, fixed32): 0.25
                "0a 0a 6c6f73732f747261696e 15 0000803e",
                // masked CRC-32C of the 32 data bytes
                "b3b810a3",
            ].joined())
        #expect(TensorBoardEvents.record(event) == golden)
    }

    @Test func versionEventGolden() {
        // wall_time 1.5, file_version (field 3) "brain.Event:2"; no step field at step 0.
        #expect(
            TensorBoardEvents.versionEvent(wallTime: 1.5)
                == hexBytes("09 000000000000f83f 1a 0d 627261696e2e4576656e743a32"))
        #expect(
            TensorBoardEvents.scalarEvent(wallTime: 1.5, step: 0, scalars: []) == hexBytes("09 000000000000f83f 2a 00"))
    }

    @Test func writerCreatesDirectoryAndAppendsEpochs() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + "/runs/a"
        let writer = try TensorBoardWriter(directory: directory, now: 1_700_000_000.25)
        #expect(FilePaths.lastComponent(of: writer.path).hasPrefix("events.out.tfevents.1700000000."))
        #expect(writer.path.hasSuffix(".convoy"))
        let report = EpochReport(
            epoch: 1, loss: 0.5, trainAccuracy: 0.75, testAccuracy: 0.875, testLoss: 0.25, seconds: 2,
            samplesPerSec: 1000, learningRate: 0.125)
        try writer.add(report, step: 32, wallTime: 1_700_000_002)
        let expected =
            TensorBoardEvents.record(TensorBoardEvents.versionEvent(wallTime: 1_700_000_000.25))
            + TensorBoardEvents.record(
                TensorBoardEvents.scalarEvent(
                    wallTime: 1_700_000_002, step: 32,
                    scalars: [
                        ("loss/train", 0.5), ("accuracy/train", 0.75), ("accuracy/test", 0.875), ("loss/test", 0.25),
                        ("throughput/samples_per_sec", 1000), ("learning_rate", 0.125),
                    ]))
        // Written through at once: readable before the writer is closed.
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: writer.path))) == expected)
        let mode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o700 } == 0o700)
    }

    @Test func fileInPlaceOfDirectoryIsAnError() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        FileManager.default.createFile(atPath: root + "/f", contents: Data([1]))
        #expect(throws: FileError.self) { _ = try TensorBoardWriter(directory: root + "/f") }
        #expect(throws: FileError.self) { _ = try TensorBoardWriter(directory: "") }
    }
}
