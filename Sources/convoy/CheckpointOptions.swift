import ArgumentParser
import ConvoyEngine

/// Checkpoint and resume flags, shared by `train` and `coordinator`: the same session does
/// the same thing with them in either.
struct CheckpointOptions: ParsableArguments {
    @Option(
        name: .customLong("checkpoint-dir"),
        help: "Write checkpoints here (at each epoch's end, and every --checkpoint-every steps).")
    var checkpointDir: String?
    @Option(name: .customLong("checkpoint-every"), help: "Also checkpoint every N steps (0: epoch ends only).")
    var checkpointEvery = 0
    @Option(name: .customLong("keep-checkpoints"), help: "How many checkpoints to keep.")
    var keepCheckpoints = 3
    @Option(help: "Continue from the newest valid checkpoint in DIR (and keep checkpointing there).")
    var resume: String?

    func validate() throws {
        try checkFlag("checkpoint-every", checkpointEvery, in: FlagRange.everySteps)
        try checkFlag("keep-checkpoints", keepCheckpoints, in: FlagRange.keptCheckpoints)
    }

    /// Where checkpoints go: --checkpoint-dir, else the --resume directory.
    var policy: CheckpointPolicy? {
        (checkpointDir ?? resume).map { CheckpointPolicy(directory: $0, every: checkpointEvery, keep: keepCheckpoints) }
    }

    /// The checkpoint to resume from, if --resume was given.
    func checkpoint(log: (String) -> Void) throws -> Checkpoint? {
        try resume.map { try Checkpoint.newest(in: $0, log: log) }
    }
}
