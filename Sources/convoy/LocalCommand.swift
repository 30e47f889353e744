import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

struct Local: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train with a coordinator and worker processes on this host.",
        discussion:
            "Spawns `convoy coordinator` on a socket in a fresh directory only this user can enter (shared memory "
            + "by default, or ZeroMQ over ipc://), and N "
            + "`convoy worker` processes of this binary; streams the coordinator's progress, ends every child by "
            + "PID, and exits with the coordinator's status. SIGTERM or SIGINT is passed to the coordinator, which "
            + "stops after its current step (with a checkpoint when --checkpoint-dir is given) and exits with "
            + "status 75."
    )

    @Option(name: .customLong("workers"), help: "Worker processes (default: 1, with --slots as many as the cores).")
    var workerCount: Int?
    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var training: TrainingOptions
    @OptionGroup var checkpoints: CheckpointOptions
    @OptionGroup var logs: LogOptions
    @Option(help: "Where to save the trained model.") var out = "lenet5.convoy"
    @Option(help: "OpenBLAS threads per compute thread.") var threads = 1
    @Option(
        name: .customLong("slots"),
        help: ArgumentHelp(
            "Compute threads per worker process, pre-summing their gradients (per-host aggregation; default: the "
                + "cores when --workers is not given, else 1).")
    )
    var slotCount: Int?
    @OptionGroup var gradientEncoding: GradientEncodingOption
    @Option(
        help: ArgumentHelp(
            "How the processes talk: shm (shared-memory rings, no I/O threads) or zmq (ZeroMQ over ipc://)."))
    var transport = LocalTransport.shm

    /// The layout: one worker process whose compute threads fill the cores (per-host
    /// aggregation: one peer for the coordinator; over shared memory on 2 cores 18.8–25.5k
    /// samples/s against 16.3–23.7k for two single-threaded workers, docs/SCALING.md), unless
    /// --workers or --slots say otherwise.
    var workers: Int { workerCount ?? 1 }
    var slots: Int { slotCount ?? (workerCount == nil ? ProcessInfo.processInfo.activeProcessorCount : 1) }
    @Option(help: "Share of training slices a second worker recomputes and compares bit for bit (0...1).")
    var audit = 0.0
    @Flag(inversion: .prefixedNo, help: "Passed to the coordinator: send the updated head while the trunk is computed.")
    var headAhead = true
    @Flag(
        name: .customLong("balance-slices"), inversion: .prefixedNo,
        help: "Passed to the coordinator: size each worker's slice by its measured speed (deterministic).")
    var balanceSlices = true
    @Flag(help: "Print one JSON object per epoch instead of text.") var json = false
    @Option(
        name: .customLong("report"),
        help: "Passed to the coordinator: write a self-contained HTML run report to this file.")
    var reportFile: String?
    @Flag(inversion: .prefixedNo, help: "Pin each compute thread to its own CPU when they fit the cores.") var pin =
        true

    /// Fails here, before spawning anything, with the coordinator's own rules for --workers and --audit.
    func validate() throws {
        var options = ClusterOptions(workers: workers)
        options.audit = audit
        if let problem = options.problem { throw ValidationError(ErrorWording.line(for: problem)) }
        if audit > 0 && !training.deterministic {
            throw ValidationError(ErrorWording.line(for: ClusterSettingError.auditNeedsDeterministic))
        }
        try checkFlag("threads", threads, in: FlagRange.threads)
        try checkFlag("slots", slots, in: FlagRange.slots)
        // Every process of the run on this host: the coordinator's state and data, and one
        // network per compute thread of each worker. An invalid training flag is
        // TrainingOptions.validate's to report.
        if let config = try? training.config() {
            let compute = try MemoryBudget.computeBytes(config)
            let workersBytes = Double(workers) * (Double(slots) * compute.network + compute.state)
            try MemoryBudget.check(
                compute.state + MemoryBudget.mnistBytes + workersBytes,
                for: "--workers \(workers) × --slots \(slots) of \(config.model)")
        }
    }

    // Over 60 lines: the children's life in order (socket directory, coordinator, its endpoint,
    // workers, streaming, exit status), which reads best as one piece.
    func run() throws {
        // Until the relay to the coordinator starts, a SIGUSR1 (a status request) is ignored:
        // by default it would end this process and, with it, the run.
        signal(SIGUSR1, SIG_IGN)
        reportingErrors {
            try checkOutputPath(out)
            try reportFile.map { try checkOutputPath($0, flag: "report") }
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            // A socket in a fresh 0700 directory: no other user can join, no TCP port is
            // open, and no secret is on a command line (docs/DESIGN.md, "Local runs").
            let socketDirectory = try PrivateSocketDirectory.make()
            socketDirectory.removeAtExit()
            defer { socketDirectory.remove() }
            let children = ChildProcesses()
            children.endOnSignals()

            let bind = transport == .shm ? socketDirectory.sharedMemoryEndpoint : socketDirectory.endpoint
            var arguments = ["coordinator", "--bind", bind, "--workers", String(workers)]
            arguments += ["--out", out]
            arguments += training.arguments + checkpoints.arguments + logs.arguments
            if json { arguments.append("--json") }
            if let reportFile { arguments += ["--report", reportFile] }
            if audit > 0 { arguments += ["--audit", String(audit)] }
            if !headAhead { arguments.append("--no-head-ahead") }
            if !balanceSlices { arguments.append("--no-balance-slices") }
            let coordinator = Process()
            coordinator.executableURL = URL(fileURLWithPath: binary)
            coordinator.arguments = arguments
            let stderrPipe = Pipe()
            coordinator.standardError = stderrPipe
            try children.start(coordinator)
            children.stopsFirst = coordinator

            // The coordinator announces its endpoint on stderr; everything it says there is
            // passed on as it is (its lines are in the same --log-format already).
            let reader = LineReader(stderrPipe.fileHandleForReading)
            var endpoint: String?
            while endpoint == nil, let line = reader.next() {
                StandardError.write(line + "\n")
                let message = logs.logFormat == .json ? LogRecord.message(ofJSON: line) ?? "" : line
                if let range = message.range(of: "listening on ") { endpoint = String(message[range.upperBound...]) }
            }
            guard let endpoint else {
                coordinator.waitUntilExit()
                throw ExitCode(coordinator.terminationStatus == 0 ? 1 : coordinator.terminationStatus)
            }
            StatusSignalRelay.start(to: coordinator)
            let cores = ProcessInfo.processInfo.activeProcessorCount
            for index in 0..<workers {
                let worker = Process()
                worker.executableURL = URL(fileURLWithPath: binary)
                worker.arguments =
                    [
                        "worker", "--connect", endpoint, "--threads", String(threads), "--slots", String(slots),
                        "--connect-timeout", "60", "--idle-timeout", "120",
                        "--gradient-encoding", gradientEncoding.choice.rawValue,
                    ] + logs.arguments
                // One compute thread per core, pinned, when they fit (see CPUAffinity).
                let perWorker = threads * slots
                if pin && workers * perWorker <= cores { worker.arguments! += ["--cpu", String(index * perWorker)] }
                try children.start(worker)
            }
            while let line = reader.next() { StandardError.write(line + "\n") }
            coordinator.waitUntilExit()
            let status = coordinator.terminationStatus
            children.endAll(grace: 5)
            if status != 0 { throw ExitCode(status) }
        }
    }
}

extension TrainingOptions {
    /// These options as command-line arguments, to pass on to a child process.
    var arguments: [String] {
        var list = [
            "--model", model, "--epochs", String(epochs), "--batch", String(batch), "--optimizer", optimizer,
            "--schedule", schedule, "--seed", String(seed), "--data", data,
            "--micro-batch", String(microBatch), deterministic ? "--deterministic" : "--no-deterministic",
        ]
        if let trainSamples { list += ["--train-samples", String(trainSamples)] }
        if let testSamples { list += ["--test-samples", String(testSamples)] }
        if let initializer { list += ["--init", initializer] }
        if let lr { list += ["--lr", String(lr)] }
        list += [
            "--warmup-epochs", String(warmupEpochs), "--weight-decay", String(weightDecay),
        ]
        if let augment { list += ["--augment", String(augment)] }
        if let tensorboard { list += ["--tensorboard", tensorboard] }
        list += metrics.arguments
        if let trace { list += ["--trace", trace] }
        if let targetAccuracy {
            list += ["--target-accuracy", String(targetAccuracy), "--eval-every", String(evalEvery)]
        }
        return list
    }
}

/// The processes `local` started, ended by PID when it exits or is interrupted.
final class ChildProcesses: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [Process] = []
    private var signalSources: [DispatchSourceSignal] = []
    /// The child a first SIGTERM or SIGINT is passed to (the coordinator: it stops after its
    /// current step and tells the workers); a second signal, or one before it runs, ends all.
    var stopsFirst: Process? {
        get { lock.withLock { first } }
        set { lock.withLock { first = newValue } }
    }
    private var first: Process?
    private var stopping = false

    func start(_ process: Process) throws {
        try process.run()
        lock.withLock { processes.append(process) }
    }

    /// SIGTERM to every child still running, SIGKILL to any left after `grace` seconds.
    func endAll(grace: Double) {
        let running = lock.withLock { processes.filter(\.isRunning) }
        for process in running { kill(process.processIdentifier, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(grace)
        while ContinuousClock.now < deadline && running.contains(where: \.isRunning) { usleep(20_000) }
        for process in running where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    func endOnSignals() {
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [self] in
                let passOn = lock.withLock {
                    defer { stopping = true }
                    return signalNumber != SIGHUP && !stopping ? first : nil
                }
                if let passOn, passOn.isRunning {
                    Log.line(
                        "interrupted; asking the coordinator to stop after its current step (a second "
                            + "signal ends everything at once)")
                    kill(passOn.processIdentifier, SIGTERM)
                    return
                }
                Log.line("interrupted; stopping the coordinator and workers")
                endAll(grace: 2)
                exit(128 + signalNumber)
            }
            source.resume()
            signalSources.append(source)
        }
    }
}

/// Reads a pipe line by line.
final class LineReader {
    private let handle: FileHandle
    private var buffer = Data()
    init(_ handle: FileHandle) { self.handle = handle }

    func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                return line
            }
            let chunk = handle.availableData
            if chunk.isEmpty {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            buffer.append(chunk)
        }
    }
}

/// `convoy local --transport`: the coordinator's endpoint kind in the private socket directory.
enum LocalTransport: String, ExpressibleByArgument, CaseIterable {
    /// Shared-memory rings (`shm://`), measured faster on one host (docs/SCALING.md).
    case shm
    /// ZeroMQ over `ipc://`.
    case zmq
}
