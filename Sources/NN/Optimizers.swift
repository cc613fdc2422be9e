import Foundation

/// Updates parameters from their gradients. Optimizer state is per parameter, in the same order.
public protocol Optimizer: AnyObject {
    var parameters: [Parameter] { get }
    func step()
}

extension Optimizer {
    public func zeroGradients() { for parameter in parameters { parameter.zeroGradient() } }
}

/// Adam with PyTorch's update (torch.optim.Adam, L2 weight decay added to the gradient):
///   g ← g + λ·p;  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
///   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    /// First and second moments, one per parameter (checkpointed).
    public let firstMoments: [Tensor]
    public let secondMoments: [Tensor]
    public var stepCount = 0

    public init(parameters: [Parameter], learningRate: Float = 2e-4, beta1: Float = 0.5, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoments = parameters.map { Tensor(shape: $0.value.shape) }
        secondMoments = parameters.map { Tensor(shape: $0.value.shape) }
    }

    public func step() {
        stepCount += 1
        let t = Float(stepCount)
        let correction1 = 1 - powf(beta1, t), correction2 = 1 - powf(beta2, t)
        let stepSize = learningRate / correction1, rootCorrection2 = correction2.squareRoot()
        for (index, parameter) in parameters.enumerated() {
            let p = parameter.value.data, g = parameter.gradient.data
            let m = firstMoments[index].data, v = secondMoments[index].data
            let count = parameter.value.count, vectorEnd = count - count % 16
            // 16 lanes at a time (the same arithmetic as the scalar tail, element for element);
            // large tensors in two halves on two threads (the update is memory-bound).
            let halves = vectorEnd >= 1 << 16 ? 2 : 1, half = (vectorEnd / 16 + halves - 1) / halves * 16
            DispatchQueue.concurrentPerform(iterations: halves) { part in
                for i in stride(from: part * half, to: min(vectorEnd, part * half + half), by: 16) {
                    let pv = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
                    let gradient = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self) + weightDecay * pv
                    let mv = beta1 * UnsafeRawPointer(m + i).loadUnaligned(as: SIMD16<Float>.self) + (1 - beta1) * gradient
                    let vv = beta2 * UnsafeRawPointer(v + i).loadUnaligned(as: SIMD16<Float>.self) + (1 - beta2) * gradient * gradient
                    UnsafeMutableRawPointer(m + i).storeBytes(of: mv, as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(v + i).storeBytes(of: vv, as: SIMD16<Float>.self)
                    let updated = pv - stepSize * mv / (vv.squareRoot() / rootCorrection2 + epsilon)
                    UnsafeMutableRawPointer(p + i).storeBytes(of: updated, as: SIMD16<Float>.self)
                }
            }
            for i in vectorEnd..<count {
                let gradient = g[i] + weightDecay * p[i]
                m[i] = beta1 * m[i] + (1 - beta1) * gradient
                v[i] = beta2 * v[i] + (1 - beta2) * gradient * gradient
                p[i] -= stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + epsilon)
            }
            parameter.value.markModified()
        }
    }
}

/// SGD with momentum and L2 weight decay, as torch.optim.SGD (dampening 0, not Nesterov):
///   g ← g + λ·p;  b ← μb + g (b = g on the first step);  p ← p − lr·b
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public let momentumBuffers: [Tensor]
    private var started = false

    public init(parameters: [Parameter], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        momentumBuffers = parameters.map { Tensor(shape: $0.value.shape) }
    }

    public func step() {
        for (index, parameter) in parameters.enumerated() {
            let p = parameter.value.data, g = parameter.gradient.data, b = momentumBuffers[index].data
            for i in 0..<parameter.value.count {
                var gradient = g[i] + weightDecay * p[i]
                if momentum != 0 {
                    b[i] = started ? momentum * b[i] + gradient : gradient
                    gradient = b[i]
                }
                p[i] -= learningRate * gradient
            }
            parameter.value.markModified()
        }
        started = true
    }
}
