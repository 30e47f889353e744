import ArgumentParser
import ConvoyEngine
import ConvoyInterop
import Foundation

/// `convoy`: train, evaluate, summarize and benchmark convolutional networks, in one
/// process or across a ZeroMQ cluster.
struct Convoy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convoy",
        abstract: "A convolutional-network engine and a distributed data-parallel trainer.",
        version: "0.1.0",
        subcommands: [
            Train.self, Local.self, CoordinatorCommand.self, WorkerCommand.self, KeyGen.self, Evaluate.self,
            Export.self, Predict.self, ReportCommand.self, StatusCommand.self, Summary.self, Bench.self,
            TransportBench.self,
            CoordinatorBench.self,
        ])
}

Process.clearInheritedSignalMask()
LogSetup.bootstrap(arguments: CommandLine.arguments)
Malloc.keepLargeBlocksInHeap()
// Bad flags are one line on stderr and exit status 1 (ArgumentParser alone would add the
// usage text); --help and --version print as usual. A --config file's keys are expanded to
// flags first (ConfigExpansion); an error about one of them names the file and the key.
var expansion: ConfigExpansion?
do {
    expansion = try ConfigExpansion(arguments: Array(CommandLine.arguments.dropFirst()))
    var command = try Convoy.parseAsRoot(expansion?.arguments)
    try command.run()
} catch {
    if Convoy.exitCode(for: error) == .success { Convoy.exit(withError: error) }
    if let error = error as? ConfigError { fail(error.description) }
    let message = Convoy.message(for: error)
    fail(expansion?.attributed(message) ?? message)
}
