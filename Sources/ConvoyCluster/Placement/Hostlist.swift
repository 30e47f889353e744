import Foundation

/// Slurm's compact host lists (`SLURM_JOB_NODELIST`): `node[01-03,07],login1` names node01,
/// node02, node03, node07 and login1. Expanded here rather than through `scontrol show
/// hostnames`, so a task needs no Slurm client tools and the tests need no Slurm.
public enum Hostlist {
    /// Why a host list cannot be read; `description` is the part of the message after the value.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        case unbalancedBracket
        case badRange(String)
        case tooMany(limit: Int)

        public var description: String {
            switch self {
            case .empty: return "names no host"
            case .unbalancedBracket: return "has an unbalanced or nested [ ]"
            case .badRange(let range): return "has a bad range [\(range)] (want N, N-M with N <= M, comma-separated)"
            case .tooMany(let limit): return "names more than \(limit) hosts"
            }
        }
    }

    /// More hosts than any allocation convoy can use (it has at most 4,096 workers): a bound on
    /// what a mistyped range such as `n[0-999999999]` may allocate.
    public static let maxHosts = 65_536

    /// The host names of `list`, in Slurm's order (left to right; within brackets, as written).
    public static func expand(_ list: String, limit: Int = maxHosts) throws(Problem) -> [String] {
        var hosts: [String] = []
        for item in try topLevelItems(list) {
            for host in try expandItem(item, limit: limit - hosts.count) { hosts.append(host) }
        }
        guard !hosts.isEmpty else { throw .empty }
        return hosts
    }

    /// Splits on the commas outside brackets: `a[1,2],b` is `a[1,2]` and `b`.
    static func topLevelItems(_ list: String) throws(Problem) -> [Substring] {
        var items: [Substring] = []
        var depth = 0
        var start = list.startIndex
        for index in list.indices {
            switch list[index] {
            case "[":
                depth += 1
                if depth > 1 { throw .unbalancedBracket }
            case "]":
                depth -= 1
                if depth < 0 { throw .unbalancedBracket }
            case "," where depth == 0:
                items.append(list[start..<index])
                start = list.index(after: index)
            default: break
            }
        }
        guard depth == 0 else { throw .unbalancedBracket }
        items.append(list[start...])
        // `a,,b` and a trailing comma are tolerated, as Slurm does; spaces are never part of a name.
        return items.map { $0.trimmingCharacters(in: .whitespaces)[...] }.filter { !$0.isEmpty }
    }

    /// One item, possibly with several bracket groups (`rack[1-2]-n[1-2]`): their product.
    static func expandItem(_ item: Substring, limit: Int) throws(Problem) -> [String] {
        guard let open = item.firstIndex(of: "[") else {
            guard limit >= 1 else { throw .tooMany(limit: maxHosts) }
            return [String(item)]
        }
        guard let close = item[open...].firstIndex(of: "]") else { throw .unbalancedBracket }
        let prefix = item[..<open]
        // Bounded too: `a[1-2]b[0-99999999]` must not build 10^8 suffixes before the product is refused.
        let suffixes = try expandItem(item[item.index(after: close)...], limit: limit)
        let numbers = try rangeValues(item[item.index(after: open)..<close], limit: limit)
        var hosts: [String] = []
        for number in numbers {
            for suffix in suffixes {
                guard hosts.count < limit else { throw .tooMany(limit: maxHosts) }
                hosts.append(prefix + number + suffix)
            }
        }
        return hosts
    }

    /// The numbers inside one pair of brackets, zero-padded to the width of each range's start
    /// as Slurm writes them (`[08-10]` is 08, 09, 10).
    static func rangeValues(_ ranges: Substring, limit: Int) throws(Problem) -> [String] {
        var values: [String] = []
        for part in ranges.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), bounds.allSatisfy(isDigits),
                let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]), low <= high
            else { throw .badRange(String(ranges)) }
            guard high - low < limit - values.count else { throw .tooMany(limit: maxHosts) }
            let width = bounds[0].count
            for value in low...high {
                let digits = String(value)
                values.append(String(repeating: "0", count: max(0, width - digits.count)) + digits)
            }
        }
        return values
    }

    /// Nine digits at most: no overflow, and no host number is longer.
    static func isDigits(_ text: Substring) -> Bool {
        (1...9).contains(text.count) && text.allSatisfy { $0.isASCII && $0.isNumber }
    }
}
