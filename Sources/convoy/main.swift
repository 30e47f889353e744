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
Malloc.keepLargeBlocksInHeap()
// Bad flags are one line on stderr and exit status 1 (ArgumentParser alone would add the
// usage text); --help and --version print as usual.
do {
    var command = try Convoy.parseAsRoot()
    try command.run()
} catch {
    if Convoy.exitCode(for: error) == .success { Convoy.exit(withError: error) }
    fail(Convoy.message(for: error))
}
