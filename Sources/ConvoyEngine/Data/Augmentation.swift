/// Random shifts of training images by up to `maxShift` pixels in each direction, filled with
/// 0 (MNIST's background). Each sample's shift is a pure function of (seed, epoch, sample
/// index), so it does not depend on who gathers the sample: the coordinator shifts what it
/// ships, `convoy train` what it computes, and the answer stays the same at any N
/// (docs/SPEC.md §8).
public struct ShiftAugmentation: Sendable, Equatable {
    public let maxShift: Int
    public let seed: UInt64
    public let epoch: Int
    /// Image planes: `channels` planes of `height × width` bytes per sample.
    public let channels: Int, height: Int, width: Int

    public init(maxShift: Int, seed: UInt64, epoch: Int, imageShape: Shape) {
        precondition(imageShape.rank == 3)
        self.maxShift = maxShift
        self.seed = seed
        self.epoch = epoch
        (channels, height, width) = (imageShape.dims[0], imageShape.dims[1], imageShape.dims[2])
    }

    /// The shift of sample `index` this epoch, each component in -maxShift...maxShift.
    public func shift(of index: Int32) -> (dy: Int, dx: Int) {
        // One stream per (epoch, sample): 32 bits each, so no two of them share a stream.
        var rng = SeededRandom(
            seed: seed ^ 0xA06,
            stream: UInt64(UInt32(truncatingIfNeeded: epoch)) << 32
                | UInt64(UInt32(bitPattern: index)))
        let span = 2 * maxShift + 1
        return (rng.nextIndex(below: span) - maxShift, rng.nextIndex(below: span) - maxShift)
    }

    /// Moves sample `index`'s pixels (one sample at `pixels`) by its shift, in place.
    public func apply(to pixels: UnsafeMutablePointer<UInt8>, index: Int32) {
        let (dy, dx) = shift(of: index)
        guard dy != 0 || dx != 0 else { return }
        let plane = height * width
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: plane) { copy in
            for c in 0..<channels {
                let base = pixels + c * plane
                copy.baseAddress!.update(from: base, count: plane)
                // Row by row: zeros where the shift uncovers the margin, one copy for the rest
                // (a branch per pixel was 6.6% of a coordinator's CPU with --augment).
                let kept = max(0, width - abs(dx))
                let firstX = min(max(dx, 0), width)
                for y in 0..<height {
                    let sourceY = y - dy
                    let row = base + y * width
                    guard sourceY >= 0 && sourceY < height else {
                        row.update(repeating: 0, count: width)
                        continue
                    }
                    row.update(repeating: 0, count: firstX)
                    (row + firstX).update(from: copy.baseAddress! + sourceY * width + firstX - dx, count: kept)
                    (row + firstX + kept).update(repeating: 0, count: width - firstX - kept)
                }
            }
        }
    }
}

/// The samples of one training step: which ones, from where, and how they are augmented.
/// Runners gather through it, so every runner ships or computes exactly the same pixels.
public struct StepSamples {
    public let data: Dataset
    public let indices: ArraySlice<Int32>
    public let augmentation: ShiftAugmentation?

    public init(data: Dataset, indices: ArraySlice<Int32>, augmentation: ShiftAugmentation? = nil) {
        self.data = data
        self.indices = indices
        self.augmentation = augmentation
    }

    public var count: Int { indices.count }
    public var sampleSize: Int { data.sampleSize }

    /// Copies the samples at positions `range` (0-based within the step), augmented, into
    /// `pixels` / `labels`.
    public func gather(_ range: Range<Int>, pixels: UnsafeMutablePointer<UInt8>, labels: UnsafeMutablePointer<UInt8>) {
        let start = indices.startIndex
        let slice = indices[(start + range.lowerBound)..<(start + range.upperBound)]
        data.gather(slice, pixels: pixels, labels: labels)
        guard let augmentation else { return }
        for (k, index) in slice.enumerated() { augmentation.apply(to: pixels + k * data.sampleSize, index: index) }
    }
}
