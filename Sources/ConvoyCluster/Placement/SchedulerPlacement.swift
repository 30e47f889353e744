import Foundation

/// Where a batch scheduler placed this process: which role it has, how many workers the run
/// has, and the coordinator's endpoint, read from the variables the scheduler sets
/// (`convoy coordinator|worker --from-env`, README "Several hosts").
///
/// - Slurm (one job step, `srun`): `SLURM_PROCID` 0 is the coordinator, every other task a
///   worker; `SLURM_NTASKS` − 1 workers; the coordinator runs on the first host of
///   `SLURM_STEP_NODELIST` (or `SLURM_JOB_NODELIST` outside a step); `SLURM_JOB_ID` picks the
///   port, 20000 + job id mod 10000, so two jobs sharing a node rarely meet, unless
///   `CONVOY_PORT` gives one.
/// - Kubernetes (the coordinator a Job behind a headless Service, the workers an Indexed Job):
///   `JOB_COMPLETION_INDEX` is the worker's index; workers reach `CONVOY_COORDINATOR` (the
///   Service's name, `HOST` or `HOST:PORT`); the coordinator waits for `CONVOY_WORKERS`;
///   the port is `CONVOY_PORT`, default 5555.
public struct SchedulerPlacement: Equatable, Sendable {
    public enum Scheduler: String, Equatable, Sendable {
        case slurm = "Slurm"
        case kubernetes = "Kubernetes"
    }

    public enum Role: Equatable, Sendable {
        case coordinator
        /// Index 0... among the workers (Slurm: task id − 1; Kubernetes: the completion index).
        case worker(index: Int)
    }

    public var scheduler: Scheduler
    public var role: Role
    /// Workers the coordinator waits for; nil where the scheduler does not say (a Kubernetes worker).
    public var workers: Int?
    /// The coordinator's host as workers reach it (a Slurm node name or a Service name).
    public var coordinatorHost: String
    public var port: Int
    /// The scheduler's name for the run (Slurm's job id), for logs.
    public var jobID: String?

    /// What the coordinator binds: every interface, since workers come from other nodes.
    public var bindEndpoint: String { "tcp://0.0.0.0:\(port)" }
    /// What a worker connects to.
    public var connectEndpoint: String { "tcp://\(coordinatorHost):\(port)" }

    public static let defaultPort = 5555
    static let slurmPortBase = 20000
    static let slurmPortSpan = 10000

    /// Reads the placement from `environment`: Slurm when `SLURM_PROCID` or `SLURM_JOB_ID` is
    /// set, else Kubernetes when `JOB_COMPLETION_INDEX`, `CONVOY_COORDINATOR`, `CONVOY_WORKERS`
    /// or `KUBERNETES_SERVICE_HOST` is.
    public static func read(from environment: [String: String]) throws(PlacementError) -> SchedulerPlacement {
        let reader = EnvironmentReader(environment: environment)
        if environment["SLURM_PROCID"] != nil || environment["SLURM_JOB_ID"] != nil {
            return try slurm(reader)
        }
        let kubernetesNames = [
            "JOB_COMPLETION_INDEX", "CONVOY_COORDINATOR", "CONVOY_WORKERS", "KUBERNETES_SERVICE_HOST",
        ]
        if kubernetesNames.contains(where: { environment[$0] != nil }) { return try kubernetes(reader) }
        throw .noScheduler
    }

    static func slurm(_ env: EnvironmentReader) throws(PlacementError) -> SchedulerPlacement {
        let jobID = try env.integer("SLURM_JOB_ID", in: 0...Int(Int32.max))
        let tasks = try env.integer(
            "SLURM_NTASKS", in: 2...(ClusterOptions.maxWorkers + 1),
            hint: " (task 0 coordinates, the others are workers)")
        let task = try env.integer("SLURM_PROCID", in: 0...(tasks - 1))
        let listName = env.environment["SLURM_STEP_NODELIST"] != nil ? "SLURM_STEP_NODELIST" : "SLURM_JOB_NODELIST"
        let list = try env.required(listName)
        let hosts: [String]
        do { hosts = try Hostlist.expand(list) } catch {
            throw .bad(variable: listName, value: list, why: error.description)
        }
        let port =
            try env.optionalInteger("CONVOY_PORT", in: 1...65535)
            ?? slurmPortBase + jobID % slurmPortSpan
        return SchedulerPlacement(
            scheduler: .slurm, role: task == 0 ? .coordinator : .worker(index: task - 1), workers: tasks - 1,
            coordinatorHost: hosts[0], port: port, jobID: String(jobID))
    }

    static func kubernetes(_ env: EnvironmentReader) throws(PlacementError) -> SchedulerPlacement {
        let port = try env.optionalInteger("CONVOY_PORT", in: 1...65535) ?? defaultPort
        guard let index = try env.optionalInteger("JOB_COMPLETION_INDEX", in: 0...(ClusterOptions.maxWorkers - 1))
        else {
            let workers = try env.integer("CONVOY_WORKERS", in: 1...ClusterOptions.maxWorkers)
            return SchedulerPlacement(
                scheduler: .kubernetes, role: .coordinator, workers: workers, coordinatorHost: "0.0.0.0",
                port: port, jobID: nil)
        }
        let workers = try env.optionalInteger("CONVOY_WORKERS", in: 1...ClusterOptions.maxWorkers)
        let (host, explicitPort) = try hostAndPort(env, "CONVOY_COORDINATOR")
        return SchedulerPlacement(
            scheduler: .kubernetes, role: .worker(index: index), workers: workers, coordinatorHost: host,
            port: explicitPort ?? port, jobID: nil)
    }

    /// `HOST` or `HOST:PORT`: a DNS name (a Service's) or an IPv4 address.
    static func hostAndPort(_ env: EnvironmentReader, _ name: String) throws(PlacementError) -> (String, Int?) {
        let value = try env.required(name)
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        let host = parts[0]
        guard parts.count <= 2, !host.isEmpty,
            host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") })
        else {
            throw .bad(variable: name, value: value, why: "is not HOST or HOST:PORT (e.g. convoy-coordinator:5555)")
        }
        guard parts.count == 2 else { return (String(host), nil) }
        guard (1...5).contains(parts[1].count), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(parts[1]), (1...65535).contains(port)
        else { throw .bad(variable: name, value: value, why: "has no port in 1...65535 after the colon") }
        return (String(host), port)
    }
}
