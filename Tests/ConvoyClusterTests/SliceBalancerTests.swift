@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// Balanced slices (SliceBalancer.swift): the split follows the workers' measured speed, stops
/// where moving a micro-batch would no longer shorten the step, and never changes the result.
@Suite struct SliceBalancerTests {
    /// Workers whose slice of u micro-batches takes `fixed + u · perUnit` seconds.
    struct Model {
        var fixed: [Double]
        var perUnit: [Double]
        func times(_ units: [Int], ids: [UInt32]) -> [UInt32: Double] {
            Dictionary(
                uniqueKeysWithValues: units.indices.filter { units[$0] > 0 }.map {
                    (ids[$0], fixed[$0] + Double(units[$0]) * perUnit[$0])
                })
        }
        func step(_ units: [Int]) -> Double {
            units.indices.filter { units[$0] > 0 }.map { fixed[$0] + Double(units[$0]) * perUnit[$0] }.max()!
        }
    }

    /// Runs `rounds` rounds; returns the splits seen.
    func simulate(_ model: Model, ids: [UInt32], total: Int, rounds: Int) -> [[Int]] {
        var balancer = SliceBalancer()
        var splits: [[Int]] = []
        for _ in 0..<rounds {
            let units = balancer.shares(for: ids, total: total)
            splits.append(units)
            _ = balancer.observe(model.times(units, ids: ids))
        }
        return splits
    }

    @Test func startsAsEvenAsTheMicroBatchesAllow() {
        var balancer = SliceBalancer()
        #expect(balancer.shares(for: [7, 9], total: 8) == [4, 4])
        #expect(balancer.shares(for: [7, 9, 11], total: 8) == [3, 3, 2])
        #expect(balancer.shares(for: Array(0..<10), total: 8) == [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    }

    /// A worker that loses 2 ms a step (a busy host) ends with fewer micro-batches, at the
    /// split with the shortest step, and stays there.
    @Test func aSlowWorkerGetsLessWorkUntilTheStepIsShortest() {
        let model = Model(fixed: [0, 2e-3], perUnit: [0.45e-3, 0.45e-3])
        let splits = simulate(model, ids: [1, 2], total: 8, rounds: 60)
        let best = (1...7).map { [8 - $0, $0] }.min { model.step($0) < model.step($1) }!
        #expect(splits.last == best)
        #expect(Set(splits.suffix(30).map { $0 }).count == 1, "the split settles: \(splits.suffix(30))")
        #expect(model.step(splits.last!) < model.step([4, 4]) * 0.8)
    }

    /// A twice-as-fast worker (two slots) gets about twice the work.
    @Test func aFasterWorkerGetsMoreWork() {
        let model = Model(fixed: [0.1e-3, 0.1e-3, 0.1e-3], perUnit: [0.25e-3, 0.5e-3, 0.5e-3])
        let splits = simulate(model, ids: [4, 5, 6], total: 16, rounds: 120)
        #expect(splits.last == [8, 4, 4])
    }

    /// Workers of equal speed keep the even split: a gap below one micro-batch moves nothing.
    @Test func equalWorkersKeepTheEvenSplit() {
        let model = Model(fixed: [0, 0.3e-3], perUnit: [0.45e-3, 0.45e-3])
        let splits = simulate(model, ids: [1, 2], total: 8, rounds: 40)
        #expect(splits.allSatisfy { $0 == [4, 4] })
    }

    /// A round without every busy worker's time (one was dropped, a slice reassigned) teaches
    /// nothing; another set of workers starts even again; nobody loses its last micro-batch.
    @Test func incompleteRoundsAndNewWorkersAndLastMicroBatches() {
        var balancer = SliceBalancer()
        _ = balancer.shares(for: [1, 2], total: 8)
        for _ in 0..<10 { #expect(balancer.observe([1: 0.001]) == nil) }
        #expect(balancer.units == [4, 4])
        // Very slow worker 2: it keeps one micro-batch.
        for _ in 0..<60 {
            let units = balancer.shares(for: [1, 2], total: 8)
            _ = balancer.observe([1: Double(units[0]) * 1e-3, 2: 1.0])
        }
        #expect(balancer.units == [7, 1])
        // An epoch's short last step is split evenly, teaches nothing and keeps what was learned.
        #expect(balancer.shares(for: [1, 2], total: 4) == [2, 2])
        #expect(balancer.observe([1: 1.0, 2: 0.001]) == nil)
        #expect(balancer.shares(for: [1, 2], total: 8) == [7, 1])
        // Workers that change during a short step start from the even split of a full one.
        #expect(balancer.shares(for: [1, 2, 3], total: 4) == [2, 1, 1])
        #expect(balancer.shares(for: [1, 2, 3], total: 8) == [3, 3, 2])
    }

    @Test func unevenSlicesCoverTheBatchInOrder() {
        #expect(BatchPlan.slices(count: 64, units: [6, 2], unit: 8) == [0..<48, 48..<64])
        #expect(BatchPlan.slices(count: 60, units: [3, 5, 0], unit: 8) == [0..<24, 24..<60, 60..<60])
    }

    /// Through the built binary: a worker slowed by 15 ms a slice (`--inject-fault slow:15`)
    /// gets fewer micro-batches, the coordinator says so, and the model is the same bytes as
    /// `convoy train`'s.
    @Test func aSlowedWorkerGetsLessWorkAndTheModelIsTheSameBits() throws {
        let dir = NSTemporaryDirectory() + "convoy-balance-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recipe = EndToEndTests.quick + ["--batch", "64"]
        let train = try runConvoy(["train", "--out", dir + "/train.convoy"] + recipe)
        #expect(train.status == 0, "\(train.stderr)")
        let endpoint = "shm://" + dir + "/coordinator"
        let coordinator = try startConvoy(
            ["coordinator", "--bind", endpoint, "--workers", "2", "--out", dir + "/cluster.convoy"] + recipe,
            log: dir + "/coordinator.log")
        let fast = try startConvoy(["worker", "--connect", endpoint], log: dir + "/fast.log")
        let slow = try startConvoy(
            ["worker", "--connect", endpoint, "--inject-fault", "slow:15"], log: dir + "/slow.log",
            environment: ["CONVOY_ALLOW_FAULT_INJECTION": "1"])
        // Ended by PID whatever happens; the workers end by themselves after the run.
        defer { for child in [coordinator, fast, slow] where child.isRunning { child.terminate() } }
        let deadline = Date().addingTimeInterval(120)
        while coordinator.isRunning && Date() < deadline { usleep(20_000) }
        if coordinator.isRunning { Issue.record("the coordinator ran past 120 s") }
        coordinator.waitUntilExit()
        let log = try String(contentsOfFile: dir + "/coordinator.log", encoding: .utf8)
        #expect(coordinator.terminationStatus == 0, "\(log)")
        // "... w0@host:PID 6 (2.1 ms), w1@host:PID 2 (3.8 ms)": micro-batches by process id.
        let last = log.split(separator: "\n").last { $0.contains("slices balanced by speed") }
        var units: [Int32: Int] = [:]
        for match in (last.map(String.init) ?? "").matches(of: /:(\d+) (\d+) \(/) {
            units[Int32(match.1)!] = Int(match.2)!
        }
        let (slowUnits, fastUnits) = (units[slow.processIdentifier], units[fast.processIdentifier])
        #expect(slowUnits != nil && fastUnits != nil && slowUnits! < fastUnits!, "\(log)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: dir + "/cluster.convoy"))
                == Data(contentsOf: URL(fileURLWithPath: dir + "/train.convoy")))
    }
}
