/// The model zoo (docs/SPEC.md §9, docs/MODELS.md). LeNet-5, conv1d and simplecnn train on
/// MNIST; AlexNet and VGG16 are here for shape and parameter summaries.
public enum ModelZoo {
    public static let trainable = ["lenet5", "conv1d", "simplecnn"]
    public static let all = trainable + ["alexnet", "vgg16"]

    public static func spec(named name: String) throws -> NetworkSpec {
        switch name.lowercased() {
        case "lenet5", "lenet", "lenet-5": return lenet5
        case "conv1d": return conv1d
        case "simplecnn": return simpleCNN
        case "alexnet": return alexNet
        case "vgg16": return vgg16
        default:
            throw ShapeError("unknown model '\(name)'; known models: \(all.joined(separator: ", "))")
        }
    }

    /// docs/SPEC.md §10 vector 8: 61,706 parameters.
    public static let lenet5 = NetworkSpec(
        name: "lenet5", inputShape: Shape(1, 28, 28),
        layers: [
            .conv2d(6, kernel: 5, padding: 2), .relu, .maxPool(2),
            .conv2d(16, kernel: 5), .relu, .maxPool(2),
            .flatten, .dense(outputs: 120), .relu, .dense(outputs: 84), .relu, .dense(outputs: 10),
        ])

    /// A 1-D network: MNIST images as 784-long one-channel signals, strided
    /// Conv1d layers, and a Dense output layer only.
    public static let conv1d = NetworkSpec(
        name: "conv1d", inputShape: Shape(1, 784),
        layers: [
            .conv1d(outChannels: 16, kernel: 5, stride: 2, padding: 2), .relu,
            .conv1d(outChannels: 32, kernel: 5, stride: 2, padding: 2), .relu,
            .conv1d(outChannels: 32, kernel: 5, stride: 2, padding: 2), .relu,
            .flatten, .dense(outputs: 10),
        ])

    /// A small CNN: one 3×3 convolution, pooling, a Dense classifier.
    public static let simpleCNN = NetworkSpec(
        name: "simplecnn", inputShape: Shape(1, 28, 28),
        layers: [
            .conv2d(8, kernel: 3, padding: 1), .relu, .maxPool(2),
            .flatten, .dense(outputs: 10),
        ])

    /// Single-tower AlexNet in torchvision's layout (224×224×3, 1000 classes): 61,100,840.
    public static let alexNet = NetworkSpec(
        name: "alexnet", inputShape: Shape(3, 224, 224),
        layers: [
            .conv2d(64, kernel: 11, stride: 4, padding: 2), .relu, .maxPool(3, stride: 2),
            .conv2d(192, kernel: 5, padding: 2), .relu, .maxPool(3, stride: 2),
            .conv2d(384, kernel: 3, padding: 1), .relu,
            .conv2d(256, kernel: 3, padding: 1), .relu,
            .conv2d(256, kernel: 3, padding: 1), .relu, .maxPool(3, stride: 2),
            .flatten, .dense(outputs: 4096), .relu, .dense(outputs: 4096), .relu, .dense(outputs: 1000),
        ])

    /// VGG16 (configuration D, 224×224×3, 1000 classes): 138,357,544.
    public static let vgg16: NetworkSpec = {
        var layers: [LayerSpec] = []
        for (channels, repeats) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)] {
            for _ in 0..<repeats { layers += [.conv2d(channels, kernel: 3, padding: 1), .relu] }
            layers.append(.maxPool(2))
        }
        layers += [.flatten, .dense(outputs: 4096), .relu, .dense(outputs: 4096), .relu, .dense(outputs: 1000)]
        return NetworkSpec(name: "vgg16", inputShape: Shape(3, 224, 224), layers: layers)
    }()
}
