/// Int64 fixed-point gradients in blocks of 64 values, each block only as wide as its largest
/// value needs (docs/PROTOCOL.md, gradient kind 4): first one width byte per block (0 to 8
/// bytes a value; 0 means every value of the block is zero), then each block's values as that
/// many little-endian two's-complement bytes, sign-extended when read.
///
/// Exact like the raw and varint forms, nearly as small as varints (a LeNet-5 slice's sums
/// need 20–30 bits, so most blocks are 3 or 4 bytes a value), and as cheap as a copy on both
/// ends: one width decision per 64 values and straight-line loops instead of a branch per byte.
enum PackedGradient {
    static let blockSize = 64

    static func blockCount(_ values: Int) -> Int { (values + blockSize - 1) / blockSize }

    /// Bytes `encode` may use for `values` values (its scratch included).
    static func capacity(_ values: Int) -> Int { blockCount(values) + 8 * values + 8 }

    /// The narrowest width (bytes a value) that holds every value of the block.
    private static func width(_ block: UnsafePointer<Int64>, _ n: Int) -> Int {
        // v ^ (v >> 63) clears the sign copies: its bit length plus a sign bit is what v needs.
        // Or-ing keeps the loop branch-free, so it vectorizes.
        var magnitudeBits: Int64 = 0
        var anyNonZero: Int64 = 0
        for i in 0..<n {
            magnitudeBits |= block[i] ^ (block[i] >> 63)
            anyNonZero |= block[i]
        }
        guard anyNonZero != 0 else { return 0 }
        return (64 - magnitudeBits.leadingZeroBitCount + 1 + 7) / 8
    }

    static func encode(_ values: UnsafeBufferPointer<Int64>) -> [UInt8] {
        let count = values.count
        let blocks = blockCount(count)
        return [UInt8](unsafeUninitializedCapacity: capacity(count)) { buffer, written in
            let out = UnsafeMutableRawPointer(buffer.baseAddress!)
            var at = blocks
            for b in 0..<blocks {
                let n = min(blockSize, count - b * blockSize)
                let block = values.baseAddress! + b * blockSize
                let w = width(block, n)
                out.storeBytes(of: UInt8(w), toByteOffset: b, as: UInt8.self)
                let target = out + at
                switch w {
                case 0: break
                case 1:
                    for i in 0..<n {
                        target.storeBytes(of: Int8(truncatingIfNeeded: block[i]), toByteOffset: i, as: Int8.self)
                    }
                case 2:
                    for i in 0..<n {
                        target.storeBytes(
                            of: Int16(truncatingIfNeeded: block[i]).littleEndian, toByteOffset: i &* 2, as: Int16.self)
                    }
                case 4:
                    for i in 0..<n {
                        target.storeBytes(
                            of: Int32(truncatingIfNeeded: block[i]).littleEndian, toByteOffset: i &* 4, as: Int32.self)
                    }
                default:
                    // Eight bytes stored, `w` kept: the next value overwrites the rest (the
                    // buffer has eight bytes of slack for the last one).
                    for i in 0..<n {
                        target.storeBytes(of: block[i].littleEndian, toByteOffset: w &* i, as: Int64.self)
                    }
                }
                at += n * w
            }
            written = at
        }
    }

    /// Exactly `count` values that use every byte; a width above 8, or bytes that do not add
    /// up to what the widths say, is refused before any value is read.
    static func decode(_ bytes: UnsafeRawBufferPointer, count: Int) throws -> [Int64] {
        let blocks = blockCount(count)
        guard bytes.count >= blocks else {
            throw ProtocolError(
                "packed gradient of \(count) values has \(bytes.count) bytes, fewer than its \(blocks) widths")
        }
        // count ≤ Wire.maxParameters, so `need` ≤ 9 · 2^24: no overflow.
        var need = blocks
        for b in 0..<blocks {
            let w = Int(bytes[b])
            guard w <= 8 else {
                throw ProtocolError("packed gradient block \(b) claims \(w) bytes a value (at most 8)")
            }
            need += w * min(blockSize, count - b * blockSize)
        }
        guard need == bytes.count else {
            throw ProtocolError(
                "packed gradient of \(count) values needs \(need) bytes by its widths, has \(bytes.count)")
        }
        return [Int64](unsafeUninitializedCapacity: count) { out, initialized in
            var at = blocks
            for b in 0..<blocks {
                let n = min(blockSize, count - b * blockSize)
                let w = Int(bytes[b])
                let block = out.baseAddress! + b * blockSize
                if n * w > 0 {
                    read(
                        UnsafeRawPointer(bytes.baseAddress! + at), width: w, n, readable: bytes.count - at, into: block)
                } else {
                    block.initialize(repeating: 0, count: n)
                }
                at += n * w
            }
            initialized = count
        }
    }

    /// `n` values of `w` bytes (1...8) from `source`, sign-extended; `readable` bytes lie
    /// between `source` and the end of the buffer. Offsets use wrapping arithmetic (they are
    /// below 8 · 64): checked multiplies kept the loops from vectorizing.
    private static func read(
        _ source: UnsafeRawPointer, width w: Int, _ n: Int, readable: Int, into block: UnsafeMutablePointer<Int64>
    ) {
        switch w {
        case 1: for i in 0..<n { block[i] = Int64(source.load(fromByteOffset: i, as: Int8.self)) }
        case 2:
            for i in 0..<n {
                block[i] = Int64(Int16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self)))
            }
        case 4:
            for i in 0..<n {
                block[i] = Int64(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self)))
            }
        case 8:
            for i in 0..<n {
                block[i] = Int64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
            }
        default:
            // 3, 5, 6 or 7 bytes (3 is LeNet-5's commonest, 5 its next): eight bytes loaded,
            // the next value's bytes shifted out at the top and the sign spread back by an
            // arithmetic shift. The last values, whose eight bytes would run past the buffer,
            // are assembled byte by byte.
            let unused = UInt64(64 &- 8 &* w)
            let whole = readable >= 8 ? min(n, (readable &- 8) / w &+ 1) : 0
            for i in 0..<whole {
                let bits = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i &* w, as: UInt64.self))
                block[i] = Int64(bitPattern: bits &<< unused) &>> unused
            }
            for i in whole..<n {
                var bits: UInt64 = 0
                for k in 0..<w {
                    bits |= UInt64(source.load(fromByteOffset: w &* i &+ k, as: UInt8.self)) &<< (8 &* k)
                }
                block[i] = Int64(bitPattern: bits &<< unused) &>> unused
            }
        }
    }
}
