// swift-tools-version:6.0
import PackageDescription

// Release builds target the host's vector units where the compiler can see them; the engine's
// hot loops (pooling, activations, fixed-point accumulation) are written to auto-vectorize.
let package = Package(
    name: "convoy",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "convoy", targets: ["convoy"]),
        .library(name: "ConvoyEngine", targets: ["ConvoyEngine"]),
        .library(name: "ConvoyCluster", targets: ["ConvoyCluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Zip archives for NumPy's .npz (export and datasets): a well-kept reader and writer
        // (stored and deflated entries, zip64) instead of a hand-rolled one.
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        // Operators' tooling (issue "Operators see everything"): structured logs through the
        // server ecosystem's logging API, metrics through swift-metrics with the Prometheus
        // backend, a small HTTP server on SwiftNIO for /metrics, and YAML run configurations.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries: each one is a modulemap + shim header; nothing else imports them
        // but ConvoyInterop.
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // Named apart from ZIPFoundation's own `CZlib` module (two modules of one name do not link).
        .systemLibrary(
            name: "CZlibSystem", path: "Sources/CZlibSystem", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ", providers: [.apt(["libzmq3-dev"])]),
        // The engine's own C kernels: portable, AVX2 and AVX-512 variants of the glue around
        // the GEMMs, chosen once at run time by CPUID (Swift cannot compile one function per
        // CPU target). Only ConvoyInterop imports it.
        .target(name: "ConvoyKernels", path: "Sources/ConvoyKernels"),
        // memfd, SCM_RIGHTS and C11 atomics for the shared-memory transport (Swift imports
        // neither the CMSG_* macros nor atomics on memory another process maps).
        .target(name: "CSharedMemory", path: "Sources/CSharedMemory"),
        // The one place that talks to C: cblas, zlib, libzmq, the kernels behind thin Swift wrappers.
        .target(
            name: "ConvoyInterop",
            dependencies: ["CBLAS", "CZlibSystem", "CZMQ", "ConvoyKernels", "CSharedMemory"]),
        // Tensors, layers, models, optimizers, model files, MNIST. No CLI, no sockets.
        .target(
            name: "ConvoyEngine",
            dependencies: ["ConvoyInterop", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        // Wire protocol, ZeroMQ transport, coordinator and worker.
        .target(
            name: "ConvoyCluster",
            dependencies: [
                "ConvoyEngine", "ConvoyInterop",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        .executableTarget(
            name: "convoy",
            dependencies: [
                "ConvoyEngine", "ConvoyCluster", "ConvoyInterop",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]),
        // The wire decoder and the file readers as libFuzzer targets (scripts/fuzz.sh); a replay
        // and file-mutation tool otherwise.
        .executableTarget(name: "ConvoyFuzz", dependencies: ["ConvoyCluster", "ConvoyEngine", "ConvoyInterop"]),
        .testTarget(name: "ConvoyEngineTests", dependencies: ["ConvoyEngine", "ConvoyInterop"]),
        .testTarget(
            name: "ConvoyClusterTests",
            dependencies: ["ConvoyCluster", "ConvoyEngine", "ConvoyInterop", "convoy", "ConvoyFuzz"]),
    ]
)
