import Formats

/// Inverted dropout: in training each element is zeroed with probability p and the rest scaled
/// by 1/(1 − p); in evaluation it is the identity. The mask comes from a seeded generator.
public final class Dropout: StatelessLayer, Layer {
    public let probability: Float
    public var random: SeededRandom
    /// True while the same batch is passed again (a gradient penalty's extra passes): the last
    /// mask is applied again instead of a new one drawn.
    public var reusesMask = false
    private var mask: Tensor?
    private var output: Tensor?
    private var inputGradient: Tensor?
    private var gradientScratch: Tensor?

    public init(probability: Float, seed: UInt64 = 0) {
        precondition((0..<1).contains(probability), "dropout probability must be in [0, 1)")
        self.probability = probability
        random = SeededRandom(seed: seed)
    }

    public func forward(_ input: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { mask = nil; return input }
        let output = Tensor.reuse(self.output, shape: input.shape, format: input.format)
        self.output = output
        if reusesMask, let mask, mask.shape == input.shape, mask.format == input.format {
            for i in 0..<input.count { output[i] = input[i] * mask[i] }
            return output
        }
        let mask = Tensor.reuse(self.mask, shape: input.shape, format: input.format)
        self.mask = mask
        let keep = 1 / (1 - probability)
        for i in 0..<input.count {
            mask[i] = random.nextUniform() < probability ? 0 : keep
            output[i] = input[i] * mask[i]
        }
        return output
    }

    /// dx = dy·mask
    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard needsInputGradient else { return nil }
        guard let mask else { return outputGradient }
        let gradient = outputGradient.converted(to: mask.format, scratch: &gradientScratch)
        let inputGradient = Tensor.reuse(self.inputGradient, shape: mask.shape, format: mask.format)
        self.inputGradient = inputGradient
        for i in 0..<gradient.count { inputGradient[i] = gradient[i] * mask[i] }
        return inputGradient
    }
}
