@testable import ConvoyEngine

/// Plain-loop reference implementations in Double, written straight from docs/SPEC.md §3–4
/// with no im2col, no BLAS and no shared code with the engine's fast paths.
enum Reference {
    /// Conv2d forward: `a[n,m,i,j] = Σ_k Σ_s Σ_t x_pad[n,k,i·Sh+s,j·Sw+t] w[m,k,s,t] + b[m]`.
    /// `ph`/`pw` pixels before the input (top, left), `phAfter`/`pwAfter` after it (default:
    /// the same); `edge` reads the nearest edge pixel instead of 0 in the padding.
    static func conv2dForward(
        x: [Double], w: [Double], b: [Double], n: Int, c: Int, h: Int, wd: Int,
        m: Int, fh: Int, fw: Int, sh: Int, sw: Int, ph: Int, pw: Int,
        phAfter: Int? = nil, pwAfter: Int? = nil, edge: Bool = false
    )
        -> (y: [Double], ho: Int, wo: Int)
    {
        let ho = (h + ph + (phAfter ?? ph) - fh) / sh + 1
        let wo = (wd + pw + (pwAfter ?? pw) - fw) / sw + 1
        var y = [Double](repeating: 0, count: n * m * ho * wo)
        for s0 in 0..<n {
            for o in 0..<m {
                for i in 0..<ho {
                    for j in 0..<wo {
                        var acc = b[o]
                        for k in 0..<c {
                            for s in 0..<fh {
                                for t in 0..<fw {
                                    guard let (r, q) = source(i * sh + s - ph, j * sw + t - pw, h, wd, edge) else {
                                        continue
                                    }
                                    acc += x[((s0 * c + k) * h + r) * wd + q] * w[((o * c + k) * fh + s) * fw + t]
                                }
                            }
                        }
                        y[((s0 * m + o) * ho + i) * wo + j] = acc
                    }
                }
            }
        }
        return (y, ho, wo)
    }

    /// Conv2d backward by the same sums: every product x·w contributes dy·w to dx and dy·x to dw.
    static func conv2dBackward(
        x: [Double], w: [Double], dy: [Double], n: Int, c: Int, h: Int, wd: Int,
        m: Int, fh: Int, fw: Int, sh: Int, sw: Int, ph: Int, pw: Int,
        phAfter: Int? = nil, pwAfter: Int? = nil, edge: Bool = false
    )
        -> (dx: [Double], dw: [Double], db: [Double])
    {
        let ho = (h + ph + (phAfter ?? ph) - fh) / sh + 1
        let wo = (wd + pw + (pwAfter ?? pw) - fw) / sw + 1
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: m)
        for s0 in 0..<n {
            for o in 0..<m {
                for i in 0..<ho {
                    for j in 0..<wo {
                        let g = dy[((s0 * m + o) * ho + i) * wo + j]
                        db[o] += g
                        for k in 0..<c {
                            for s in 0..<fh {
                                for t in 0..<fw {
                                    guard let (r, q) = source(i * sh + s - ph, j * sw + t - pw, h, wd, edge) else {
                                        continue
                                    }
                                    let xi = ((s0 * c + k) * h + r) * wd + q
                                    let wi = ((o * c + k) * fh + s) * fw + t
                                    dx[xi] += g * w[wi]
                                    dw[wi] += g * x[xi]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dw, db)
    }

    /// Conv1d forward, written separately in 1-D indices: `a[n,m,i] = Σ_k Σ_s x_pad[n,k,i·S+s] w[m,k,s] + b[m]`.
    static func conv1dForward(
        x: [Double], w: [Double], b: [Double], n: Int, c: Int, l: Int,
        m: Int, f: Int, stride: Int, pad: Int, padAfter: Int? = nil,
        edge: Bool = false
    ) -> [Double] {
        let lo = (l + pad + (padAfter ?? pad) - f) / stride + 1
        var y = [Double](repeating: 0, count: n * m * lo)
        for s0 in 0..<n {
            for o in 0..<m {
                for i in 0..<lo {
                    var acc = b[o]
                    for k in 0..<c {
                        for s in 0..<f {
                            guard let (_, p) = source(0, i * stride + s - pad, 1, l, edge) else { continue }
                            acc += x[(s0 * c + k) * l + p] * w[(o * c + k) * f + s]
                        }
                    }
                    y[(s0 * m + o) * lo + i] = acc
                }
            }
        }
        return y
    }

    /// The input pixel a padded coordinate reads: nil in zero padding, the nearest edge pixel
    /// in edge padding.
    static func source(_ r: Int, _ q: Int, _ h: Int, _ w: Int, _ edge: Bool) -> (Int, Int)? {
        if edge { return (min(max(r, 0), h - 1), min(max(q, 0), w - 1)) }
        return r >= 0 && r < h && q >= 0 && q < w ? (r, q) : nil
    }

    /// `same` padding written out from its definition: output `ceil(N/S)`, the missing
    /// pixels split with the odd one after.
    static func samePadding(input: Int, kernel: Int, stride: Int) -> (before: Int, after: Int) {
        let output = Int((Double(input) / Double(stride)).rounded(.up))
        let total = max(0, (output - 1) * stride + kernel - input)
        return (total / 2, total - total / 2)
    }

    /// Pooling forward and backward; max pooling routes to the first arg-max of each window.
    static func pool(
        x: [Double], dy: [Double]?, planes: Int, h: Int, w: Int, wh: Int, ww: Int, sh: Int, sw: Int, max isMax: Bool
    )
        -> (y: [Double], dx: [Double])
    {
        let ho = (h - wh) / sh + 1
        let wo = (w - ww) / sw + 1
        var y = [Double](repeating: 0, count: planes * ho * wo)
        var dx = [Double](repeating: 0, count: x.count)
        for p in 0..<planes {
            for i in 0..<ho {
                for j in 0..<wo {
                    var best = -Double.infinity
                    var bestIndex = 0
                    var total = 0.0
                    for s in 0..<wh {
                        for t in 0..<ww {
                            let idx = (p * h + i * sh + s) * w + j * sw + t
                            total += x[idx]
                            if x[idx] > best {
                                best = x[idx]
                                bestIndex = idx
                            }
                        }
                    }
                    let o = (p * ho + i) * wo + j
                    y[o] = isMax ? best : total / Double(wh * ww)
                    if let dy {
                        if isMax {
                            dx[bestIndex] += dy[o]
                        } else {
                            for s in 0..<wh {
                                for t in 0..<ww { dx[(p * h + i * sh + s) * w + j * sw + t] += dy[o] / Double(wh * ww) }
                            }
                        }
                    }
                }
            }
        }
        return (y, dx)
    }

    /// Dense: `a = x·W + b`, `dW = xᵀ·da`, `db = Σ da`, `dx = da·Wᵀ`.
    static func dense(x: [Double], w: [Double], b: [Double], dy: [Double], n: Int, inputs: Int, outputs: Int)
        -> (y: [Double], dx: [Double], dw: [Double], db: [Double])
    {
        var y = [Double](repeating: 0, count: n * outputs)
        var dx = [Double](repeating: 0, count: n * inputs)
        var dw = [Double](repeating: 0, count: inputs * outputs)
        var db = [Double](repeating: 0, count: outputs)
        for s in 0..<n {
            for o in 0..<outputs {
                var acc = b[o]
                for i in 0..<inputs { acc += x[s * inputs + i] * w[i * outputs + o] }
                y[s * outputs + o] = acc
                let g = dy[s * outputs + o]
                db[o] += g
                for i in 0..<inputs {
                    dw[i * outputs + o] += x[s * inputs + i] * g
                    dx[s * inputs + i] += g * w[i * outputs + o]
                }
            }
        }
        return (y, dx, dw, db)
    }
}
