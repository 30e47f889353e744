@testable import ConvoyEngine
import ConvoyInterop
import Foundation
import Testing

/// Paths, temporary files and compressed input, each handled as hostile (docs/SECURITY.md,
/// "Files and keys").
@Suite struct FileSafetyTests {
    /// Plain string logic where Foundation's NSString helpers trap on Linux ("m").
    @Test(arguments: [
        ("m", ".", "m"), ("a/b", "a", "b"), ("/b", "/", "b"), ("a//b/", "a", "b"), ("/", "/", ""),
        ("./m", ".", "m"), ("a b/ü", "a b", "ü"), ("", ".", ""), ("//x//y", "//x", "y"),
    ])
    func pathsSplitWithoutFoundation(path: String, directory: String, last: String) {
        #expect(FilePaths.directory(of: path) == directory, "\(path)")
        #expect(FilePaths.lastComponent(of: path) == last, "\(path)")
    }

    @Test func joinAddsOneSlash() {
        #expect(FilePaths.join("a", "b") == "a/b")
        #expect(FilePaths.join("a/", "b") == "a/b")
        #expect(FilePaths.join("", "b") == "b")
    }

    /// A header that promises 10 labels followed by a gigabyte of zeros (1,024 gzip members
    /// of 1 MiB each: a 1 MB file): refused after reading the 10 bytes and one more, not
    /// after inflating the gigabyte.
    @Test func aGzipBombCostsOnlyWhatTheHeaderClaims() throws {
        let directory = NSTemporaryDirectory() + "convoy-bomb-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Zlib.writeGzipped([0, 0, 8, 1, 0, 0, 0, 10] + [UInt8](repeating: 1, count: 10), to: directory + "/head")
        try Zlib.writeGzipped([UInt8](repeating: 0, count: 1 << 20), to: directory + "/zeros")
        let head = try Data(contentsOf: URL(fileURLWithPath: directory + "/head"))
        let zeros = try Data(contentsOf: URL(fileURLWithPath: directory + "/zeros"))
        var bomb = head
        for _ in 0..<1024 { bomb += zeros }
        try bomb.write(to: URL(fileURLWithPath: directory + "/bomb.gz"))
        #expect(bomb.count < 4 << 20)
        let reader = try GzipReader(path: directory + "/bomb.gz")
        do {
            _ = try IDXArray.load(from: reader, expectedRank: 1)
            Issue.record("a bomb was accepted")
        } catch let error as DataError {
            #expect(error.description.contains("unexpected bytes after the 10 data bytes"), "\(error)")
        }
        #expect(reader.bytesRead == 8 + 10 + 1)
        // The public entry gives the same one line.
        #expect(throws: DataError.self) { try IDXArray.load(path: directory + "/bomb.gz", expectedRank: 1) }
        // And the generic reader stops at its bound.
        #expect(throws: ZlibError.self) { try Zlib.readMaybeGzipped(path: directory + "/bomb.gz", maxBytes: 1 << 20) }
    }

    /// Not a regular file, or larger than any model: one line, nothing read.
    @Test func modelFilesAndCheckpointsAreReadWithBounds() throws {
        for path in ["/dev/zero", "/"] {
            #expect(throws: DataError.self) { try ModelFile.load(path: path) }
            #expect(throws: DataError.self) { try Checkpoint.load(path: path) }
        }
        do { _ = try ModelFile.load(path: "/dev/zero") } catch {
            #expect("\(error)" == "model file /dev/zero: not a regular file")
        }
    }

    /// The two crashes of issue 14 row 8, as files: an SGD checkpoint relabelled momentum
    /// (SIGSEGV) and a momentum state of half length (heap corruption) are refused on load,
    /// naming the file and the field.
    @Test func relabelledAndHalvedOptimizerStatesAreRefusedOnLoad() throws {
        let directory = NSTemporaryDirectory() + "convoy-ckpt-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var config = TrainingConfig()
        config.epochs = 2
        config.optimizer = .sgd
        let parameters = try Architecture(ModelZoo.lenet5).initialParameters(seed: 1)
        let header = Checkpoint.Header(
            config: config, epoch: 0, stepInEpoch: 3, step: 3, epochTotals: .init(), reports: [])
        var relabelled = Checkpoint(header: header, parameters: parameters, optimizerState: [])
        relabelled.header.config.optimizer = .momentum
        var halved = relabelled
        halved.optimizerState = [Float](repeating: 0, count: parameters.count / 2)
        var adamAsVelocity = relabelled
        adamAsVelocity.optimizerState = [Float](repeating: 0, count: 2 * parameters.count + 1)
        let cases = [
            (relabelled, "optimizer state: 0 values stored, momentum keeps 61706"),
            (halved, "optimizer state: 30853 values stored, momentum keeps 61706"),
            (adamAsVelocity, "optimizer state: 123413 values stored, momentum keeps 61706"),
        ]
        for (checkpoint, problem) in cases {
            let path = directory + "/c.ckpt"
            try writeAtomically(try checkpoint.encoded(), to: path)
            do {
                _ = try Checkpoint.load(path: path)
                Issue.record("accepted: \(problem)")
            } catch {
                #expect("\(error)".hasPrefix("\(path): \(problem)"), "\(error)")
            }
        }
        var valid = relabelled
        valid.optimizerState = [Float](repeating: 0, count: parameters.count)
        try writeAtomically(try valid.encoded(), to: directory + "/ok.ckpt")
        #expect(try Checkpoint.load(path: directory + "/ok.ckpt").optimizerState.count == parameters.count)
    }
}

/// A model file may describe few parameters and enormous activations; `evaluate` sizes its
/// batch by memory and refuses what does not fit one sample.
@Suite struct EvaluationMemoryTests {
    static func model(channels: Int) throws -> ModelFile {
        let spec = NetworkSpec(
            name: "wide", inputShape: Shape(1, 28, 28), layers: [.conv2d(channels, kernel: 1), .flatten])
        return ModelFile(
            spec: spec, parameters: [Float](repeating: 0.5, count: try Architecture(spec).parameterCount))
    }

    @Test func theBatchShrinksToFitAndAHugeModelIsRefused() throws {
        let lenet = ModelFile(
            spec: ModelZoo.lenet5, parameters: try Architecture(ModelZoo.lenet5).initialParameters(seed: 1))
        #expect(try lenet.evaluationBatch(preferred: 500, memoryBytes: Double(4 << 30), name: "l") == 500)
        // 512 channels of 28×28: ~8 MB a sample, so 64 MB holds only a few.
        let wide = try Self.model(channels: 512)
        let batch = try wide.evaluationBatch(preferred: 500, memoryBytes: Double(64 << 20), name: "w")
        let architecture = try Architecture(wide.spec)
        #expect(batch >= 1 && batch < 10, "\(batch)")
        #expect(architecture.networkBytes(batch: batch) <= Double(64 << 20))
        #expect(architecture.networkBytes(batch: batch + 1) > Double(64 << 20))
        // 2^20 channels: 3.3 GB a sample, from a file of 8 MB.
        let huge = try Self.model(channels: 1 << 20)
        #expect(throws: DataError.self) {
            try huge.evaluationBatch(preferred: 500, memoryBytes: Double(1 << 30), name: "h")
        }
    }
}
