@testable import ConvoyEngine
import ConvoyInterop
import Testing

/// Golden bytes of the file formats (docs/FORMATS.md): fixed values must encode to exactly
/// these bytes and decode back. A failure here means the format changed: bump the version
/// (`ModelFile.version`, `Checkpoint.version`), update docs/FORMATS.md, then the literal.
@Suite struct FormatGoldenTests {
    /// A tiny model: Conv1d → Flatten → Dense, 6 parameters.
    static let spec = NetworkSpec(
        name: "tiny", inputShape: Shape(1, 3),
        layers: [
            .conv1d(outChannels: 1, kernel: 2, stride: 1, padding: 0), .flatten, .dense(outputs: 1),
        ], initializer: .xavier)

    static var config: TrainingConfig {
        var config = TrainingConfig()
        config.epochs = 2
        config.optimizer = .adam
        config.learningRate = 0.5
        config.schedule = .constant
        config.seed = 0x0102
        config.initializer = .he
        config.trainSamples = 100
        config.warmupEpochs = 1
        config.weightDecay = 0.25
        config.augmentShift = 2
        return config
    }

    /// The golden model file's spec and config (header bytes before the recipe).
    static let specAndConfigHex = [
        // spec: name "tiny", rank 2, (1, 3), xavier, 3 layers
        "0400 74696e79 02 01000000 03000000 02 0300",
        // conv1d: 1 channel, kernel 2, stride 1, explicit 0, zeros
        "02 01000000 02000000 01000000 01 00000000 01",
        // flatten
        "06",
        // dense: 1 output
        "07 01000000",
        // config present
        "01",
        // config: model "lenet5"
        "0600 6c656e657435",
        // epochs 2, batch 64, adam, lr 0.5, constant, seed 0x102, deterministic, micro-batch 8
        "02000000 40000000 04 0000003f 02 0201000000000000 01 08000000",
        // initializer he
        "03",
        // train samples: 100
        "01 6400000000000000",
        // test samples: all
        "00 0000000000000000",
        // warm-up epochs 1, weight decay 0.25, augmentation shift 2
        "01000000 0000803e 02",
    ].joined()
    /// Parameter count 6 and the parameters.
    static let parametersHex = "0600000000000000" + "0000803f 000080bf 0000003f 00000040 00000000 0000803e"

    @Test func modelFile() throws {
        let file = ModelFile(
            spec: Self.spec, config: Self.config, parameters: [1, -1, 0.5, 2, 0, 0.25],
            recipe: ["lr": "0.5", "epochs": "2"])
        let golden = hexBytes(
            [
                // magic CONVOYMD, version 4, header length 129
                "434f4e564f594d44 04000000 81000000",
                Self.specAndConfigHex,
                // recipe: 2 entries, sorted by key: "epochs" = "2", "lr" = "0.5"
                "0200 0600 65706f636873 0100 32 0200 6c72 0300 302e35",
                Self.parametersHex,
                // CRC-32
                "5b0dfdfd",
            ].joined())
        let bytes = try file.encoded()
        #expect(hexString(bytes) == hexString(golden))
        let decoded = try ModelFile(decoding: golden, name: "golden")
        #expect(decoded.spec == file.spec && decoded.config == file.config && decoded.parameters == file.parameters)
        #expect(decoded.recipe == ["epochs": "2", "lr": "0.5"])
    }

    /// Files of format version 3 (no recipe) still load, with an empty recipe.
    @Test func modelFileVersion3StillLoads() throws {
        let golden = hexBytes(
            ["434f4e564f594d44 03000000 6b000000", Self.specAndConfigHex, Self.parametersHex, "41712d09"].joined())
        let decoded = try ModelFile(decoding: golden, name: "v3")
        #expect(decoded.config == Self.config && decoded.parameters == [1, -1, 0.5, 2, 0, 0.25])
        #expect(decoded.recipe.isEmpty)
        // Written again, it is a version 4 file with an empty recipe (count 0).
        let again = try decoded.encoded()
        #expect(hexString(Array(again[8..<16])) == "040000006d000000")
    }

    /// A recipe is one encoding: keys sorted, once each, flag-name characters, bounded counts.
    @Test func hostileRecipesAreRefusedNamingTheEntry() throws {
        // Header offsets: 16 + 107 bytes of spec and config, then the recipe.
        let recipeStart = 16 + 107
        let cases: [([UInt8], String)] = [
            // Two entries in the wrong order: "lr" before "epochs".
            (
                hexBytes("0200 0200 6c72 0100 31 0600 65706f636873 0100 32"),
                "recipe entry 2 key: epochs is not after lr"
            ),
            // The same key twice.
            (hexBytes("0200 0200 6c72 0100 31 0200 6c72 0100 32"), "recipe entry 2 key: lr is not after lr"),
            // A key with an escape character.
            (hexBytes("0100 0200 1b5b 0100 31"), "recipe entry 1 key: \\u{1b}[ is not a flag name"),
            // More entries than the bound.
            (hexBytes("0101"), "recipe entry count: 257 is outside 0...256"),
        ]
        for (recipe, message) in cases {
            let bytes = try Self.modelBytes { bytes in
                let headerLength = 107 + recipe.count
                bytes.replaceSubrange(12..<16, with: withUnsafeBytes(of: UInt32(headerLength).littleEndian, Array.init))
                bytes.replaceSubrange(recipeStart..<(recipeStart + 2), with: recipe)
            }
            do {
                _ = try ModelFile(decoding: bytes, name: "golden")
                Issue.record("accepted recipe \(hexString(recipe))")
            } catch let error as DataError {
                #expect(error.description.contains(message), "\(error.description)")
            }
        }
    }

    @Test func checkpoint() throws {
        var totals = GradientComputer.Totals()
        totals.count = 16
        totals.lossSum = 3.5
        totals.correct = 9
        let report = EpochReport(
            epoch: 1, loss: 0.25, trainAccuracy: 0.5, testAccuracy: 0.75, testLoss: 1,
            seconds: 2, samplesPerSec: 8, learningRate: 0.125)
        let header = Checkpoint.Header(
            config: Self.config, epoch: 1, stepInEpoch: 2, step: 12,
            epochTotals: totals, reports: [report])
        let checkpoint = Checkpoint(header: header, parameters: [1, -2], optimizerState: [0.5])
        let golden = hexBytes(
            [
                // magic CONVOYCK, version 3, header length 167
                "434f4e564f59434b 03000000 a7000000",
                // config: model "lenet5"
                "0600 6c656e657435",
                // epochs 2, batch 64, adam, lr 0.5, constant, seed 0x102, deterministic, micro-batch 8
                "02000000 40000000 04 0000003f 02 0201000000000000 01 08000000",
                // initializer he
                "03",
                // train samples: 100
                "01 6400000000000000",
                // test samples: all
                "00 0000000000000000",
                // warm-up epochs 1, weight decay 0.25, augmentation shift 2
                "01000000 0000803e 02",
                // epoch 1, step in epoch 2, step 12
                "01000000 02000000 0c00000000000000",
                // totals: count 16, loss sum 3.5, correct 9
                "1000000000000000 0000000000000c40 0900000000000000",
                // 1 report
                "01000000",
                // epoch 1, loss, train and test accuracy, test loss
                "01000000 000000000000d03f 000000000000e03f 000000000000e83f 000000000000f03f",
                // seconds, samples/s, learning rate
                "0000000000000040 0000000000002040 000000000000c03f",
                // 2 parameters
                "0200000000000000 0000803f 000000c0",
                // 1 optimizer state value
                "0100000000000000 0000003f",
                // CRC-32
                "4c71dd1d",
            ].joined())
        let bytes = try checkpoint.encoded()
        #expect(hexString(bytes) == hexString(golden))
        let decoded = try Checkpoint(decoding: golden, name: "golden")
        #expect(decoded.header == header && decoded.parameters == [1, -2] && decoded.optimizerState == [0.5])
    }

    /// Padding sizes and modes inside a layer record (docs/FORMATS.md §2.3).
    @Test func paddingRecords() throws {
        let layers: [LayerSpec] = [
            .conv1d(outChannels: 4, kernel: 3, stride: 2, padding: .same, mode: .edge),
            .conv2d(
                outChannels: 1, kernelHeight: 2, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
                paddingHeight: 2, paddingWidth: .same, mode: .zeros),
        ]
        let golden = hexBytes(
            [
                // conv1d: 4 channels, kernel 3, stride 2, same, edge
                "02 04000000 03000000 02000000 02 00000000 02",
                // conv2d: 1 channel, kernel 2×3, stride 1×1, explicit 2, same, zeros
                "03 01000000 02000000 03000000 01000000 01000000 01 02000000 02 00000000 01",
            ].joined())
        var writer = ByteWriter()
        for layer in layers { layer.write(to: &writer) }
        #expect(hexString(writer.bytes) == hexString(golden))
        var reader = ByteReader(golden, name: "golden")
        #expect(try [LayerSpec(reading: &reader, "a"), LayerSpec(reading: &reader, "b")] == layers)
        try reader.expectEnd("layers")
    }

    /// The golden model file with `mutate` applied and its CRC-32 recomputed, so the change
    /// reaches the header decoder instead of the checksum check.
    static func modelBytes(_ mutate: (inout [UInt8]) -> Void) throws -> [UInt8] {
        var bytes = try ModelFile(spec: spec, config: config, parameters: [1, -1, 0.5, 2, 0, 0.25]).encoded()
        bytes.removeLast(4)
        mutate(&bytes)
        var writer = ByteWriter()
        writer.append(bytes: bytes)
        writer.append(bytes.withUnsafeBytes { Zlib.crc32($0) })
        return writer.bytes
    }

    @Test func unknownTagsAndBadValuesNameTheField() throws {
        // Offsets in the golden model file: 16 header, 31 initializer, 34 layer 1 (tag, 3 × u32,
        // padding tag and u32, mode).
        let cases: [(Int, UInt8, String)] = [
            (34, 99, "golden: spec layer 1 kind: unknown layer tag 99"),
            (31, 0, "golden: spec initializer: unknown initializer tag 0"),
            (52, 7, "golden: spec layer 1 padding mode: unknown padding mode tag 7"),
            (39, 0, "golden: spec layer 1 kernel: 0 is outside 1...4096"),
        ]
        for (offset, value, message) in cases {
            do {
                _ = try ModelFile(decoding: try Self.modelBytes { $0[offset] = value }, name: "golden")
                Issue.record("accepted \(value) at \(offset)")
            } catch let error as DataError {
                #expect(error.description == message)
            }
        }
    }

    /// Files of the JSON era (version 1) are refused with one line naming both versions.
    @Test func olderVersionsAreRefusedByName() throws {
        var model = try Self.modelBytes { _ in }
        model[8] = 1
        #expect(throws: DataError("m: model format version 1 is not supported (this convoy reads versions 3...4)")) {
            try ModelFile(decoding: model, name: "m")
        }
        var checkpoint = try Checkpoint(
            header: Checkpoint.Header(
                config: Self.config, epoch: 0, stepInEpoch: 0, step: 0,
                epochTotals: .init(), reports: []),
            parameters: [], optimizerState: []
        ).encoded()
        checkpoint[8] = 1
        #expect(throws: DataError("c: checkpoint version 1 is not supported (this convoy reads version 3)")) {
            try Checkpoint(decoding: checkpoint, name: "c")
        }
    }

    /// Every byte of a file is hostile: random changes to the header (checksum fixed up) give
    /// a `DataError` or a valid model, never a trap.
    @Test func decoderSurvivesMutatedHeaders() throws {
        var rng = SeededRandom(seed: 8)
        let length = try Self.modelBytes { _ in }.count - 4
        for _ in 0..<5000 {
            let bytes = try Self.modelBytes { bytes in
                for _ in 0..<(1 + rng.nextIndex(below: 3)) {
                    bytes[8 + rng.nextIndex(below: 100)] = UInt8(truncatingIfNeeded: rng.next())
                }
                if rng.nextIndex(below: 4) == 0 { bytes.removeLast(rng.nextIndex(below: length - 20)) }
            }
            do { _ = try ModelFile(decoding: bytes, name: "m") } catch is DataError {} catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test func oversizedLayersAreRefusedBeforeAnySizeIsComputed() {
        let huge = NetworkSpec(
            name: "huge", inputShape: Shape(1 << 14, 1 << 14),
            layers: [.flatten, .dense(outputs: 1 << 20)])
        #expect(throws: ShapeError.self) { try Architecture(huge) }
        let wide = NetworkSpec(
            name: "wide", inputShape: Shape(1 << 10, 1 << 9, 1 << 9),
            layers: [
                .conv2d(
                    outChannels: 1 << 20, kernelHeight: 4096, kernelWidth: 4096, strideHeight: 1, strideWidth: 1,
                    paddingHeight: 4096, paddingWidth: 4096)
            ])
        #expect(throws: ShapeError.self) { try Architecture(wide) }
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// Bytes from hex digits; spaces and newlines (for readability, one field per group) ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter(\.isHexDigit))
    return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(digits[$0...($0 + 1)]), radix: 16)! }
}
