/// Minibatch standard deviation (Karras et al. 2018, as StyleGAN's discriminator epilogue): the
/// batch is split into groups of G consecutive images; within each group, the standard deviation
/// of every feature over the G images, averaged over the C·H·W features, becomes one extra channel
/// for each image of the group. A generator that collapses to few modes shows D a low value here.
///   [N, C, H, W] (any layout) → [N, C + 1, H, W] plain
public final class MinibatchStd: StatelessLayer, Layer {
    /// The largest group size; a batch not divisible by it uses the largest size that divides it.
    public let groupSize: Int
    public static let epsilon: Float = 1e-8
    private var input: Tensor?
    private var deviations: [Float] = []  // s_j per group and feature
    private var output: Tensor?
    private var inputGradient: Tensor?
    private var plainScratch: Tensor?
    private var gradientScratch: Tensor?

    public init(groupSize: Int = 4) {
        precondition(groupSize >= 1, "group size must be positive")
        self.groupSize = groupSize
    }

    func groupSize(batch: Int) -> Int {
        var size = min(groupSize, batch)
        while batch % size != 0 { size -= 1 }
        return size
    }

    /// μ_j = mean over the group of x_nj, s_j = √(mean (x_nj − μ_j)² + ε), S = mean_j s_j.
    public func forward(_ input: Tensor) -> Tensor {
        let x = input.converted(toPlainInto: &plainScratch)
        self.input = x
        let batch = x.shape[0], channels = x.shape[1], plane = x.shape[2] * x.shape[3], features = channels * plane
        let size = groupSize(batch: batch), groups = batch / size
        let output = Tensor.reuse(self.output, shape: [batch, channels + 1, x.shape[2], x.shape[3]])
        self.output = output
        deviations = [Float](repeating: 0, count: groups * features)
        for group in 0..<groups {
            var total = 0.0
            for j in 0..<features {
                var mean: Float = 0
                for k in 0..<size { mean += x.data[(group * size + k) * features + j] }
                mean /= Float(size)
                var variance: Float = 0
                for k in 0..<size { let d = x.data[(group * size + k) * features + j] - mean; variance += d * d }
                let deviation = (variance / Float(size) + MinibatchStd.epsilon).squareRoot()
                deviations[group * features + j] = deviation
                total += Double(deviation)
            }
            let statistic = Float(total / Double(features))
            for k in 0..<size {
                let n = group * size + k
                (output.data + n * (features + plane)).update(from: x.data + n * features, count: features)
                (output.data + n * (features + plane) + features).update(repeating: statistic, count: plane)
            }
        }
        output.markModified()
        return output
    }

    /// dS = Σ over the group's images and pixels of dy[n, C]; ∂S/∂x_nj = (x_nj − μ_j) / (M·G·s_j)
    /// with M = C·H·W (the μ term sums to zero over the group).
    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard needsInputGradient else { return nil }
        guard let x = input else { preconditionFailure("backward before forward") }
        let dy = outputGradient.converted(toPlainInto: &gradientScratch)
        let batch = x.shape[0], channels = x.shape[1], plane = x.shape[2] * x.shape[3], features = channels * plane
        let size = groupSize(batch: batch), groups = batch / size
        let inputGradient = Tensor.reuse(self.inputGradient, shape: x.shape)
        self.inputGradient = inputGradient
        for group in 0..<groups {
            var statisticGradient: Float = 0
            for k in 0..<size {
                let extra = dy.data + (group * size + k) * (features + plane) + features
                for p in 0..<plane { statisticGradient += extra[p] }
            }
            let scale = statisticGradient / Float(features * size)
            for j in 0..<features {
                var mean: Float = 0
                for k in 0..<size { mean += x.data[(group * size + k) * features + j] }
                mean /= Float(size)
                let factor = scale / deviations[group * features + j]
                for k in 0..<size {
                    let n = group * size + k
                    inputGradient.data[n * features + j] = dy.data[n * (features + plane) + j] + factor * (x.data[n * features + j] - mean)
                }
            }
        }
        inputGradient.markModified()
        return inputGradient
    }
}
