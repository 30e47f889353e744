import ArgumentParser
import ConvoyEngine
import Foundation
import Testing

@testable import convoy

/// A command with every kind of flag a config file can name, including a repeatable option
/// (convoy's own commands have none today).
struct ConfigProbe: ParsableCommand {
    @Option var count = 1
    @Option var tag: [String] = []
    @Flag(inversion: .prefixedNo) var fast = true
    @Flag var json = false
    @OptionGroup var configFile: ConfigFileOption
}

/// `--config FILE`: the file's keys expand to flags before the command line's, which win.
@Suite struct ConfigFileTests {
    let directory: String = {
        let path = NSTemporaryDirectory() + "convoy-config-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func file(_ text: String, _ name: String = "run.yaml") throws -> String {
        let path = directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func train(_ text: String, _ flags: [String]) throws -> Train {
        let expansion = try ConfigExpansion(arguments: ["train", "--config", try file(text)] + flags)
        let command = try Convoy.parseAsRoot(expansion.arguments)
        return try #require(command as? Train)
    }

    func probe(_ text: String, _ flags: [String]) throws -> ConfigProbe {
        let expansion = try ConfigExpansion(
            arguments: ["probe", "--config", try file(text)] + flags, commands: ["probe": ConfigProbe.self])
        return try ConfigProbe.parse(Array(expansion.arguments.dropFirst()))
    }

    func refusal(_ text: String, _ flags: [String] = [], command: String = "train") -> String {
        do {
            let expansion = try ConfigExpansion(arguments: [command, "--config", try file(text)] + flags)
            _ = try Convoy.parseAsRoot(expansion.arguments)
            return "accepted"
        } catch let error as ConfigError {
            return error.description
        } catch {
            return "other error: \(error)"
        }
    }

    @Test func fileValuesApplyAndFlagsOverrideThem() throws {
        let text = "epochs: 3\nbatch: 32\nlr: 0.1\ndeterministic: false\noptimizer: adam\n"
        let plain = try train(text, [])
        #expect(plain.training.epochs == 3 && plain.training.batch == 32 && plain.training.lr == 0.1)
        #expect(!plain.training.deterministic && plain.training.optimizer == "adam")
        // Every spelling of a flag on the command line wins over the file.
        let overridden = try train(text, ["--epochs", "5", "--lr=0.2", "--deterministic"])
        #expect(overridden.training.epochs == 5 && overridden.training.lr == 0.2)
        #expect(overridden.training.deterministic && overridden.training.batch == 32)
        // An inverted flag in the file is overridden by its other spelling too.
        #expect(try train("deterministic: true\n", ["--no-deterministic"]).training.deterministic == false)
        // Defaults stay where neither says anything.
        #expect(plain.training.seed == 1 && plain.out == "lenet5.convoy")
    }

    @Test func flagsListsAndOverridesOfEveryKind() throws {
        let text = "count: 4\ntag: [a, b]\nfast: false\njson: true\n"
        let fromFile = try probe(text, [])
        #expect(fromFile.count == 4 && fromFile.tag == ["a", "b"] && !fromFile.fast && fromFile.json)
        // A repeated option on the command line replaces the file's list instead of appending to it.
        let overridden = try probe(text, ["--tag", "c", "--count=9", "--fast"])
        #expect(overridden.tag == ["c"] && overridden.count == 9 && overridden.fast)
        // `json: false` leaves a plain flag at its default; a single value fills a list.
        let single = try probe("tag: only\njson: false\n", [])
        #expect(single.tag == ["only"] && !single.json)
        // Why the file's tokens for overridden keys are dropped: ArgumentParser appends a
        // repeated array option (and keeps the last of a repeated single one).
        #expect(try ConfigProbe.parse(["--tag", "a", "--tag", "b"]).tag == ["a", "b"])
        #expect(try ConfigProbe.parse(["--count", "1", "--count", "2"]).count == 2)
    }

    @Test func badFilesAreOneLineNamingTheFileAndKey() throws {
        let path = directory + "/run.yaml"
        let cases: [(String, String)] = [
            ("epochz: 3\n", "\(path): epochz: not a flag of this command"),
            (
                "no-deterministic: true\n",
                "\(path): no-deterministic: not a flag of this command (write it as deterministic)"
            ),
            ("config: other.yaml\n", "\(path): config: not a flag of this command"),
            ("epochs: [1, 2]\n", "\(path): epochs: takes one value, not a list"),
            ("epochs:\n", "\(path): epochs: has no value"),
            ("deterministic: maybe\n", "\(path): deterministic: is a flag; give true or false"),
            ("training:\n  epochs: 3\n", "\(path): training: nested mappings are not flags"),
            ("tensorboard: [[a]]\n", "\(path): tensorboard: a list holds only plain values"),
            ("epochs: 3\nepochs: 4\n", "\(path): not valid YAML: key epochs appears more than once"),
            ("- epochs\n- 3\n", "\(path): not a mapping of flag names to values"),
            ("just text\n", "\(path): not a mapping of flag names to values"),
            ("a: &x 1\nb: *x\n", "\(path): line 1: a word starting with & (a YAML anchor or alias"),
            ("epochs: 1\nb: [*x]\n", "\(path): line 2: a word starting with *"),
            ("epochs: [1\n", "\(path): not valid YAML:"),
            // An escape written as YAML's \e reaches the key; it is printed escaped. A raw one is the parser's.
            ("\"\\e[2J\": 1\n", "\(path): \\u{1b}[2J: not a flag of this command"),
            ("\u{1b}[2J: 1\n", "\(path): not valid YAML: control characters are not allowed"),
        ]
        for (text, message) in cases {
            let refusal = refusal(text)
            #expect(refusal.hasPrefix(message), "\(text.debugDescription): \(refusal)")
            #expect(!refusal.contains("\n"), "\(text.debugDescription): \(refusal)")
        }
        // A `*` inside a value is no alias: an any-port endpoint passes.
        #expect(refusal("bind: tcp://127.0.0.1:*\nworkers: 2\n", command: "coordinator") == "accepted")
        // An empty file (or only comments) is no flags at all.
        #expect(refusal("# nothing yet\n") == "accepted")
    }

    @Test func hostileFilesAreBoundedAndNeverCrash() throws {
        let big = try file(String(repeating: "# padding\n", count: 7000), "big.yaml")
        #expect(throws: ConfigError.self) { try ConfigExpansion(arguments: ["train", "--config", big]) }
        #expect(throws: ConfigError.self) { try ConfigExpansion(arguments: ["train", "--config", "/dev/zero"]) }
        #expect(throws: ConfigError.self) { try ConfigExpansion(arguments: ["train", "--config", directory]) }
        #expect(throws: ConfigError.self) {
            try ConfigExpansion(arguments: ["train", "--config", directory + "/none"])
        }
        // Deep nesting, flow and block style, as deep as the size bound allows: refused, not a stack overflow.
        for text in [String(repeating: "[", count: 60_000), String(repeating: "- ", count: 30_000) + "x\n"] {
            let refusal = refusal(text)
            #expect(refusal.contains("not a mapping") || refusal.contains("not valid YAML"), "\(refusal.prefix(200))")
        }
        // Two files: which one would win is not obvious, so neither does.
        let one = try file("epochs: 1\n", "one.yaml")
        #expect(throws: ConfigError.self) {
            try ConfigExpansion(arguments: ["train", "--config", one, "--config=\(one)"])
        }
    }

    @Test func invalidValuesFromTheFileNameTheFileAndKey() throws {
        let path = try file("epochs: ten\nbatch: 0\n")
        let expansion = try ConfigExpansion(arguments: ["train", "--config", path])
        #expect(expansion.fileKeys == ["epochs", "batch"])
        do {
            _ = try Convoy.parseAsRoot(expansion.arguments)
            Issue.record("accepted epochs: ten")
        } catch {
            let line = expansion.attributed(Convoy.message(for: error))
            #expect(line.hasPrefix("\(path): epochs: "), "\(line)")
            #expect(line.contains("ten"), "\(line)")
        }
        // The same value on the command line is the command line's error, not the file's.
        let flagged = try ConfigExpansion(arguments: ["train", "--config", path, "--epochs", "ten", "--batch", "8"])
        #expect(flagged.fileKeys.isEmpty)
        #expect(flagged.attributed("The value 'ten' is invalid for '--epochs <epochs>'").hasPrefix("The value"))
    }

    @Test func recipeIsTheResolvedTrainingFlags() throws {
        let command = try train("batch: 256\nmodel: LeNet5\n", ["--seed", "7", "--target-accuracy", "0.9"])
        let recipe = command.training.recipe
        // Resolved defaults: the square-root learning-rate rule and the image models' shift.
        #expect(recipe["lr"] == "0.1" && recipe["augment"] == "1" && recipe["model"] == "lenet5")
        #expect(recipe["batch"] == "256" && recipe["seed"] == "7" && recipe["epochs"] == "10")
        #expect(recipe["target-accuracy"] == "0.9" && recipe["eval-every"] == "0")
        #expect(recipe["init"] == "uniform" && recipe["train-samples"] == "all")
        // Where files are and how the run is laid out are not the recipe.
        #expect(recipe["data"] == nil && recipe["out"] == nil && recipe["threads"] == nil)
    }
}

/// The resolved configuration in the run report: read from the first JSON line, escaped.
@Suite struct ReportConfigTests {
    @Test func theReportShowsTheFirstLinesConfiguration() throws {
        let first =
            #"{"epoch":1,"loss":0.5,"train_accuracy":0.9,"test_accuracy":0.9,"seconds":1,"samples_per_sec":100,"#
            + #""config":{"epochs":"2","lr":"<script>x</script>"}}"#
        let second = #"{"epoch":2,"loss":0.4,"train_accuracy":0.9,"test_accuracy":0.9,"seconds":1,"samples_per_sec":1}"#
        let records = try RunRecords.parse(first + "\n" + second, name: "run")
        #expect(records[0].config == ["epochs": "2", "lr": "<script>x</script>"] && records[1].config == nil)
        let page = RunReport(title: "t", epochs: records, evaluation: nil).render()
        #expect(page.contains("<h2>Training configuration</h2>"))
        #expect(page.contains("<tr><td>--epochs</td><td>2</td></tr>"))
        #expect(page.contains("&lt;script&gt;x&lt;/script&gt;") && !page.contains("<script>"))
        // Older output without it says so instead of showing an empty table.
        let old = RunReport(title: "t", epochs: [records[1]], evaluation: nil).render()
        #expect(old.contains("No training configuration recorded"))
    }
}

/// The bar's text: samples/s and the epoch's ETA.
@Suite struct ProgressBarTests {
    @Test func etaText() {
        #expect(ProgressPrinter.etaText(0) == "0:00")
        #expect(ProgressPrinter.etaText(65) == "1:05")
        #expect(ProgressPrinter.etaText(59.6) == "1:00")
        #expect(ProgressPrinter.etaText(3723) == "1:02:03")
        for unknown: Double? in [nil, .nan, .infinity, -1, 1e300] {
            #expect(ProgressPrinter.etaText(unknown) == "--:--")
        }
    }

    @Test func barLine() {
        let line = ProgressPrinter.barLine(
            epoch: 1, epochs: 10, step: 469, steps: 938, loss: 0.12345, samplesPerSecond: 21_345.4, eta: 38)
        #expect(
            line == "epoch 2/10 " + String(repeating: "█", count: 15) + String(repeating: "░", count: 15)
                + " 469/938 loss 0.1235  21,345 samples/s  ETA 0:38")
        let first = ProgressPrinter.barLine(
            epoch: 0, epochs: 1, step: 1, steps: 938, loss: 2.3, samplesPerSecond: nil, eta: nil)
        #expect(first.hasSuffix("1/938 loss 2.3000  ETA --:--"))
        #expect(!first.contains("samples/s"))
    }
}
