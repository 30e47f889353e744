import ConvoyInterop
import Foundation
import Testing

@testable import ConvoyEngine

/// A zlib stream of stored (uncompressed) deflate blocks: what a PNG encoder may write, built
/// here without a compressor so the tests depend on nothing but the format.
func storedZlib(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x78, 0x01]
    var offset = 0
    repeat {
        let n = min(65_535, data.count - offset)
        let final: UInt8 = offset + n == data.count ? 1 : 0
        out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        out += data[offset..<(offset + n)]
        offset += n
    } while offset < data.count
    var (a, b): (UInt32, UInt32) = (1, 0)
    for byte in data {
        a = (a + UInt32(byte)) % 65_521
        b = (b + a) % 65_521
    }
    let adler = b << 16 | a
    return out + [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
}

func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let n = data.count
    let body = Array(type.utf8) + data
    let crc = body.withUnsafeBytes { Zlib.crc32($0) }
    return [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + body
        + [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
}

func png(width: Int, height: Int, colorType: UInt8, scanlines: [UInt8], palette: [UInt8]? = nil) -> [UInt8] {
    let w = [UInt8(width >> 24), UInt8((width >> 16) & 0xFF), UInt8((width >> 8) & 0xFF), UInt8(width & 0xFF)]
    let h = [UInt8(height >> 24), UInt8((height >> 16) & 0xFF), UInt8((height >> 8) & 0xFF), UInt8(height & 0xFF)]
    var bytes = PNG.signature + pngChunk("IHDR", w + h + [8, colorType, 0, 0, 0])
    if let palette { bytes += pngChunk("PLTE", palette) }
    return bytes + pngChunk("IDAT", storedZlib(scanlines)) + pngChunk("IEND", [])
}

@Suite struct ExportTests {
    @Test func npyHeaderMatchesNumPysLayout() throws {
        let array = NumPyArray(shape: [2], floats: [1, -2])
        let bytes = array.encoded
        let header = String(decoding: bytes[10..<(bytes.count - 8)], as: UTF8.self)
        #expect(Array(bytes[0..<8]) == [0x93] + Array("NUMPY".utf8) + [1, 0])
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"))
        #expect(header.hasSuffix("\n") && (bytes.count - 8) % 64 == 0)
        #expect(Array(bytes.suffix(8)) == [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0])
        #expect(try NumPyArray(decoding: bytes, name: "t") == array)
    }

    @Test func npyRefusesLiesAboutItsSize() {
        var bytes = NumPyArray(shape: [4], floats: [1, 2, 3, 4]).encoded
        bytes.removeLast()
        #expect(throws: DataError.self) { try NumPyArray(decoding: bytes, name: "short.npy") }
        let huge = NumPyArray(dtype: .uint8, shape: [1 << 40, 1 << 40], data: []).encoded
        #expect(throws: DataError.self) { try NumPyArray(decoding: huge, name: "huge.npy") }
    }

    @Test func npzRoundTripsAndIsReproducible() throws {
        let arrays = [("a", NumPyArray(shape: [1, 2], floats: [3, 4])), ("b", NumPyArray(shape: [1], floats: [5]))]
        let first = try NumPyArchive.encode(arrays)
        #expect(try NumPyArchive.encode(arrays) == first)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("t-\(getpid()).npz").path
        defer { unlink(path) }
        try writeAtomically(first, to: path)
        let read = try NumPyArchive.load(path: path)
        #expect(read["a"] == arrays[0].1 && read["b"] == arrays[1].1)
    }

    @Test func denseWeightsAreTransposedToPyTorchsLayout() throws {
        let spec = try NetworkSpec(name: "t", inputShape: Shape(3), notation: "dense(2)")
        let architecture = try Architecture(spec)
        // convoy: W (inputs 3, outputs 2) row-major, then b.
        let named = architecture.namedParameters([1, 2, 3, 4, 5, 6, 7, 8])
        #expect(named[0] == NamedTensor(name: "0.weight", shape: [2, 3], values: [1, 3, 5, 2, 4, 6]))
        #expect(named[1] == NamedTensor(name: "0.bias", shape: [2], values: [7, 8]))
    }

    @Test func onnxGraphNamesItsOperatorsAndWeights() throws {
        let architecture = try Architecture(ModelZoo.lenet5)
        let bytes = ONNXExport.encode(
            architecture, parameters: architecture.initialParameters(seed: 1), producerVersion: "t")
        let text = String(decoding: bytes, as: UTF8.self)
        for op in ["Conv", "Relu", "MaxPool", "Flatten", "Gemm", "logits", "11.weight", "transB"] {
            #expect(text.contains(op), "\(op) missing")
        }
        // ir_version 8 is the first field, opset 13 the last.
        #expect(Array(bytes[0..<2]) == [0x08, 8] && Array(bytes.suffix(4)) == [0x0A, 0x00, 0x10, 13])
    }

    @Test func pngFiltersAndColorTypesDecode() throws {
        // 2×2 gray, rows filtered Sub and Up: decoded pixels 10 30 / 15 40.
        let gray = png(width: 2, height: 2, colorType: 0, scanlines: [1, 10, 20, 2, 5, 10])
        #expect(try PNG.decode(gray, name: "g").pixels == [10, 30, 15, 40])
        // 1×2 RGB: pure white, pure red (luma 0.299 × 255 = 76).
        let rgb = png(width: 1, height: 2, colorType: 2, scanlines: [0, 255, 255, 255, 0, 255, 0, 0])
        #expect(try PNG.decode(rgb, name: "rgb").pixels == [255, 76])
        // Palette: index 1 is white.
        let indexed = png(width: 2, height: 1, colorType: 3, scanlines: [0, 1, 0], palette: [0, 0, 0, 255, 255, 255])
        #expect(try PNG.decode(indexed, name: "p").pixels == [255, 0])
        // Paeth on a 2×2: second row predicted from the first.
        let paeth = png(width: 2, height: 2, colorType: 0, scanlines: [0, 100, 50, 4, 1, 1])
        #expect(try PNG.decode(paeth, name: "paeth").pixels == [100, 50, 101, 51])
    }

    @Test func pngThatLiesIsRefused() {
        // The header says 2×2 but the data holds one row: refused, never read past.
        let short = png(width: 2, height: 2, colorType: 0, scanlines: [0, 1, 2])
        #expect(throws: DataError.self) { try PNG.decode(short, name: "short") }
        let huge = png(width: 1 << 20, height: 1 << 20, colorType: 0, scanlines: [0])
        #expect(throws: DataError.self) { try PNG.decode(huge, name: "huge") }
        let truncated = Array(png(width: 1, height: 1, colorType: 0, scanlines: [0, 7]).dropLast(20))
        #expect(throws: DataError.self) { try PNG.decode(truncated, name: "cut") }
    }

    @Test func inflateRefusesMoreThanExpected() throws {
        let data = [UInt8](repeating: 7, count: 1000)
        #expect(try Zlib.inflate(storedZlib(data), expectedBytes: 1000) == data)
        #expect(throws: ZlibError.self) { try Zlib.inflate(storedZlib(data), expectedBytes: 999) }
        #expect(throws: ZlibError.self) { try Zlib.inflate(storedZlib(data), expectedBytes: 1001) }
    }

    @Test func pgmAndResizing() throws {
        let pgm = Array("P2\n# comment\n2 1\n100\n0 100\n".utf8)
        #expect(try PGM.decode(pgm, name: "t").pixels == [0, 255])
        let image = GrayImage(width: 4, height: 2, pixels: [0, 100, 200, 200, 0, 100, 200, 200])
        #expect(image.resized(width: 2, height: 1).pixels == [50, 200])
        #expect(image.resized(width: 8, height: 4).pixels.count == 32)
        let paper = GrayImage(width: 3, height: 3, pixels: [255, 255, 255, 255, 0, 255, 255, 255, 255])
        #expect(paper.hasLightBackground && !paper.inverted.hasLightBackground)
    }
}
