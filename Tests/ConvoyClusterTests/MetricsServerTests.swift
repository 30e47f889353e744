import ConvoyCluster
import Foundation
import NIOHTTP1
import Testing
@testable import convoy

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The /metrics server (issue 11): its routes, the HELP lines the exposition gains, the drop
/// reasons' labels, and a real server on a free port answering over HTTP/1.1.
@Suite struct MetricsServerTests {
    static let exposition = "# TYPE convoy_steps_total counter\nconvoy_steps_total 3\n"

    @Test func routes() {
        let text = { Self.exposition }
        #expect(MetricsRoute.response(method: .GET, uri: "/metrics", exposition: text) == (.ok, Self.exposition))
        #expect(MetricsRoute.response(method: .GET, uri: "/metrics?x=1", exposition: text).0 == .ok)
        #expect(MetricsRoute.response(method: .HEAD, uri: "/metrics", exposition: text).0 == .ok)
        #expect(MetricsRoute.response(method: .POST, uri: "/metrics", exposition: text).0 == .methodNotAllowed)
        for uri in ["/", "/metricsx", "/metrics/", "/other", ""] {
            #expect(MetricsRoute.response(method: .GET, uri: uri, exposition: text).0 == .notFound, "\(uri)")
        }
    }

    @Test func helpLinesComeBeforeTypeLinesOfKnownFamilies() {
        let raw = Self.exposition + "# TYPE other_metric gauge\nother_metric 1\n"
        let lines = MetricCatalogue.addingHelp(to: raw).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "# HELP convoy_steps_total \(MetricCatalogue.help[MetricCatalogue.steps]!)")
        #expect(lines[1] == "# TYPE convoy_steps_total counter")
        #expect(lines[3] == "# TYPE other_metric gauge", "an unknown family gains no HELP")
        #expect(lines.last == "", "the final newline is kept")
        // A family that has its HELP already keeps just that one.
        let once = MetricCatalogue.addingHelp(to: MetricCatalogue.addingHelp(to: raw))
        #expect(once == MetricCatalogue.addingHelp(to: raw))
    }

    @Test func everyMetricHasHelpAndTheConvoyPrefix() {
        let names = [
            MetricCatalogue.steps, MetricCatalogue.samples, MetricCatalogue.samplesPerSecond,
            MetricCatalogue.trainLoss, MetricCatalogue.testAccuracy, MetricCatalogue.epoch,
            MetricCatalogue.liveWorkers, MetricCatalogue.joins, MetricCatalogue.drops, MetricCatalogue.sentBytes,
            MetricCatalogue.receivedBytes, MetricCatalogue.sliceSeconds, MetricCatalogue.stepSeconds,
        ]
        #expect(Set(names) == Set(MetricCatalogue.help.keys))
        for name in names { #expect(name.hasPrefix("convoy_") && name.allSatisfy { $0.isLetter || $0 == "_" }) }
    }

    @Test func dropReasonsAreAFewLabels() {
        let cases = [
            ("missed the 5 s step deadline", "deadline"),
            ("sent an invalid message (truncated frame)", "invalid_message"),
            ("refused step 7 (its own problem: out of memory)", "refused"),
            ("sent a bad result (loss sum nan)", "bad_result"),
            ("computed slice 2 of step 9 wrong (audit: w0 and w1 returned another result)", "audit"),
            ("does not read: its send queue is full", "send_queue_full"),
            ("is unreachable", "unreachable"),
            ("something new", "other"),
        ]
        for (reason, label) in cases { #expect(MetricCatalogue.dropReason(reason) == label, "\(reason)") }
    }

    @Test func servesOverHTTPOnAFreePort() async throws {
        let server = try MetricsServer(host: "127.0.0.1", port: 0) { Self.exposition }
        defer { server.close() }
        #expect(server.port > 0)
        let base = "http://127.0.0.1:\(server.port)"
        let (body, response) = try await URLSession.shared.data(from: URL(string: "\(base)/metrics")!)
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == 200)
        #expect(String(decoding: body, as: UTF8.self) == Self.exposition)
        #expect(http.value(forHTTPHeaderField: "Content-Type") == MetricsRoute.contentType)
        let (_, missing) = try await URLSession.shared.data(from: URL(string: "\(base)/nothing")!)
        #expect((missing as? HTTPURLResponse)?.statusCode == 404)
    }

    @Test func aPortInUseIsOneLineBeforeAnyBackendIsSetUp() throws {
        let server = try MetricsServer(host: "127.0.0.1", port: 0) { "" }
        defer { server.close() }
        let options = try MetricsOptions.parse(["--metrics-port", String(server.port)])
        let error = #expect(throws: FlagError.self) { try options.start(log: { _ in }) }
        #expect(
            error?.description == "--metrics-port \(server.port): 127.0.0.1 port \(server.port) is in use; "
                + "choose another, or 0 for any free port")
    }

    @Test func flagsAreChecked() {
        #expect(throws: (any Error).self) { try MetricsOptions.parse(["--metrics-port", "65536"]) }
        #expect(throws: (any Error).self) { try MetricsOptions.parse(["--metrics-port", "-1"]) }
        #expect(throws: (any Error).self) {
            try MetricsOptions.parse(["--metrics-port", "1", "--metrics-address", "x"])
        }
        #expect(throws: (any Error).self) { try MetricsOptions.parse(["--metrics-address", "127.0.0.1"]) }
        #expect((try? MetricsOptions.parse(["--metrics-port", "0", "--metrics-address", "::1"])) != nil)
        let options = try? MetricsOptions.parse(["--metrics-port", "9", "--metrics-address", "0.0.0.0"])
        #expect(options?.arguments == ["--metrics-port", "9", "--metrics-address", "0.0.0.0"])
    }
}
