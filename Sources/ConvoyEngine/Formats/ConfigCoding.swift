/// Binary encodings of the training records stored in model files and checkpoints
/// (docs/FORMATS.md §3). Enum cases are numeric tags, fields go in a fixed order.

enum OptimizerTag: UInt8 {
    case sgd = 1
    case momentum = 2
    case adagrad = 3
    case adam = 4
    init(_ kind: OptimizerKind) {
        self =
            switch kind {
            case .sgd: .sgd
            case .momentum: .momentum
            case .adagrad: .adagrad
            case .adam: .adam
            }
    }
    var kind: OptimizerKind {
        switch self {
        case .sgd: .sgd
        case .momentum: .momentum
        case .adagrad: .adagrad
        case .adam: .adam
        }
    }
}

enum ScheduleTag: UInt8 {
    case cosine = 1
    case constant = 2
    init(_ schedule: LearningRateSchedule) { self = schedule == .cosine ? .cosine : .constant }
    var schedule: LearningRateSchedule { self == .cosine ? .cosine : .constant }
}

/// Counts in the training records: far above any real run, far below overflow.
enum RecordBounds {
    static let modelNameBytes = 64
    static let maxEpochs = 1 << 20
    static let maxBatch = 65_536
    static let maxSamples = 1 << 40
    static let maxReports = 1 << 20
}

extension TrainingConfig {
    /// model (string), epochs u32, batch u32, optimizer tag u8, learning rate f32, schedule
    /// tag u8, seed u64, deterministic u8, micro-batch u32, initializer (u8 0 = the model's,
    /// else an initializer record), train and test sample limits (u8 present + u64 each),
    /// warm-up epochs u32, weight decay f32, augmentation shift u8.
    public func write(to writer: inout ByteWriter) {
        writer.append(string: model)
        writer.append(epochs, as: UInt32.self)
        writer.append(batchSize, as: UInt32.self)
        writer.append(OptimizerTag(optimizer).rawValue)
        writer.append(learningRate)
        writer.append(ScheduleTag(schedule).rawValue)
        writer.append(seed)
        writer.append(deterministic)
        writer.append(microBatch, as: UInt32.self)
        if let initializer { initializer.write(to: &writer) } else { writer.append(UInt8(0)) }
        for limit in [trainSamples, testSamples] {
            writer.append(limit != nil)
            writer.append(UInt64(limit ?? 0))
        }
        writer.append(warmupEpochs, as: UInt32.self)
        writer.append(weightDecay)
        writer.append(UInt8(augmentShift))
    }

    public init(reading reader: inout ByteReader, _ field: String) throws {
        self.init()
        model = try reader.readString("\(field) model", maxBytes: RecordBounds.modelNameBytes)
        epochs = try reader.read(UInt32.self, "\(field) epochs", in: 1...RecordBounds.maxEpochs)
        batchSize = try reader.read(UInt32.self, "\(field) batch size", in: 1...RecordBounds.maxBatch)
        let optimizerRaw = try reader.read(UInt8.self, "\(field) optimizer")
        guard let optimizerTag = OptimizerTag(rawValue: optimizerRaw) else {
            throw reader.error("\(field) optimizer", "unknown optimizer tag \(optimizerRaw)")
        }
        optimizer = optimizerTag.kind
        learningRate = try reader.readFloat("\(field) learning rate")
        let scheduleRaw = try reader.read(UInt8.self, "\(field) schedule")
        guard let scheduleTag = ScheduleTag(rawValue: scheduleRaw) else {
            throw reader.error("\(field) schedule", "unknown schedule tag \(scheduleRaw)")
        }
        schedule = scheduleTag.schedule
        seed = try reader.read(UInt64.self, "\(field) seed")
        deterministic = try reader.readBool("\(field) deterministic")
        microBatch = try reader.read(UInt32.self, "\(field) micro-batch", in: 1...RecordBounds.maxBatch)
        var peek = reader
        if try peek.read(UInt8.self, "\(field) initializer") == 0 {
            reader = peek
        } else {
            initializer = try Initializer(reading: &reader, "\(field) initializer")
        }
        trainSamples = try Self.readLimit(&reader, "\(field) train samples")
        testSamples = try Self.readLimit(&reader, "\(field) test samples")
        warmupEpochs = try reader.read(UInt32.self, "\(field) warm-up epochs", in: 0...RecordBounds.maxEpochs)
        weightDecay = try reader.readFloat("\(field) weight decay")
        augmentShift = Int(try reader.read(UInt8.self, "\(field) augmentation shift", in: 0...8))
    }

    private static func readLimit(_ reader: inout ByteReader, _ field: String) throws -> Int? {
        let present = try reader.readBool("\(field) present")
        let value = try reader.read(UInt64.self, field, in: (present ? 1 : 0)...(present ? RecordBounds.maxSamples : 0))
        return present ? value : nil
    }
}

extension GradientComputer.Totals {
    /// count u64, loss sum f64, correct u64.
    public func write(to writer: inout ByteWriter) {
        writer.append(UInt64(count))
        writer.append(lossSum)
        writer.append(UInt64(correct))
    }

    public init(reading reader: inout ByteReader, _ field: String) throws {
        self.init()
        count = try reader.read(UInt64.self, "\(field) count", in: 0...RecordBounds.maxSamples)
        lossSum = try reader.readDouble("\(field) loss sum")
        correct = try reader.read(UInt64.self, "\(field) correct", in: 0...count)
    }
}

extension EpochReport {
    /// epoch u32, then loss, train accuracy, test accuracy, test loss, seconds, samples/s,
    /// learning rate as f64.
    public func write(to writer: inout ByteWriter) {
        writer.append(epoch, as: UInt32.self)
        for value in [loss, trainAccuracy, testAccuracy, testLoss, seconds, samplesPerSec, learningRate] {
            writer.append(value)
        }
    }

    public init(reading reader: inout ByteReader, _ field: String) throws {
        let epoch = try reader.read(UInt32.self, "\(field) epoch", in: 0...RecordBounds.maxEpochs)
        var values: [Double] = []
        for name in ["loss", "train accuracy", "test accuracy", "test loss", "seconds", "samples/s", "learning rate"] {
            values.append(try reader.readDouble("\(field) \(name)"))
        }
        self.init(
            epoch: epoch, loss: values[0], trainAccuracy: values[1], testAccuracy: values[2], testLoss: values[3],
            seconds: values[4], samplesPerSec: values[5], learningRate: values[6])
    }
}

extension Checkpoint.Header {
    /// config, epoch u32, step in epoch u32, step u64, epoch totals, report count u32, reports.
    public func write(to writer: inout ByteWriter) {
        config.write(to: &writer)
        writer.append(epoch, as: UInt32.self)
        writer.append(stepInEpoch, as: UInt32.self)
        writer.append(UInt64(step))
        epochTotals.write(to: &writer)
        writer.append(reports.count, as: UInt32.self)
        for report in reports { report.write(to: &writer) }
    }

    public init(reading reader: inout ByteReader, _ field: String) throws {
        let config = try TrainingConfig(reading: &reader, "\(field) config")
        let epoch = try reader.read(UInt32.self, "\(field) epoch", in: 0...RecordBounds.maxEpochs)
        let stepInEpoch = try reader.read(UInt32.self, "\(field) step in epoch", in: 0...Int(UInt32.max))
        let step = try reader.read(UInt64.self, "\(field) step", in: 0...(1 << 48))
        let totals = try GradientComputer.Totals(reading: &reader, "\(field) epoch totals")
        let reportCount = try reader.read(UInt32.self, "\(field) report count", in: 0...RecordBounds.maxReports)
        var reports: [EpochReport] = []
        for index in 0..<reportCount {
            reports.append(try EpochReport(reading: &reader, "\(field) report \(index + 1)"))
        }
        self.init(
            config: config, epoch: epoch, stepInEpoch: stepInEpoch, step: step, epochTotals: totals,
            reports: reports)
    }
}

extension ModelFile {
    /// Bounds of the recipe (§4.1): far above the ~16 training flags, far below a hostile size.
    static let maxRecipeEntries = 256
    static let maxRecipeKeyBytes = 64
    static let maxRecipeValueBytes = 256

    /// u16 entry count, then per entry key and value strings, keys in ascending byte order
    /// (so a recipe has one encoding). Entries past the bounds are programming errors of the
    /// CLI that builds the recipe; they are left out rather than written unreadable.
    static func writeRecipe(_ recipe: [String: String], to writer: inout ByteWriter) {
        let entries = recipe.filter {
            isRecipeKey($0.key) && $0.value.utf8.count <= maxRecipeValueBytes
        }.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.prefix(maxRecipeEntries)
        writer.append(entries.count, as: UInt16.self)
        for (key, value) in entries {
            writer.append(string: key)
            writer.append(string: value)
        }
    }

    static func readRecipe(from reader: inout ByteReader) throws -> [String: String] {
        let count = try reader.read(UInt16.self, "recipe entry count", in: 0...maxRecipeEntries)
        var recipe: [String: String] = [:]
        var previous: String?
        for index in 0..<count {
            let field = "recipe entry \(index + 1)"
            let key = try reader.readString("\(field) key", maxBytes: maxRecipeKeyBytes)
            guard isRecipeKey(key) else {
                throw reader.error("\(field) key", "\(peerText(key)) is not a flag name (a-z, 0-9, -)")
            }
            if let previous, !previous.utf8.lexicographicallyPrecedes(key.utf8) {
                throw reader.error("\(field) key", "\(key) is not after \(previous) (keys are sorted, once each)")
            }
            recipe[key] = try reader.readString("\(field) value", maxBytes: maxRecipeValueBytes)
            previous = key
        }
        return recipe
    }

    /// A long flag name: 1…64 of a-z, 0-9 and `-`.
    static func isRecipeKey(_ key: String) -> Bool {
        (1...maxRecipeKeyBytes).contains(key.utf8.count)
            && key.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }
    }
}
