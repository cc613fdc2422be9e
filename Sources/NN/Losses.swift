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
        let gradient = Tensor.reuse(gradient, shape: logits.shape)
        var total = 0.0
        for i in 0..<logits.count { total += Double(logits[i]) }
        gradient.fill(-1 / Float(logits.count))
        return LossResult(value: Float(-total / Double(logits.count)), gradient: gradient)
    }

    /// Mean of σ(x): the discriminator's average output probability (D(x) in the DCGAN logs).
    public static func meanProbability(_ logits: Tensor) -> Float {
        var total = 0.0
        for i in 0..<logits.count { total += Double(sigmoid(logits[i])) }
        return Float(total / Double(logits.count))
    }
}
