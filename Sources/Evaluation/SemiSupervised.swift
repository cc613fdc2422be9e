import Foundation
import Formats
import NN

/// FixMatch (Sohn et al. 2020) for the downstream CNN: a few labelled images and many unlabelled
/// ones. Each step the network labels a weakly augmented view of the unlabelled batch (a flip and
/// a shift of up to 2 pixels); where its largest probability reaches `threshold`, that class is the
/// target for a strongly augmented view (a flip, a shift of up to 4 pixels, `strong`'s operations,
/// a cutout of half the side). The labelled batch is trained as `train` trains it. As in FixMatch, the
/// learning rate decays as cos(7π·k / 16K) over the K steps, and the weights the classifier ends
/// with are their moving average.
public struct FixMatchRecipe: Sendable, Equatable {
    public var steps = 6000
    /// The weights' moving average's decay per step, at most (1 + k)/(10 + k) at step k (0: the
    /// last weights).
    public var averageDecay: Float = 0.999
    /// Unlabelled images per labelled image in a step (FixMatch's μ).
    public var unlabelledRatio = 2
    public var threshold: Float = 0.95
    /// `flexmatch`: each class's threshold scales with how many unlabelled images it already
    /// holds with confidence over `threshold` (FlexMatch's curriculum pseudo-labelling, Zhang et al.
    /// 2021), so that a class learned late (shirts) is not starved of targets by the fixed bar.
    public var thresholds = Thresholds.fixed
    /// The unlabelled loss's weight (FixMatch's λ_u).
    public var unlabelledWeight: Float = 1
    /// Distribution alignment (ReMixMatch, Berthelot et al. 2020): the weak view's probabilities
    /// times these class shares over the network's running mean prediction on unlabelled images,
    /// renormalised, before the threshold. With shares estimated from the unlabelled images
    /// (`ClassPrior.estimate`) it curbs FixMatch's drift to the labels' proportions where the
    /// folder's differ (nil: no alignment).
    public var alignment: [Float]?
    public var strong = StrongView.basic
    public init() {}

    /// The strong view's operations between its shift and its cutout: `basic`, contrast and
    /// brightness; `randaugment`, two of FixMatch's RandAugment pool (`RandAugment`).
    public enum StrongView: String, Sendable, Codable, CaseIterable {
        case basic, randaugment
    }

    public enum Thresholds: String, Sendable, Codable, CaseIterable {
        case fixed, flexmatch
    }
}

/// FlexMatch's class thresholds: each unlabelled image's latest class over the fixed threshold
/// (−1: none yet); class c's learning effect β_c is its count over the largest class's count, or
/// over the images not yet selected while they are more (the warm-up), and its threshold
/// τ · β_c / (2 − β_c) (the paper's convex mapping).
struct ClassThresholds {
    let threshold: Float
    private var selected: [Int]
    private var counts: [Int]
    private var unselected: Int

    init(threshold: Float, images: Int, classes: Int) {
        self.threshold = threshold
        selected = [Int](repeating: -1, count: images)
        counts = [Int](repeating: 0, count: classes)
        unselected = images
    }

    func threshold(of label: Int) -> Float {
        let effect = Float(counts[label]) / Float(max(counts.max()!, unselected, 1))
        return threshold * effect / (2 - effect)
    }

    mutating func record(image: Int, label: Int, confidence: Float) {
        guard confidence >= threshold, selected[image] != label else { return }
        if selected[image] >= 0 { counts[selected[image]] -= 1 } else { unselected -= 1 }
        selected[image] = label
        counts[label] += 1
    }
}

/// ReMixMatch's distribution alignment: a prediction p becomes p · target / mean, renormalised,
/// where mean is the network's running mean prediction on unlabelled batches. An image predicted
/// as the network predicts on average is given the target's shares.
struct DistributionAlignment {
    let target: [Float]
    private(set) var mean: [Float]
    private var batches = 0

    init(target: [Float]) {
        self.target = target
        mean = [Float](repeating: 1 / Float(target.count), count: target.count)
    }

    /// A moving average over about the last 128 batches, as ReMixMatch's, that starts at the first
    /// batch's mean rather than at uniform.
    mutating func record(_ predictions: [[Float]]) {
        let decay = min(Float(127) / 128, Float(batches) / Float(batches + 1))
        batches += 1
        for k in mean.indices {
            let batchMean = predictions.reduce(0) { $0 + $1[k] } / Float(predictions.count)
            mean[k] = decay * mean[k] + (1 - decay) * batchMean
        }
    }

    func align(_ p: [Float]) -> [Float] {
        let scaled = p.indices.map { p[$0] * target[$0] / max(mean[$0], 1e-6) }
        let total = scaled.reduce(0, +)
        return total > 0 ? scaled.map { $0 / total } : p
    }
}

extension DownstreamClassifier {
    /// Trains on `images` [N, C, S, S] with `labels`, and on `unlabelled` [M, C, S, S], all plain in
    /// [-1, 1]. `progress` hears (step, the fraction of the last unlabelled batch over the threshold).
    public func trainSemiSupervised(images: [Float], labels: [Int], unlabelled: [Float], fixMatch: FixMatchRecipe = FixMatchRecipe(),
                                    progress: (Int, Double) -> Void = { _, _ in }) {
        let sample = channels * imageSize * imageSize, unlabelledCount = unlabelled.count / sample
        precondition(!labels.isEmpty && images.count == labels.count * sample, "one label per image")
        precondition(unlabelledCount > 0, "FixMatch needs unlabelled images")
        let optimizer = Adam(parameters: network.parameters, learningRate: recipe.learningRate, beta1: 0.9, beta2: 0.999)
        var random = SeededRandom(seed: recipe.seed &+ 1)
        var labelledSource = Source(images: images, labels: labels)
        var unlabelledSource = Source(images: unlabelled, labels: [Int](repeating: -1, count: unlabelledCount))
        let labelledBatch = recipe.batch, unlabelledBatch = recipe.batch * fixMatch.unlabelledRatio
        let weak = Tensor(shape: [unlabelledBatch, channels, imageSize, imageSize])
        let combined = Tensor(shape: [labelledBatch + unlabelledBatch, channels, imageSize, imageSize])
        let gradient = Tensor(shape: [labelledBatch + unlabelledBatch, classes, 1, 1])
        let average = network.parameters.map { $0.value.clone() }
        var classThresholds = ClassThresholds(threshold: fixMatch.threshold, images: unlabelledCount, classes: classes)
        var unlabelledIndices = [Int](repeating: 0, count: unlabelledBatch)
        var alignment = fixMatch.alignment.map { DistributionAlignment(target: $0) }
        let randAugment = fixMatch.strong == .randaugment ? RandAugment(channels: channels, imageSize: imageSize) : nil
        network.isTraining = true
        for step in 0..<fixMatch.steps {
            optimizer.learningRate = recipe.learningRate * cosf(7 * .pi * Float(step) / (16 * Float(fixMatch.steps)))
            var rowLabels: [Int] = []
            for slot in 0..<labelledBatch {
                let index = labelledSource.next(&random)
                rowLabels.append(labels[index])
                augment(images, index: index, shift: recipe.shift, flip: false, into: combined.data + slot * sample, random: &random)
            }
            for slot in 0..<unlabelledBatch {
                let index = unlabelledSource.next(&random)
                unlabelledIndices[slot] = index
                augment(unlabelled, index: index, shift: 2, flip: random.nextUniform() < 0.5, into: weak.data + slot * sample, random: &random)
                augment(unlabelled, index: index, shift: 4, flip: random.nextUniform() < 0.5, into: combined.data + (labelledBatch + slot) * sample,
                        random: &random)
                strengthen(combined.data + (labelledBatch + slot) * sample, randAugment: randAugment, random: &random)
            }
            weak.markModified()
            combined.markModified()

            // Pseudo-labels from the weak view; no gradient flows through them.
            let weakLogits = network.forward(weak).plain()
            var confident = 0
            var readings: [(label: Int, confidence: Float)] = []
            let predictions = (0..<unlabelledBatch).map { slot in
                Loss.softmax(UnsafeBufferPointer(start: weakLogits.data + slot * classes, count: classes))
            }
            alignment?.record(predictions)
            for slot in 0..<unlabelledBatch {
                let probabilities = alignment?.align(predictions[slot]) ?? predictions[slot]
                let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
                let bar = fixMatch.thresholds == .flexmatch ? classThresholds.threshold(of: best) : fixMatch.threshold
                rowLabels.append(probabilities[best] >= bar ? best : -1)
                if probabilities[best] >= bar { confident += 1 }
                readings.append((best, probabilities[best]))
            }
            // After the batch's targets, as FlexMatch updates its counts after masking.
            for (slot, reading) in readings.enumerated() where fixMatch.thresholds == .flexmatch {
                classThresholds.record(image: unlabelledIndices[slot], label: reading.label, confidence: reading.confidence)
            }

            optimizer.zeroGradients()
            let logits = network.forward(combined).plain()
            gradient.data.update(repeating: 0, count: gradient.count)
            // Each part's mean over its own batch, as FixMatch's L_s + λ_u · L_u (masked rows count
            // in L_u's denominator).
            for (row, label) in rowLabels.enumerated() where label >= 0 {
                let scale = row < labelledBatch ? 1 / Float(labelledBatch) : fixMatch.unlabelledWeight / Float(unlabelledBatch)
                let probabilities = Loss.softmax(UnsafeBufferPointer(start: logits.data + row * classes, count: classes))
                for j in 0..<classes { gradient.data[row * classes + j] = scale * (probabilities[j] - (j == label ? 1 : 0)) }
            }
            gradient.markModified()
            _ = network.backward(gradient)
            optimizer.step()
            for (kept, parameter) in zip(average, network.parameters) {
                // TensorFlow's ExponentialMovingAverage with num_updates: a short run is not
                // averaged towards its initialisation.
                let a = kept.data, w = parameter.value.data, decay = min(fixMatch.averageDecay, Float(1 + step) / Float(10 + step))
                for i in 0..<kept.count { a[i] = decay * a[i] + (1 - decay) * w[i] }
            }
            progress(step, Double(confident) / Double(unlabelledBatch))
        }
        for (kept, parameter) in zip(average, network.parameters) { parameter.value.copy(from: kept) }
        network.isTraining = false
    }

    /// The strong view after its shift: `randAugment`'s operations, or (basic) contrast ×[0.5, 1.5]
    /// and brightness ±0.5 (of [-1, 1]'s range of 2), clipped; then a cutout square of half the
    /// side filled with 0 (mid-grey), as FixMatch's RandAugment + Cutout.
    func strengthen(_ image: UnsafeMutablePointer<Float>, randAugment: RandAugment?, random: inout SeededRandom) {
        if let randAugment {
            randAugment.apply(image, random: &random)
        } else {
            let length = channels * imageSize * imageSize
            let contrast = 0.5 + random.nextUniform(), brightness = random.nextUniform() - 0.5
            for i in 0..<length { image[i] = min(max(contrast * image[i] + brightness, -1), 1) }
        }
        let side = imageSize / 2, cx = random.nextInt(in: 0...imageSize - 1), cy = random.nextInt(in: 0...imageSize - 1)
        let plane = imageSize * imageSize
        for c in 0..<channels {
            for y in max(cy - side / 2, 0)..<min(cy + side / 2, imageSize) {
                for x in max(cx - side / 2, 0)..<min(cx + side / 2, imageSize) { image[c * plane + y * imageSize + x] = 0 }
            }
        }
    }
}
