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
            "Endpoint to bind, e.g. tcp://0.0.0.0:5555, tcp://127.0.0.1:* (any free port), ipc://PATH or "
                + "shm://PATH (shared memory, workers of this host and user); default tcp://127.0.0.1:5555."))
    var bindFlag: String?
    @Option(name: .customLong("workers"), help: "Workers to wait for before training.") var workersFlag: Int?
    @OptionGroup var configFile: ConfigFileOption
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
    @OptionGroup var logs: LogOptions
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
    @Flag(
        inversion: .prefixedNo,
        help: "Update the head once its gradient is in and send it while workers compute the trunk (deterministic).")
    var headAhead = true
    @Flag(
        name: .customLong("balance-slices"), inversion: .prefixedNo,
        help: "Deterministic runs: size each worker's slice by its measured speed so that all finish together.")
    var balanceSlices = true

    var options: ClusterOptions {
        var options = ClusterOptions(workers: workers)
        options.joinTimeout = joinTimeout
        options.stepTimeout = stepTimeout
        options.minWorkers = minWorkers
        options.maxWorkersPerKey = maxWorkersPerKey
        options.audit = audit
        options.headAhead = headAhead
        options.balanceSlices = balanceSlices
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
        if Endpoint.isSharedMemory(bind) && curveKey != nil {
            throw ValidationError(ErrorWording.sharedMemoryTakesNoCurve(flag: "--bind", endpoint: bind))
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

    // Over 60 lines: the coordinator's start-up in its order (flags, data, transport, runner,
    // observers, session, outputs), a few lines each; split up, that order would be hidden.
    func run() throws {
        reportingErrors {
            let config = try training.config()
            try checkOutputPath(out)
            try reportFile.map { try checkOutputPath($0, flag: "report") }
            let runReport = RunReportWriter(
                path: reportFile, title: "convoy coordinator: \(config.model)", recipe: training.recipe)
            let secretKey = try curveKey.map { try CurveKeyPair.readSecretKey(path: $0, what: "--curve-key") }
            let authorized = try authorizedKeys.map { try CurveKeyPair.readAuthorizedKeys(path: $0) }
            let log: @Sendable (String) -> Void = Log.line
            let metrics = try training.metrics.start(log: log)
            let signals = StopOnSignals(log: log)
            let statusSignal = StatusOnSignal()
            let checkpoint = try checkpoints.checkpoint(log: log)
            let board = try training.tensorBoardWriter()
            let timeline = try training.timeline(role: "coordinator", log: log)
            defer { timeline?.finish() }
            let (train, test) = try training.loadData(config)
            let context = ZMQContext()
            let authenticator = try authorized.map { keys in
                try ZAPAuthenticator(context: context, policy: AuthorizedKeys(keys).decide, log: log)
            }
            defer { authenticator?.stop() }
            // The socket's bounds (largest message, queue per peer) fit this run's model.
            let limits = try CoordinatorLimits.forRun(model: config.model, workers: workers)
            let transport: any ListeningTransport =
                Endpoint.isSharedMemory(bind)
                ? try SharedMemoryCoordinatorTransport(bind: bind, limits: limits)
                : try ZMQCoordinatorTransport(
                    context: context, bind: bind, curveSecretKey: secretKey, authenticator: authenticator,
                    limits: limits)
            let runner = try ClusterStepRunner(transport: transport, options: options, log: log)
            runner.stopRequest = signals.request
            let session = try TrainingSession(
                config: config, train: train, test: test, runner: runner,
                checkpoints: checkpoints.policy, log: log)
            training.prepare(session)
            session.stopRequest = signals.request
            session.timeline = timeline
            runner.printStatusOnSIGUSR1(statusSignal, stepsPerEpoch: session.plan.stepsPerEpoch)
            if let checkpoint { try session.resume(from: checkpoint) }
            log("listening on \(transport.endpoint)")
            if secretKey == nil, let warning = plaintextWarning(bind: bind) { log(warning) }
            log(
                "run \(String(runner.runID, radix: 16)): \(config.model) on \(train.count) samples, "
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
            var printer = ProgressPrinter(json: json, batch: config.batchSize, recipe: training.recipe)
            let outcome = try session.run(
                progress: { progress in
                    let extra =
                        "  "
                        + runner.workerStepMs.enumerated().map { "w\($0.offset) \(format($0.element, 1))ms" }.joined(
                            separator: " ")
                    printer.step(progress, epochs: config.epochs, extra: extra)
                    metrics?.step(progress, plan: session.plan)
                },
                epochDone: { report in
                    let stats = runner.takeEpochStats()
                    metrics?.epoch(report)
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
