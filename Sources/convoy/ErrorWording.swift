import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import ConvoyInterop

/// The engine and the cluster report errors as values naming settings; this is where they
/// become sentences that name this CLI's flags.
enum ErrorWording {
    static func flag(for setting: TrainingSetting) -> String {
        switch setting {
        case .model: "--model"
        case .epochs: "--epochs"
        case .batchSize: "--batch"
        case .optimizer: "--optimizer"
        case .learningRate: "--lr"
        case .schedule: "--schedule"
        case .seed: "--seed"
        case .microBatch: "--micro-batch"
        case .initializer: "--init"
        case .trainSamples: "--train-samples"
        case .testSamples: "--test-samples"
        case .warmupEpochs: "--warmup-epochs"
        case .weightDecay: "--weight-decay"
        case .augmentShift: "--augment"
        }
    }

    /// A CURVE flag next to an `shm://` endpoint (`--bind`, `--connect`, `convoy status`'s).
    static func sharedMemoryTakesNoCurve(flag: String, endpoint: String) -> String {
        "\(flag) \(endpoint): shm:// reaches only this user's processes on this host and takes no CURVE keys"
    }

    /// One line for any error convoy's commands can meet.
    static func line(for error: Error) -> String {
        switch error {
        case let error as SettingError:
            return "\(flag(for: error.setting)) \(error.value): \(error.rule)"
        case let error as ClusterSettingError:
            switch error {
            case let .workers(n): return "--workers must be in 1...\(ClusterOptions.maxWorkers) (got \(n))"
            case let .minWorkers(n): return "--min-workers must be in 1...--workers (got \(n))"
            case let .joinTimeout(s): return "--join-timeout \(s): must be in \(ClusterOptions.secondsText) seconds"
            case let .stepTimeout(s): return "--step-timeout \(s): must be in \(ClusterOptions.secondsText) seconds"
            case let .audit(f): return "--audit must be in [0, 1] (got \(f))"
            case .auditNeedsDeterministic:
                return "--audit needs --deterministic (the default): float sums differ in their last bits between "
                    + "workers, so a recomputed slice cannot be compared bit for bit; drop --no-deterministic"
            }
        case let error as KernelChoiceError:
            return "--\(error)"
        case let error as FixedPoint.OverflowError:
            return "\(error); lower --lr"
        case let error as NonFiniteWeightsError:
            return error.after ? "\(error)" : "\(error) (--init, or the checkpoint of --resume)"
        case let error as ResumeError:
            if case .differentRun = error { return "\(error) (the same training flags)" }
            return "\(error)"
        case let error as CPUAffinity.AffinityError:
            return "--cpu \(error.cpu): cannot pin to that CPU (\(error.reason))"
        case let error as ClusterError:
            if case let .noCoordinator(endpoint, seconds, true) = error {
                return
                    "no coordinator answered at \(endpoint) within \(seconds) s (with CURVE: is --server-key the "
                    + "coordinator's, and this worker's public key in its --authorized-keys?)"
            }
            return "\(error)"
        default:
            return "\(error)"
        }
    }
}

/// A flag's value that cannot work: the CLI's own checks, worded like the engine's.
struct FlagError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
