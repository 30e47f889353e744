import ArgumentParser

/// How a process writes its log lines on stderr: `text` for people (the wording the shell
/// tests and operators grep), `json` for log shippers (one object per line, docs/OBSERVABILITY.md).
enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// `--log-format`, on every subcommand that logs. The value is also read from the command
/// line before parsing (`LogSetup.bootstrap`), so that a bad flag of the same command line is
/// already reported in the chosen format; this declaration documents and validates it.
struct LogOptions: ParsableArguments {
    @Option(
        name: .customLong("log-format"),
        help: ArgumentHelp(
            "Log lines on stderr: text, or json (one object per line with time, level, component, process, "
                + "worker, message).")
    )
    var logFormat: LogFormat = .text

    /// These options as command-line arguments, to pass on to a child process.
    var arguments: [String] { ["--log-format", logFormat.rawValue] }
}
