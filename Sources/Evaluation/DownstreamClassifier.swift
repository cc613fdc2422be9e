import Foundation
import Formats
import NN

/// The fixed small CNN of the downstream-utility report: does a synthetic set help a classifier?
/// Conv 4×4 s2 (→ width) + LeakyReLU, then [Conv 4×4 s2 + BatchNorm + LeakyReLU] down to 4×4,
/// then Conv 4×4 to K class logits. Adam (lr 1e-3, β 0.9/0.999; `schedule`), batches of 64, random shifts of
/// up to 2 pixels (edges repeated), and a fixed budget: `max(minimumSteps, epochs passes)` steps, so a small
/// training set is not under-trained and a large one is seen `epochs` times.
public final class DownstreamClassifier {
    public struct Recipe: Sendable, Equatable {
        public var width = 32
        /// Extra [Conv 3×3 + BatchNorm + LeakyReLU] layers at each side (0: the fixed CNN).
        public var depth = 0
        public var batch = 64
        public var epochs = 20
        public var minimumSteps = 1500
        public var learningRate: Float = 1e-3
        public var schedule = Schedule.constant
        public var shift = 2
        public var seed: UInt64 = 0xC1A5
        public init() {}

        public func steps(for count: Int) -> Int { max(minimumSteps, (epochs * count + batch - 1) / batch) }

        /// Step k of K's learning rate.
        public func learningRate(step: Int, of steps: Int) -> Float {
            switch schedule {
            case .constant: learningRate
            case .cosine: learningRate * 0.5 * (1 + cosf(.pi * Float(step) / Float(steps)))
            }
        }
    }

    /// The learning rate over the steps: constant, or cosine from `learningRate` to 0 (Loshchilov &
    /// Hutter 2017, without restarts). At a constant rate the classifier ends wherever the last
    /// steps happen to take it; decayed, it settles, so the same set measures the same.
    public enum Schedule: String, Sendable, Codable, CaseIterable {
        case constant, cosine
    }

    public let imageSize: Int
    public let channels: Int
    public let classes: Int
    /// Layers named by index (`3.weight`), so the network saves as it is (`label --save-labeller`).
    public let network: Sequential
    public let recipe: Recipe

    public init(imageSize: Int, channels: Int, classes: Int, recipe: Recipe = Recipe()) {
        self.imageSize = imageSize
        self.channels = channels
        self.classes = classes
        self.recipe = recipe
        var (layers, width) = TwoSampleClassifier.trunk(channels: channels, imageSize: imageSize, width: recipe.width, depth: recipe.depth)
        layers.append(Conv2d(width, classes, kernel: 4, stride: 1, padding: 0, bias: true, backend: .fast, name: "\(layers.count)"))
        network = Sequential(layers)
        network.needsInputGradient = false
        var random = SeededRandom(seed: recipe.seed)
        Initialization.dcgan(network.layers, random: &random)
    }

    /// Trains on images [N, C, S, S] plain in [-1, 1] with their class indices. With `mixedWith`,
    /// `share` of every batch comes from those images and the rest from these, so a small real set
    /// is not drowned by a large synthetic one (the steps follow the two sets' total). A set's
    /// `targets` (K probabilities per image: soft labels, such as a teacher's) replace its one-hot
    /// labels in the loss; the shifts and the order are the same either way.
    public func train(images: [Float], labels: [Int], targets: [Float]? = nil, mixedWith other: (images: [Float], labels: [Int])? = nil,
                      mixedTargets: [Float]? = nil, share: Double = 0.5) {
        let sample = channels * imageSize * imageSize
        precondition(!labels.isEmpty && images.count == labels.count * sample, "one label per image")
        precondition(targets.map { $0.count == labels.count * classes } ?? true, "K targets per image")
        precondition(mixedTargets.map { $0.count == (other?.labels.count ?? 0) * classes } ?? true, "K targets per mixed image")
        let optimizer = Adam(parameters: network.parameters, learningRate: recipe.learningRate, beta1: 0.9, beta2: 0.999)
        var random = SeededRandom(seed: recipe.seed &+ 1)
        var sources = [Source(images: images, labels: labels, targets: targets)]
        if let other, !other.labels.isEmpty { sources.append(Source(images: other.images, labels: other.labels, targets: mixedTargets)) }
        let soft = sources.contains { $0.targets != nil }
        let input = Tensor(shape: [recipe.batch, channels, imageSize, imageSize])
        var gradient: Tensor?
        network.isTraining = true
        let steps = recipe.steps(for: sources.reduce(0) { $0 + $1.labels.count })
        for step in 0..<steps {
            optimizer.learningRate = recipe.learningRate(step: step, of: steps)
            var batchLabels: [Int] = [], batchTargets: [Float] = []
            for slot in 0..<recipe.batch {
                let source = sources.count > 1 && Double(slot) >= Double(recipe.batch) * (1 - share) ? 1 : 0
                let index = sources[source].next(&random)
                batchLabels.append(sources[source].labels[index])
                if soft { batchTargets += sources[source].target(index, classes: classes) }
                augment(sources[source].images, index: index, shift: recipe.shift, flip: false, into: input.data + slot * sample, random: &random)
            }
            input.markModified()
            optimizer.zeroGradients()
            let logits = network.forward(input).plain()
            let loss = soft ? Loss.softmaxCrossEntropy(logits, targets: batchTargets, into: gradient)
                : Loss.softmaxCrossEntropy(logits, labels: batchLabels, into: gradient)
            gradient = loss.gradient
            _ = network.backward(loss.gradient)
            optimizer.step()
        }
        network.isTraining = false
    }

    /// A training set visited in a fresh random order each pass.
    struct Source {
        let images: [Float]
        let labels: [Int]
        let targets: [Float]?
        private var order: [Int] = []
        private var position = 0

        init(images: [Float], labels: [Int], targets: [Float]? = nil) {
            self.images = images
            self.labels = labels
            self.targets = targets
        }

        /// Image `index`'s target row: its soft target, or its label one-hot.
        func target(_ index: Int, classes: Int) -> [Float] {
            if let targets { return Array(targets[index * classes..<(index + 1) * classes]) }
            var row = [Float](repeating: 0, count: classes)
            row[labels[index]] = 1
            return row
        }

        mutating func next(_ random: inout SeededRandom) -> Int {
            if position == order.count {
                order = random.permutation(labels.count)
                position = 0
            }
            position += 1
            return order[position - 1]
        }
    }

    /// Image `index` flipped left–right when `flip`, moved by up to `shift` pixels each way (the
    /// uncovered border repeats the edge pixels).
    func augment(_ images: [Float], index: Int, shift: Int, flip: Bool, into target: UnsafeMutablePointer<Float>, random: inout SeededRandom) {
        let dx = random.nextInt(in: -shift...shift), dy = random.nextInt(in: -shift...shift)
        let plane = imageSize * imageSize, base = index * channels * plane
        for c in 0..<channels {
            for y in 0..<imageSize {
                for x in 0..<imageSize {
                    let sy = min(max(y - dy, 0), imageSize - 1), shiftedX = min(max(x - dx, 0), imageSize - 1)
                    let sx = flip ? imageSize - 1 - shiftedX : shiftedX
                    target[c * plane + y * imageSize + x] = images[base + c * plane + sy * imageSize + sx]
                }
            }
        }
    }

    /// Each image's class probabilities (evaluation mode), rows of K.
    public func probabilities(_ images: [Float], batch: Int = 256) -> [[Float]] {
        let sample = channels * imageSize * imageSize, count = images.count / sample
        var rows: [[Float]] = []
        for start in stride(from: 0, to: count, by: batch) {
            let n = min(batch, count - start)
            let logits = network.forward(Tensor(shape: [n, channels, imageSize, imageSize],
                                                values: Array(images[start * sample..<(start + n) * sample]))).plain()
            for row in 0..<n { rows.append(Loss.softmax(UnsafeBufferPointer(start: logits.data + row * classes, count: classes))) }
        }
        return rows
    }

    /// The predicted class of each image (evaluation mode).
    public func predict(_ images: [Float], batch: Int = 256) -> [Int] {
        probabilities(images, batch: batch).map { p in p.indices.max { p[$0] < p[$1] }! }
    }

    /// The fraction of `images` predicted as their `labels`.
    public func accuracy(images: [Float], labels: [Int]) -> Double {
        let predicted = predict(images)
        return Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1))
    }
}
