/// Nearest-neighbour upsampling by 2: every pixel becomes a 2×2 block.
///   [N, C, H, W] (any layout) → [N, C, 2H, 2W] plain;  backward: dx = the sum of each 2×2 block of dy.
public final class Upsample2x: StatelessLayer, Layer {
    private var inputShape: [Int] = []
    private var output: Tensor?
    private var inputGradient: Tensor?
    private var plainScratch: Tensor?
    private var gradientScratch: Tensor?

    public override init() {}

    public func forward(_ input: Tensor) -> Tensor {
        let x = input.converted(toPlainInto: &plainScratch)
        inputShape = x.shape
        let planes = x.shape[0] * x.shape[1], height = x.shape[2], width = x.shape[3]
        let output = Tensor.reuse(self.output, shape: [x.shape[0], x.shape[1], 2 * height, 2 * width])
        self.output = output
        for plane in 0..<planes {
            let source = x.data + plane * height * width, target = output.data + plane * 4 * height * width
            for y in 0..<height {
                let row = target + 2 * y * 2 * width
                for i in 0..<width {
                    let value = source[y * width + i]
                    row[2 * i] = value
                    row[2 * i + 1] = value
                }
                (row + 2 * width).update(from: row, count: 2 * width)
            }
        }
        output.markModified()
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard needsInputGradient else { return nil }
        let dy = outputGradient.converted(toPlainInto: &gradientScratch)
        let planes = inputShape[0] * inputShape[1], height = inputShape[2], width = inputShape[3]
        let inputGradient = Tensor.reuse(self.inputGradient, shape: inputShape)
        self.inputGradient = inputGradient
        for plane in 0..<planes {
            let source = dy.data + plane * 4 * height * width, target = inputGradient.data + plane * height * width
            for y in 0..<height {
                let top = source + 2 * y * 2 * width, bottom = top + 2 * width
                for i in 0..<width { target[y * width + i] = top[2 * i] + top[2 * i + 1] + bottom[2 * i] + bottom[2 * i + 1] }
            }
        }
        inputGradient.markModified()
        return inputGradient
    }
}
