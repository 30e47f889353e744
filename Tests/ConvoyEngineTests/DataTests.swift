@testable import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let mnistDirectory = repositoryRoot.appendingPathComponent("data/mnist").path

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "convoy-test-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func idx(_ type: UInt8, _ dims: [UInt32], _ data: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { bytes += [UInt8(d >> 24), UInt8((d >> 16) & 255), UInt8((d >> 8) & 255), UInt8(d & 255)] }
    return bytes + data
}

@Suite struct MNISTTests {
    @Test func bundledCopyMatchesItsChecksums() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum", "--check", "--quiet", "SHA256SUMS"]
        process.currentDirectoryURL = URL(fileURLWithPath: mnistDirectory)
        // SHA256SUMS also lists the uncompressed names, which are not bundled: check only
        // the lines for files that exist.
        let sums = try String(contentsOfFile: mnistDirectory + "/SHA256SUMS", encoding: .utf8)
        let present = sums.split(separator: "\n").filter { line in
            guard let name = line.split(separator: " ").last else { return false }
            return FileManager.default.fileExists(
                atPath: mnistDirectory + "/" + name.trimmingCharacters(in: CharacterSet(charactersIn: "*")))
        }
        #expect(present.count >= 4)
        let input = Pipe()
        process.standardInput = input
        process.arguments = ["sha256sum", "--check", "--strict", "-"]
        try process.run()
        input.fileHandleForWriting.write(Data((present.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test func loadsBothSplitsWithTheKnownStatistics() throws {
        let train = try MNIST.load(directory: mnistDirectory, split: .train)
        let test = try MNIST.load(directory: mnistDirectory, split: .test)
        #expect(train.count == 60_000 && test.count == 10_000)
        var trainCounts = [Int](repeating: 0, count: 10)
        var testCounts = trainCounts
        for l in train.labels { trainCounts[Int(l)] += 1 }
        for l in test.labels { testCounts[Int(l)] += 1 }
        #expect(trainCounts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        #expect(testCounts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        let mean = Double(train.pixels.reduce(0) { $0 + Int($1) }) / Double(train.pixels.count)
        #expect(abs(mean - 33.318) < 0.001)
        #expect(try MNIST.load(directory: mnistDirectory, split: .test, limit: 100).count == 100)
    }

    @Test func networkInputIsScaledToUnitRange() throws {
        let network = try Network(ModelZoo.lenet5, maxBatch: 1, seed: 1)
        let pixels: [UInt8] = (0..<784).map { UInt8($0 % 256) }
        pixels.withUnsafeBufferPointer { network.loadPixels($0.baseAddress!, batch: 1) }
        #expect(network.input[0] == 0 && network.input[255] == 1 && abs(network.input[128] - 128.0 / 255) < 1e-7)
    }
}

@Suite struct IDXTests {
    @Test func parsesAValidArray() throws {
        let array = try IDXArray(parsing: idx(8, [2, 3], [1, 2, 3, 4, 5, 6]), name: "x", expectedRank: 2)
        #expect(array.dimensions == [2, 3] && array.bytes == [1, 2, 3, 4, 5, 6])
    }

    @Test(arguments: [
        ([UInt8]([1, 0, 8, 1, 0, 0, 0, 1, 5]), "bad magic"),
        (idx(0x0D, [1], [0, 0, 0, 0]), "element type"),
        (idx(8, [2, 2], [1, 2, 3, 4]), "dimensions, expected 1"),
        (idx(8, [5], [1, 2, 3]), "truncated"),
        (idx(8, [2], [1, 2, 3]), "unexpected bytes"),
        ([UInt8]([0, 0, 8]), "truncated"),
        (idx(8, [0], []), "dimension 0 is 0"),
    ])
    func refusesBrokenFiles(bytes: [UInt8], problem: String) {
        do {
            _ = try IDXArray(parsing: bytes, name: "labels.idx", expectedRank: 1)
            Issue.record("accepted a broken file (\(problem))")
        } catch let error as DataError {
            #expect(error.description.hasPrefix("labels.idx: "), "\(error)")
            #expect(error.description.contains(problem), "\(error)")
        } catch { Issue.record("unexpected \(error)") }
    }

    /// Writes a data directory from `files` and expects `MNIST.load` to fail naming `problem`.
    func expectLoadFailure(_ files: [String: [UInt8]], gzip: Bool = false, _ problem: String) throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, bytes) in files {
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes))
        }
        do {
            _ = try MNIST.load(directory: dir, split: .test)
            Issue.record("loaded a broken data directory (\(problem))")
        } catch let error as DataError {
            #expect(error.description.contains(problem), "\(error)")
        }
    }

    @Test func refusesBadMNISTDirectories() throws {
        let images = idx(8, [2, 28, 28], [UInt8](repeating: 7, count: 2 * 784))
        try expectLoadFailure(
            ["t10k-images-idx3-ubyte": images, "t10k-labels-idx1-ubyte": idx(8, [2], [3, 12])],
            "label 12 at index 1 is outside 0...9")
        try expectLoadFailure(
            ["t10k-images-idx3-ubyte": images, "t10k-labels-idx1-ubyte": idx(8, [3], [1, 2, 3])],
            "3 labels for 2 images")
        try expectLoadFailure(
            ["t10k-images-idx3-ubyte": idx(8, [1, 2, 2], [1, 2, 3, 4]), "t10k-labels-idx1-ubyte": idx(8, [1], [1])],
            "expected 28×28")
        try expectLoadFailure(["t10k-images-idx3-ubyte": images], "not found")
    }

    @Test func refusesTruncatedAndCorruptGzip() throws {
        let gz = try Zlib.readMaybeGzipped(path: mnistDirectory + "/t10k-labels-idx1-ubyte.gz")
        #expect(gz.count == 10_008)
        let original = try Data(contentsOf: URL(fileURLWithPath: mnistDirectory + "/t10k-labels-idx1-ubyte.gz"))
        let images = try Data(contentsOf: URL(fileURLWithPath: mnistDirectory + "/t10k-images-idx3-ubyte.gz"))
        for broken in [
            original.prefix(original.count / 2),
            original.prefix(30) + Data(repeating: 0x5A, count: 500) + original.suffix(from: 530),
        ] {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            _ = FileManager.default.createFile(atPath: dir + "/t10k-images-idx3-ubyte.gz", contents: images)
            _ = FileManager.default.createFile(atPath: dir + "/t10k-labels-idx1-ubyte.gz", contents: Data(broken))
            do {
                _ = try MNIST.load(directory: dir, split: .test)
                Issue.record("loaded a broken gzip")
            } catch let error as DataError {
                #expect(error.description.contains("t10k-labels-idx1-ubyte.gz: "), "\(error)")
            }
        }
    }
}

@Suite struct ModelFileTests {
    @Test func roundTripsAndDetectsCorruption() throws {
        let architecture = try Architecture(ModelZoo.lenet5)
        let file = ModelFile(
            spec: ModelZoo.lenet5, config: TrainingConfig(), parameters: architecture.initialParameters(seed: 3))
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.convoy"
        try file.save(to: path)
        let loaded = try ModelFile.load(path: path)
        #expect(loaded.parameters == file.parameters && loaded.spec == file.spec && loaded.config == TrainingConfig())
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.convoy"])  // no temp file left
        var bytes = try file.encoded()
        bytes[bytes.count / 2] ^= 0x10
        #expect(throws: DataError.self) { try ModelFile(decoding: bytes, name: "m") }
        #expect(throws: DataError.self) { try ModelFile(decoding: Array(try file.encoded().prefix(1000)), name: "m") }
        #expect(throws: DataError.self) { try ModelFile(decoding: Array("not a model".utf8), name: "m") }
    }

    @Test func refusesParametersThatDoNotFitTheArchitecture() throws {
        let mismatched = ModelFile(spec: ModelZoo.lenet5, parameters: [Float](repeating: 0, count: 100))
        do {
            _ = try ModelFile(decoding: try mismatched.encoded(), name: "m.convoy")
            Issue.record("accepted 100 parameters for LeNet-5")
        } catch let error as DataError {
            #expect(
                error.description.contains("100 parameters stored but the lenet5 architecture has 61706"), "\(error)")
        }
    }
}

@Suite struct TrainerTests {
    /// A short real training run learns: 4,000 samples, 3 epochs of LeNet-5 reach > 88%
    /// (92% with seed 1; chance is 10%).
    @Test func lenetLearnsOnASmallSubset() throws {
        var config = TrainingConfig()
        config.epochs = 3
        config.trainSamples = 4000
        let train = try MNIST.load(directory: mnistDirectory, split: .train, limit: 4000)
        let test = try MNIST.load(directory: mnistDirectory, split: .test, limit: 1000)
        let session = try TrainingSession(config: config, train: train, test: test, runner: LocalStepRunner())
        var reports: [EpochReport] = []
        try session.run { reports.append($0) }
        #expect(reports.count == 3)
        #expect(reports[2].testAccuracy > 0.88, "\(reports)")
        #expect(reports[2].loss < reports[0].loss)
    }

    /// Fast and deterministic modes agree closely (they differ only in summation order and
    /// fixed-point rounding), and deterministic runs repeat bit for bit.
    @Test func deterministicRunsRepeatExactly() throws {
        var config = TrainingConfig()
        config.epochs = 1
        let train = try MNIST.load(directory: mnistDirectory, split: .train, limit: 640)
        let test = try MNIST.load(directory: mnistDirectory, split: .test, limit: 100)
        func weights(_ config: TrainingConfig) throws -> [Float] {
            let session = try TrainingSession(config: config, train: train, test: test, runner: LocalStepRunner())
            try session.run { _ in }
            return session.server.parameters.array
        }
        let a = try weights(config)
        #expect(try weights(config) == a)
        config.deterministic = false
        let fast = try weights(config)
        let maxDifference = zip(a, fast).map { abs($0 - $1) }.max()!
        #expect(maxDifference < 1e-3)
    }

    /// A stop rule ends the run at the first evaluation that meets the target, mid-epoch
    /// with `evaluateEvery`, and records the time to it; without a target nothing stops.
    @Test func aStopRuleEndsTheRunAtTheTarget() throws {
        var config = TrainingConfig()
        config.epochs = 3
        let train = try MNIST.load(directory: mnistDirectory, split: .train, limit: 3200)
        let test = try MNIST.load(directory: mnistDirectory, split: .test, limit: 200)
        let session = try TrainingSession(config: config, train: train, test: test, runner: LocalStepRunner())
        session.stopRule = StopRule(targetAccuracy: 0.6, evaluateEvery: 5)
        var reports: [EpochReport] = []
        try session.run { reports.append($0) }
        #expect(reports.count < 3, "\(reports)")
        #expect(reports.last!.testAccuracy >= 0.6)
        #expect(session.timeToTarget != nil)
        #expect(
            session.server.step % 5 == 0 && session.server.step < 3 * session.plan.stepsPerEpoch,
            "step \(session.server.step)")
        let unreachable = try TrainingSession(config: config, train: train, test: test, runner: LocalStepRunner())
        unreachable.stopRule = StopRule(targetAccuracy: 1.0, evaluateEvery: 0)
        var epochs = 0
        try unreachable.run { _ in epochs += 1 }
        #expect(epochs == 3 && unreachable.timeToTarget == nil)
    }

    @Test func invalidConfigsAreRefusedNamingTheSetting() {
        var config = TrainingConfig()
        config.epochs = 0
        #expect(throws: SettingError(setting: .epochs, value: "0", rule: "must be in 1...1048576")) {
            try config.validate()
        }
        config = TrainingConfig()
        config.learningRate = -1
        #expect((try? config.validate()) == nil)
        config = TrainingConfig()
        config.model = "vgg16"
        do {
            try config.validate()
            Issue.record("vgg16 is not trainable here")
        } catch {
            #expect("\(error)".contains("summaries only"))
        }
    }
}
