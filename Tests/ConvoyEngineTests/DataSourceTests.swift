import Foundation
import Testing

@testable import ConvoyEngine

/// `--data` beyond MNIST's directory: Keras-style `.npz`, `train.npz`/`test.npz`, and IDX
/// pairs with other names (EMNIST's), each giving the same samples as the IDX originals.
@Suite struct DataSourceTests {
    static let test = try! MNIST.load(directory: mnistDirectory, split: .test, limit: 300)

    func arrays(_ data: Dataset, labels dtype: NumPyArray.DType = .uint8) -> (NumPyArray, NumPyArray) {
        let x = NumPyArray(dtype: .uint8, shape: [data.count, 28, 28], data: data.pixels)
        var y = data.labels
        if dtype == .int64 { y = data.labels.flatMap { [$0, 0, 0, 0, 0, 0, 0, 0] } }
        return (x, NumPyArray(dtype: dtype, shape: [data.count], data: y))
    }

    func write(_ entries: [(String, NumPyArray)], to path: String) throws {
        try writeAtomically(try NumPyArchive.encode(entries), to: path)
    }

    @Test func kerasStyleNPZGivesTheSameSamples() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, y) = arrays(Self.test, labels: .int64)
        try write([("x_train", x), ("y_train", y), ("x_test", x), ("y_test", y)], to: dir + "/mnist.npz")
        let loaded = try MNIST.load(directory: dir + "/mnist.npz", split: .test)
        #expect(loaded.pixels == Self.test.pixels && loaded.labels == Self.test.labels)
    }

    @Test func splitNPZFilesInADirectory() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, y) = arrays(Self.test)
        try write([("x", x), ("y", y)], to: dir + "/test.npz")
        #expect(try MNIST.load(directory: dir, split: .test).labels == Self.test.labels)
        #expect(throws: DataError.self) { try MNIST.load(directory: dir, split: .train) }
    }

    @Test func idxPairsWithOtherNames() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = Self.test.prefix(20)
        let images = idx(8, [20, 28, 28], data.pixels)
        let labels = idx(8, [20], data.labels)
        try writeAtomically(images, to: dir + "/emnist-digits-test-images-idx3-ubyte")
        try writeAtomically(labels, to: dir + "/emnist-digits-test-labels-idx1-ubyte")
        #expect(try MNIST.load(directory: dir, split: .test).pixels == data.pixels)
        // A second candidate makes the choice ambiguous: refused, naming both.
        try writeAtomically(labels, to: dir + "/kmnist-test-labels-idx1-ubyte")
        do {
            _ = try MNIST.load(directory: dir, split: .test)
            Issue.record("loaded an ambiguous directory")
        } catch let error as DataError {
            #expect(error.description.contains("ambiguous") && error.description.contains("kmnist"))
        }
    }

    @Test func npzWithWrongContentsIsRefused() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, _) = arrays(Self.test)
        let bad = NumPyArray(dtype: .uint8, shape: [Self.test.count], data: Self.test.labels.map { $0 == 3 ? 11 : $0 })
        try write([("x", x), ("y", bad)], to: dir + "/test.npz")
        #expect(throws: DataError.self) { try MNIST.load(directory: dir, split: .test) }
        try write([("x", x)], to: dir + "/test.npz")
        #expect(throws: DataError.self) { try MNIST.load(directory: dir, split: .test) }
        try writeAtomically(Array("not a zip".utf8), to: dir + "/junk.npz")
        #expect(throws: DataError.self) { try MNIST.load(directory: dir + "/junk.npz", split: .test) }
    }
}
