import ArgumentParser
import ConvoyEngine
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Exit statuses a supervisor acts on.
enum ExitStatus {
    /// The run stopped before its end on request (SIGTERM, SIGINT, or its coordinator's
    /// `stop`) with its position saved: the same command started again continues it. 75 is
    /// EX_TEMPFAIL of sysexits.h ("temporary failure, try again later"): batch schedulers and
    /// systemd (`RestartForceExitStatus=75`) can requeue on it, and it is distinct from 1 (bad
    /// input or a failed run) and from 128+N (killed by signal N).
    static let preempted: Int32 = 75
}

/// SIGTERM and SIGINT ask the run to stop after its current step: a dispatch source turns
/// each signal into a call on an ordinary thread (nothing runs in signal context), which sets
/// a `StopRequest` the training loop reads between steps. A second signal exits at once.
final class StopOnSignals: @unchecked Sendable {
    let request = StopRequest()
    private var sources: [DispatchSourceSignal] = []

    init(log: @escaping @Sendable (String) -> Void) {
        for signalNumber in [SIGTERM, SIGINT] {
            // Ignored by default, so only the dispatch source sees the signal.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [request] in
                let name = signalNumber == SIGTERM ? "SIGTERM" : "SIGINT"
                if request.request(code: signalNumber) {
                    log(
                        "\(name): stopping after the current step, with a checkpoint, then exiting with status "
                            + "\(ExitStatus.preempted); a second signal exits at once")
                } else {
                    log("\(name) again: exiting at once, without a checkpoint of the steps since the last one")
                    // _exit: no atexit handlers racing the training thread inside libzmq.
                    _exit(128 + signalNumber)
                }
            }
            source.resume()
            sources.append(source)
        }
    }
}

/// Says where a run stopped early and how to continue it, then exits with the requeue
/// status; does nothing for a finished run.
func exitIfStopped(_ outcome: RunOutcome, checkpoints: CheckpointOptions, log: (String) -> Void) throws {
    guard case let .stopped(step, checkpointStep) = outcome else { return }
    if let directory = checkpoints.policy?.directory {
        let saved =
            checkpointStep.map { "\(directory) holds its checkpoint of step \($0)" }
            ?? "the newest checkpoint in \(directory) is where it continues"
        log(
            "stopped after step \(step) of the run; \(saved): the same command with --resume-if-present "
                + "\(directory) continues it (exit status \(ExitStatus.preempted))")
    } else {
        log(
            "stopped after step \(step) of the run; without --checkpoint-dir nothing was saved, so it starts "
                + "again from step 0 (exit status \(ExitStatus.preempted))")
    }
    throw ExitCode(ExitStatus.preempted)
}
