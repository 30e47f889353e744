import ConvoyEngine

/// Mutations that know what the fields mean: each one is a lie a crafted file could tell
/// (an SGD checkpoint relabelled momentum, half a velocity, Adam's state offered as a
/// velocity, an epoch past the run, a non-finite weight), written with the real encoder so
/// only the lie is wrong.
extension FileMutator {
    func checkpointMutations() -> [Mutation] {
        guard let checkpoint = try? Checkpoint(decoding: original, name: "original") else { return [] }
        var out: [Mutation] = []
        func variant(_ name: String, _ expect: Mutation.Expectation = .refuse, _ edit: (inout Checkpoint) -> Void) {
            var copy = checkpoint
            edit(&copy)
            guard let bytes = try? copy.encoded() else { return }
            out.append(Mutation(name: name, bytes: bytes, expect: expect))
        }
        let n = checkpoint.parameters.count
        let kind = checkpoint.header.config.optimizer
        let state = checkpoint.optimizerState
        for other in OptimizerKind.allCases where other != kind {
            // Momentum and AdaGrad keep states of one length: only the run's flags tell them apart.
            variant("relabelled \(other.rawValue)", .refuseOnResume) { $0.header.config.optimizer = other }
            variant("relabelled \(other.rawValue), state of its length", .refuseOnResume) {
                $0.header.config.optimizer = other
                $0.optimizerState = [Float](
                    repeating: 0.25, count: Checkpoint.optimizerStateCount(other, parameters: n))
            }
        }
        variant("optimizer state halved") { $0.optimizerState = Array(state.prefix(state.count / 2)) }
        variant("optimizer state empty") { $0.optimizerState = [] }
        variant("optimizer state one longer") { $0.optimizerState = state + [0] }
        variant("optimizer state doubled") { $0.optimizerState = state + state }
        variant("Adam's state as this optimizer's") { $0.optimizerState = [Float](repeating: 0.1, count: 2 * n + 1) }
        if !state.isEmpty {
            variant("optimizer state NaN") { $0.optimizerState[0] = .nan }
            variant("optimizer state infinite") { $0.optimizerState[state.count - 1] = .infinity }
        }
        if kind == .adam {
            variant("Adam step count off by one") { $0.optimizerState[2 * n] += 1 }
            variant("Adam v negative") { $0.optimizerState[n] = -1 }
        }
        if kind == .adagrad { variant("AdaGrad h negative") { $0.optimizerState[0] = -1 } }
        variant("weight NaN") { $0.parameters[0] = .nan }
        variant("weight -infinity") { $0.parameters[n - 1] = -.infinity }
        variant("one weight fewer") { $0.parameters.removeLast() }
        variant("one weight more") { $0.parameters.append(0) }
        variant("weight changed, finite", .either) { $0.parameters[1] += 0.5 }
        if state.count == n {
            variant("weights and state swapped", .either) { swap(&$0.parameters, &$0.optimizerState) }
        }
        out += positionMutations(checkpoint)
        return out
    }

    /// Epoch, step, totals, reports and the run's settings, each set to what this run never
    /// reaches; then the same fields overwritten in the bytes with values the encoder cannot
    /// even write (epoch −1, step 2^64 − 1).
    func positionMutations(_ checkpoint: Checkpoint) -> [Mutation] {
        var out: [Mutation] = []
        func variant(
            _ name: String, _ expect: Mutation.Expectation = .refuse, _ edit: (inout Checkpoint.Header) -> Void
        ) {
            var copy = checkpoint
            edit(&copy.header)
            guard copy.header != checkpoint.header, let bytes = try? copy.encoded() else { return }
            out.append(Mutation(name: name, bytes: bytes, expect: expect))
        }
        let header = checkpoint.header
        variant("epoch + 1") { $0.epoch += 1 }
        variant("epoch past the run") { $0.epoch = header.config.epochs + 1 }
        variant("step in epoch + 1") { $0.stepInEpoch += 1 }
        variant("step + 1") { $0.step += 1 }
        variant("step 1,000,000") { $0.step = 1_000_000 }
        variant("finished run without its reports") {
            $0.epoch = header.config.epochs
            $0.stepInEpoch = 0
        }
        variant("a report dropped") { $0.reports = Array($0.reports.dropLast()) }
        variant("a report repeated") { $0.reports += $0.reports.prefix(1) }
        if !header.reports.isEmpty { variant("accuracy 2") { $0.reports[0].testAccuracy = 2 } }
        variant("totals: more samples than steps") { $0.epochTotals.count = 1 << 40 }
        variant("totals: negative loss") { $0.epochTotals.lossSum = -1 }
        variant("seed + 1", .refuseOnResume) { $0.config.seed += 1 }
        variant("epochs + 1", .refuseOnResume) { $0.config.epochs += 1 }
        variant("batch + 1", .refuseOnResume) { $0.config.batchSize += 1 }
        variant("learning rate doubled", .refuseOnResume) { $0.config.learningRate *= 2 }
        variant("other model", .refuseOnResume) {
            $0.config.model = header.config.model == "conv1d" ? "lenet5" : "conv1d"
        }
        variant("unknown model") { $0.config.model = "\u{1b}[31mevil\nmodel" }
        variant("fast mode", .refuseOnResume) { $0.config.deterministic.toggle() }
        variant("other test samples", .either) { $0.config.testSamples = 10 }
        // Raw fields after the configuration: epoch u32, step in epoch u32, step u64, totals
        // (count u64, loss f64, correct u64), report count u32.
        var config = ByteWriter()
        header.config.write(to: &config)
        let at = headerStart + config.bytes.count
        let raw: [(String, Int, Int, [UInt64])] = [
            ("epoch", 0, 4, [0xFFFF_FFFF, 0x8000_0000, 100]),
            ("step in epoch", 4, 4, [0xFFFF_FFFF, 1 << 31, 1_000_000]),
            ("step", 8, 8, [UInt64.max, 1 << 62, 1 << 48, 1_000_000]),
            ("totals count", 16, 8, [UInt64.max, 1 << 41]),
            ("totals loss", 24, 8, [0x7FF8_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xBFF0_0000_0000_0000]),
            ("totals correct", 32, 8, [UInt64(header.epochTotals.count + 1), UInt64.max]),
            ("report count", 40, 4, [0xFFFF_FFFF, UInt64(header.reports.count + 1)]),
        ]
        for (name, offset, width, values) in raw {
            for value in values where Self.load(original, at: at + offset, width: width) != value {
                out.append(refuse("\(name) = \(value)", set(value, at: at + offset, width: width)))
            }
        }
        return out
    }

    func modelMutations() -> [Mutation] {
        guard let model = try? ModelFile(decoding: original, name: "original") else { return [] }
        var out: [Mutation] = []
        let n = model.parameters.count
        /// `expect` nil: a changed spec, refused exactly when its parameter count no longer fits.
        func variant(_ name: String, _ expect: Mutation.Expectation? = .refuse, _ edit: (inout ModelFile) -> Void) {
            var copy = model
            edit(&copy)
            guard let bytes = try? copy.encoded() else { return }
            let fits = (try? Architecture(copy.spec))?.parameterCount == copy.parameters.count
            out.append(Mutation(name: name, bytes: bytes, expect: expect ?? (fits ? .either : .refuse)))
        }
        variant("weight NaN") { $0.parameters[0] = .nan }
        variant("weight infinite") { $0.parameters[n - 1] = .infinity }
        variant("one weight fewer") { $0.parameters.removeLast() }
        variant("one weight more") { $0.parameters.append(1) }
        variant("weight changed, finite", .either) { $0.parameters[0] = 3 }
        variant("no config", .either) { $0.config = nil }
        variant("config epochs 0") { $0.config?.epochs = 0 }
        variant("config learning rate negative") { $0.config?.learningRate = -1 }
        variant("config unknown model") { $0.config?.model = "\u{1b}]0;owned\u{7}" }
        variant("spec name with escapes") { $0.spec.name = "lenet5\n\u{1b}[2J" }
        variant("input 1x4096x4096", nil) { $0.spec.inputShape = Shape(1, 4096, 4096) }
        variant("input 3x28x28", nil) { $0.spec.inputShape = Shape(3, 28, 28) }
        for (index, layer) in model.spec.layers.enumerated() {
            variant("layer \(index + 1) removed", nil) { $0.spec.layers.remove(at: index) }
            variant("layer \(index + 1) repeated", nil) { $0.spec.layers.insert(layer, at: index) }
            switch layer {
            case .dense:
                variant("layer \(index + 1) dense 2^20", nil) { $0.spec.layers[index] = .dense(outputs: 1 << 20) }
            case let .conv2d(_, kh, kw, sh, sw, ph, pw, mode):
                variant("layer \(index + 1) 2^20 channels", nil) {
                    $0.spec.layers[index] = .conv2d(
                        outChannels: 1 << 20, kernelHeight: kh, kernelWidth: kw, strideHeight: sh, strideWidth: sw,
                        paddingHeight: ph, paddingWidth: pw, mode: mode)
                }
            default:
                variant("layer \(index + 1) as sigmoid", nil) { $0.spec.layers[index] = .sigmoid }
            }
        }
        return out
    }
}
