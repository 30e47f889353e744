import ArgumentParser
import ConvoyEngine
import Foundation

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
    @Option(
        name: .customLong("resume-if-present"),
        help: ArgumentHelp(
            "Like --resume, but a DIR that is missing or holds no checkpoint starts a new run (checkpointing "
                + "there): one command line for the first start and every restart. Corrupt checkpoints still fail."))
    var resumeIfPresent: String?

    func validate() throws {
        guard resume == nil || resumeIfPresent == nil else {
            throw ValidationError("--resume and --resume-if-present exclude each other; give one")
        }
        try checkFlag("checkpoint-every", checkpointEvery, in: FlagRange.everySteps)
        try checkFlag("keep-checkpoints", keepCheckpoints, in: FlagRange.keptCheckpoints)
    }

    /// Where checkpoints go: --checkpoint-dir, else the --resume (or --resume-if-present) directory.
    var policy: CheckpointPolicy? {
        (checkpointDir ?? resume ?? resumeIfPresent).map {
            CheckpointPolicy(directory: $0, every: checkpointEvery, keep: keepCheckpoints)
        }
    }

    /// The checkpoint to resume from: --resume's (which must exist), or --resume-if-present's
    /// when its directory holds any checkpoint file (why a separate flag: README, "Preemption").
    func checkpoint(log: (String) -> Void) throws -> Checkpoint? {
        if let resume { return try Checkpoint.newest(in: resume, log: log) }
        guard let resumeIfPresent else { return nil }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: resumeIfPresent, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw FlagError("--resume-if-present \(resumeIfPresent): not a directory")
        }
        return try Checkpoint.newestIfPresent(in: resumeIfPresent, log: log)
    }

    /// These options as command-line arguments, for `local` to pass on to its coordinator.
    var arguments: [String] {
        var list = ["--checkpoint-every", String(checkpointEvery), "--keep-checkpoints", String(keepCheckpoints)]
        if let checkpointDir { list += ["--checkpoint-dir", checkpointDir] }
        if let resume { list += ["--resume", resume] }
        if let resumeIfPresent { list += ["--resume-if-present", resumeIfPresent] }
        return list
    }
}
