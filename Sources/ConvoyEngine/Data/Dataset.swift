import ConvoyInterop
import Foundation

/// Labeled images as bytes: `count × sampleSize` pixels (0–255; networks see them scaled to
/// [0, 1]) and `count` labels in `0..<classes`.
public struct Dataset: Sendable {
    public let pixels: [UInt8]
    public let labels: [UInt8]
    public let sampleSize: Int
    public let classes: Int

    public init(pixels: [UInt8], labels: [UInt8], sampleSize: Int, classes: Int = 10) {
        precondition(pixels.count == labels.count * sampleSize)
        self.pixels = pixels
        self.labels = labels
        self.sampleSize = sampleSize
        self.classes = classes
    }

    public var count: Int { labels.count }

    /// The first `n` samples (all of them when `n` is nil or larger).
    public func prefix(_ n: Int?) -> Dataset {
        guard let n, n < count else { return self }
        return Dataset(
            pixels: Array(pixels[0..<(n * sampleSize)]), labels: Array(labels[0..<n]),
            sampleSize: sampleSize, classes: classes)
    }

    /// Copies the samples at `indices` into `pixelsOut` / `labelsOut`, in order.
    public func gather(
        _ indices: ArraySlice<Int32>, pixels pixelsOut: UnsafeMutablePointer<UInt8>,
        labels labelsOut: UnsafeMutablePointer<UInt8>
    ) {
        pixels.withUnsafeBufferPointer { source in
            for (k, index) in indices.enumerated() {
                let i = Int(index)
                (pixelsOut + k * sampleSize).update(from: source.baseAddress! + i * sampleSize, count: sampleSize)
                labelsOut[k] = labels[i]
            }
        }
    }
}

/// MNIST-shaped data (28×28 gray images, labels 0–9): MNIST, Fashion-MNIST, KMNIST, EMNIST
/// digits, from IDX files or NumPy `.npz` archives (DataSources.swift says where each split is
/// looked for).
public enum MNIST {
    public enum Split: String, Sendable { case train, test }

    public static func fileNames(_ split: Split) -> (images: String, labels: String) {
        switch split {
        case .train: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
        case .test: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        }
    }

    /// Loads one split of `path` (a directory or an `.npz` file). Validates the formats, that
    /// images are 28×28, that the counts agree, and that every label is 0–9.
    public static func load(directory path: String, split: Split, limit: Int? = nil) throws -> Dataset {
        let images: IDXArray
        let labels: IDXArray
        let (imagesName, labelsName): (String, String)
        switch try source(path, split: split) {
        case let .idx(imagesPath, labelsPath):
            (imagesName, labelsName) = (imagesPath, labelsPath)
            images = try IDXArray.load(path: imagesPath, expectedRank: 3)
            labels = try IDXArray.load(path: labelsPath, expectedRank: 1)
        case let .npz(file, x, y):
            (imagesName, labelsName) = ("\(file): \(x)", "\(file): \(y)")
            (images, labels) = try npzArrays(file, x: x, y: y)
        }
        guard images.dimensions[1] == 28, images.dimensions[2] == 28 else {
            throw DataError("\(imagesName): images are \(images.dimensions[1])×\(images.dimensions[2]), expected 28×28")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError(
                "\(labelsName): \(labels.dimensions[0]) labels for \(images.dimensions[0]) images in \(imagesName)")
        }
        if let bad = labels.bytes.firstIndex(where: { $0 > 9 }) {
            throw DataError("\(labelsName): label \(labels.bytes[bad]) at index \(bad) is outside 0...9")
        }
        return Dataset(pixels: images.bytes, labels: labels.bytes, sampleSize: 784).prefix(limit)
    }
}
