import Foundation
import Formats
import NN

/// The classifier two-sample test (Lopez-Paz & Oquab 2017; the DCGAN lineage's "can a fresh
/// network tell them apart"): a small CNN learns to tell real images (label 1) from synthetic
/// ones (label 0) on one half of each set and is scored on the other half. 0.5 is
/// indistinguishable; 1.0 means every held-out fake is caught. Recipe, seed and sizes are fixed
/// so figures compare across checkpoints and runs.
///
/// Every image it sees carries Gaussian noise (σ 0.6 on the [-1, 1] scale), the instance-noise
/// idea turned to measurement: without it a 6-epoch CNN catches 99–100% of the fakes from every
/// Fashion-MNIST generator we have, good or bad, because pixel-level tells (slight blur, stray
/// grey) are easy; with it the accuracy falls from 0.996 (an early checkpoint) to 0.81 (the
/// finished run) in the order a labelled yardstick gives (README, Evaluation).
///
///   x [N, C, S, S] → Conv 4×4 s2 (C → 16) + LeakyReLU(0.2)
///                  → [Conv 4×4 s2 + BatchNorm + LeakyReLU(0.2)]… (×2 channels) down to 4×4
///                  → Conv 4×4 → one logit [N, 1, 1, 1]
public final class TwoSampleClassifier {
    public struct Recipe: Sendable, Equatable {
        public var width = 16
        public var epochs = 6
        /// Images per step, half real and half synthetic.
        public var batch = 64
        public var learningRate: Float = 2e-4
        /// Standard deviation of Gaussian noise added to every image the classifier sees.
        public var noise: Float = 0.6
        public var seed: UInt64 = 0x2_5A3D
        public init() {}
    }

    public let imageSize: Int
    public let channels: Int
    let network: Sequential
    let noise: Float
    let seed: UInt64

    public init(imageSize: Int, channels: Int, recipe: Recipe = Recipe()) {
        self.imageSize = imageSize
        self.channels = channels
        noise = recipe.noise
        seed = recipe.seed
        var (layers, width) = TwoSampleClassifier.trunk(channels: channels, imageSize: imageSize, width: recipe.width)
        layers.append(Conv2d(width, 1, kernel: 4, stride: 1, padding: 0, bias: false, backend: .fast))
        network = Sequential(layers)
        network.needsInputGradient = false
        var random = SeededRandom(seed: recipe.seed)
        Initialization.dcgan(network.layers, random: &random)
    }

    /// A DCGAN discriminator's trunk: Conv 4×4 s2 (→ width) + LeakyReLU(0.2), then [Conv 4×4 s2 +
    /// BatchNorm + LeakyReLU] until the side is 4; returns the layers and their output channels.
    /// `depth` adds that many [Conv 3×3 s1 + BatchNorm + LeakyReLU] at each side after the first
    /// downsampling (a VGG-style stage: more layers, the same resolutions). Layers are named by
    /// their index, as in a PyTorch `nn.Sequential` (`3.weight`), so a saved classifier's tensor
    /// names are unique.
    static func trunk(channels: Int, imageSize: Int, width: Int, depth: Int = 0) -> (layers: [Layer], width: Int) {
        var layers: [Layer] = [Conv2d(channels, width, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast, name: "0"),
                               LeakyReLU(slope: 0.2, backend: .fast)]
        func stage(_ width: Int) {
            for _ in 0..<depth {
                layers += [Conv2d(width, width, kernel: 3, stride: 1, padding: 1, bias: false, backend: .fast, name: "\(layers.count)"),
                           BatchNorm2d(width, backend: .fast, name: "\(layers.count + 1)"), LeakyReLU(slope: 0.2, backend: .fast)]
            }
        }
        stage(width)
        var side = imageSize / 2, width = width
        while side > 4 {
            layers += [Conv2d(width, width * 2, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast, name: "\(layers.count)"),
                       BatchNorm2d(width * 2, backend: .fast, name: "\(layers.count + 1)"), LeakyReLU(slope: 0.2, backend: .fast)]
            width *= 2
            side /= 2
            stage(width)
        }
        return (layers, width)
    }

    /// Trains on real [Nr, C, S, S] (label 1) and synthetic [Nf, C, S, S] (label 0), both plain NCHW.
    public func train(real: [Float], synthetic: [Float], recipe: Recipe = Recipe()) {
        let sample = channels * imageSize * imageSize
        let realCount = real.count / sample, syntheticCount = synthetic.count / sample
        let perSide = recipe.batch / 2
        let steps = min(realCount, syntheticCount) / perSide
        precondition(steps >= 1, "the two-sample test needs at least \(perSide) images of each kind")
        let optimizer = Adam(parameters: network.parameters, learningRate: recipe.learningRate, beta1: 0.5)
        var random = SeededRandom(seed: recipe.seed &+ 1)
        let targets = [Float](repeating: 1, count: perSide) + [Float](repeating: 0, count: perSide)
        network.isTraining = true
        for _ in 0..<recipe.epochs {
            let realOrder = random.permutation(realCount), syntheticOrder = random.permutation(syntheticCount)
            for step in 0..<steps {
                var values: [Float] = []
                values.reserveCapacity(recipe.batch * sample)
                for i in realOrder[step * perSide..<(step + 1) * perSide] { values += real[i * sample..<(i + 1) * sample] }
                for i in syntheticOrder[step * perSide..<(step + 1) * perSide] { values += synthetic[i * sample..<(i + 1) * sample] }
                addNoise(&values, random: &random)
                optimizer.zeroGradients()
                let logits = network.forward(Tensor(shape: [recipe.batch, channels, imageSize, imageSize], values: values)).plain()
                _ = network.backward(Loss.binaryCrossEntropyWithLogits(logits, targets: targets).gradient)
                optimizer.step()
            }
        }
        network.isTraining = false
    }

    /// Logits (higher: more real) of images [N, C, S, S], in evaluation mode.
    public func scores(_ images: [Float], batch: Int = 256) -> [Float] {
        let sample = channels * imageSize * imageSize
        let count = images.count / sample
        var out: [Float] = []
        out.reserveCapacity(count)
        var random = SeededRandom(seed: seed &+ 2)
        for start in stride(from: 0, to: count, by: batch) {
            let n = min(batch, count - start)
            var values = Array(images[start * sample..<(start + n) * sample])
            addNoise(&values, random: &random)
            out += network.forward(Tensor(shape: [n, channels, imageSize, imageSize], values: values)).values
        }
        return out
    }

    private func addNoise(_ values: inout [Float], random: inout SeededRandom) {
        guard noise > 0 else { return }
        for i in values.indices { values[i] += noise * random.nextNormal() }
    }
}

/// What the two-sample test found on the held-out halves.
public struct TwoSampleOutcome {
    /// Held-out accuracy, real and synthetic halves weighted equally.
    public var accuracy: Double
    /// Held-out binary cross-entropy (finer-grained than accuracy near 1).
    public var loss: Double
    /// Logits of the held-out synthetic images, in their order (higher: more convincing).
    public var syntheticScores: [Float]
    /// Indices of the held-out synthetic images into the synthetic set given.
    public var syntheticIndices: Range<Int>
    public var classifier: TwoSampleClassifier

    /// Splits each set in halves, trains on the first halves, scores the second.
    public static func run(real: [Float], synthetic: [Float], imageSize: Int, channels: Int,
                           recipe: TwoSampleClassifier.Recipe = .init()) -> TwoSampleOutcome {
        let sample = channels * imageSize * imageSize
        let realHalf = real.count / sample / 2, syntheticHalf = synthetic.count / sample / 2
        let classifier = TwoSampleClassifier(imageSize: imageSize, channels: channels, recipe: recipe)
        classifier.train(real: Array(real[0..<realHalf * sample]), synthetic: Array(synthetic[0..<syntheticHalf * sample]), recipe: recipe)
        let realScores = classifier.scores(Array(real[realHalf * sample..<2 * realHalf * sample]))
        let syntheticScores = classifier.scores(Array(synthetic[syntheticHalf * sample..<2 * syntheticHalf * sample]))
        func softplus(_ x: Float) -> Double { Double(max(x, 0) + log1pf(expf(-abs(x)))) }
        let realCorrect = Double(realScores.filter { $0 > 0 }.count) / Double(realScores.count)
        let syntheticCorrect = Double(syntheticScores.filter { $0 <= 0 }.count) / Double(syntheticScores.count)
        // BCE: real −log σ(x) = softplus(−x); synthetic −log(1 − σ(x)) = softplus(x).
        let loss = (realScores.reduce(0) { $0 + softplus(-$1) } / Double(realScores.count)
                    + syntheticScores.reduce(0) { $0 + softplus($1) } / Double(syntheticScores.count)) / 2
        return TwoSampleOutcome(accuracy: (realCorrect + syntheticCorrect) / 2, loss: loss, syntheticScores: syntheticScores,
                                syntheticIndices: syntheticHalf..<2 * syntheticHalf, classifier: classifier)
    }
}
