import ConvoyEngine
import ConvoyInterop
import Foundation
import Yams

/// A `--config` file: a flat YAML mapping from a subcommand's long flag names (without `--`)
/// to scalars, or to sequences of scalars for repeatable options. Everything in it is hostile:
/// its size is bounded, anchors and aliases are refused (an alias bomb would make the parser's
/// duplicate-key check hash exponentially large trees), and any shape other than the flat
/// mapping is one line naming the file and the key. libyaml stops nesting at 1000 levels, but
/// Yams recurses once per level (about 3 KiB of stack each: 30,000 `- ` crashed under
/// `ulimit -s 1024` on the main thread), so the file is parsed on a thread of its own stack.
struct ConfigFile {
    /// One key of the file and its value, in file order.
    struct Entry: Equatable {
        enum Value: Equatable {
            /// A plain or quoted scalar: its text, and its value when YAML reads it as a boolean.
            case scalar(String, bool: Bool?)
            case sequence([String])
        }
        let key: String
        let value: Value
    }

    /// Real files are a few hundred bytes; 64 KiB leaves room for long comments.
    static let maxBytes = 64 << 10
    /// 1000 levels take about 3 MiB; ten times that, whatever `ulimit -s` says.
    static let parserStack = 32 << 20

    let path: String
    let entries: [Entry]

    init(path: String) throws {
        let bytes: [UInt8]
        do { bytes = try Files.read(path, what: "--config", maxBytes: Self.maxBytes) } catch let error as FileError {
            throw ConfigError(error.description)
        }
        try self.init(text: String(decoding: bytes, as: UTF8.self), path: path)
    }

    init(text: String, path: String) throws {
        self.path = path
        if let problem = Self.aliasProblem(text) { throw ConfigError("\(path): \(problem)") }
        let parsed = Self.onOwnStack { () -> Result<[Entry], ConfigError> in
            do { return .success(try Self.entries(of: try Yams.compose(yaml: text), path: path)) } catch let
                error as ConfigError
            {
                return .failure(error)
            } catch {
                return .failure(ConfigError("\(path): not valid YAML: \(Self.yamlProblem(error))"))
            }
        }
        entries = try parsed.get()
    }

    /// The flat mapping's entries; any other shape is refused naming the key.
    private static func entries(of root: Node?, path: String) throws -> [Entry] {
        guard let root else { return [] }
        guard case let .mapping(mapping) = root else {
            throw ConfigError("\(path): not a mapping of flag names to values (e.g. `epochs: 10`)")
        }
        return try mapping.map { keyNode, valueNode in
            guard case let .scalar(keyScalar) = keyNode else {
                throw ConfigError("\(path): a key is not a flag name (keys are plain names such as epochs)")
            }
            let key = keyScalar.string
            let named = "\(path): \(peerText(key))"
            switch valueNode {
            case let .scalar(scalar):
                if valueNode.null != nil { throw ConfigError("\(named): has no value") }
                return Entry(key: key, value: .scalar(scalar.string, bool: valueNode.bool))
            case let .sequence(sequence):
                let items = try sequence.map { item -> String in
                    guard case let .scalar(scalar) = item, item.null == nil else {
                        throw ConfigError("\(named): a list holds only plain values, not lists, mappings or nulls")
                    }
                    return scalar.string
                }
                return Entry(key: key, value: .sequence(items))
            case .mapping:
                throw ConfigError("\(named): nested mappings are not flags; give a value or a list of values")
            case .alias:
                throw ConfigError("\(named): aliases are not allowed")
            }
        }
    }

    /// An anchor (`&name`) or alias (`*name`) where YAML could read one: at the start of a
    /// word. A `*` inside a word (`tcp://127.0.0.1:*`) is not one. Deliberately lexical and
    /// blind to quotes and comments: any scanner that tried to follow them could be fooled
    /// into skipping a real alias, so ` *` in a comment or a quoted value is refused too.
    static func aliasProblem(_ text: String) -> String? {
        var previous: Character = "\n"
        var line = 1
        for character in text {
            if character == "&" || character == "*", " \t\n\r[{,".contains(previous) {
                return "line \(line): a word starting with \(character) (a YAML anchor or alias, also in comments "
                    + "and quotes) is not allowed; write each value out"
            }
            if character == "\n" { line += 1 }
            previous = character
        }
        return nil
    }

    /// One line for the parser's multi-line errors.
    static func yamlProblem(_ error: Error) -> String {
        switch error {
        case let YamlError.duplicatedKeysInMapping(duplicates, _):
            return "key \(duplicates.map { peerText($0) }.joined(separator: ", ")) appears more than once"
        case let YamlError.scanner(_, problem, mark, _), let YamlError.parser(_, problem, mark, _),
            let YamlError.composer(_, problem, mark, _):
            return "\(peerText(problem)) at line \(mark.line), column \(mark.column)"
        case let YamlError.reader(problem, offset, _, _):
            return "\(peerText(problem))\(offset.map { " at byte \($0)" } ?? "")"
        default:
            return peerText(String(describing: error).split(separator: "\n").first.map(String.init) ?? "")
        }
    }
}

extension ConfigFile {
    /// Runs `body` on a thread with `parserStack` bytes of stack and waits for it (the tree
    /// is also freed there: its deinit recurses as deep as the parser).
    static func onOwnStack<T>(_ body: @escaping () -> T) -> T {
        nonisolated(unsafe) var result: T?
        nonisolated(unsafe) let body = body
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result = body()
            done.signal()
        }
        thread.stackSize = parserStack
        thread.start()
        done.wait()
        // The thread sets it before it signals.
        return result ?? body()
    }
}

/// A `--config` file that cannot be used: one line naming the file and, where there is one, the key.
struct ConfigError: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ description: String) { self.description = description }
}
