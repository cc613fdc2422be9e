import Formats

/// DCGAN's initialisation (Radford et al.): conv weights N(0, 0.02), BatchNorm scale N(1, 0.02),
/// biases zero; from a seeded generator so runs are reproducible.
public enum Initialization {
    public static func normal(_ tensor: Tensor, mean: Float, standardDeviation: Float, random: inout SeededRandom) {
        for i in 0..<tensor.count { tensor[i] = mean + standardDeviation * random.nextNormal() }
    }

    /// Applies the DCGAN rule to every layer of `layers` (in order, so the draw sequence is fixed).
    public static func dcgan(_ layers: [Layer], random: inout SeededRandom) {
        for layer in layers {
            switch layer {
            case let conv as Conv2d:
                normal(conv.weight.value, mean: 0, standardDeviation: 0.02, random: &random)
                conv.bias?.value.fill(0)
            case let deconv as ConvTranspose2d:
                normal(deconv.weight.value, mean: 0, standardDeviation: 0.02, random: &random)
                deconv.bias?.value.fill(0)
            case let norm as BatchNorm2d:
                normal(norm.weight.value, mean: 1, standardDeviation: 0.02, random: &random)
                norm.bias.value.fill(0)
            case let sequential as Sequential:
                dcgan(sequential.layers, random: &random)
            default:
                continue
            }
        }
    }
}
