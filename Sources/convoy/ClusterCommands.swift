import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Serve a training run to N workers over ZeroMQ.",
        discussion:
            "Binds a ROUTER socket, waits for --workers workers, then trains. Prints 'listening on ENDPOINT' on "
            + "stderr once bound."
    )

    // Optional so that --from-env can fill them (FromEnvOptions.swift has `bind` and `workers`).
    @Option(
        name: .customLong("bind"),
        help: ArgumentHelp(
            "Endpoint to bind, e.g. tcp://0.0.0.0:5555 or tcp://127.0.0.1:* (any free port); default "
                + "tcp://127.0.0.1:5555.")) var bindFlag: String?
    @Option(name: .customLong("workers"), help: "Workers to wait for before training.") var workersFlag: Int?
    @OptionGroup var fromEnv: FromEnvOptions
    @OptionGroup var training: TrainingOptions
    @Option(help: "Where to save the trained model.") var out = "lenet5.convoy"
    @Option(name: .customLong("join-timeout"), help: "Seconds to wait for the workers.") var joinTimeout: Double = 120
    @Option(
        name: .customLong("step-timeout"),
        help: "Seconds a worker has for one slice before it is dropped and its work reassigned.") var stepTimeout:
        Double = 5
    @Option(
        name: .customLong("min-workers"),
        help: "Train only while at least K workers are live; below that, wait for more.") var minWorkers = 1
    @Option(help: "Share of training slices a second worker recomputes and compares bit for bit (0...1).")
    var audit = 0.0
    @OptionGroup var checkpoints: CheckpointOptions
    @Option(
        name: .customLong("curve-key"),
        help: "This coordinator's CURVE secret key file (from convoy keygen): workers must authenticate.") var curveKey:
        String?
    @Option(
        name: .customLong("authorized-keys"),
        help: "Public keys of the workers allowed in, one per line (with --curve-key).") var authorizedKeys: String?
    @Option(
        name: .customLong("max-workers-per-key"),
        help: "With CURVE: most live workers one authorized key may have (default: no cap).") var maxWorkersPerKey: Int?
    @Flag(help: "Allow binding a non-loopback address without CURVE: anyone who reaches the port can join.")
    var insecure = false
    @Flag(help: "Print one JSON object per epoch instead of text.") var json = false
    @Option(name: .customLong("report"), help: "Write a self-contained HTML run report to this file.")
    var reportFile: String?

    var options: ClusterOptions {
        var options = ClusterOptions(workers: workers)
        options.joinTimeout = joinTimeout
        options.stepTimeout = stepTimeout
        options.minWorkers = minWorkers
        options.maxWorkersPerKey = maxWorkersPerKey
        options.audit = audit
        return options
    }

    func validate() throws {
        try validatePlacement()
        if let problem = options.problem { throw ValidationError(ErrorWording.line(for: problem)) }
        if audit > 0 && !training.deterministic {
            throw ValidationError(ErrorWording.line(for: ClusterSettingError.auditNeedsDeterministic))
        }
        guard (curveKey == nil) == (authorizedKeys == nil) else {
            throw ValidationError("--curve-key and --authorized-keys go together")
        }
        if let n = maxWorkersPerKey {
            guard curveKey != nil else { throw ValidationError("--max-workers-per-key needs --curve-key") }
            guard (1...ClusterOptions.maxWorkers).contains(n) else {
                throw ValidationError("--max-workers-per-key must be in 1...\(ClusterOptions.maxWorkers) (got \(n))")
            }
        }
        if curveKey == nil && !insecure && !isLoopback(bind) {
            throw ValidationError(
                "refusing to bind \(bind) without CURVE: anyone who can reach it could join the run or read the "
                    + "weights; give --curve-key and --authorized-keys (see convoy keygen), or --insecure on a "
                    + "trusted network"
            )
        }
    }

    func run() throws {
        reportingErrors {
            let config = try training.config()
            try checkOutputPath(out)
            try reportFile.map { try checkOutputPath($0, flag: "report") }
            let runReport = RunReportWriter(path: reportFile, title: "convoy coordinator: \(config.model)")
            let secretKey = try curveKey.map { try CurveKeyPair.readSecretKey(path: $0, what: "--curve-key") }
            let authorized = try authorizedKeys.map { try CurveKeyPair.readAuthorizedKeys(path: $0) }
            let log: @Sendable (String) -> Void = { ProgressPrinter.error("coordinator: \($0)") }
            let signals = StopOnSignals(log: log)
            let statusSignal = StatusOnSignal()
            let checkpoint = try checkpoints.checkpoint(log: log)
            let board = try training.tensorBoardWriter()
            let (train, test) = try training.loadData(config)
            let context = ZMQContext()
            let authenticator = try authorized.map { keys in
                try ZAPAuthenticator(context: context, policy: AuthorizedKeys(keys).decide, log: log)
            }
            defer { authenticator?.stop() }
            // The socket's bounds (largest message, queue per peer) fit this run's model.
            let parameters = try Architecture(try ModelZoo.spec(named: config.model)).parameterCount
            let transport = try ZMQCoordinatorTransport(
                context: context, bind: bind, curveSecretKey: secretKey,
                authenticator: authenticator, limits: .forRun(parameters: parameters, workers: workers))
            let runner = try ClusterStepRunner(transport: transport, options: options, log: log)
            runner.stopRequest = signals.request
            let session = try TrainingSession(
                config: config, train: train, test: test, runner: runner,
                checkpoints: checkpoints.policy, log: log)
            session.stopRule = training.stopRule
            session.stopRequest = signals.request
            runner.printStatusOnSIGUSR1(statusSignal, stepsPerEpoch: session.plan.stepsPerEpoch)
            if let checkpoint { try session.resume(from: checkpoint) }
            ProgressPrinter.error("coordinator: listening on \(transport.endpoint)")
            if secretKey == nil, let warning = plaintextWarning(bind: bind) {
                ProgressPrinter.error("coordinator: \(warning)")
            }
            ProgressPrinter.error(
                "coordinator: run \(String(runner.runID, radix: 16)): \(config.model) on \(train.count) samples, "
                    + "batch \(config.batchSize), waiting for \(workers) worker(s)"
            )
            // A failed run's refusals to the workers are queued: the context's linger sends them.
            var closed = false
            defer {
                if !closed {
                    transport.close()
                    authenticator?.stop()
                    context.terminate()
                }
            }
            var printer = ProgressPrinter(json: json)
            let outcome = try session.run(
                progress: { progress in
                    let extra =
                        "  "
                        + runner.workerStepMs.enumerated().map { "w\($0.offset) \(format($0.element, 1))ms" }.joined(
                            separator: " ")
                    printer.step(progress, epochs: config.epochs, extra: extra)
                },
                epochDone: { report in
                    let stats = runner.takeEpochStats()
                    printer.epoch(report, epochs: config.epochs, cluster: stats, timeToTarget: session.timeToTarget)
                    try runReport?.epoch(EpochLine(report: report, cluster: stats, timeToTarget: session.timeToTarget))
                    try board?.add(report, step: session.server.step)
                    try session.modelFile.save(to: out)
                })
            // Also when a resumed run had no epoch left to train (a stopped one keeps the last epoch's).
            if outcome == .finished { try session.modelFile.save(to: out) }
            // The workers' shutdown (or stop) messages are still queued: send them before exiting.
            transport.close()
            authenticator?.stop()
            context.terminate()
            closed = true
            try runReport?.finish(model: session.modelFile, test: test, name: out)
            try exitIfStopped(outcome, checkpoints: checkpoints, log: log)
            if !json {
                ProgressPrinter.line(
                    "saved \(out) (parameter checksum \(String(format: "%08x", session.modelFile.parameterChecksum)))")
            }
        }
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Compute gradients for a coordinator; needs no dataset.",
        discussion: "Keeps trying to reach the coordinator (with backoff), so it may start before it.")

    @Option(name: .customLong("connect"), help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.")
    var connectFlag: String?
    @OptionGroup var fromEnv: FromEnvOptions
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

    func validate() throws {
        try validatePlacement()
        try checkFlag("threads", threads, in: FlagRange.threads)
        try checkFlag("slots", slots, in: FlagRange.slots)
        if let cpu { try checkFlag("cpu", cpu, in: 0...FlagRange.maxCPU) }
        guard connect.hasPrefix("tcp://") || connect.hasPrefix("ipc://") else {
            throw ValidationError("--connect \(connect) is not a tcp:// or ipc:// endpoint")
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
            var runner = WorkerRunner(
                endpoint: connect, threads: threads, log: { ProgressPrinter.error("worker \(getpid()): \($0)") })
            runner.timing.connectTimeout = connectTimeout
            runner.timing.idleTimeout = idleTimeout
            runner.cpu = cpu
            runner.slots = slots
            runner.fault = injectFault.flatMap { FaultInjection(spec: $0) }
            runner.memory = try memoryBound()
            if let serverKey, let key {
                runner.curve = (
                    try CurveKeyPair.readKey(path: serverKey, what: "--server-key"),
                    try CurveKeyPair(secretKey: try CurveKeyPair.readSecretKey(path: key, what: "--key"))
                )
            }
            do { try runner.run() } catch let ClusterError.coordinatorStopped(reason) {
                // Not an error: the run goes on when the coordinator is started again, and a
                // supervisor restarts this worker on the requeue status to take part.
                ProgressPrinter.error(
                    "worker \(getpid()): coordinator stopped the run early: \(peerText(reason)); exiting with status "
                        + "\(ExitStatus.preempted)")
                throw ExitCode(ExitStatus.preempted)
            }
        }
    }
}

/// Whether an endpoint is reachable only from this host (loopback TCP or a local socket).
func isLoopback(_ endpoint: String) -> Bool { Endpoint.isLoopback(endpoint) }

/// What a coordinator without CURVE says about who can join it; nil when only this user can.
func plaintextWarning(bind: String) -> String? {
    switch Endpoint.reach(bind) {
    case .thisUser:
        return nil
    case .thisHost:
        return "warning: \(bind) has no CURVE: any user of this host can join the run, receive the training data "
            + "and send gradients (convoy local binds a private ipc:// socket; or give --curve-key)"
    case .network:
        return "warning: \(bind) has no CURVE (--insecure): anyone who can reach it can join the run, receive the "
            + "training data and send gradients"
    }
}
