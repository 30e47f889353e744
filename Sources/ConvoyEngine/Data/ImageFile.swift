import ConvoyInterop
import Foundation

/// An 8-bit grayscale image, row-major.
public struct GrayImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Resampled to `width × height` by area averaging: each output pixel is the mean of the
    /// input area it covers (fractional at the edges), which neither aliases when shrinking a
    /// photo nor blurs more than bilinear when enlarging.
    public func resized(width newWidth: Int, height newHeight: Int) -> GrayImage {
        if newWidth == width && newHeight == height { return self }
        let (sx, sy) = (Double(width) / Double(newWidth), Double(height) / Double(newHeight))
        func spans(_ index: Int, _ scale: Double, _ limit: Int) -> [(Int, Double)] {
            let (start, end) = (Double(index) * scale, Double(index + 1) * scale)
            var result: [(Int, Double)] = []
            var i = Int(start)
            while Double(i) < end && i < limit {
                let weight = min(end, Double(i + 1)) - max(start, Double(i))
                if weight > 0 { result.append((i, weight)) }
                i += 1
            }
            return result
        }
        var out = [UInt8](repeating: 0, count: newWidth * newHeight)
        let columns = (0..<newWidth).map { spans($0, sx, width) }
        for y in 0..<newHeight {
            let rows = spans(y, sy, height)
            for x in 0..<newWidth {
                var (sum, area) = (0.0, 0.0)
                for (r, wr) in rows {
                    for (c, wc) in columns[x] {
                        sum += Double(pixels[r * width + c]) * wr * wc
                        area += wr * wc
                    }
                }
                out[y * newWidth + x] = UInt8(min(255, (sum / area).rounded()))
            }
        }
        return GrayImage(width: newWidth, height: newHeight, pixels: out)
    }

    /// Light strokes on a dark background, as MNIST draws digits: a picture whose border is
    /// mostly light (a digit written on paper) is inverted.
    public var hasLightBackground: Bool {
        var border: [UInt8] = []
        for x in 0..<width { border += [pixels[x], pixels[(height - 1) * width + x]] }
        for y in 0..<height { border += [pixels[y * width], pixels[y * width + width - 1]] }
        return border.reduce(0) { $0 + Int($1) } > 127 * border.count
    }

    public var inverted: GrayImage {
        GrayImage(width: width, height: height, pixels: pixels.map { 255 - $0 })
    }
}

/// Images from files: PNG (8/16-bit gray, gray+alpha, RGB, RGBA, 8-bit palette; not
/// interlaced), binary or text PGM, and IDX image files (gzipped or not) of many images.
public enum ImageFile {
    /// The most pixels one image may have: 64 Mpx (a 64 MiB grayscale buffer).
    public static let maxPixels = 1 << 26

    public static func load(path: String) throws -> [GrayImage] {
        let lower = path.lowercased()
        if lower.contains("idx") || lower.hasSuffix("ubyte") || lower.hasSuffix("ubyte.gz") {
            let array = try IDXArray.load(path: path, expectedRank: 3)
            let (rows, columns) = (array.dimensions[1], array.dimensions[2])
            return (0..<array.dimensions[0]).map { i in
                GrayImage(
                    width: columns, height: rows,
                    pixels: Array(array.bytes[(i * rows * columns)..<((i + 1) * rows * columns)]))
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError("\(path): cannot read (missing or unreadable)")
        }
        let bytes = Array(data)
        if bytes.starts(with: PNG.signature) { return [try PNG.decode(bytes, name: path)] }
        if bytes.starts(with: Array("P5".utf8)) || bytes.starts(with: Array("P2".utf8)) {
            return [try PGM.decode(bytes, name: path)]
        }
        throw DataError("\(path): not a PNG, PGM or IDX image file")
    }

    /// `width × height` with checked arithmetic, within `maxPixels`.
    static func pixelCount(width: Int, height: Int, name: String) throws -> Int {
        let (count, overflow) = width.multipliedReportingOverflow(by: height)
        guard width >= 1, height >= 1, !overflow, count <= maxPixels else {
            throw DataError("\(name): \(width)×\(height) pixels is not a size convoy reads (at most \(maxPixels))")
        }
        return count
    }
}

/// Netpbm's graymap: `P5` (binary) or `P2` (text), a maximum value up to 65535.
enum PGM {
    static func decode(_ bytes: [UInt8], name: String) throws -> GrayImage {
        var position = 2
        func token() throws -> Int {
            while position < bytes.count {
                if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count && bytes[position] != 10 { position += 1 }
                } else if [9, 10, 13, 32].contains(bytes[position]) {
                    position += 1
                } else {
                    break
                }
            }
            let start = position
            while position < bytes.count, (48...57).contains(bytes[position]), position - start < 9 { position += 1 }
            guard position > start, let value = Int(String(decoding: bytes[start..<position], as: UTF8.self)) else {
                throw DataError("\(name): malformed PGM header")
            }
            return value
        }
        let (width, height, maxValue) = (try token(), try token(), try token())
        let count = try ImageFile.pixelCount(width: width, height: height, name: name)
        guard (1...65535).contains(maxValue) else { throw DataError("\(name): PGM maximum \(maxValue) is invalid") }
        var values: [Int] = []
        if bytes[1] == UInt8(ascii: "5") {
            position += 1  // the single whitespace after the header
            let size = maxValue > 255 ? 2 : 1
            guard bytes.count - position >= count * size else { throw DataError("\(name): truncated PGM") }
            values = (0..<count).map { i in
                size == 1
                    ? Int(bytes[position + i]) : Int(bytes[position + 2 * i]) << 8 | Int(bytes[position + 2 * i + 1])
            }
        } else {
            values = try (0..<count).map { _ in try token() }
        }
        let pixels = try values.map { value -> UInt8 in
            guard value <= maxValue else { throw DataError("\(name): PGM pixel \(value) above the maximum") }
            return UInt8((Double(value) * 255 / Double(maxValue)).rounded())
        }
        return GrayImage(width: width, height: height, pixels: pixels)
    }
}
