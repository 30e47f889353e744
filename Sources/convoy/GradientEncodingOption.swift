import ArgumentParser
import ConvoyCluster

/// `--gradient-encoding`: how a worker writes its fixed-point gradients (`GradientEncoding`).
struct GradientEncodingOption: ParsableArguments {
    enum Choice: String, ExpressibleByArgument, CaseIterable {
        case auto, raw, varint
    }

    @Option(
        name: .customLong("gradient-encoding"),
        help: ArgumentHelp(
            "Fixed-point gradients on the wire: raw (8 bytes a value, no CPU), varint (3-4 bytes, CPU on both "
                + "ends) or auto (raw to a coordinator on this host, varint across a network)."))
    var choice = Choice.auto

    /// The encoding for a worker connected to `endpoint`.
    func resolved(for endpoint: String) -> GradientEncoding {
        switch choice {
        case .raw: .raw
        case .varint: .varint
        case .auto: isLoopback(endpoint) ? .raw : .varint
        }
    }
}
