/// Fully connected: y = x·Wᵀ + b.   input [N, in] → output [N, out]; weight [out, in], bias [out]
public final class Linear: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let inFeatures: Int, outFeatures: Int
    public var isTraining = true
    public var needsInputGradient = true
    public var computesParameterGradients = true
    private var input: Tensor?
    private var output: Tensor?
    private var inputGradient: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, name: String = "linear") {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(name: "\(name).weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? Parameter(name: "\(name).bias", shape: [outFeatures]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.shape.count == 2 && input.shape[1] == inFeatures, "Linear expects [N, \(inFeatures)], got \(input.shape)")
        self.input = input
        let batch = input.shape[0]
        let output = Tensor.reuse(self.output, shape: [batch, outFeatures])
        self.output = output
        for n in 0..<batch {
            for o in 0..<outFeatures {
                var sum = bias?.value[o] ?? 0
                for i in 0..<inFeatures { sum += input[n * inFeatures + i] * weight.value[o * inFeatures + i] }
                output[n * outFeatures + o] = sum
            }
        }
        return output
    }

    /// dW += dyᵀ·x,  db += Σₙ dy,  dx = dy·W
    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard let input else { preconditionFailure("backward before forward") }
        let batch = input.shape[0]
        if computesParameterGradients {
            for n in 0..<batch {
                for o in 0..<outFeatures {
                    let dy = outputGradient[n * outFeatures + o]
                    bias?.gradient[o] += dy
                    for i in 0..<inFeatures { weight.gradient[o * inFeatures + i] += dy * input[n * inFeatures + i] }
                }
            }
        }
        guard needsInputGradient else { return nil }
        let inputGradient = Tensor.reuse(self.inputGradient, shape: input.shape)
        self.inputGradient = inputGradient
        inputGradient.fill(0)
        for n in 0..<batch {
            for o in 0..<outFeatures {
                let dy = outputGradient[n * outFeatures + o]
                for i in 0..<inFeatures { inputGradient[n * inFeatures + i] += dy * weight.value[o * inFeatures + i] }
            }
        }
        return inputGradient
    }
}

/// [N, C, H, W] → [N, C·H·W] and back: a view, no copy.
public final class Flatten: StatelessLayer, Layer {
    private var inputShape: [Int] = []

    public func forward(_ input: Tensor) -> Tensor {
        inputShape = input.shape
        input.viewAs([input.shape[0], input.count / input.shape[0]])
        return input
    }

    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard needsInputGradient else { return nil }
        outputGradient.viewAs(inputShape)
        return outputGradient
    }
}
