import ArgumentParser
import ConvoyCluster

/// `--gradient-encoding`: how a worker writes its fixed-point gradients (`GradientEncoding`).
struct GradientEncodingOption: ParsableArguments {
    enum Choice: String, ExpressibleByArgument, CaseIterable {
        case auto, raw, varint, packed

        /// `auto` picks by where the coordinator is: packed costs about a copy's CPU for ~4
        /// bytes a value, varint a decode on the coordinator's thread for ~3 (docs/PROTOCOL.md).
        func encoding(coordinatorOnThisHost: Bool) -> GradientEncoding {
            switch self {
            case .raw: .raw
            case .varint: .varint
            case .packed: .packed
            case .auto: coordinatorOnThisHost ? .packed : .varint
            }
        }
    }

    @Option(
        name: .customLong("gradient-encoding"),
        help: ArgumentHelp(
            "Fixed-point gradients on the wire: raw (8 bytes a value), packed (blocks of 64 as narrow as their "
                + "values, ~4 bytes, about a copy's CPU), varint (~3 bytes, CPU on both ends) or auto (packed to a "
                + "coordinator on this host, varint across a network)."))
    var choice = Choice.auto

    /// The encoding for a worker connected to `endpoint`.
    func resolved(for endpoint: String) -> GradientEncoding {
        choice.encoding(coordinatorOnThisHost: isLoopback(endpoint))
    }
}
