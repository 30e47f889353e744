import ConvoyEngine
@testable import ConvoyFuzz
import ConvoyInterop
import Foundation
import Testing

/// Hundreds of crafted checkpoints and model files (fields at edge values, counts and
/// lengths changed, sections swapped, states relabelled; CRC recomputed), each read and used
/// the way `--resume` and `evaluate` use them, in this process: each is refused with one
/// line naming the file, or is a valid file that then trains or predicts. A crash fails the
/// whole suite; an invalid file that is accepted fails here.
@Suite struct FileMutationTests {
    static let train = try! MNIST.load(directory: mnistDirectory, split: .train, limit: 256)
    static let test = try! MNIST.load(directory: mnistDirectory, split: .test, limit: 32)

    /// 256 samples, batch 64: 4 steps an epoch. The run is checkpointed every 2 steps.
    static func config(_ optimizer: OptimizerKind) -> TrainingConfig {
        var config = TrainingConfig()
        config.epochs = 2
        config.batchSize = 64
        config.optimizer = optimizer
        config.trainSamples = 256
        return config
    }

    /// A real checkpoint in the middle of the second epoch (step 6: one report, running
    /// totals, a trained optimizer state), and the run's model file.
    static func originals(_ optimizer: OptimizerKind) throws -> (checkpoint: [UInt8], model: [UInt8]) {
        let directory = NSTemporaryDirectory() + "convoy-mutation-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let session = try TrainingSession(
            config: config(optimizer), train: train, test: test, runner: LocalStepRunner(),
            checkpoints: CheckpointPolicy(directory: directory, every: 2, keep: 10))
        try session.run(epochDone: { _ in })
        let checkpoint = try Array(
            Data(contentsOf: URL(fileURLWithPath: directory + "/checkpoint-0000000006.convoy-ckpt")))
        return (checkpoint, try session.modelFile.encoded())
    }

    /// The refusal must be one line, and a file's own problems name the file.
    func expectOneLine(_ error: Error, _ mutation: Mutation) {
        let line = "\(error)"
        #expect(!line.isEmpty && !line.contains("\n") && line.count < 2000, "\(mutation.name): \(line)")
        if error is DataError {
            #expect(line.hasPrefix("m.ckpt") || line.hasPrefix("m.convoy"), "\(mutation.name): \(line)")
        }
    }

    @Test(arguments: OptimizerKind.allCases)
    func mutatedCheckpointsAreRefusedOrResumeCleanly(optimizer: OptimizerKind) throws {
        let original = try Self.originals(optimizer).checkpoint
        var mutator = FileMutator(format: .checkpoint, original: original, seed: 11)
        let mutations = mutator.mutations(count: 120)
        #expect(mutations.count >= 120)
        var refused = 0
        for mutation in mutations {
            let session = try TrainingSession(
                config: Self.config(optimizer), train: Self.train, test: Self.test, runner: LocalStepRunner())
            do {
                let checkpoint = try Checkpoint(decoding: mutation.bytes, name: "m.ckpt")
                try checkpoint.validate(name: "m.ckpt")
                try session.resume(from: checkpoint)
            } catch {
                refused += 1
                expectOneLine(error, mutation)
                continue
            }
            #expect(mutation.expect == .either, "accepted although invalid: \(mutation.name)")
            // What was accepted is used as a resumed run uses it: one more step.
            let step = session.server.step
            try session.trainStep(step: step, samples: session.plan.order(epoch: step / 4)[0..<64])
            #expect(session.server.step == step + 1)
        }
        #expect(refused > mutations.count / 2, "\(refused) of \(mutations.count) refused")
    }

    @Test func mutatedModelFilesAreRefusedOrPredict() throws {
        let original = try Self.originals(.momentum).model
        var mutator = FileMutator(format: .model, original: original, seed: 12)
        let mutations = mutator.mutations(count: 200)
        #expect(mutations.count >= 200)
        for mutation in mutations {
            let file: ModelFile
            do { file = try ModelFile(decoding: mutation.bytes, name: "m.convoy") } catch {
                expectOneLine(error, mutation)
                continue
            }
            #expect(mutation.expect != .refuse, "accepted although invalid: \(mutation.name)")
            #expect(file.parameters.allSatisfy { $0.isFinite }, "\(mutation.name)")
            // Evaluated as `evaluate` does, where the input is still an MNIST image.
            let architecture = try Architecture(file.spec)
            guard architecture.inputShape.count == 784 else { continue }
            let network = Network(architecture, maxBatch: 4, parameters: file.parameters)
            Self.test.pixels.withUnsafeBufferPointer { network.loadPixels($0.baseAddress!, batch: 4) }
            network.forward(batch: 4)
            #expect(network.predictions(batch: 4).count == 4)
        }
    }

    /// The same mutations through the fuzz target's checks (decode, re-encode, use): what
    /// CI's bounded fuzz stage runs when libFuzzer is not available.
    @Test(arguments: FileFormat.allCases)
    func fuzzTargetsAcceptOnlyValidMutations(format: FileFormat) throws {
        let originals = try Self.originals(.adam)
        let original = format == .checkpoint ? originals.checkpoint : originals.model
        let target: FuzzTarget = format == .checkpoint ? .checkpoint : .model
        #expect(target.check(original), "the original \(format) is valid")
        var mutator = FileMutator(format: format, original: original, seed: 13)
        for mutation in mutator.mutations(count: 150) where target.check(mutation.bytes) {
            #expect(mutation.expect != .refuse, "accepted although invalid: \(mutation.name)")
        }
    }
}
