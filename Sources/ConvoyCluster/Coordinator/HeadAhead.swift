import ConvoyEngine

/// Head ahead: a worker computes a slice's head gradient (the dense layers, most of the
/// parameters) before its trunk's, and sends it first. Once every slice's head bucket is in,
/// the head's sum is final: the coordinator updates the head then, while the workers still
/// back-propagate through the convolutions, and sends the new head weights ahead of the next
/// step. The next step's messages then carry only the trunk's weights, so what is left
/// between a step's last gradient and the next step's start is the trunk's small update.
/// Only in deterministic rounds without audit: there the bits cannot depend on which worker
/// computed a head, so a head counted before its slice's trunk arrived (from a worker then
/// dropped) is the one its replacement computes too. Measured: docs/SCALING.md.
extension ClusterStepRunner {
    /// The head's parameter range when this run sends it ahead, else nil.
    func headAheadRange(_ run: (description: RunDescription, pool: WorkerPool, validator: ResultValidator))
        -> Range<Int>?
    {
        guard options.headAhead, options.audit == 0, run.description.config.deterministic,
            run.validator.buckets.count == 2
        else { return nil }
        let head = run.validator.buckets[0]
        let total = run.description.architecture.parameterCount
        return head.upperBound == total || head.lowerBound == 0 ? head : nil
    }

    /// Adds result buckets into the step's sum, with their samples when `samples`.
    func add(_ buckets: [StepResult], into sum: GradientSum, step: Int, samples: Bool = true) throws {
        for bucket in buckets {
            if samples { sum.addSamples(bucket.count) }
            guard sum.addChecked(bucket.gradient, at: bucket.gradientOffset) else {
                throw ClusterError.sumOverflow(step: UInt64(step))
            }
        }
    }

    /// Sends `range` of the updated weights as step `step`'s, without waiting, to the live
    /// workers the next round gives a slice (rounds hand `slices` slices to the first live
    /// workers; one joining or dropped meanwhile gets all the weights with its step); a
    /// worker whose queue is full is dropped (its slice goes elsewhere).
    func sendAhead(_ weights: FloatBuffer, range: Range<Int>, step: Int, pool: WorkerPool, slices: Int) {
        let values = Array(UnsafeBufferPointer(start: weights.pointer + range.lowerBound, count: range.count))
        let message = Message(
            runID: runID, step: UInt64(step),
            payload: .weights(WeightsUpdate(offset: range.lowerBound, values: values)))
        for w in pool.live.prefix(slices) {
            if (try? pool.send(message, to: w)) == true { pool.setAheadStep(UInt64(step), of: w) }
        }
        sentAhead = (step, range)
    }
}
