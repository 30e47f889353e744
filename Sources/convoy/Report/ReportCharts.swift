import ConvoyEngine
import Foundation

extension SVGChart {
    /// A matrix of counts as a heatmap with each count written in its cell: rows are true
    /// labels, columns predictions. Shading follows the square root of count / largest count,
    /// so the few mistakes beside a full diagonal still show.
    static func heatmap(id: String, title: String, matrix: [[Int]]) -> String {
        let rows = matrix.count
        let columns = matrix.map(\.count).max() ?? 0
        let cell = min(32.0, 320 / Double(max(rows, 1)), 400 / Double(max(columns, 1)))
        let left = 80.0
        let top = 64.0
        let largest = Double(max(matrix.flatMap { $0 }.max() ?? 1, 1))
        var body = text(width / 2, 18, title, anchor: "middle", weight: "bold")
        body += text(left + cell * Double(columns) / 2, top - 26, "predicted", anchor: "middle")
        body += text(left - 40, top + cell * Double(rows) / 2, "true", anchor: "middle")
        for (r, row) in matrix.enumerated() {
            body += text(left - 8, top + cell * (Double(r) + 0.65), String(r), anchor: "end")
            for (c, count) in row.enumerated() {
                let shade = (Double(count) / largest).squareRoot()
                let level = Int((1 - shade) * 235) + 20
                let fill = "rgb(\(level),\(level + (255 - level) / 3),255)"
                let x = left + cell * Double(c)
                let y = top + cell * Double(r)
                body += "<rect class=\"cell\" x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" "
                body += "width=\"\(coordinate(cell))\" height=\"\(coordinate(cell))\" fill=\"\(fill)\" stroke=\"#fff\">"
                body += "<title>true \(r), predicted \(c): \(count)</title></rect>"
                body +=
                    text(
                        x + cell / 2, y + cell * 0.62, String(count), anchor: "middle",
                        fill: shade > 0.5 ? "#fff" : "#222") + "\n"
            }
        }
        for c in 0..<columns {
            body += text(left + cell * (Double(c) + 0.5), top - 6, String(c), anchor: "middle")
        }
        return svg(id: id, title: title, body: body, height: top + cell * Double(rows) + 16)
    }

    /// Workers joining (green circle) and dropped (red square) on the time axis, one row per
    /// worker id; the reason is the mark's tooltip.
    static func eventChart(id: String, title: String, events: [EpochRecord.WorkerEvent]) -> String {
        let workers = (events.map(\.worker).max() ?? 0) + 1
        let x = LinearScale(
            domain: LinearScale.extent(events.map(\.t) + [0], fromZero: true),
            range: (plot.left, plot.right))
        let y = LinearScale(domain: -0.5...(Double(workers) - 0.5), range: (plot.top, plot.bottom))
        var body = text(width / 2, 18, title, anchor: "middle", weight: "bold")
        body += "<rect class=\"plot\" x=\"\(plot.left)\" y=\"\(plot.top)\" width=\"\(plot.right - plot.left)\" "
        body += "height=\"\(plot.bottom - plot.top)\" fill=\"none\" stroke=\"#999\"/>\n"
        for k in 0...4 {
            let t = x.domain.lowerBound + Double(k) / 4 * (x.domain.upperBound - x.domain.lowerBound)
            body += text(x(t), plot.bottom + 16, short(t), anchor: "middle")
        }
        body += text(
            (plot.left + plot.right) / 2, plot.bottom + 36, "seconds since the coordinator started", anchor: "middle")
        body += "<circle cx=\"\(plot.right + 21)\" cy=\"\(plot.top - 4)\" r=\"5\" fill=\"#2ca02c\"/>"
        body += text(plot.right + 30, plot.top, "joined", anchor: "start")
        body += "<rect x=\"\(plot.right + 16)\" y=\"\(plot.top + 7)\" width=\"10\" height=\"10\" fill=\"#d62728\"/>"
        body += text(plot.right + 30, plot.top + 16, "dropped", anchor: "start") + "\n"
        for w in 0..<workers { body += text(plot.left - 6, y(Double(w)) + 4, "w\(w)", anchor: "end") }
        for event in events {
            let cx = coordinate(x(event.t))
            let cy = coordinate(y(Double(event.worker)))
            let tip =
                "\(short(event.t)) s: worker \(event.worker) \(event.event)"
                + (event.reason.map { ": \(peerText($0))" } ?? "")
            if event.event == "dropped" {
                let corner = (x: x(event.t) - 5, y: y(Double(event.worker)) - 5)
                body += "<rect class=\"drop\" x=\"\(coordinate(corner.x))\" y=\"\(coordinate(corner.y))\" "
                body += "width=\"10\" height=\"10\" fill=\"#d62728\"><title>\(html(tip))</title></rect>\n"
            } else {
                body += "<circle class=\"join\" cx=\"\(cx)\" cy=\"\(cy)\" r=\"5\" fill=\"#2ca02c\">"
                body += "<title>\(html(tip))</title></circle>\n"
            }
        }
        return svg(id: id, title: title, body: body)
    }
}
