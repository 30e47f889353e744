import Foundation
import ConvoyInterop

/// Where `--data PATH` finds a split, in this order:
/// - PATH is an `.npz` file: Keras's layout, `x_train`, `y_train`, `x_test`, `y_test`;
/// - PATH is a directory holding MNIST's file names (`train-images-idx3-ubyte[.gz]`, …; the
///   same names as Fashion-MNIST and KMNIST);
/// - a directory holding `train.npz` / `test.npz` with arrays `x` (N×28×28 uint8) and `y`;
/// - a directory holding exactly one IDX pair per split whose names contain `train` or
///   `test`/`t10k` and `images`/`labels` (EMNIST's `emnist-digits-train-images-idx3-ubyte`).
extension MNIST {
    enum Source: Equatable {
        case idx(images: String, labels: String)
        case npz(file: String, x: String, y: String)
    }

    static func source(_ path: String, split: Split) throws -> Source {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError("data \(path): not found (no such file or directory)")
        }
        if !isDirectory.boolValue {
            guard path.lowercased().hasSuffix(".npz") else {
                throw DataError("data \(path): not a directory of IDX files nor an .npz file")
            }
            return .npz(file: path, x: "x_\(split.rawValue)", y: "y_\(split.rawValue)")
        }
        let names = fileNames(split)
        if let images = existing(path, names.images), let labels = existing(path, names.labels) {
            return .idx(images: images, labels: labels)
        }
        let npz = FilePaths.join(path, "\(split.rawValue).npz")
        if FileManager.default.fileExists(atPath: npz) { return .npz(file: npz, x: "x", y: "y") }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let words = split == .train ? ["train"] : ["test", "t10k"]
        func one(_ kind: String) throws -> String {
            let matches = files.filter { name in
                let lower = name.lowercased()
                return lower.contains(kind) && lower.contains("idx") && words.contains { lower.contains($0) }
            }
            // `NAME` and `NAME.gz` side by side are one file (the gzipped one is read).
            let stems = Set(matches.map { $0.hasSuffix(".gz") ? String($0.dropLast(3)) : $0 }).sorted()
            guard stems.count == 1, let file = existing(path, stems[0]) else {
                throw DataError(
                    "data \(path): \(split.rawValue) \(kind) "
                        + (stems.isEmpty ? "not found" : "ambiguous (\(stems.count) candidates)")
                        + " (expected MNIST's names, \(split.rawValue).npz, or one IDX file whose name has "
                        + "\(words.joined(separator: "/")) and \(kind))"
                        + (stems.isEmpty ? "" : ": \(stems.map { peerText($0) }.joined(separator: ", "))"))
            }
            return file
        }
        return .idx(images: try one("images"), labels: try one("labels"))
    }

    /// `NAME.gz` or `NAME` in `directory`, or nil.
    private static func existing(_ directory: String, _ name: String) -> String? {
        let base = FilePaths.join(directory, name)
        return [base + ".gz", base].first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Images `x` (N×H×W uint8) and labels `y` (N integers) from an `.npz`, as IDX arrays.
    static func npzArrays(_ file: String, x: String, y: String) throws -> (IDXArray, IDXArray) {
        let arrays = try NumPyArchive.load(path: file)
        guard let images = arrays[x], let labels = arrays[y] else {
            throw DataError(
                "\(file): needs arrays \(x) and \(y); it holds \(arrays.keys.sorted().map { peerText($0) })")
        }
        guard images.dtype == .uint8, images.shape.count == 3 else {
            throw DataError("\(file): \(x) is \(images.dtype.rawValue) \(images.shape), expected uint8 N×H×W")
        }
        guard labels.shape.count == 1 else { throw DataError("\(file): \(y) has shape \(labels.shape), expected (N,)") }
        let values = try labels.integers()
        if let bad = values.firstIndex(where: { !(0...255).contains($0) }) {
            throw DataError("\(file): label \(values[bad]) at index \(bad) is outside 0...9")
        }
        return (
            IDXArray(dimensions: images.shape, bytes: images.data),
            IDXArray(dimensions: labels.shape, bytes: values.map { UInt8($0) })
        )
    }
}

extension IDXArray {
    init(dimensions: [Int], bytes: [UInt8]) {
        self.dimensions = dimensions
        self.bytes = bytes
    }
}
