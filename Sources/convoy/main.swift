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
        subcommands: [Train.self, Local.self, CoordinatorCommand.self, WorkerCommand.self, KeyGen.self, Evaluate.self, Summary.self, Bench.self, TransportBench.self])
}

Process.clearInheritedSignalMask()
Malloc.keepLargeBlocksInHeap()
Convoy.main()
