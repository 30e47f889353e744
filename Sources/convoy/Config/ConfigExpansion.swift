import ArgumentParser
import ConvoyEngine
import Foundation

/// `--config FILE`: the file's keys become flag tokens placed before the command line's own,
/// so ArgumentParser parses both and every flag keeps its own validation and wording. A key
/// the command line also gives (in any spelling: `--epochs 3`, `--epochs=3`, `--no-augment`
/// for an `augment` key) is dropped from the file's tokens, so the command line wins whatever
/// ArgumentParser does with repeated flags (it appends repeated array options).
struct ConfigExpansion {
    /// The subcommands that take `--config`.
    static let commands: [String: ParsableCommand.Type] = [
        "train": Train.self, "local": Local.self, "coordinator": CoordinatorCommand.self, "worker": WorkerCommand.self,
    ]

    /// The arguments to parse: unchanged without `--config`.
    let arguments: [String]
    /// The file, when one was given.
    let path: String?
    /// Flag names the file supplied and the command line did not.
    let fileKeys: [String]

    /// - Parameters:
    ///   - arguments: the command line without the program name.
    ///   - commands: the subcommands that take `--config` (tests add their own).
    init(arguments: [String], commands: [String: ParsableCommand.Type] = Self.commands) throws {
        guard let name = arguments.first, let command = commands[name],
            let path = try Self.configPath(in: arguments.dropFirst())
        else {
            (self.arguments, self.path, fileKeys) = (arguments, nil, [])
            return
        }
        let file = try ConfigFile(path: path)
        let table = try ArgumentTable(command)
        let given = Set(Self.flagNames(in: arguments.dropFirst()).compactMap { table.key(for: $0) })
        var tokens: [String] = []
        var keys: [String] = []
        for entry in file.entries {
            let entryTokens = try table.tokens(for: entry, path: path)
            guard let key = table.key(for: entry.key), !given.contains(key) else { continue }
            tokens += entryTokens
            keys.append(entry.key)
        }
        self.arguments = [name] + tokens + arguments.dropFirst()
        self.path = path
        fileKeys = keys
    }

    /// The one `--config` value, or nil; a second `--config` is refused.
    static func configPath(in arguments: ArraySlice<String>) throws -> String? {
        var paths: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex, arguments[index] != "--" {
            let token = arguments[index]
            if token == "--config", index + 1 < arguments.endIndex {
                paths.append(arguments[index + 1])
                index += 1
            } else if token.hasPrefix("--config=") {
                paths.append(String(token.dropFirst("--config=".count)))
            }
            index += 1
        }
        guard paths.count <= 1 else { throw ConfigError("--config is given \(paths.count) times; give one file") }
        return paths.first
    }

    /// Long and short flag names on the command line (`epochs` for `--epochs=3`), up to `--`.
    static func flagNames(in arguments: ArraySlice<String>) -> [String] {
        var names: [String] = []
        for token in arguments {
            if token == "--" { break }
            if token.hasPrefix("--") {
                names.append(String(token.dropFirst(2).prefix { $0 != "=" }))
            } else if token.hasPrefix("-"), token.count == 2 {
                names.append(String(token.dropFirst()))
            }
        }
        return names
    }

    /// A parse or validation error about a flag the file supplied, named as the file's key.
    func attributed(_ message: String) -> String {
        guard let path else { return message }
        let flagged = fileKeys.first { key in
            guard let range = message.range(of: "--\(key)") else { return false }
            // `--lr` must not match inside `--lr-decay`.
            return message[range.upperBound...].first.map { !($0.isLetter || $0.isNumber || $0 == "-") } ?? true
        }
        guard let key = flagged else { return message }
        return "\(path): \(peerText(key)): \(peerText(message, limit: 1024))"
    }
}

/// The flags of one subcommand as ArgumentParser describes them (its `--experimental-dump-help`
/// JSON), so that the config file needs no list of flags of its own.
struct ArgumentTable {
    enum Kind: Equatable {
        case option(repeating: Bool)
        /// A flag; `inverse` is its `no-` name when it has one.
        case flag(inverse: String?)
    }

    /// Long name → kind; short names → long name; `no-x` → `x`.
    private(set) var kinds: [String: Kind] = [:]
    private var aliases: [String: String] = [:]

    private struct Dump: Decodable {
        struct Command: Decodable { let arguments: [Argument]? }
        struct Argument: Decodable {
            struct Name: Decodable { let kind: String, name: String }
            let kind: String
            let names: [Name]?
            let isRepeating: Bool
        }
        let command: Command
    }

    init(_ command: ParsableCommand.Type) throws {
        let dump = try JSONDecoder().decode(Dump.self, from: Data(command._dumpHelp().utf8))
        var flags: Set<String> = []
        for argument in dump.command.arguments ?? [] {
            let long = (argument.names ?? []).filter { $0.kind == "long" }.map(\.name)
            guard let key = long.first, !["help", "version", "config"].contains(key) else { continue }
            switch argument.kind {
            case "option": kinds[key] = .option(repeating: argument.isRepeating)
            case "flag": flags.formUnion(long)
            default: continue
            }
            for name in long.dropFirst() { aliases[name] = key }
            for short in (argument.names ?? []).filter({ $0.kind == "short" }) { aliases[short.name] = key }
        }
        // An inversion (`--deterministic`/`--no-deterministic`) may come as one argument or two.
        for name in flags where !(name.hasPrefix("no-") && flags.contains(String(name.dropFirst(3)))) {
            kinds[name] = .flag(inverse: flags.contains("no-" + name) ? "no-" + name : nil)
            aliases["no-" + name] = flags.contains("no-" + name) ? name : nil
        }
    }

    /// The flag a name on a command line or in a file stands for, or nil when there is none.
    func key(for name: String) -> String? {
        if kinds[name] != nil { return name }
        return aliases[name]
    }

    /// The tokens one entry of the file stands for; an unknown key or a value of the wrong
    /// shape is refused naming the file and the key.
    func tokens(for entry: ConfigFile.Entry, path: String) throws -> [String] {
        let named = "\(path): \(peerText(entry.key))"
        guard let kind = kinds[entry.key] else {
            let hint = aliases[entry.key].map { " (write it as \($0))" } ?? ""
            throw ConfigError("\(named): not a flag of this command\(hint)")
        }
        switch (kind, entry.value) {
        case let (.option, .scalar(text, _)):
            return ["--\(entry.key)=\(text)"]
        case let (.option(repeating: true), .sequence(items)):
            return items.map { "--\(entry.key)=\($0)" }
        case (.option(repeating: false), .sequence):
            throw ConfigError("\(named): takes one value, not a list")
        case let (.flag(inverse), .scalar(_, bool?)):
            if bool { return ["--\(entry.key)"] }
            return inverse.map { ["--\($0)"] } ?? []
        case (.flag, _):
            throw ConfigError("\(named): is a flag; give true or false")
        }
    }
}
