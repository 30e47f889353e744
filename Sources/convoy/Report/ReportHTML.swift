import ConvoyEngine
import Foundation

/// The run report: one self-contained HTML page (inline SVG and CSS, no script, nothing
/// fetched) drawn from a run's epoch records and, when a model was evaluated, its confusion
/// matrix. Every string from a file or a peer is escaped with `html(_:)`.
struct RunReport {
    var title: String
    var epochs: [EpochRecord]
    var evaluation: Evaluate.Result?

    func render() -> String {
        var sections = [
            SVGChart.lineChart(
                id: "chart-loss", title: "Training loss per epoch", xLabel: "epoch", yLabel: "loss",
                series: [series("train loss", 0) { $0.loss }], yFromZero: true, integerX: true),
            SVGChart.lineChart(
                id: "chart-accuracy", title: "Accuracy per epoch", xLabel: "epoch", yLabel: "accuracy (%)",
                series: [
                    series("train", 0) { $0.trainAccuracy * 100 }, series("test", 1) { $0.testAccuracy * 100 },
                ], integerX: true),
            SVGChart.lineChart(
                id: "chart-throughput", title: "Throughput per epoch", xLabel: "epoch", yLabel: "samples/s",
                series: [series("samples/s", 2) { $0.samplesPerSec }], yFromZero: true, integerX: true),
        ]
        sections += workerSections()
        sections.append(configTable())
        if let evaluation {
            sections.append(
                "<p>\(html(evaluation.model)) on \(evaluation.samples) test samples: accuracy "
                    + "\(html(percent(evaluation.accuracy))), loss \(html(format(evaluation.loss, 4))), parameter "
                    + "checksum \(html(evaluation.parameterChecksum))</p>\n"
                    + SVGChart.heatmap(
                        id: "chart-confusion", title: "Confusion matrix (rows: true label, columns: predicted)",
                        matrix: evaluation.confusion))
        } else {
            sections.append("<p class=\"none\">No confusion matrix: no model was evaluated (--model-file).</p>\n")
        }
        return page(sections)
    }

    /// One series over the epochs.
    private func series(_ name: String, _ color: Int, _ value: (EpochRecord) -> Double) -> ChartSeries {
        ChartSeries(
            name: name, points: epochs.map { (x: Double($0.epoch), y: value($0)) }, color: SVGChart.color(color))
    }

    /// Slice time per worker across epochs (a straggler's line sits apart) and joins and drops;
    /// a one-process run has neither.
    func workerSections() -> [String] {
        let workers = epochs.map { $0.workerStepMs?.count ?? 0 }.max() ?? 0
        guard workers > 0 else { return ["<p class=\"none\">One process: no per-worker figures.</p>\n"] }
        // A worker with no slice in an epoch (not yet joined, dropped) has 0 there: left out.
        let lines = (0..<workers).map { w in
            ChartSeries(
                name: "worker \(w)",
                points: epochs.compactMap { record in
                    guard let ms = record.workerStepMs, w < ms.count, ms[w] > 0 else { return nil }
                    return (x: Double(record.epoch), y: ms[w])
                }, color: SVGChart.color(w))
        }
        var out = [
            SVGChart.lineChart(
                id: "chart-workers", title: "Mean slice time per worker", xLabel: "epoch", yLabel: "ms per slice",
                series: lines, yFromZero: true, integerX: true) + straggler(lines)
        ]
        let events = epochs.flatMap { $0.events ?? [] }
        out.append(SVGChart.eventChart(id: "chart-events", title: "Workers joining and dropped", events: events))
        out.append(eventTable(events))
        return out
    }

    /// Names the worker whose mean slice time is furthest above the median of the others'.
    func straggler(_ lines: [ChartSeries]) -> String {
        let means = lines.filter { !$0.points.isEmpty }.map {
            (name: $0.name, ms: $0.points.map { $0.y }.reduce(0, +) / Double($0.points.count))
        }
        guard means.count > 1, let slowest = means.indices.max(by: { means[$0].ms < means[$1].ms }) else {
            return ""
        }
        let others = means.indices.filter { $0 != slowest }.map { means[$0].ms }.sorted()
        let median =
            others.count % 2 == 1
            ? others[others.count / 2] : (others[others.count / 2 - 1] + others[others.count / 2]) / 2
        let ratio = median > 0 ? " (\(format(means[slowest].ms / median, 2))× the others' median)" : ""
        return "<p class=\"straggler\">Slowest: \(html(means[slowest].name)), "
            + "\(html(SVGChart.short(means[slowest].ms))) ms per slice against a median of "
            + "\(html(SVGChart.short(median))) ms for the others\(html(ratio)).</p>\n"
    }

    /// The resolved training flags of the run's first JSON line, by flag name.
    func configTable() -> String {
        // The run's own line, else what the evaluated model file recorded.
        guard let config = epochs.lazy.compactMap(\.config).first ?? evaluation?.config, !config.isEmpty else {
            return "<p class=\"none\">No training configuration recorded (older run output).</p>\n"
        }
        var out = "<h2>Training configuration</h2>\n<table class=\"events\"><tr><th>flag</th><th>value</th></tr>\n"
        for (key, value) in config.sorted(by: { $0.key < $1.key }) {
            out += "<tr><td>--\(html(peerText(key)))</td><td>\(html(peerText(value)))</td></tr>\n"
        }
        return out + "</table>\n"
    }

    func eventTable(_ events: [EpochRecord.WorkerEvent]) -> String {
        guard !events.isEmpty else { return "<p class=\"none\">No worker joined or was dropped.</p>\n" }
        var out = "<table class=\"events\"><tr><th>t (s)</th><th>worker</th><th>event</th><th>reason</th></tr>\n"
        for e in events {
            out += "<tr><td>\(html(SVGChart.short(e.t)))</td><td>\(e.worker)</td><td>\(html(peerText(e.event)))</td>"
            out += "<td>\(html(peerText(e.reason ?? "")))</td></tr>\n"
        }
        return out + "</table>\n"
    }

    func page(_ sections: [String]) -> String {
        let last = epochs.last
        let summary =
            last.map {
                "\(epochs.count) epoch(s); last: loss \(format($0.loss, 4)), test accuracy "
                    + "\(percent($0.testAccuracy)), "
                    + "\(Int($0.samplesPerSec.rounded())) samples/s"
            } ?? ""
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>\(html(title))</title>
            <style>
            body { font-family: sans-serif; margin: 24px; color: #222; }
            svg { display: block; margin: 12px 0; background: #fff; }
            table.events { border-collapse: collapse; font-size: 12px; }
            table.events td, table.events th { border: 1px solid #ccc; padding: 2px 6px; }
            .none { color: #777; }
            </style></head><body>
            <h1>\(html(title))</h1>
            <p>\(html(summary))</p>
            \(sections.joined(separator: "\n"))
            </body></html>

            """
    }
}
