import ConvoyEngine
import Metrics

/// A training session's live figures (steps, samples, throughput, loss, accuracy, epoch),
/// fed by `convoy train` and `convoy coordinator` from their progress and epoch callbacks and
/// recorded through swift-metrics. Made only with --metrics-port, after the backend is
/// bootstrapped; used from the training thread only.
public final class RunMetrics {
    private let steps = Counter(label: MetricCatalogue.steps)
    private let samples = Counter(label: MetricCatalogue.samples)
    private let samplesPerSecond = Gauge(label: MetricCatalogue.samplesPerSecond)
    private let trainLoss = Gauge(label: MetricCatalogue.trainLoss)
    private let testAccuracy = Gauge(label: MetricCatalogue.testAccuracy)
    private let epochNumber = Gauge(label: MetricCatalogue.epoch)
    /// The throughput window: where it started (the end of a step; nil before the first step
    /// and after an epoch's evaluation, so neither start-up nor evaluation counts as training
    /// time) and the samples trained since.
    private var windowStart: ContinuousClock.Instant?
    private var windowSamples = 0
    /// The shortest window the throughput is computed over, so one quick step does not make it jump.
    static let window = Duration.seconds(1)

    public init() {
        for gauge in [samplesPerSecond, trainLoss, testAccuracy, epochNumber] { gauge.record(0) }
        steps.increment(by: 0)
        samples.increment(by: 0)
    }

    /// After each training step; `plan` gives the step's sample count.
    public func step(_ progress: StepProgress, plan: BatchPlan) {
        let count = plan.batchRange(step: progress.step - 1).count
        steps.increment()
        samples.increment(by: count)
        trainLoss.record(progress.runningLoss)
        epochNumber.record(progress.epoch + 1)
        let now = ContinuousClock.now
        guard let start = windowStart else {
            windowStart = now
            return
        }
        windowSamples += count
        let elapsed = start.duration(to: now)
        if elapsed >= Self.window {
            samplesPerSecond.record(Double(windowSamples) / elapsed.inSeconds)
            windowStart = now
            windowSamples = 0
        }
    }

    /// After each epoch (with its test evaluation).
    public func epoch(_ report: EpochReport) {
        trainLoss.record(report.loss)
        testAccuracy.record(report.testAccuracy)
        epochNumber.record(report.epoch)
        // The epoch's own figure (evaluation excluded) until the next window closes: an
        // epoch shorter than the window still shows its throughput.
        samplesPerSecond.record(report.samplesPerSec)
        windowStart = nil
        windowSamples = 0
    }
}
