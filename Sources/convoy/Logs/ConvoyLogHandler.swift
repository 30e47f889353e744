import ArgumentParser
import ConvoyEngine
import Foundation
import Logging

/// swift-log's handler for convoy's processes: each event becomes one `LogRecord` line on
/// stderr, as text or JSON (`--log-format`), naming this process (`ProcessIdentity`).
struct ConvoyLogHandler: LogHandler {
    let component: String
    let format: LogFormat
    let identity: ProcessIdentity
    let write: @Sendable (String) -> Void
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }
        // A line about a worker names it; on a numbered worker every line is about itself.
        let worker = fields["worker"].flatMap { UInt32("\($0)") } ?? identity.workerID
        let record = LogRecord(
            time: Date().timeIntervalSince1970, level: event.level, component: component, process: identity.name,
            textPrefix: identity.textPrefix, worker: worker, message: event.message.description)
        write(record.rendered(format) + "\n")
    }
}

/// Lines on stderr, one write each under a lock, so lines of different threads never mix.
enum StandardError {
    private static let lock = NSLock()
    @Sendable static func write(_ text: String) {
        lock.withLock { FileHandle.standardError.write(Data(text.utf8)) }
    }
}

/// The CLI's log: every line a command writes on stderr goes through here.
enum Log {
    /// Set once by `LogSetup.bootstrap`, before any other thread starts.
    nonisolated(unsafe) static var format = LogFormat.text

    static var logger: Logger { Logger(label: ProcessIdentity.current.component) }

    /// A line of the engine's or the cluster's log closures: its level and the worker it
    /// names read from its words (`LogText`).
    @Sendable static func line(_ text: String) {
        let worker = LogText.firstWorker(in: text)
        logger.log(level: LogText.level(of: text), "\(text)", metadata: worker.map { ["worker": "\($0)"] })
    }

    static func error(_ text: String) { logger.error("\(text)") }

    /// A line that carries its own prefix (`report: wrote …`, the kernels' `convoy: kernels …`):
    /// unchanged as text; as JSON without that prefix, which the object's fields replace.
    @Sendable static func prefixed(_ text: String) {
        guard format == .json else { return StandardError.write(text + "\n") }
        let identity = ProcessIdentity.current
        for prefix in ["\(identity.textPrefix): ", "\(identity.component): ", "convoy: "] where text.hasPrefix(prefix) {
            return line(String(text.dropFirst(prefix.count)))
        }
        line(text)
    }
}

/// Sets up logging once, first thing in `main`.
enum LogSetup {
    /// The component (the subcommand, when the command line names one) and `--log-format`
    /// are read from the raw arguments: a command line that fails to parse is then reported
    /// in its own format and named after its own command.
    static func bootstrap(arguments: [String]) {
        let identity = ProcessIdentity.current
        identity.component = component(in: arguments)
        let format = format(in: arguments)
        Log.format = format
        LoggingSystem.bootstrap { label in
            ConvoyLogHandler(component: label, format: format, identity: identity, write: StandardError.write)
        }
        KernelChoice.announceLine = Log.prefixed
    }

    /// The subcommand's name, when the first argument is one (never other text from the
    /// command line, which would be printed unescaped), else `convoy`.
    static func component(in arguments: [String]) -> String {
        let names = Convoy.configuration.subcommands.map { $0._commandName }
        guard arguments.count > 1, names.contains(arguments[1]) else { return "convoy" }
        return arguments[1]
    }

    /// The last `--log-format X` or `--log-format=X` before a `--`; text when absent or invalid
    /// (ArgumentParser then reports an invalid one).
    static func format(in arguments: [String]) -> LogFormat {
        var format = LogFormat.text
        var index = 1
        while index < arguments.count, arguments[index] != "--" {
            let argument = arguments[index]
            if argument == "--log-format", index + 1 < arguments.count {
                format = LogFormat(rawValue: arguments[index + 1]) ?? format
                index += 1
            } else if argument.hasPrefix("--log-format=") {
                format = LogFormat(rawValue: String(argument.dropFirst("--log-format=".count))) ?? format
            }
            index += 1
        }
        return format
    }
}
