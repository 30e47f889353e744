import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Compute gradients for a coordinator; needs no dataset.",
        discussion: "Keeps trying to reach the coordinator (with backoff), so it may start before it.")

    @Option(name: .customLong("connect"), help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.")
    var connectFlag: String?
    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var fromEnv: FromEnvOptions
    @OptionGroup var logs: LogOptions
    @Option(help: "OpenBLAS threads (one per worker process keeps N workers on N cores).") var threads = 1
    @Option(name: .customLong("connect-timeout"), help: "Seconds to keep trying to reach a coordinator.")
    var connectTimeout: Double = 300
    @Option(name: .customLong("idle-timeout"), help: "Seconds of coordinator silence before giving up.")
    var idleTimeout: Double = 300
    @Option(help: "Pin this worker to one CPU (0-based), e.g. one worker per core; with --slots K, CPUs CPU..CPU+K-1.")
    var cpu: Int?
    @Option(
        help:
            "Compute threads in this process; their exact gradient sums are added before one send (one peer per host).")
    var slots = 1
    @Option(name: .customLong("server-key"), help: "The coordinator's CURVE public key file (its .pub).") var serverKey:
        String?
    @Option(help: "This worker's CURVE secret key file (from convoy keygen).") var key: String?
    @Flag(help: "Allow connecting to a non-loopback address without CURVE: the data and gradients travel in clear.")
    var insecure = false
    @Option(
        name: .customLong("inject-fault"),
        help: ArgumentHelp(
            "Tests only: corrupt one result on purpose, step:N (a slice of step N) or rate:P (each slice with "
                + "probability P), or slow:MS (each slice MS ms late); needs \(FaultInjection.environmentVariable)=1.",
            visibility: .hidden))
    var injectFault: String?
    @Option(
        name: .customLong("max-memory"),
        help: "Most memory a run may take, e.g. 512M or 4G (default: half of this host's RAM); a larger run is refused."
    )
    var maxMemory: String?
    @OptionGroup var gradientEncoding: GradientEncodingOption

    func validate() throws {
        try validatePlacement()
        try checkFlag("threads", threads, in: FlagRange.threads)
        try checkFlag("slots", slots, in: FlagRange.slots)
        if let cpu { try checkFlag("cpu", cpu, in: 0...FlagRange.maxCPU) }
        guard Endpoint.isKnown(connect) else {
            throw ValidationError("--connect \(connect) is not \(Endpoint.schemesText)")
        }
        if Endpoint.isSharedMemory(connect) && key != nil {
            throw ValidationError(ErrorWording.sharedMemoryTakesNoCurve(flag: "--connect", endpoint: connect))
        }
        try checkSeconds("connect-timeout", connectTimeout)
        try checkSeconds("idle-timeout", idleTimeout)
        guard (serverKey == nil) == (key == nil) else { throw ValidationError("--server-key and --key go together") }
        if key == nil && !insecure && !isLoopback(connect) {
            throw ValidationError(
                "refusing to connect to \(connect) without CURVE: anyone on the way could read the weights and "
                    + "the training data or alter the gradients; give --server-key and --key (see convoy keygen), "
                    + "or --insecure on a trusted network"
            )
        }
        if let injectFault {
            // Never by accident in production: the flag alone is refused.
            guard ProcessInfo.processInfo.environment[FaultInjection.environmentVariable] == "1" else {
                throw ValidationError(
                    "--inject-fault corrupts this worker's results on purpose and is for tests only: set "
                        + "\(FaultInjection.environmentVariable)=1 to allow it")
            }
            guard FaultInjection(spec: injectFault) != nil else {
                throw ValidationError(
                    "--inject-fault \(injectFault): use step:N (one slice at step N), rate:P (0 < P ≤ 1) or slow:MS")
            }
        }
        _ = try memoryBound()
    }

    /// `--max-memory` as bytes, or the host's default.
    func memoryBound() throws -> MemoryBound {
        guard let maxMemory else { return .hostDefault() }
        guard let bytes = MemoryBound.parse(maxMemory) else {
            throw ValidationError(
                "--max-memory \(peerText(maxMemory)): not a size (bytes, or a number with K, M, G or T)")
        }
        guard bytes >= MemoryBound.minimum else {
            throw ValidationError(
                "--max-memory \(maxMemory) is below \(MemoryBound.minimum >> 20)M, less than a worker process needs")
        }
        return MemoryBound(bytes: bytes, source: "--max-memory")
    }

    func run() throws {
        reportingErrors {
            BLAS.setThreads(threads)
            var runner = WorkerRunner(endpoint: connect, threads: threads, log: Log.line)
            // From its welcome on, this worker's lines name it as its coordinator does (w3@host:pid).
            runner.joined = { ProcessIdentity.current.workerID = $0 }
            runner.timing.connectTimeout = connectTimeout
            runner.timing.idleTimeout = idleTimeout
            runner.cpu = cpu
            runner.slots = slots
            runner.fault = injectFault.flatMap { FaultInjection(spec: $0) }
            runner.memory = try memoryBound()
            runner.gradientEncoding = gradientEncoding.resolved(for: connect)
            if let serverKey, let key {
                runner.curve = (
                    try CurveKeyPair.readKey(path: serverKey, what: "--server-key"),
                    try CurveKeyPair(secretKey: try CurveKeyPair.readSecretKey(path: key, what: "--key"))
                )
            }
            do { try runner.run() } catch let ClusterError.coordinatorStopped(reason) {
                // Not an error: the run goes on when the coordinator is started again, and a
                // supervisor restarts this worker on the requeue status to take part.
                Log.line(
                    "coordinator stopped the run early: \(peerText(reason)); exiting with status "
                        + "\(ExitStatus.preempted)")
                throw ExitCode(ExitStatus.preempted)
            }
        }
    }
}
