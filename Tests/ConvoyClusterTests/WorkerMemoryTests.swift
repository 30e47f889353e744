@testable import ConvoyCluster
import ConvoyEngine
import Foundation
import Testing

/// `--max-memory` sizes, the host default, and the estimate against what a build really takes.
@Suite struct WorkerMemoryTests {
    @Test func sizesParseWithBinarySuffixes() {
        #expect(MemoryBound.parse("512M") == 512 << 20)
        #expect(MemoryBound.parse("4G") == 4 << 30)
        #expect(MemoryBound.parse("4GiB") == 4 << 30)
        #expect(MemoryBound.parse("64k") == 64 << 10)
        #expect(MemoryBound.parse("1T") == 1 << 40)
        #expect(MemoryBound.parse("1048576") == 1 << 20)
        for bad in ["", "0", "-5G", "1.5G", "G", "12X", "inf", "nan", "99999999999999999999", "9000000T", "٣G"] {
            #expect(MemoryBound.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func theDefaultIsHalfOfMemTotal() {
        let meminfo = "MemTotal:       24684096 kB\nMemFree:         1000000 kB\n"
        #expect(MemoryBound.hostDefault(meminfo: meminfo).bytes == 24_684_096 * 1024 / 2)
        #expect(MemoryBound.hostDefault(meminfo: "garbage").bytes == MemoryBound.fallbackBytes)
        #expect(MemoryBound.hostDefault(meminfo: nil).bytes == MemoryBound.fallbackBytes)
        #expect(MemoryBound.hostDefault().bytes > 0)
    }

    /// The connection's message limit follows the bound, between a control message and the protocol's cap.
    @Test func theConnectionLimitFollowsTheBound() {
        #expect(MemoryBound(bytes: 256 << 20, source: "t").connectionMessageLimit == 64 << 20)
        #expect(MemoryBound(bytes: 1 << 40, source: "t").connectionMessageLimit == Int(Wire.maxMessageBytes))
        #expect(MemoryBound(bytes: 1 << 20, source: "t").connectionMessageLimit == WorkerFootprint.controlFrameBytes)
    }

    /// The estimate against the buffers a network really allocates, for every model of the
    /// zoo the cluster trains and several batches: never below, and over only by the
    /// arg-max bytes it counts for unfused pooling layers.
    @Test func theEstimateBoundsWhatANetworkReallyAllocates() throws {
        for spec in [ModelZoo.lenet5, ModelZoo.conv1d, ModelZoo.simpleCNN] {
            let architecture = try Architecture(spec)
            for maxBatch in [1, 8, 256, 1000] {
                let estimate = try Network.estimatedBytes(architecture, maxBatch: maxBatch)
                let allocated = Network(architecture, maxBatch: maxBatch).allocatedBytes
                let pooled = architecture.layers.filter { $0 is MaxPool2d }.map { maxBatch * $0.outputShape.count }
                #expect(estimate >= allocated, "\(spec.name) at \(maxBatch): \(estimate) < \(allocated)")
                #expect(estimate <= allocated + pooled.reduce(0, +), "\(spec.name) at \(maxBatch)")
            }
        }
    }

    /// LeNet-5 with one slot fits a 256 MiB bound with room for steps of every allowed size;
    /// a bound that cannot hold one micro-batch step is refused with the estimate and the bound.
    @Test func aRunIsPlannedWithinTheBoundOrRefused() throws {
        let welcome = Welcome(workerID: 0, spec: ModelZoo.lenet5, deterministic: true, microBatch: 8, sampleSize: 784)
        let architecture = try Architecture(welcome.spec)
        let bound = MemoryBound(bytes: 256 << 20, source: "--max-memory")
        let plan = try WorkerFootprint.plan(
            welcome, architecture: architecture, slots: 1, maxBatch: 256, bound: bound,
            messageLimit: bound.connectionMessageLimit)
        #expect(plan.stepSamples == Wire.maxSamples && plan.totalBytes <= bound.bytes)
        #expect(plan.stepFrameBytes == 40 + 24 + 4 * 61_706 + Wire.maxSamples * 785)
        let tight = MemoryBound(bytes: 140 << 20, source: "--max-memory")
        let smaller = try WorkerFootprint.plan(
            welcome, architecture: architecture, slots: 1, maxBatch: 256, bound: tight,
            messageLimit: tight.connectionMessageLimit)
        #expect(smaller.stepSamples < Wire.maxSamples && smaller.stepSamples >= 8)
        #expect(smaller.totalBytes <= tight.bytes)
        let tiny = MemoryBound(bytes: 70 << 20, source: "--max-memory")
        #expect {
            try WorkerFootprint.plan(
                welcome, architecture: architecture, slots: 4, maxBatch: 256, bound: tiny,
                messageLimit: tiny.connectionMessageLimit)
        } throws: { error in
            "\(error)".contains("more than this worker's bound of 70.0 MiB (--max-memory)")
        }
    }

}
