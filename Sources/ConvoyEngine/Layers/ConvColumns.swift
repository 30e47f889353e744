/// The general column path of the convolutions (docs/SPEC.md §3.3): im2col lays a sample's
/// receptive fields out as the columns of one matrix, col2im is its adjoint. Any padding
/// size, zeros or edge (ConvPadding.swift); the C kernels cover the common zero-padded case
/// faster (ConvolutionFused.swift), and the tests check both give the same bits.

/// A short copy (a few dozen floats) without the call overhead of memmove, which dominated
/// im2col when every image row was its own `memmove`.
@inline(__always)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    typealias V8 = SIMD8<Float>
    typealias V4 = SIMD4<Float>
    let d = UnsafeMutableRawPointer(dst)
    let s = UnsafeRawPointer(src)
    if count >= 8 {
        var k = 0
        while k &+ 8 <= count {
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: k &* 4, as: V8.self), toByteOffset: k &* 4, as: V8.self)
            k &+= 8
        }
        // The tail as one overlapping vector: rewriting a few equal values is cheaper than a
        // scalar loop (LeNet's rows are 28 and 10 wide).
        if k < count {
            let last = (count &- 8) &* 4
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: last, as: V8.self), toByteOffset: last, as: V8.self)
        }
    } else if count >= 4 {
        d.storeBytes(of: s.loadUnaligned(as: V4.self), as: V4.self)
        let last = (count &- 4) &* 4
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: last, as: V4.self), toByteOffset: last, as: V4.self)
    } else {
        for k in 0..<count { dst[k] = src[k] }
    }
}

/// The output columns `j` whose input column `j·S + t − P` lies inside `[0, width)`.
@inline(__always)
private func validColumns(kernelOffset t: Int, stride: Int, padding: Int, width: Int, outWidth: Int) -> Range<Int> {
    let low = max(0, (padding - t + stride - 1) / stride)  // ceil, numerator may be ≤ 0
    let highNumerator = width - 1 + padding - t
    guard highNumerator >= 0 else { return 0..<0 }
    let high = min(outWidth - 1, highNumerator / stride)
    return low <= high ? low..<(high + 1) : 0..<0
}

/// `col[(c·Fh + s)·Fw + t][i·Wo + j] = x[c][i·Sh + s − Ph][j·Sw + t − Pw]`, 0 in the padding.
/// `rowStride` is the distance between rows of `col`, so several samples can share one matrix.
func im2col(_ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, rowStride: Int, _ g: ConvGeometry) {
    if g.paddingMode == .edge { return im2colEdge(x, into: col, rowStride: rowStride, g) }
    let (H, W, Ho, Wo) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
    var row = col
    for c in 0..<g.inChannels {
        let plane = x + c * H * W
        for s in 0..<g.kernelHeight {
            for t in 0..<g.kernelWidth {
                let cols = validColumns(
                    kernelOffset: t, stride: g.strideWidth, padding: g.paddingWidth, width: W, outWidth: Wo)
                for i in 0..<Ho {
                    let dst = row + i * Wo
                    let h = i * g.strideHeight + s - g.paddingHeight
                    if h < 0 || h >= H || cols.isEmpty {
                        dst.update(repeating: 0, count: Wo)
                        continue
                    }
                    if cols.lowerBound > 0 { dst.update(repeating: 0, count: cols.lowerBound) }
                    if cols.upperBound < Wo {
                        (dst + cols.upperBound).update(repeating: 0, count: Wo - cols.upperBound)
                    }
                    let src = plane + h * W + t - g.paddingWidth
                    if g.strideWidth == 1 {
                        copyFloats(dst + cols.lowerBound, src + cols.lowerBound, cols.count)
                    } else {
                        for j in cols { dst[j] = src[j * g.strideWidth] }
                    }
                }
                row += rowStride
            }
        }
    }
}

/// The adjoint of `im2col`: `dx` is zeroed, then every column entry is added back to the
/// input element it was copied from; entries that came from the padding are dropped.
func col2im(_ col: UnsafePointer<Float>, rowStride: Int, into dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    if g.paddingMode == .edge { return col2imEdge(col, rowStride: rowStride, into: dx, g) }
    let (H, W, Ho, Wo) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
    dx.update(repeating: 0, count: g.inSize)
    var row = col
    for c in 0..<g.inChannels {
        let plane = dx + c * H * W
        for s in 0..<g.kernelHeight {
            for t in 0..<g.kernelWidth {
                let cols = validColumns(
                    kernelOffset: t, stride: g.strideWidth, padding: g.paddingWidth, width: W, outWidth: Wo)
                if !cols.isEmpty {
                    for i in 0..<Ho {
                        let h = i * g.strideHeight + s - g.paddingHeight
                        if h < 0 || h >= H { continue }
                        let src = row + i * Wo
                        let dst = plane + h * W + t - g.paddingWidth
                        if g.strideWidth == 1 {
                            for j in cols { dst[j] += src[j] }
                        } else {
                            for j in cols { dst[j * g.strideWidth] += src[j] }
                        }
                    }
                }
                row += rowStride
            }
        }
    }
}
