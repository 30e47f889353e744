@testable import ConvoyCluster
import Testing

/// `--from-env` (issue 11, "Schedulers"): the placement Slurm and a Kubernetes Indexed Job
/// give, Slurm's compact host lists, and one line naming the variable for every bad value.
@Suite struct SchedulerPlacementTests {
    static let slurmJob = [
        "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "3", "SLURM_PROCID": "0",
        "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_STEP_NODELIST": "node[01-03,07]",
    ]

    static func slurm(_ changes: [String: String?]) -> [String: String] {
        var environment = slurmJob
        for (name, value) in changes { environment[name] = value }
        return environment
    }

    @Test func slurmTaskZeroCoordinatesOnTheStepsFirstNode() throws {
        let placement = try SchedulerPlacement.read(from: Self.slurmJob)
        #expect(placement.scheduler == .slurm)
        #expect(placement.role == .coordinator)
        #expect(placement.workers == 2)
        #expect(placement.coordinatorHost == "node01")
        #expect(placement.port == 20000 + 4242)
        #expect(placement.bindEndpoint == "tcp://0.0.0.0:24242")
        #expect(placement.jobID == "4242")
    }

    @Test func slurmOtherTasksAreWorkersConnectingToTheFirstNode() throws {
        let placement = try SchedulerPlacement.read(from: Self.slurm(["SLURM_PROCID": "2", "CONVOY_PORT": "6000"]))
        #expect(placement.role == .worker(index: 1))
        #expect(placement.connectEndpoint == "tcp://node01:6000")
        // Outside a step the job's node list is used; the port wraps with the job id.
        let outside = try SchedulerPlacement.read(
            from: Self.slurm(["SLURM_STEP_NODELIST": nil, "SLURM_JOB_ID": "123456", "SLURM_PROCID": "1"]))
        #expect(outside.connectEndpoint == "tcp://gpu07:23456")
        // Inside a step the step's list wins; a bad job list beside it is never read.
        let step = try SchedulerPlacement.read(from: Self.slurm(["SLURM_JOB_NODELIST": "n[1"]))
        #expect(step.coordinatorHost == "node01")
    }

    @Test func kubernetesWorkerReachesTheServiceAndTheCoordinatorWaitsForTheCount() throws {
        let worker = try SchedulerPlacement.read(from: [
            "JOB_COMPLETION_INDEX": "3", "CONVOY_COORDINATOR": "convoy-coordinator.ml.svc:7000",
        ])
        #expect(worker.scheduler == .kubernetes)
        #expect(worker.role == .worker(index: 3))
        #expect(worker.connectEndpoint == "tcp://convoy-coordinator.ml.svc:7000")
        let defaultPort = try SchedulerPlacement.read(from: [
            "JOB_COMPLETION_INDEX": "0", "CONVOY_COORDINATOR": "convoy-coordinator", "CONVOY_PORT": "5600",
        ])
        #expect(defaultPort.connectEndpoint == "tcp://convoy-coordinator:5600")
        let coordinator = try SchedulerPlacement.read(from: [
            "KUBERNETES_SERVICE_HOST": "10.96.0.1", "CONVOY_WORKERS": "4",
        ])
        #expect(coordinator.role == .coordinator)
        #expect(coordinator.workers == 4)
        #expect(coordinator.bindEndpoint == "tcp://0.0.0.0:5555")
    }

    @Test(arguments: [
        ("node[01-03,07]", ["node01", "node02", "node03", "node07"]),
        ("a1,b[8-10]", ["a1", "b8", "b9", "b10"]), ("b[08-10]", ["b08", "b09", "b10"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("login,cn[5],", ["login", "cn5"]), ("node[3]x", ["node3x"]),
    ])
    func hostlistsExpandAsSlurmWritesThem(list: String, hosts: [String]) throws {
        #expect(try Hostlist.expand(list) == hosts)
    }

    @Test(arguments: [
        ("", Hostlist.Problem.empty), (",", .empty), ("node[01-03", .unbalancedBracket),
        ("node]1[", .unbalancedBracket),
        ("n[[1]]", .unbalancedBracket), ("n[3-1]", .badRange("3-1")), ("n[a-b]", .badRange("a-b")),
        ("n[]", .badRange("")), ("n[1-2-3]", .badRange("1-2-3")), ("n[1,,2]", .badRange("1,,2")),
        ("n[-5]", .badRange("-5")), ("n[0-999999999]", .tooMany(limit: Hostlist.maxHosts)),
        ("a[0-300]b[0-300]", .tooMany(limit: Hostlist.maxHosts)),
        ("a[1-2]b[0-99999999]", .tooMany(limit: Hostlist.maxHosts)),
    ])
    func badHostlistsAreRefused(list: String, problem: Hostlist.Problem) {
        #expect(throws: problem) { try Hostlist.expand(list) }
    }

    @Test(arguments: [
        (["SLURM_PROCID": "x"], "--from-env: SLURM_PROCID=\"x\" is not a whole number"),
        (["SLURM_PROCID": "3"], "--from-env: SLURM_PROCID=\"3\" is outside 0...2"),
        (["SLURM_PROCID": "-1"], "--from-env: SLURM_PROCID=\"-1\" is not a whole number"),
        (["SLURM_PROCID": nil], "--from-env: SLURM_PROCID is not set"),
        (
            ["SLURM_NTASKS": "1"],
            "--from-env: SLURM_NTASKS=\"1\" is outside 2...4097 (task 0 coordinates, the others are workers)"
        ),
        (["SLURM_NTASKS": ""], "--from-env: SLURM_NTASKS=\"\" is empty"),
        (
            ["SLURM_NTASKS": "99999999999999999999"],
            "--from-env: SLURM_NTASKS=\"99999999999999999999\" is not a whole number"
        ),
        (["SLURM_JOB_ID": "12a"], "--from-env: SLURM_JOB_ID=\"12a\" is not a whole number"),
        (["SLURM_JOB_ID": nil], "--from-env: SLURM_JOB_ID is not set"),
        (
            ["SLURM_STEP_NODELIST": "n[2-1]"],
            "--from-env: SLURM_STEP_NODELIST=\"n[2-1]\" has a bad range [2-1] "
                + "(want N, N-M with N <= M, comma-separated)"
        ),
        (["SLURM_STEP_NODELIST": nil, "SLURM_JOB_NODELIST": nil], "--from-env: SLURM_JOB_NODELIST is not set"),
        (["CONVOY_PORT": "0"], "--from-env: CONVOY_PORT=\"0\" is outside 1...65535"),
        (["CONVOY_PORT": "55\n55"], "--from-env: CONVOY_PORT=\"55\\n55\" is not a whole number"),
    ])
    func badSlurmValuesAreOneLineNamingTheVariable(changes: [String: String?], line: String) {
        let environment = Self.slurm(changes)
        #expect(throws: PlacementError.self) { try SchedulerPlacement.read(from: environment) }
        do { _ = try SchedulerPlacement.read(from: environment) } catch {
            #expect(error.description == line)
            #expect(!error.description.contains("\n"))
        }
    }

    @Test(arguments: [
        (
            [:],
            "--from-env: no scheduler placement in the environment: neither SLURM_PROCID (Slurm) nor "
                + "JOB_COMPLETION_INDEX, CONVOY_COORDINATOR or CONVOY_WORKERS (Kubernetes) is set"
        ),
        (["JOB_COMPLETION_INDEX": "1"], "--from-env: CONVOY_COORDINATOR is not set"),
        (
            ["JOB_COMPLETION_INDEX": "one", "CONVOY_COORDINATOR": "c"],
            "--from-env: JOB_COMPLETION_INDEX=\"one\" is not a whole number"
        ),
        (
            ["JOB_COMPLETION_INDEX": "4096", "CONVOY_COORDINATOR": "c"],
            "--from-env: JOB_COMPLETION_INDEX=\"4096\" is outside 0...4095"
        ),
        (
            ["JOB_COMPLETION_INDEX": "0", "CONVOY_COORDINATOR": "c:99999"],
            "--from-env: CONVOY_COORDINATOR=\"c:99999\" has no port in 1...65535 after the colon"
        ),
        (
            ["JOB_COMPLETION_INDEX": "0", "CONVOY_COORDINATOR": "tcp://c:5"],
            "--from-env: CONVOY_COORDINATOR=\"tcp://c:5\" is not HOST or HOST:PORT (e.g. convoy-coordinator:5555)"
        ),
        (
            ["JOB_COMPLETION_INDEX": "0", "CONVOY_COORDINATOR": "c d"],
            "--from-env: CONVOY_COORDINATOR=\"c d\" is not HOST or HOST:PORT (e.g. convoy-coordinator:5555)"
        ),
        (["KUBERNETES_SERVICE_HOST": "10.0.0.1"], "--from-env: CONVOY_WORKERS is not set"),
        (["CONVOY_WORKERS": "0"], "--from-env: CONVOY_WORKERS=\"0\" is outside 1...4096"),
    ])
    func badKubernetesValuesAreOneLineNamingTheVariable(environment: [String: String], line: String) {
        do {
            _ = try SchedulerPlacement.read(from: environment)
            Issue.record("accepted \(environment)")
        } catch {
            #expect(error.description == line)
        }
    }
}
