/// A per-class scale and shift of every channel: the class-conditional part of BigGAN's
/// conditional BatchNorm (Brock et al. 2019; de Vries et al. 2017), placed after a BatchNorm:
///   y[n, c, h, w] = x[n, c, h, w] · (1 + a[k, c]) + b[k, c],  k = classes[n]
/// with a, b [K, C] zero at the start, so the layer begins as the identity and the network as the
/// one without it. `classes` (one index per image) is set before each forward.
///   [N, C, H, W] (any layout) → [N, C, H, W] plain
public final class ClassAffine: Layer {
    /// a [K, C], tensor `<name>.class_weight`.
    public let scale: Parameter
    /// b [K, C], tensor `<name>.class_bias`.
    public let shift: Parameter
    public let channels: Int
    public let classCount: Int
    public var classes: [Int] = []
    public var isTraining = true
    public var needsInputGradient = true
    public var computesParameterGradients = true
    private var input: Tensor?
    private var output: Tensor?
    private var inputGradient: Tensor?
    private var plainScratch: Tensor?
    private var gradientScratch: Tensor?

    public init(channels: Int, classes: Int, name: String) {
        self.channels = channels
        classCount = classes
        scale = Parameter(name: "\(name).class_weight", shape: [classes, channels])
        shift = Parameter(name: "\(name).class_bias", shape: [classes, channels])
    }

    public var parameters: [Parameter] { [scale, shift] }

    public func forward(_ input: Tensor) -> Tensor {
        let x = input.converted(toPlainInto: &plainScratch)
        precondition(x.shape[1] == channels && classes.count == x.shape[0], "\(x.shape) with \(classes.count) classes")
        self.input = x
        let output = Tensor.reuse(self.output, shape: x.shape)
        self.output = output
        let plane = x.shape[2] * x.shape[3]
        for (n, k) in classes.enumerated() {
            precondition((0..<classCount).contains(k), "class \(k) of \(classCount)")
            for c in 0..<channels {
                let gain = 1 + scale.value.data[k * channels + c], bias = shift.value.data[k * channels + c]
                let offset = (n * channels + c) * plane
                for p in 0..<plane { output.data[offset + p] = x.data[offset + p] * gain + bias }
            }
        }
        output.markModified()
        return output
    }

    /// dx = dy · (1 + a[k]);  da[k, c] += Σ_hw dy · x;  db[k, c] += Σ_hw dy.
    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard let x = input else { preconditionFailure("backward before forward") }
        let dy = outputGradient.converted(toPlainInto: &gradientScratch)
        let plane = x.shape[2] * x.shape[3]
        let inputGradient = needsInputGradient ? Tensor.reuse(self.inputGradient, shape: x.shape) : nil
        self.inputGradient = inputGradient
        for (n, k) in classes.enumerated() {
            for c in 0..<channels {
                let offset = (n * channels + c) * plane
                if computesParameterGradients {
                    var dScale: Float = 0, dShift: Float = 0
                    for p in 0..<plane {
                        dScale += dy.data[offset + p] * x.data[offset + p]
                        dShift += dy.data[offset + p]
                    }
                    scale.gradient.data[k * channels + c] += dScale
                    shift.gradient.data[k * channels + c] += dShift
                }
                if let inputGradient {
                    let gain = 1 + scale.value.data[k * channels + c]
                    for p in 0..<plane { inputGradient.data[offset + p] = dy.data[offset + p] * gain }
                }
            }
        }
        if computesParameterGradients {
            scale.gradient.markModified()
            shift.gradient.markModified()
        }
        inputGradient?.markModified()
        return inputGradient
    }
}
