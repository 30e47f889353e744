import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import Metrics
import NIOCore
import NIOPosix
import Prometheus

#if canImport(Glibc)
    import Glibc
#endif

// Why swift-metrics and swift-prometheus: the cluster code records through the ecosystem's
// metrics API (no-ops until a backend is bootstrapped, so runs without --metrics-port pay
// nothing), and swift-prometheus is that API's maintained Prometheus backend: its registry
// writes the text exposition format that promtool checks, histograms included.

/// --metrics-port and --metrics-address of `train`, `coordinator` and `local` (which passes
/// them on to its coordinator).
struct MetricsOptions: ParsableArguments {
    @Option(
        name: .customLong("metrics-port"),
        help: ArgumentHelp(
            "Serve live Prometheus metrics at http://ADDRESS:P/metrics during the run (0: any free port, logged).",
            valueName: "port"))
    var port: Int?
    @Option(
        name: .customLong("metrics-address"),
        help: ArgumentHelp(
            "Address of the --metrics-port server (default 127.0.0.1); any other exposes the run's figures to "
                + "whoever can reach it.",
            valueName: "address"))
    var address: String?

    static let defaultAddress = "127.0.0.1"
    var host: String { address ?? Self.defaultAddress }

    func validate() throws {
        guard let port else {
            if let address { throw ValidationError("--metrics-address \(peerText(address)) needs --metrics-port") }
            return
        }
        try checkFlag("metrics-port", port, in: 0...65_535)
        guard (try? SocketAddress(ipAddress: host, port: 0)) != nil else {
            throw ValidationError(
                "--metrics-address \(peerText(host)): not a numeric IP address (e.g. 127.0.0.1, 0.0.0.0 or ::1)")
        }
    }

    /// These flags as arguments for a child process.
    var arguments: [String] {
        guard let port else { return [] }
        return ["--metrics-port", String(port)] + (address.map { ["--metrics-address", $0] } ?? [])
    }

    /// With --metrics-port: binds the server (failing here, before any data is read, when the
    /// port is taken or the address is not this host's), bootstraps the Prometheus backend
    /// and logs where the metrics are; nil without the flag.
    func start(log: (String) -> Void) throws -> LiveMetrics? {
        guard let port else { return nil }
        let registry = PrometheusCollectorRegistry()
        let server: MetricsServer
        do {
            server = try MetricsServer(host: host, port: port) {
                MetricCatalogue.addingHelp(to: registry.emitToString())
            }
        } catch let error as IOError {
            throw FlagError(bindProblem(error.errnoCode, port: port))
        } catch {
            throw FlagError("--metrics-port \(port): cannot serve on \(peerText(host)): \(error)")
        }
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = MetricCatalogue.secondsBuckets.map {
            .nanoseconds(Int64(($0 * 1e9).rounded()))
        }
        MetricsSystem.bootstrap(factory)
        let shown = host.contains(":") ? "[\(host)]" : host
        log("metrics at http://\(shown):\(server.port)/metrics")
        if !Endpoint.isLoopback("tcp://\(shown):\(server.port)") {
            log(
                "warning: --metrics-address \(host) serves the run's figures (loss, accuracy, workers, traffic) to "
                    + "anyone who can reach it")
        }
        return LiveMetrics(server: server, run: RunMetrics())
    }

    private func bindProblem(_ errno: Int32, port: Int) -> String {
        switch errno {
        case EADDRINUSE:
            return "--metrics-port \(port): \(host) port \(port) is in use; choose another, or 0 for any free port"
        case EADDRNOTAVAIL:
            return "--metrics-address \(host): not an address of this host"
        case EACCES:
            return "--metrics-port \(port): binding a port below 1024 needs privileges; choose a higher one"
        default:
            return "--metrics-port \(port): cannot bind \(host) port \(port) (errno \(errno))"
        }
    }
}

/// A run's live metrics: the session's figures (`RunMetrics`) and the server that keeps
/// serving them until the process ends.
final class LiveMetrics {
    let server: MetricsServer
    let run: RunMetrics
    init(server: MetricsServer, run: RunMetrics) {
        self.server = server
        self.run = run
    }

    func step(_ progress: StepProgress, plan: BatchPlan) { run.step(progress, plan: plan) }
    func epoch(_ report: EpochReport) { run.epoch(report) }
}
