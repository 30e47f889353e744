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

    @Option(help: "Endpoint to bind, e.g. tcp://0.0.0.0:5555 or tcp://127.0.0.1:* (any free port).") var bind =
        "tcp://127.0.0.1:5555"
    @Option(help: "Workers to wait for before training.") var workers: Int
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
    @OptionGroup var checkpoints: CheckpointOptions
    @Option(
        name: .customLong("curve-key"),
        help: "This coordinator's CURVE secret key file (from convoy keygen): workers must authenticate.") var curveKey:
        String?
    @Option(
        name: .customLong("authorized-keys"),
        help: "Public keys of the workers allowed in, one per line (with --curve-key).") var authorizedKeys: String?
    @Flag(help: "Allow binding a non-loopback address without CURVE: anyone who reaches the port can join.")
    var insecure = false
    @Flag(help: "Print one JSON object per epoch instead of text.") var json = false

    var options: ClusterOptions {
        var options = ClusterOptions(workers: workers)
        options.joinTimeout = joinTimeout
        options.stepTimeout = stepTimeout
        options.minWorkers = minWorkers
        return options
    }

    func validate() throws {
        if let problem = options.problem { throw ValidationError(ErrorWording.line(for: problem)) }
        guard (curveKey == nil) == (authorizedKeys == nil) else {
            throw ValidationError("--curve-key and --authorized-keys go together")
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
            let secretKey = try curveKey.map { try CurveKeyPair.readKey(path: $0, what: "--curve-key") }
            let authorized = try authorizedKeys.map { try CurveKeyPair.readAuthorizedKeys(path: $0) }
            let log: @Sendable (String) -> Void = { ProgressPrinter.error("coordinator: \($0)") }
            let checkpoint = try checkpoints.checkpoint(log: log)
            let (train, test) = try training.loadData(config)
            let context = ZMQContext()
            let authenticator = try authorized.map { keys in
                try ZAPAuthenticator(context: context, policy: AuthorizedKeys(keys).decide, log: log)
            }
            defer { authenticator?.stop() }
            let transport = try ZMQCoordinatorTransport(
                context: context, bind: bind, curveSecretKey: secretKey,
                authenticator: authenticator)
            let runner = try ClusterStepRunner(transport: transport, options: options, log: log)
            let session = try TrainingSession(
                config: config, train: train, test: test, runner: runner,
                checkpoints: checkpoints.policy, log: log)
            session.stopRule = training.stopRule
            if let checkpoint { try session.resume(from: checkpoint) }
            ProgressPrinter.error("coordinator: listening on \(transport.endpoint)")
            ProgressPrinter.error(
                "coordinator: run \(String(runner.runID, radix: 16)): \(config.model) on \(train.count) samples, "
                    + "batch \(config.batchSize), waiting for \(workers) worker(s)"
            )
            var printer = ProgressPrinter(json: json)
            try session.run(
                progress: { progress in
                    let extra =
                        "  "
                        + runner.workerStepMs.enumerated().map { "w\($0.offset) \(format($0.element, 1))ms" }.joined(
                            separator: " ")
                    printer.step(progress, epochs: config.epochs, extra: extra)
                },
                epochDone: { report in
                    printer.epoch(
                        report, epochs: config.epochs, cluster: runner.takeEpochStats(),
                        timeToTarget: session.timeToTarget)
                    try session.modelFile.save(to: out)
                })
            // Also when a resumed run had no epoch left to train.
            try session.modelFile.save(to: out)
            // The workers' shutdown messages are still queued: send them before exiting.
            transport.close()
            authenticator?.stop()
            context.terminate()
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

    @Option(help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.") var connect: String
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

    func validate() throws {
        try checkFlag("threads", threads, in: FlagRange.threads)
        try checkFlag("slots", slots, in: FlagRange.slots)
        if let cpu { try checkFlag("cpu", cpu, in: 0...FlagRange.maxCPU) }
        guard connect.hasPrefix("tcp://") || connect.hasPrefix("ipc://") else {
            throw ValidationError("--connect \(connect) is not a tcp:// or ipc:// endpoint")
        }
        try checkSeconds("connect-timeout", connectTimeout)
        try checkSeconds("idle-timeout", idleTimeout)
        guard (serverKey == nil) == (key == nil) else { throw ValidationError("--server-key and --key go together") }
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
            if let serverKey, let key {
                runner.curve = (
                    try CurveKeyPair.readKey(path: serverKey, what: "--server-key"),
                    try CurveKeyPair(secretKey: try CurveKeyPair.readKey(path: key, what: "--key"))
                )
            }
            try runner.run()
        }
    }
}

/// Whether an endpoint is reachable only from this host (loopback TCP or a local socket).
func isLoopback(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
    guard endpoint.hasPrefix("tcp://") else { return false }
    let host = endpoint.dropFirst("tcp://".count).split(separator: ":").dropLast().joined(separator: ":")
    return host.hasPrefix("127.") || host == "localhost" || host == "[::1]" || host == "::1"
}

struct KeyGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.key (secret, mode 600) and NAME.pub (public).",
        discussion:
            "The coordinator takes its NAME.key (--curve-key) and a file of the workers' public keys "
            + "(--authorized-keys); each worker takes its own NAME.key (--key) and the coordinator's NAME.pub "
            + "(--server-key)."
    )

    @Argument(help: "Path prefix of the two files.") var name: String
    @Flag(help: "Overwrite existing files.") var force = false

    func run() throws {
        reportingErrors {
            let (secretPath, publicPath) = (name + ".key", name + ".pub")
            for path in [secretPath, publicPath] where !force && FileManager.default.fileExists(atPath: path) {
                throw FlagError("\(path) exists; pass --force to overwrite it")
            }
            try checkOutputPath(secretPath)
            let pair = try CurveKeyPair.generate()
            let stamp = "# convoy CURVE key, \(ISO8601DateFormatter().string(from: Date()))\n"
            try writeAtomically(
                Array((stamp + "# secret: keep it on this host\n" + pair.secretKey + "\n").utf8), to: secretPath,
                mode: 0o600)
            try writeAtomically(Array((stamp + pair.publicKey + "\n").utf8), to: publicPath)
            ProgressPrinter.line("wrote \(secretPath) (secret) and \(publicPath) (public: \(pair.publicKey))")
        }
    }
}
