import Foundation

/// A loss value and its gradient with respect to the logits (same shape as the logits).
public struct LossResult {
    public var value: Float
    public var gradient: Tensor
}

public enum Loss {
    /// Mean binary cross-entropy on logits, in the stable form
    ///   ℓ(x, t) = max(x, 0) − x·t + log(1 + e^−|x|),  dℓ/dx = (σ(x) − t) / N
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, target: Float, into gradient: Tensor? = nil) -> LossResult {
        binaryCrossEntropyWithLogits(logits, targets: { _ in target }, into: gradient)
    }

    /// The same with a target per logit (a batch mixing both classes).
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: [Float], into gradient: Tensor? = nil) -> LossResult {
        precondition(targets.count == logits.count, "one target per logit")
        return binaryCrossEntropyWithLogits(logits, targets: { targets[$0] }, into: gradient)
    }

    private static func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: (Int) -> Float, into gradient: Tensor?) -> LossResult {
        let gradient = Tensor.reuse(gradient, shape: logits.shape)
        let count = Float(logits.count)
        var total = 0.0
        for i in 0..<logits.count {
            let x = logits[i], target = targets(i)
            total += Double(max(x, 0) - x * target + log1pf(expf(-abs(x))))
            gradient[i] = (sigmoid(x) - target) / count
        }
        return LossResult(value: Float(total / Double(logits.count)), gradient: gradient)
    }

    /// Hinge loss for a discriminator: mean(max(0, 1 − t·x)) with t = +1 for real, −1 for fake;
    ///   dℓ/dx = −t / N where 1 − t·x > 0, else 0.
    public static func hinge(_ logits: Tensor, sign: Float, into gradient: Tensor? = nil) -> LossResult {
        let gradient = Tensor.reuse(gradient, shape: logits.shape)
        let count = Float(logits.count)
        var total = 0.0
        for i in 0..<logits.count {
            let margin = 1 - sign * logits[i]
            total += Double(max(margin, 0))
            gradient[i] = margin > 0 ? -sign / count : 0
        }
        return LossResult(value: Float(total / Double(logits.count)), gradient: gradient)
    }

    /// The hinge generator loss: −mean(x);  dℓ/dx = −1 / N.
    public static func hingeGenerator(_ logits: Tensor, into gradient: Tensor? = nil) -> LossResult {
        critic(logits, sign: 1, into: gradient)
    }

    /// A Wasserstein critic's term: −t·mean(x) with t = +1 for real, −1 for fake (the critic
    /// minimises mean(D(fake)) − mean(D(real)); the generator −mean(D(fake)), t = +1);
    ///   dℓ/dx = −t / N.
    public static func critic(_ logits: Tensor, sign: Float, into gradient: Tensor? = nil) -> LossResult {
        let gradient = Tensor.reuse(gradient, shape: logits.shape)
        var total = 0.0
        for i in 0..<logits.count { total += Double(logits[i]) }
        gradient.fill(-sign / Float(logits.count))
        return LossResult(value: Float(-Double(sign) * total / Double(logits.count)), gradient: gradient)
    }

    /// Feature matching (Salimans et al. 2016): the squared distance between the mean feature of
    /// a real batch and of a generated one, averaged over the F features:
    ///   ℓ = (1/F)·Σ_j (μ_fake,j − μ_real,j)²,  dℓ/df_ij = 2(μ_fake,j − μ_real,j) / (F·N)
    /// `features` [N, …] plain; `realMean` F values.
    public static func featureMatching(_ features: Tensor, realMean: [Float], into gradient: Tensor? = nil) -> LossResult {
        let batch = features.shape[0], width = features.count / batch
        precondition(features.format == nil && realMean.count == width, "feature matching takes plain features of the real mean's width")
        let fakeMean = meanRow(features)
        let gradient = Tensor.reuse(gradient, shape: features.shape)
        var total = 0.0
        for j in 0..<width {
            let difference = fakeMean[j] - realMean[j]
            total += Double(difference * difference)
            let value = 2 * difference / Float(width * batch)
            for n in 0..<batch { gradient.data[n * width + j] = value }
        }
        gradient.markModified()
        return LossResult(value: Float(total / Double(width)), gradient: gradient)
    }

    /// Softmax cross-entropy over the rows that have a label (a label below 0: none), times `weight`,
    /// averaged over the whole batch, so unlabelled rows dilute rather than vanish:
    ///   ℓ = −(w/N)·Σ_{i labelled} log softmax(x_i)[y_i],  dℓ/dx_ij = w·(softmax(x_i)_j − [j = y_i]) / N
    /// `logits` [N, K, …] plain (K classes per row); unlabelled rows get a zero gradient.
    public static func softmaxCrossEntropy(_ logits: Tensor, labels: [Int], weight: Float = 1, into gradient: Tensor? = nil) -> LossResult {
        let batch = logits.shape[0], classes = logits.count / batch
        precondition(labels.count == batch, "one label per row")
        let gradient = Tensor.reuse(gradient, shape: logits.shape)
        gradient.data.update(repeating: 0, count: gradient.count)
        var total = 0.0
        for n in 0..<batch where labels[n] >= 0 {
            let row = logits.data + n * classes
            let probabilities = softmax(UnsafeBufferPointer(start: row, count: classes))
            total -= Double(log(max(probabilities[labels[n]], .leastNormalMagnitude)))
            for j in 0..<classes {
                gradient.data[n * classes + j] = weight * (probabilities[j] - (j == labels[n] ? 1 : 0)) / Float(batch)
            }
        }
        return LossResult(value: weight * Float(total / Double(batch)), gradient: gradient)
    }

    /// Cross-entropy against a target distribution per row (`targets`: N·K values, each row summing
    /// to 1): −mean_n Σ_j t_nj·log p_nj, gradient (p − t)/N. One-hot rows give `labels:`'s value.
    public static func softmaxCrossEntropy(_ logits: Tensor, targets: [Float], into gradient: Tensor? = nil) -> LossResult {
        let batch = logits.shape[0], classes = logits.count / batch
        precondition(targets.count == batch * classes, "one target row per logit row")
        let gradient = Tensor.reuse(gradient, shape: logits.shape)
        var total = 0.0
        for n in 0..<batch {
            let probabilities = softmax(UnsafeBufferPointer(start: logits.data + n * classes, count: classes))
            for j in 0..<classes {
                let target = targets[n * classes + j]
                if target > 0 { total -= Double(target) * Double(log(max(probabilities[j], .leastNormalMagnitude))) }
                gradient.data[n * classes + j] = (probabilities[j] - target) / Float(batch)
            }
        }
        gradient.markModified()
        return LossResult(value: Float(total / Double(batch)), gradient: gradient)
    }

    /// softmax of one row of logits, computed stably (the largest logit subtracted first).
    public static func softmax(_ logits: UnsafeBufferPointer<Float>) -> [Float] {
        let largest = logits.max() ?? 0
        let exponentials = logits.map { expf($0 - largest) }
        let sum = exponentials.reduce(0, +)
        return exponentials.map { $0 / sum }
    }

    /// The mean over the batch of each feature: [N, …] plain → the row of F means.
    public static func meanRow(_ features: Tensor) -> [Float] {
        let batch = features.shape[0], width = features.count / batch
        var mean = [Float](repeating: 0, count: width)
        for n in 0..<batch { for j in 0..<width { mean[j] += features.data[n * width + j] } }
        return mean.map { $0 / Float(batch) }
    }

    /// Mean of σ(x): the discriminator's average output probability (D(x) in the DCGAN logs).
    public static func meanProbability(_ logits: Tensor) -> Float {
        var total = 0.0
        for i in 0..<logits.count { total += Double(sigmoid(logits[i])) }
        return Float(total / Double(logits.count))
    }
}
