import Foundation

/// The lexical side of the layer notation (LayerNotation.swift): splitting, `name(args)`,
/// and typed arguments that are consumed once each, so a misspelt or repeated key is an error.
enum LayerNotation {
    /// Top-level items: separated by whitespace, `,` or `;` outside parentheses.
    static func split(_ text: String) throws -> [String] {
        var items: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            switch character {
            case "(":
                depth += 1
                current.append(character)
            case ")":
                depth -= 1
                guard depth >= 0 else { throw ShapeError("unbalanced ')' in \"\(text)\"") }
                current.append(character)
            case _ where depth == 0 && " \t\n,;".contains(character):
                if !current.isEmpty {
                    items.append(current)
                    current = ""
                }
            default: current.append(character)
            }
        }
        guard depth == 0 else { throw ShapeError("unbalanced '(' in \"\(text)\"") }
        if !current.isEmpty { items.append(current) }
        return items
    }

    /// `name` or `name(a, b, key=value)`.
    static func parse(_ item: String) throws -> (String, [String], [String: String]) {
        guard let open = item.firstIndex(of: "(") else { return (item.lowercased(), [], [:]) }
        guard item.hasSuffix(")") else { throw ShapeError("expected ')' at the end") }
        let name = item[..<open].lowercased()
        let inner = item[item.index(after: open)..<item.index(before: item.endIndex)]
        var positional: [String] = []
        var named: [String: String] = [:]
        for raw in inner.split(separator: ",") {
            let argument = raw.trimmingCharacters(in: .whitespaces)
            if let equals = argument.firstIndex(of: "=") {
                let key = argument[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                guard named[key] == nil else { throw ShapeError("\(key) is given twice") }
                named[key] = argument[argument.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            } else {
                guard named.isEmpty else { throw ShapeError("positional argument \(argument) after a key=value one") }
                positional.append(argument)
            }
        }
        return (name, positional, named)
    }

    struct Arguments {
        var positional: [String?]
        var named: [String: String]

        init(positional: [String], named: [String: String]) {
            self.positional = positional
            self.named = named
        }

        /// The argument `key`, by name or at `position`, or `fallback`.
        mutating func take(_ key: String, position: Int?, default fallback: String?) throws -> String {
            if let value = named.removeValue(forKey: key) { return value }
            if let position, position < positional.count, let value = positional[position] {
                positional[position] = nil
                return value
            }
            guard let fallback else { throw ShapeError("\(key) is missing") }
            return fallback
        }

        mutating func int(_ key: String, position: Int) throws -> Int {
            let text = try take(key, position: position, default: nil)
            guard let value = Int(text), value >= 1 else {
                throw ShapeError("\(key) \(text) is not a positive integer")
            }
            return value
        }

        /// `N` (both axes) or `HxW`.
        mutating func pair(_ key: String, position: Int? = nil, default fallback: String? = nil) throws -> (Int, Int) {
            let text = try take(key, position: position, default: fallback)
            let values = text.split(whereSeparator: { "x×".contains($0) }).compactMap { Int($0) }
            guard (1...2).contains(values.count), values.allSatisfy({ $0 >= 1 }),
                values.count == text.split(whereSeparator: { "x×".contains($0) }).count
            else {
                throw ShapeError("\(key) \(text) is not N or HxW with positive integers")
            }
            return (values[0], values.last!)
        }

        /// Padding: `N`, `same`, `valid`, or one of those per axis as `HxW`.
        mutating func paddings(default fallback: String) throws -> (PaddingSize, PaddingSize) {
            let text = try take("padding", position: nil, default: fallback)
            let sizes = try text.split(whereSeparator: { "x×".contains($0) }).map { part -> PaddingSize in
                switch part.lowercased() {
                case "same": return .same
                case "valid": return .valid
                default:
                    guard let pixels = Int(part), pixels >= 0 else {
                        throw ShapeError("padding \(text) is not N, same, valid or HxW of those")
                    }
                    return .explicit(pixels)
                }
            }
            guard (1...2).contains(sizes.count) else { throw ShapeError("padding \(text) has more than two axes") }
            return (sizes[0], sizes.last!)
        }

        mutating func mode() throws -> PaddingMode {
            let text = try take("mode", position: nil, default: "zeros").lowercased()
            switch text {
            case "zeros": return .zeros
            case "edge", "replicate": return .edge
            default: throw ShapeError("mode \(text) is not zeros or edge")
            }
        }

        /// Fails on anything left over.
        func finish() throws {
            if let key = named.keys.sorted().first { throw ShapeError("unknown argument \(key)") }
            if let extra = positional.compactMap({ $0 }).first { throw ShapeError("unexpected argument \(extra)") }
        }
    }
}
