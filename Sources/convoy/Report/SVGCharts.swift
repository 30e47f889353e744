import Foundation

/// A linear map from data values onto SVG coordinates. `range` may run backwards (a y axis
/// grows downwards in SVG, so the largest value maps to the plot's top).
struct LinearScale {
    let domain: ClosedRange<Double>
    let range: (from: Double, to: Double)

    func callAsFunction(_ value: Double) -> Double {
        let span = domain.upperBound - domain.lowerBound
        let fraction = span > 0 ? (value - domain.lowerBound) / span : 0.5
        return range.from + min(max(fraction, 0), 1) * (range.to - range.from)
    }

    /// The values' extent, from zero when `fromZero`; a single value is widened so it has room.
    static func extent(_ values: [Double], fromZero: Bool = false) -> ClosedRange<Double> {
        let finite = values.filter(\.isFinite)
        var low = finite.min() ?? 0
        var high = finite.max() ?? 1
        if fromZero { low = min(low, 0) }
        if high - low < 1e-12 {
            let pad = Swift.max(abs(high) * 0.1, 1e-3)
            low -= pad
            high += pad
        }
        return low...high
    }
}

/// One line of a chart: its points in data units and its colour.
struct ChartSeries {
    let name: String
    let points: [(x: Double, y: Double)]
    let color: String
}

/// Inline SVG charts of the run report. Every string drawn goes through `html(_:)`.
enum SVGChart {
    static let width = 640.0
    static let height = 300.0
    /// The plot area inside the margins: room on the left for y ticks, on the right for the legend.
    static let plot = (left: 64.0, right: 500.0, top: 34.0, bottom: 256.0)
    static let palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
        "#17becf",
    ]

    static func color(_ i: Int) -> String { palette[i % palette.count] }

    /// A number short enough for a tick or a tooltip.
    static func short(_ value: Double) -> String {
        guard value.isFinite else { return "n/a" }
        return abs(value) >= 1000 ? String(format: "%.0f", value) : String(format: "%.3g", value)
    }

    static func coordinate(_ value: Double) -> String { String(format: "%.1f", value) }

    /// A line chart with axes, five ticks on each, a dot per point (its value as a tooltip)
    /// and a legend. Points that are not finite are left out.
    static func lineChart(
        id: String, title: String, xLabel: String, yLabel: String, series: [ChartSeries], yFromZero: Bool = false,
        integerX: Bool = false
    ) -> String {
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let x = LinearScale(domain: LinearScale.extent(points.map { $0.x }), range: (plot.left, plot.right))
        let y = LinearScale(
            domain: LinearScale.extent(points.map { $0.y }, fromZero: yFromZero), range: (plot.bottom, plot.top))
        var body = axes(x: x, y: y, title: title, xLabel: xLabel, yLabel: yLabel, integerX: integerX)
        for (i, line) in series.enumerated() {
            let kept = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            let path = kept.map { "\(coordinate(x($0.x))),\(coordinate(y($0.y)))" }.joined(separator: " ")
            body += "<polyline class=\"series\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" "
            body += "points=\"\(path)\"/>\n"
            for p in kept {
                body += "<circle cx=\"\(coordinate(x(p.x)))\" cy=\"\(coordinate(y(p.y)))\" r=\"3\" "
                body += "fill=\"\(line.color)\"><title>\(html(line.name)): \(short(p.y)) at \(short(p.x))"
                body += "</title></circle>\n"
            }
            let legendY = plot.top + 16 * Double(i)
            body += "<rect x=\"\(coordinate(plot.right + 16))\" y=\"\(coordinate(legendY - 9))\" width=\"10\" "
            body += "height=\"10\" fill=\"\(line.color)\"/>"
            body += text(plot.right + 30, legendY, line.name, anchor: "start") + "\n"
        }
        return svg(id: id, title: title, body: body)
    }

    /// The frame, ticks and labels shared by the charts.
    /// With `integerX` (epochs) the x ticks are the whole numbers of the domain (at most 25).
    static func axes(
        x: LinearScale, y: LinearScale, title: String, xLabel: String, yLabel: String, integerX: Bool = false
    ) -> String {
        var out = text(width / 2, 18, title, anchor: "middle", weight: "bold")
        if integerX {
            let first = Int(x.domain.lowerBound.rounded(.up))
            let last = Int(x.domain.upperBound.rounded(.down))
            let every = max(1, (last - first) / 25 + 1)
            for tick in stride(from: first, through: last, by: every) {
                out += text(x(Double(tick)), plot.bottom + 16, String(tick), anchor: "middle")
            }
        }
        out += "<rect class=\"plot\" x=\"\(plot.left)\" y=\"\(plot.top)\" width=\"\(plot.right - plot.left)\" "
        out += "height=\"\(plot.bottom - plot.top)\" fill=\"none\" stroke=\"#999\"/>\n"
        for k in 0...4 {
            let fraction = Double(k) / 4
            let xv = x.domain.lowerBound + fraction * (x.domain.upperBound - x.domain.lowerBound)
            let yv = y.domain.lowerBound + fraction * (y.domain.upperBound - y.domain.lowerBound)
            if !integerX { out += text(x(xv), plot.bottom + 16, short(xv), anchor: "middle") }
            out += text(plot.left - 6, y(yv) + 4, short(yv), anchor: "end")
            out += "<line x1=\"\(plot.left)\" x2=\"\(plot.right)\" y1=\"\(coordinate(y(yv)))\" "
            out += "y2=\"\(coordinate(y(yv)))\" stroke=\"#eee\"/>\n"
        }
        out += text((plot.left + plot.right) / 2, plot.bottom + 36, xLabel, anchor: "middle")
        out += "<text x=\"14\" y=\"\(coordinate((plot.top + plot.bottom) / 2))\" text-anchor=\"middle\" "
        out += "transform=\"rotate(-90 14 \(coordinate((plot.top + plot.bottom) / 2)))\">\(html(yLabel))</text>\n"
        return out
    }

    static func text(
        _ x: Double, _ y: Double, _ content: String, anchor: String, weight: String = "normal", fill: String = "#222"
    ) -> String {
        "<text x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" text-anchor=\"\(anchor)\" font-weight=\"\(weight)\" "
            + "fill=\"\(fill)\">\(html(content))</text>"
    }

    static func svg(id: String, title: String, body: String, height: Double = height) -> String {
        "<svg id=\"\(html(id))\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" "
            + "height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
            + "aria-label=\"\(html(title))\" font-family=\"sans-serif\" font-size=\"11\">\n\(body)</svg>\n"
    }
}

/// `text` with the characters that HTML and SVG give a meaning escaped, so a model name or a
/// drop reason from a file can never become markup.
func html(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
