import ArgumentParser
import ConvoyEngine

/// `--config FILE` on train, local, coordinator and worker. main.swift expands the file
/// before parsing (ConfigExpansion); this declaration puts the flag in each command's help.
struct ConfigFileOption: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "A YAML file of this command's flags: long names without --, e.g. `epochs: 10`, `deterministic: false`, "
                + "lists for repeatable flags. Flags on the command line win over the file.",
            valueName: "file"))
    var config: String?
}

extension TrainingOptions {
    /// The resolved training recipe: every training flag's effective value after the
    /// defaults, the --config file and the command line, by long flag name. Stored in the
    /// model file and shown in reports. Paths (--data, --tensorboard) say where files are,
    /// not what was trained, and launch flags (--workers, --slots, --threads, --out, the
    /// checkpoint flags) say how it ran, and --test-samples sizes only the evaluation (a resumed
    /// run may change it): none is here, so one recipe gives byte-identical
    /// model files on any layout and any host. Empty when the flags are invalid (validate
    /// refuses those before any run).
    var recipe: [String: String] {
        guard let config = try? config() else { return [:] }
        var recipe = [
            "model": config.model, "epochs": String(config.epochs), "batch": String(config.batchSize),
            "optimizer": config.optimizer.rawValue, "lr": String(config.learningRate),
            "warmup-epochs": String(config.warmupEpochs), "augment": String(config.augmentShift),
            "weight-decay": String(config.weightDecay), "schedule": config.schedule.rawValue,
            "seed": String(config.seed), "micro-batch": String(config.microBatch),
            "deterministic": String(config.deterministic),
        ]
        // --init's effective value: the flag's, else the model's own initializer.
        recipe["init"] = (config.initializer ?? (try? ModelZoo.spec(named: config.model))?.initializer).map(Self.text)
        recipe["train-samples"] = config.trainSamples.map(String.init) ?? "all"
        if let targetAccuracy {
            recipe["target-accuracy"] = String(targetAccuracy)
            recipe["eval-every"] = String(evalEvery)
        }
        return recipe
    }

    /// An initializer as --init spells it, in one spelling whatever case the flag used.
    static func text(_ initializer: Initializer) -> String {
        switch initializer {
        case .he: "he"
        case .xavier: "xavier"
        case .uniform: "uniform"
        case let .gaussian(sigma): "gaussian:\(sigma)"
        }
    }

    /// What a session takes from these flags beyond its config: the stop rule, and the
    /// recipe its model file records.
    func prepare(_ session: TrainingSession) {
        session.stopRule = stopRule
        session.recipe = recipe
    }
}
