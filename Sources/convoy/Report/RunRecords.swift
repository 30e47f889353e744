import ConvoyEngine
import Foundation

/// One epoch object as `train`, `local` and `coordinator` print it with `--json`: the
/// figures the report draws. Cluster keys are absent on a one-process run.
struct EpochRecord: Decodable, Equatable {
    var epoch: Int
    var loss: Double
    var trainAccuracy: Double
    var testAccuracy: Double
    var seconds: Double
    var samplesPerSec: Double
    /// Mean slice time per worker id (coordinator only).
    var workerStepMs: [Double]?
    /// Joins and drops since the previous epoch (coordinator only).
    var events: [WorkerEvent]?
    /// The resolved training flags (a run's first line only).
    var config: [String: String]?

    struct WorkerEvent: Decodable, Equatable {
        var t: Double
        var event: String
        var worker: Int
        var reason: String?
    }

    enum CodingKeys: String, CodingKey {
        case epoch, loss, seconds, events, config
        case trainAccuracy = "train_accuracy"
        case testAccuracy = "test_accuracy"
        case samplesPerSec = "samples_per_sec"
        case workerStepMs = "worker_step_ms"
    }
}

/// The epoch records of a run, read from its JSON lines.
enum RunRecords {
    /// A JSON-lines file larger than this is not a run's output (a run prints ~1 KiB per epoch).
    static let maxBytes = 64 << 20

    /// Parses one epoch object per non-empty line; a line that is not one is an error naming
    /// its number. Non-finite values that `--json` writes as strings ("nan") are refused with
    /// that line too, since a chart cannot place them.
    static func parse(_ text: String, name: String) throws -> [EpochRecord] {
        var records: [EpochRecord] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            do {
                records.append(try JSONDecoder().decode(EpochRecord.self, from: Data(trimmed.utf8)))
            } catch {
                throw FlagError("\(name): line \(number + 1) is not an epoch object of convoy's --json output")
            }
        }
        guard !records.isEmpty else { throw FlagError("\(name): no epoch objects (one per line, from --json)") }
        return records
    }

    static func load(path: String) throws -> [EpochRecord] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FlagError("\(path): cannot be read")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxBytes + 1)) ?? Data()
        guard data.count <= maxBytes else { throw FlagError("\(path): larger than \(maxBytes >> 20) MiB") }
        return try parse(String(decoding: data, as: UTF8.self), name: path)
    }
}
