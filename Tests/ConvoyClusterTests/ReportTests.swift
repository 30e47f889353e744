@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing
@testable import convoy

/// The run report's builders (issue 11): escaping, the charts present, values inside the
/// plot area, and the join/drop records the coordinator adds to its epoch objects.
@Suite struct ReportTests {
    static let evil = "<script>alert('x')</script>&\""

    func epochs(slow worker: Int = 1) -> [EpochRecord] {
        (1...3).map { e in
            EpochRecord(
                epoch: e, loss: 1.0 / Double(e), trainAccuracy: 0.8 + 0.05 * Double(e),
                testAccuracy: 0.85 + 0.04 * Double(e), seconds: 10, samplesPerSec: 1000 + 100 * Double(e),
                workerStepMs: [10, 11, 10.5].enumerated().map { $0.offset == worker ? 50 : $0.element },
                events: e == 2 ? [.init(t: 12.5, event: "dropped", worker: 2, reason: ReportTests.evil)] : [])
        }
    }

    func confusion() -> Evaluate.Result {
        let matrix = (0..<10).map { r in (0..<10).map { c in r == c ? 900 + r : (r + c) % 3 } }
        return Evaluate.Result(
            model: ReportTests.evil, samples: 10_000, accuracy: 0.99, loss: 0.03, parameterChecksum: "0123abcd",
            confusion: matrix)
    }

    @Test func escapesEveryMarkupCharacter() {
        #expect(html("<a href=\"x\">&'</a>") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;")
        #expect(html("plain 1.5") == "plain 1.5")
    }

    @Test func aPageWithHostileStringsHasNoMarkupFromThem() {
        let page = RunReport(title: ReportTests.evil, epochs: epochs(), evaluation: confusion()).render()
        #expect(!page.contains("<script"))
        #expect(!page.contains("alert('x')"))
        #expect(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"))
    }

    @Test func everyChartIsPresent() {
        let page = RunReport(title: "run", epochs: epochs(), evaluation: confusion()).render()
        for id in [
            "chart-loss", "chart-accuracy", "chart-throughput", "chart-workers", "chart-events", "chart-confusion",
        ] {
            #expect(page.contains("<svg id=\"\(id)\""), "missing \(id)")
        }
        #expect(page.components(separatedBy: "<svg ").count - 1 == 6)
        #expect(page.components(separatedBy: "class=\"cell\"").count - 1 == 100)
        #expect(page.contains(">909<"))  // the counts are written in the cells
        #expect(page.contains("class=\"drop\""))
        // Nothing to fetch: the only URL is SVG's namespace name.
        #expect(!page.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("://"))
    }

    @Test func aOneProcessRunWithoutModelSaysWhatIsMissing() {
        var plain = epochs()
        for i in plain.indices {
            plain[i].workerStepMs = nil
            plain[i].events = nil
        }
        let page = RunReport(title: "train", epochs: plain, evaluation: nil).render()
        #expect(page.contains("chart-loss") && !page.contains("chart-workers") && !page.contains("chart-confusion"))
        #expect(page.contains("no per-worker figures") && page.contains("No confusion matrix"))
    }

    @Test func theStragglerIsNamed() {
        let page = RunReport(title: "run", epochs: epochs(slow: 1), evaluation: nil).render()
        #expect(page.contains("Slowest: worker 1, 50 ms"))
    }

    @Test func scalesMapTheDomainOntoThePlot() {
        let x = LinearScale(domain: 0...10, range: (64, 500))
        #expect(x(0) == 64 && x(10) == 500 && x(5) == 282)
        #expect(x(-3) == 64 && x(99) == 500)  // clamped, never outside the plot
        let y = LinearScale(domain: 2...4, range: (256, 34))
        #expect(y(2) == 256 && y(4) == 34 && y(3) == 145)
        let single = LinearScale.extent([7])
        #expect(single.lowerBound < 7 && single.upperBound > 7)
        #expect(LinearScale.extent([3, 5], fromZero: true) == 0...5)
    }

    @Test func everyPointLiesInThePlotAreaAndTheExtremesOnItsEdges() throws {
        let series = ChartSeries(name: "s", points: [(1, 100), (2, 4000), (3, -20)], color: "#000")
        let chart = SVGChart.lineChart(id: "c", title: "t", xLabel: "x", yLabel: "y", series: [series])
        let regex = try Regex(#"<circle cx="([0-9.]+)" cy="([0-9.]+)""#)
        let points = chart.matches(of: regex).map {
            (Double(String($0.output[1].substring!))!, Double(String($0.output[2].substring!))!)
        }
        #expect(points.count == 3)
        let plot = SVGChart.plot
        for (x, y) in points {
            #expect((plot.left...plot.right).contains(x) && (plot.top...plot.bottom).contains(y))
        }
        #expect(points[0].0 == plot.left && points[2].0 == plot.right)
        #expect(points[1].1 == plot.top && points[2].1 == plot.bottom)
    }

    @Test func parsesRunLinesAndNamesABadLine() throws {
        let good =
            #"{"epoch":1,"loss":0.5,"train_accuracy":0.9,"test_accuracy":0.91,"test_loss":0.3,"seconds":2,"#
            + #""samples_per_sec":1000,"learning_rate":0.01,"worker_step_ms":[1,2],"#
            + #""events":[{"t":0.5,"event":"joined","worker":1}]}"#
        let records = try RunRecords.parse(good + "\n\n", name: "run.jsonl")
        #expect(records.count == 1 && records[0].events?.first?.event == "joined")
        #expect(records[0].workerStepMs == [1, 2])
        #expect(throws: (any Error).self) { try RunRecords.parse(good + "\nnot json\n", name: "r") }
        do {
            _ = try RunRecords.parse(good + "\n{\"epoch\":\"nan\"}\n", name: "r")
            Issue.record("a bad line was accepted")
        } catch { #expect("\(error)".contains("line 2")) }
        #expect(throws: (any Error).self) { try RunRecords.parse("\n", name: "empty") }
    }

    @Test func theWorkerPoolRecordsJoinsAndDropsForTheEpochObject() throws {
        let stats = ClusterStatsRecorder()
        let spec = try ModelZoo.spec(named: "lenet5")
        let pool = WorkerPool(
            transport: RecordingTransport(), runID: 7, capacity: 4, stats: stats,
            welcome: { Welcome(workerID: $0, spec: spec, deterministic: true, microBatch: 8, sampleSize: 784) },
            log: { _ in })
        let hello = Message(runID: 0, payload: .hello(Hello(host: "h", pid: 5, threads: 1))).encoded()
        try pool.handleUnexpected(peer: [1], frame: hello)
        pool.drop(try #require(pool.liveIndex(of: [1])), because: "is unreachable")
        let first = stats.take(liveWorkers: 0)
        #expect(first.events.map(\.event) == ["joined", "dropped"])
        #expect(first.events[1].reason == "is unreachable" && first.events[1].worker == 0)
        #expect(first.events.allSatisfy { $0.t >= 0 })
        let json = String(decoding: try JSONEncoder().encode(first), as: UTF8.self)
        #expect(json.contains("\"events\":[{") && json.contains("\"event\":\"dropped\""))
        #expect(stats.take(liveWorkers: 0).events.isEmpty)  // each epoch's own events
    }
}
