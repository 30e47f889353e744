import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Serve a training run to N workers over ZeroMQ.",
        discussion: "Binds a ROUTER socket, waits for --workers workers, then trains. Prints 'listening on ENDPOINT' on stderr once bound.")

    @Option(help: "Endpoint to bind, e.g. tcp://0.0.0.0:5555 or tcp://127.0.0.1:* (any free port).") var bind = "tcp://127.0.0.1:5555"
    @Option(help: "Workers to wait for before training.") var workers: Int
    @OptionGroup var training: TrainingOptions
    @Option(help: "Where to save the trained model.") var out = "lenet5.convoy"
    @Option(name: .customLong("join-timeout"), help: "Seconds to wait for the workers.") var joinTimeout: Double = 120
    @Option(name: .customLong("step-timeout"), help: "Seconds a worker has for one slice before it is dropped and its work reassigned.") var stepTimeout: Double = 5
    @Option(name: .customLong("checkpoint-dir"), help: "Write checkpoints here (at each epoch's end, and every --checkpoint-every steps).") var checkpointDir: String?
    @Option(name: .customLong("checkpoint-every"), help: "Also checkpoint every N steps (0: epoch ends only).") var checkpointEvery = 0
    @Option(name: .customLong("keep-checkpoints"), help: "How many checkpoints to keep.") var keepCheckpoints = 3
    @Option(help: "Continue from the newest valid checkpoint in DIR (and keep checkpointing there).") var resume: String?
    @Flag(help: "Print one JSON object per epoch instead of text.") var json = false

    func run() throws {
        reportingErrors {
            let config = try training.config()
            try checkOutputPath(out)
            guard joinTimeout > 0, stepTimeout > 0 else { throw ConfigError("--join-timeout and --step-timeout must be positive") }
            guard checkpointEvery >= 0, keepCheckpoints >= 1 else { throw ConfigError("--checkpoint-every must be ≥ 0 and --keep-checkpoints ≥ 1") }
            let log: (String) -> Void = { ProgressPrinter.error("coordinator: \($0)") }
            let checkpoint = try resume.map { try Checkpoint.newest(in: $0, log: log) }
            let (train, test) = try training.loadData(config)
            let context = ZMQContext()
            let transport = try ZMQCoordinatorTransport(context: context, bind: bind)
            var options = ClusterOptions(workers: workers)
            options.joinTimeout = joinTimeout
            options.stepTimeout = stepTimeout
            options.checkpointDirectory = checkpointDir ?? resume
            options.checkpointEvery = checkpointEvery
            options.keepCheckpoints = keepCheckpoints
            let coordinator = try Coordinator(config: config, train: train, test: test, transport: transport, options: options, log: log)
            if let checkpoint { try coordinator.resume(from: checkpoint) }
            ProgressPrinter.error("coordinator: listening on \(transport.endpoint)")
            ProgressPrinter.error("coordinator: run \(String(coordinator.runID, radix: 16)): \(config.model) on \(train.count) samples, batch \(config.batchSize), waiting for \(workers) worker(s)")
            var printer = ProgressPrinter(json: json)
            try coordinator.run(progress: { epoch, step, steps, loss, workerMs in
                let extra = "  " + workerMs.enumerated().map { "w\($0.offset) \(format($0.element, 1))ms" }.joined(separator: " ")
                printer.step(epoch: epoch, epochs: config.epochs, step: step, steps: steps, loss: loss, extra: extra)
            }, epochDone: { report, stats in
                if json {
                    ProgressPrinter.line(ProgressPrinter.jsonLine(ClusterEpoch(report: report, cluster: stats)))
                } else {
                    printer.epoch(report, epochs: config.epochs)
                    ProgressPrinter.line("  \(stats.workers) workers: step \(format(stats.stepMs, 2)) ms, coordinator \(format(stats.coordinatorMs, 2)) ms, worker compute " + stats.workerStepMs.map { format($0, 2) }.joined(separator: "/") + " ms, waiting \(percent(stats.workerWaitFraction)), \(Int(stats.bytesPerStep / 1024)) KiB/step")
                }
                try coordinator.modelFile.save(to: out)
            })
            // The workers' shutdown messages are still queued: send them before exiting.
            transport.close()
            context.terminate()
            if !json { ProgressPrinter.line("saved \(out) (parameter checksum \(String(format: "%08x", coordinator.modelFile.parameterChecksum)))") }
        }
    }
}

/// An epoch report with the cluster's figures, flattened into one JSON object.
struct ClusterEpoch: Encodable {
    let report: EpochReport
    let cluster: ClusterStats
    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        try cluster.encode(to: encoder)
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Compute gradients for a coordinator; needs no dataset.",
        discussion: "Keeps trying to reach the coordinator (with backoff), so it may start before it.")

    @Option(help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.") var connect: String
    @Option(help: "OpenBLAS threads (one per worker process keeps N workers on N cores).") var threads = 1
    @Option(name: .customLong("connect-timeout"), help: "Seconds to keep trying to reach a coordinator.") var connectTimeout: Double = 300
    @Option(name: .customLong("idle-timeout"), help: "Seconds of coordinator silence before giving up.") var idleTimeout: Double = 300
    @Option(help: "Pin this worker to one CPU (0-based), e.g. one worker per core.") var cpu: Int?

    func run() throws {
        reportingErrors {
            guard threads >= 1 && threads <= 256 else { throw ConfigError("--threads must be in 1...256 (got \(threads))") }
            guard connect.hasPrefix("tcp://") || connect.hasPrefix("ipc://") else {
                throw ConfigError("--connect \(connect) is not a tcp:// or ipc:// endpoint")
            }
            BLAS.setThreads(threads)
            var runner = WorkerRunner(endpoint: connect, threads: threads, log: { ProgressPrinter.error("worker \(getpid()): \($0)") })
            runner.connectTimeout = connectTimeout
            runner.idleTimeout = idleTimeout
            runner.cpu = cpu
            try runner.run()
        }
    }
}
