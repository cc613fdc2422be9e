import Formats
import NN

/// The fixed feature space of `fd`, precision and recall: a convolutional network with random
/// weights from a fixed seed, never trained. Nothing is downloaded and nothing is fitted to the
/// data, so the space is the same for every checkpoint of every run at one image size and channel
/// count. Random convolutional features keep local structure (edges, strokes, texture at several
/// scales) that pixel distances blur, and Naeem et al. 2020 found randomly initialised networks
/// serve fidelity/diversity metrics where no pretrained network fits the data; README's
/// "Evaluation" section checks the ranking against a classifier trained on Fashion-MNIST's labels.
///
///   x [N, C, S, S] → Conv 3×3 (C → 32) + LeakyReLU(0.2)
///                  → [Conv 4×4 s2 + LeakyReLU(0.2)]… (64, 128, 256, 256 channels) down to 4×4
///   features: each block's activation averaged over space, concatenated (32 + 64 + 128 + 256 [+ 256…]).
public final class FeatureSpace {
    /// Written beside every `fd`: figures from different versions do not compare.
    public static let version = "random-conv-v1"
    public let imageSize: Int
    public let channels: Int
    let layers: [Layer]
    /// Indices of the activations whose spatial means are the features.
    let taps: [Int]
    public let dimension: Int

    public init(imageSize: Int, channels: Int, seed: UInt64 = 0x5EED) {
        precondition(imageSize >= 8 && imageSize & (imageSize - 1) == 0, "the feature space takes power-of-two sides")
        self.imageSize = imageSize
        self.channels = channels
        var random = SeededRandom(seed: seed)
        var layers: [Layer] = [], taps: [Int] = [], widths: [Int] = []
        func add(_ conv: Conv2d) {
            // He initialisation for LeakyReLU(0.2): activations keep their scale through the blocks.
            let fanIn = Float(conv.inChannels * conv.kernel * conv.kernel)
            Initialization.normal(conv.weight.value, mean: 0, standardDeviation: (2 / (1.04 * fanIn)).squareRoot(), random: &random)
            conv.bias?.value.fill(0)
            layers.append(conv)
            layers.append(LeakyReLU(slope: 0.2, backend: .fast))
            taps.append(layers.count - 1)
            widths.append(conv.outChannels)
        }
        add(Conv2d(channels, 32, kernel: 3, stride: 1, padding: 1, bias: false, backend: .fast))
        var side = imageSize, width = 32
        while side > 4 {
            let next = min(width * 2, 256)
            add(Conv2d(width, next, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast))
            width = next
            side /= 2
        }
        for layer in layers { layer.isTraining = false; layer.needsInputGradient = false }
        self.layers = layers
        self.taps = taps
        dimension = widths.reduce(0, +)
    }

    /// images: N × C × S × S values in [-1, 1], plain NCHW → N × dimension features, row-major.
    public func features(_ images: [Float], batch: Int = 256) -> [Float] {
        let sample = channels * imageSize * imageSize
        let count = images.count / sample
        var out = [Float](repeating: 0, count: count * dimension)
        for start in stride(from: 0, to: count, by: batch) {
            let n = min(batch, count - start)
            var value = Tensor(shape: [n, channels, imageSize, imageSize], values: Array(images[start * sample..<(start + n) * sample]))
            var offset = 0
            for (index, layer) in layers.enumerated() {
                value = layer.forward(value)
                guard taps.contains(index) else { continue }
                let plain = value.plain()
                let width = plain.shape[1], plane = plain.shape[2] * plain.shape[3]
                for image in 0..<n {
                    for c in 0..<width {
                        let base = plain.data + (image * width + c) * plane
                        var sum: Float = 0
                        for p in 0..<plane { sum += base[p] }
                        out[(start + image) * dimension + offset + c] = sum / Float(plane)
                    }
                }
                offset += width
            }
        }
        return out
    }
}
