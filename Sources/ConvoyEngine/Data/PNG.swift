import ConvoyInterop

/// PNG decoding to 8-bit gray (ISO/IEC 15948): chunks, zlib-compressed scanlines, the five
/// row filters, then color to luminance (ITU-R BT.601 weights, as most converters use) and
/// alpha composited over black (MNIST's background). Every length is checked before use: a
/// PNG is hostile input like any file.
enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    struct Header {
        let width, height, depth, colorType: Int
        var channels: Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType] ?? 0 }
        /// Bytes per complete pixel, at least 1 (the filters' "bpp").
        var pixelBytes: Int { max(1, channels * depth / 8) }
    }

    static func decode(_ bytes: [UInt8], name: String) throws -> GrayImage {
        var position = signature.count
        var header: Header?
        var palette: [UInt8] = []
        var compressed: [UInt8] = []
        while true {
            guard bytes.count - position >= 12 else { throw DataError("\(name): truncated PNG (no IEND)") }
            let length = bigEndianUInt32(bytes, at: position)
            let type = String(decoding: bytes[(position + 4)..<(position + 8)], as: UTF8.self)
            guard length <= bytes.count - position - 12 else { throw DataError("\(name): truncated PNG chunk") }
            let data = Array(bytes[(position + 8)..<(position + 8 + length)])
            position += 12 + length
            switch type {
            case "IHDR":
                guard length == 13 else { throw DataError("\(name): PNG header of \(length) bytes") }
                header = try checkedHeader(data, name: name)
            case "PLTE": palette = data
            case "IDAT":
                guard compressed.count + data.count <= 1 << 30 else { throw DataError("\(name): PNG data too large") }
                compressed += data
            case "IEND":
                guard let header else { throw DataError("\(name): PNG without a header") }
                return try image(header, compressed: compressed, palette: palette, name: name)
            default: continue
            }
        }
    }

    private static func checkedHeader(_ d: [UInt8], name: String) throws -> Header {
        let header = Header(
            width: bigEndianUInt32(d, at: 0), height: bigEndianUInt32(d, at: 4), depth: Int(d[8]), colorType: Int(d[9]))
        _ = try ImageFile.pixelCount(width: header.width, height: header.height, name: name)
        let supported = header.channels > 0 && (header.depth == 8 || (header.depth == 16 && header.colorType != 3))
        guard supported else {
            throw DataError(
                "\(name): PNG color type \(header.colorType) at \(header.depth) bits is not supported "
                    + "(8 or 16 bits gray, gray+alpha, RGB, RGBA; 8-bit palette)")
        }
        guard d[12] == 0 else { throw DataError("\(name): interlaced PNG is not supported; save it non-interlaced") }
        return header
    }

    private static func image(_ h: Header, compressed: [UInt8], palette: [UInt8], name: String) throws -> GrayImage {
        let rowBytes = h.width * h.channels * h.depth / 8
        let raw: [UInt8]
        do { raw = try Zlib.inflate(compressed, expectedBytes: h.height * (rowBytes + 1)) } catch {
            throw DataError("\(name): PNG image data: \(error)")
        }
        var rows = [UInt8](repeating: 0, count: h.height * rowBytes)
        for y in 0..<h.height {
            let filter = raw[y * (rowBytes + 1)]
            guard filter <= 4 else { throw DataError("\(name): PNG row \(y) has filter \(filter)") }
            for x in 0..<rowBytes {
                let value = raw[y * (rowBytes + 1) + 1 + x]
                let left = x >= h.pixelBytes ? Int(rows[y * rowBytes + x - h.pixelBytes]) : 0
                let up = y > 0 ? Int(rows[(y - 1) * rowBytes + x]) : 0
                let upLeft = x >= h.pixelBytes && y > 0 ? Int(rows[(y - 1) * rowBytes + x - h.pixelBytes]) : 0
                let predictor: Int
                switch filter {
                case 1: predictor = left
                case 2: predictor = up
                case 3: predictor = (left + up) / 2
                case 4: predictor = paeth(left, up, upLeft)
                default: predictor = 0
                }
                rows[y * rowBytes + x] = value &+ UInt8(predictor & 0xFF)
            }
        }
        return try gray(h, rows: rows, palette: palette, name: name)
    }

    private static func paeth(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
    }

    /// Samples (8 or 16 bits; 16 keeps its high byte) to one gray byte per pixel.
    private static func gray(_ h: Header, rows: [UInt8], palette: [UInt8], name: String) throws -> GrayImage {
        let step = h.depth / 8
        var pixels = [UInt8](repeating: 0, count: h.width * h.height)
        for i in 0..<pixels.count {
            let sample = { (channel: Int) in Double(rows[(i * h.channels + channel) * step]) }
            var (luma, alpha) = (0.0, 255.0)
            switch h.colorType {
            case 0: luma = sample(0)
            case 4: (luma, alpha) = (sample(0), sample(1))
            case 2, 6:
                luma = 0.299 * sample(0) + 0.587 * sample(1) + 0.114 * sample(2)
                if h.colorType == 6 { alpha = sample(3) }
            default:
                let entry = Int(rows[i])
                guard 3 * entry + 2 < palette.count else {
                    throw DataError("\(name): PNG palette index \(entry) outside its \(palette.count / 3) colors")
                }
                let color = palette[(3 * entry)...].prefix(3).map(Double.init)
                luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
            }
            pixels[i] = UInt8(min(255, (luma * alpha / 255).rounded()))
        }
        return GrayImage(width: h.width, height: h.height, pixels: pixels)
    }
}
