/// Why `--from-env` found no usable placement: one line naming the variable and its value.
public enum PlacementError: Error, Equatable, Sendable, CustomStringConvertible {
    case noScheduler
    case missing(variable: String)
    case bad(variable: String, value: String, why: String)

    public var description: String {
        switch self {
        case .noScheduler:
            return "--from-env: no scheduler placement in the environment: neither SLURM_PROCID (Slurm) nor "
                + "JOB_COMPLETION_INDEX, CONVOY_COORDINATOR or CONVOY_WORKERS (Kubernetes) is set"
        case .missing(let variable):
            return "--from-env: \(variable) is not set"
        case .bad(let variable, let value, let why):
            return "--from-env: \(variable)=\(PlacementError.quoted(value)) \(why)"
        }
    }

    /// The value as the user would type it, shortened and with control characters escaped: it
    /// comes from the environment, which anything may have filled.
    static func quoted(_ value: String) -> String {
        let short = value.count > 80 ? String(value.prefix(80)) + "…" : value
        return "\""
            + short.unicodeScalars.map {
                $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0)
            }.joined() + "\""
    }
}

/// Typed reads of environment variables, each failure naming its variable.
struct EnvironmentReader {
    let environment: [String: String]

    func required(_ name: String) throws(PlacementError) -> String {
        guard let value = environment[name] else { throw .missing(variable: name) }
        guard !value.isEmpty else { throw .bad(variable: name, value: value, why: "is empty") }
        return value
    }

    func integer(_ name: String, in range: ClosedRange<Int>, hint: String = "") throws(PlacementError) -> Int {
        let value = try required(name)
        guard value.count <= 18, value.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(value) else {
            throw .bad(variable: name, value: value, why: "is not a whole number")
        }
        guard range.contains(number) else {
            throw .bad(variable: name, value: value, why: "is outside \(range.lowerBound)...\(range.upperBound)\(hint)")
        }
        return number
    }

    func optionalInteger(_ name: String, in range: ClosedRange<Int>) throws(PlacementError) -> Int? {
        environment[name] == nil ? nil : try integer(name, in: range)
    }
}
