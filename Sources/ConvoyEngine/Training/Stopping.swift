import Foundation

/// Stops a run once the test accuracy reaches a target: time to accuracy, the figure users
/// feel. Not part of the config: it decides when to stop, never what a step computes.
public struct StopRule: Sendable, Equatable {
    public var targetAccuracy: Double
    /// Also evaluate every this many steps (0: only at epoch ends).
    public var evaluateEvery: Int
    public init(targetAccuracy: Double, evaluateEvery: Int = 0) {
        self.targetAccuracy = targetAccuracy
        self.evaluateEvery = evaluateEvery
    }
}

/// A request to stop a run before its end (a scheduler preempting it: SIGTERM, SIGINT). Set
/// by a dispatch signal source's handler (an ordinary thread, not signal context, so a lock
/// is safe there), read by the training loop between steps. (A lock, not `Atomic`: the
/// package still builds for macOS 13.)
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    /// 0: none; otherwise the signal number (or any positive code) of the first request.
    private var first: Int32 = 0
    public init() {}

    /// Records a request; true for the first one (later ones mean "stop at once").
    @discardableResult
    public func request(code: Int32) -> Bool {
        lock.withLock {
            guard first == 0 else { return false }
            first = max(code, 1)
            return true
        }
    }

    public var isRequested: Bool { code != 0 }
    /// The first request's code (a signal number), or 0.
    public var code: Int32 { lock.withLock { first } }
}

/// Thrown by a runner that was waiting (for workers, say) when a stop was requested: the step
/// it was in has not happened, so the run stops where its last completed step left it.
public struct StopRequested: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "stop requested" }
}

/// How `TrainingSession.run` ended.
public enum RunOutcome: Equatable, Sendable {
    /// Every epoch trained (or the stop rule's target reached).
    case finished
    /// Stopped early on request after `step` steps of the run; `checkpointStep`: the step of
    /// the checkpoint of that position (equal to `step`), nil when none was written (no
    /// checkpoint policy, or a stop while the workers of an evaluation were awaited: then the
    /// newest checkpoint is where the run continues).
    case stopped(step: Int, checkpointStep: Int?)
}

/// A runner that can tell whoever computes its steps why a run ends before its last step
/// (a cluster tells its workers, which exit with a status a scheduler requeues).
public protocol StoppableRunner: StepRunner {
    func finishEarly(reason: String) throws
}

extension TrainingSession {
    /// Where a stop request found the run: before step `stepInEpoch` of `epoch`.
    struct StoppedAt: Error {
        let epoch: Int
        let stepInEpoch: Int
        let totals: GradientComputer.Totals
    }

    /// Ends a run early: a checkpoint of `position` (unless written already), then the
    /// runner's goodbye with the reason. A stop that came while an evaluation waited for
    /// workers has no position (its epoch's steps are done, its report is not): the run
    /// continues from the newest checkpoint.
    func stopEarly(at position: StoppedAt?) throws -> RunOutcome {
        if let position, savedStep != server.step {
            try saveCheckpoint(epoch: position.epoch, stepInEpoch: position.stepInEpoch, totals: position.totals)
        }
        let reason =
            "the run was stopped after step \(server.step) of \(plan.stepsPerEpoch * config.epochs) (preempted); "
            + "it continues when its coordinator is started again"
        if let runner = runner as? StoppableRunner {
            try runner.finishEarly(reason: reason)
        } else {
            try runner.finish()
        }
        return .stopped(step: server.step, checkpointStep: savedStep == server.step ? savedStep : nil)
    }
}

extension Checkpoint {
    /// The resume policy of `--resume-if-present`: nil when `directory` is missing or holds
    /// no checkpoint file at all (a first start), else the newest intact checkpoint. A
    /// directory whose checkpoint files are all corrupt still fails: starting again from
    /// step 0 would silently throw the run away.
    public static func newestIfPresent(in directory: String, log: (String) -> Void) throws -> Checkpoint? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            log("\(directory) holds no checkpoint yet: starting a new run")
            return nil
        }
        guard isDirectory.boolValue else { throw DataError("\(directory): not a directory") }
        guard try !files(in: directory).isEmpty else {
            log("\(directory) holds no checkpoint yet: starting a new run")
            return nil
        }
        return try newest(in: directory, log: log)
    }
}
