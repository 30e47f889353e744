import ArgumentParser
import ConvoyCluster
import Foundation

/// `--from-env`: the placement a batch scheduler (Slurm, a Kubernetes Indexed Job) gives this
/// process, read from its environment (SchedulerPlacement); explicit flags win over it.
struct FromEnvOptions: ParsableArguments {
    @Flag(
        name: .customLong("from-env"),
        help: ArgumentHelp(
            "Take --bind/--connect and --workers from the scheduler's environment: Slurm (SLURM_PROCID, "
                + "SLURM_NTASKS, SLURM_STEP_NODELIST, SLURM_JOB_ID) or Kubernetes (JOB_COMPLETION_INDEX, "
                + "CONVOY_COORDINATOR, CONVOY_WORKERS); CONVOY_PORT sets the port. Explicit flags win."))
    var fromEnv = false

    /// The placement when `--from-env` is given; nil otherwise.
    func placement() throws -> SchedulerPlacement? {
        guard fromEnv else { return nil }
        do { return try SchedulerPlacement.read(from: ProcessInfo.processInfo.environment) } catch {
            throw ValidationError(error.description)
        }
    }

    /// The placement, refused with one line when it makes this process the other role.
    func placement(as command: String) throws -> SchedulerPlacement? {
        guard let placement = try placement() else { return nil }
        switch (placement.role, command) {
        case (.worker(let index), "coordinator"):
            throw ValidationError(
                "--from-env: \(placement.scheduler.rawValue) placed a worker here (worker \(index)"
                    + "\(placement.scheduler == .slurm ? ", SLURM_PROCID=\(index + 1)" : ""))"
                    + ", not the coordinator: run convoy worker --from-env")
        case (.coordinator, "worker"):
            throw ValidationError(
                "--from-env: \(placement.scheduler.rawValue) placed the coordinator here"
                    + "\(placement.scheduler == .slurm ? " (SLURM_PROCID=0)" : " (no JOB_COMPLETION_INDEX)")"
                    + ": run convoy coordinator --from-env")
        default:
            return placement
        }
    }
}

extension CoordinatorCommand {
    /// `--bind`, else the scheduler's endpoint (`--from-env`), else loopback.
    var bind: String { bindFlag ?? (try? fromEnv.placement(as: "coordinator"))?.bindEndpoint ?? "tcp://127.0.0.1:5555" }
    /// `--workers`, else the scheduler's count; 0 only before `validate` refused its absence.
    var workers: Int { workersFlag ?? (try? fromEnv.placement(as: "coordinator"))?.workers ?? 0 }

    func validatePlacement() throws {
        let placement = try fromEnv.placement(as: "coordinator")
        guard workersFlag != nil || placement?.workers != nil else {
            throw ValidationError("--workers is missing: give --workers N (or --from-env under Slurm or Kubernetes)")
        }
    }
}

extension WorkerCommand {
    /// `--connect`, else the scheduler's coordinator (`--from-env`).
    var connect: String { connectFlag ?? (try? fromEnv.placement(as: "worker"))?.connectEndpoint ?? "" }

    func validatePlacement() throws {
        let placement = try fromEnv.placement(as: "worker")
        guard connectFlag != nil || placement != nil else {
            throw ValidationError(
                "--connect is missing: give --connect tcp://HOST:PORT (or --from-env under Slurm or Kubernetes)")
        }
    }
}
