import NN

/// A penalty on D's gradient with respect to its input images, g_i = ∇_{x_i} ΣD(x).
public enum GradientPenalty: Equatable, Sendable {
    /// (γ/2)·mean_i ‖g_i‖²: R1 (Mescheder et al. 2018) at real images.
    case squaredNorm(weight: Float)
    /// λ·mean_i (‖g_i‖ − 1)²: WGAN-GP (Gulrajani et al. 2017) between real and fake images, DRAGAN
    /// (Kodali et al. 2017) around real ones.
    case unitNorm(weight: Float)

    /// The penalty of the per-image gradients `g` [N, …] (plain), and ∂P/∂g into `direction`.
    public func evaluate(_ g: Tensor, direction: Tensor) -> Float {
        let batch = g.shape[0], size = g.count / batch
        direction.reshape(to: g.shape)
        var total = 0.0
        for n in 0..<batch {
            let row = g.data + n * size, out = direction.data + n * size
            var squares: Float = 0
            for i in 0..<size { squares += row[i] * row[i] }
            let scale: Float
            switch self {
            case .squaredNorm(let gamma):
                total += Double(gamma / 2 * squares)
                scale = gamma / Float(batch)
            case .unitNorm(let lambda):
                let norm = squares.squareRoot()
                total += Double(lambda * (norm - 1) * (norm - 1))
                scale = norm > 0 ? 2 * lambda * (norm - 1) / (norm * Float(batch)) : 0
            }
            for i in 0..<size { out[i] = scale * row[i] }
        }
        direction.markModified()
        return Float(total / Double(batch))
    }
}

/// Buffers for `Discriminator.accumulatePenaltyGradient`, kept by the caller between steps.
public final class PenaltyScratch {
    var ones = Tensor(shape: [1])
    var gradient = Tensor(shape: [1])
    var direction = Tensor(shape: [1])
    var shifted = Tensor(shape: [1])
    public init() {}
}

extension Discriminator {
    /// The largest pixel change of the finite difference below. With the activation pattern
    /// frozen a BatchNorm-free D is linear in x, and the difference is exact for any step; a large
    /// one keeps fp32 rounding small. BatchNorm adds an O(step²) error.
    public static let penaltyStep: Float = 1e-2

    /// Adds ∇_θ P to D's parameter gradients, where P = penalty(∇ₓ ΣD(x)) at the images `x`
    /// (plain [N, C, S, S]; a projection discriminator scores them with `classes`), and returns P.
    ///
    /// ∇_θ P = (∂²ΣD/∂θ∂x)·v with v = ∂P/∂g, a Hessian-vector product, and
    ///   (∂²ΣD/∂θ∂x)·v = (∇_θ ΣD(x + εv) − ∇_θ ΣD(x − εv)) / 2ε + O(ε²),
    /// two ordinary backward passes. We take this instead of double back-propagation because it
    /// needs no second-order code in any layer: every layer, fast kernels included, is reused as it
    /// is. The shifted passes keep the first pass's LeakyReLU slopes, BatchNorm batch statistics'
    /// running copies and dropout masks, so they differentiate the same function double
    /// back-propagation would (the activation pattern fixed, as autograd treats it); with that
    /// pattern fixed, D without BatchNorm is linear in x and the difference is exact up to rounding.
    /// The cost: three forward and three backward passes. Checked against finite differences of P
    /// itself in the tests.
    @discardableResult
    public func accumulatePenaltyGradient(at x: Tensor, classes: [Int]? = nil, penalty: GradientPenalty, scratch: PenaltyScratch) -> Float {
        let savedParameterGradients = computesParameterGradients, savedInputGradient = needsInputGradient
        freezesRunningStatistics = true
        defer {
            freezesRunningStatistics = false
            reusesDropoutMask = false
            freezesActivationPattern = false
            computesParameterGradients = savedParameterGradients
            needsInputGradient = savedInputGradient
        }

        // g = ∇ₓ ΣD(x): one backward pass to the images, no weight gradients.
        computesParameterGradients = false
        needsInputGradient = true
        let logits = forward(x, classes: classes)
        scratch.ones.reshape(to: logits.shape)
        scratch.ones.fill(1)
        var plain: Tensor? = nil
        let g = backward(scratch.ones)!.converted(toPlainInto: &plain)
        scratch.gradient.copy(from: g)
        let value = penalty.evaluate(scratch.gradient, direction: scratch.direction)

        var largest: Float = 0
        for i in 0..<scratch.direction.count { largest = max(largest, abs(scratch.direction.data[i])) }
        guard largest > 0 else { return value }
        let epsilon = Discriminator.penaltyStep / largest

        // The two shifted passes, with the same function (statistics, dropout masks) as the first.
        computesParameterGradients = true
        needsInputGradient = false
        reusesDropoutMask = true
        freezesActivationPattern = true
        scratch.shifted.reshape(to: x.shape)
        for sign: Float in [1, -1] {
            for i in 0..<x.count { scratch.shifted.data[i] = x.data[i] + sign * epsilon * scratch.direction.data[i] }
            scratch.shifted.markModified()
            let shiftedLogits = forward(scratch.shifted, classes: classes)
            scratch.ones.reshape(to: shiftedLogits.shape)
            scratch.ones.fill(sign / (2 * epsilon))
            _ = backward(scratch.ones)
        }
        return value
    }
}
