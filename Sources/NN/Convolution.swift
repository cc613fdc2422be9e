/// Which implementation a layer runs: the plain-Swift reference, or the fast path (oneDNN).
public enum Backend: String, Codable, Sendable {
    case reference, fast
}

/// The three passes of a convolution for one geometry. Implementations: `ReferenceConvolutionKernels`
/// and the oneDNN-backed fast path.
public protocol ConvolutionKernels: AnyObject {
    func forward(input: Tensor, weight: Tensor, output: Tensor)
    func backwardData(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor)
    /// Accumulates into `weightGradient`.
    func backwardWeights(input: Tensor, outputGradient: Tensor, weightGradient: Tensor)
}

public final class ReferenceConvolutionKernels: ConvolutionKernels {
    let geometry: ConvolutionGeometry
    public init(_ geometry: ConvolutionGeometry) { self.geometry = geometry }

    public func forward(input: Tensor, weight: Tensor, output: Tensor) {
        precondition(input.format == nil, "the reference path takes plain tensors")
        output.reshape(to: geometry.outputShape)
        ReferenceConvolution.forward(input: input.data, weight: weight.data, output: output.data, geometry)
    }
    public func backwardData(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        precondition(outputGradient.format == nil, "the reference path takes plain tensors")
        inputGradient.reshape(to: geometry.inputShape)
        ReferenceConvolution.backwardData(outputGradient: outputGradient.data, weight: weight.data, inputGradient: inputGradient.data, geometry)
    }
    public func backwardWeights(input: Tensor, outputGradient: Tensor, weightGradient: Tensor) {
        precondition(input.format == nil && outputGradient.format == nil, "the reference path takes plain tensors")
        ReferenceConvolution.backwardWeights(input: input.data, outputGradient: outputGradient.data, weightGradient: weightGradient.data, geometry)
    }
}

/// The kernels of the last geometry a layer saw, remade when its input shape changes.
/// One interface, two implementations: the backend picks which.
struct KernelCache {
    private(set) var current: ConvolutionKernels?
    private var geometry: ConvolutionGeometry?

    private var precision = Precision.fp32
    private var outputPrecision = Precision.fp32
    private var inputGradientPrecision = Precision.fp32

    /// bf16 applies to the fast path's convolutions (as matrix products where the CPU has AMX); the
    /// dense edge layers (GEMMs, a few percent of the work) and the reference stay fp32.
    /// `output` and `inputGradient` bf16 ask for the layer's output and input gradient in bf16
    /// (oneDNN's direct kernels honour them; the others write fp32, which every reader takes as well).
    mutating func kernels(for geometry: ConvolutionGeometry, backend: Backend, precision: Precision, output: Precision = .fp32,
                          inputGradient: Precision = .fp32, transposed: Bool) -> ConvolutionKernels {
        if let current, self.geometry == geometry, self.precision == precision, outputPrecision == output,
           inputGradientPrecision == inputGradient { return current }
        let made: ConvolutionKernels
        switch backend {
        case .reference: made = ReferenceConvolutionKernels(geometry)
        case .fast:
            if DenseConvolutionKernels.applies(to: geometry) {
                made = DenseConvolutionKernels(geometry)
            } else if precision == .bf16, ColumnConvolutionKernels.applies(to: geometry) {
                made = ColumnConvolutionKernels(geometry, precision: .bf16, transposed: transposed)
            } else {
                let bf16 = precision == .bf16
                made = DNNLConvolutionKernels(geometry, precision: precision, output: bf16 ? output : .fp32,
                                              inputGradient: bf16 ? inputGradient : .fp32, transposed: transposed)
            }
        }
        current = made
        self.geometry = geometry
        self.precision = precision
        outputPrecision = output
        inputGradientPrecision = inputGradient
        return made
    }
}

/// The convolutions, whose output and input gradient may be written in bf16
/// (`Sequential.setPrecision` decides).
protocol ConvolutionLayer: AnyObject {
    var backend: Backend { get }
    var bias: Parameter? { get }
    var outputPrecision: Precision { get set }
    var inputGradientPrecision: Precision { get set }
}

extension ConvolutionLayer {
    /// The bias is added in Swift, on fp32.
    var emitsBF16Safely: Bool { bias == nil && backend == .fast }

    /// bf16 only where the input came in bf16: the layer before may be one whose kernel writes
    /// fp32 whatever it was asked (a dense edge layer), and its readers' gradient should not be
    /// rounded on the way back when its activation never was.
    func inputGradientPrecision(for input: Tensor) -> Precision { input.format?.precision == .bf16 ? inputGradientPrecision : .fp32 }
}

/// Conv2d, as PyTorch: weight [out, in, k, k], optional bias [out].
///   input [N, in, H, W] → output [N, out, (H + 2p − k)/s + 1, (W + 2p − k)/s + 1]
public final class Conv2d: Layer, PrecisionSelectable, ConvolutionLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public var backend: Backend
    public var precision = Precision.fp32
    /// bf16: the output or the input gradient is written in bf16 (`Sequential.setPrecision`
    /// decides where readers allow).
    var outputPrecision = Precision.fp32
    var inputGradientPrecision = Precision.fp32
    public var isTraining = true
    public var needsInputGradient = true
    public var computesParameterGradients = true

    private var kernels = KernelCache()
    private var input: Tensor?
    private var output: Tensor?
    private var inputGradient: Tensor?

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
                backend: Backend = .reference, name: String = "conv") {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.backend = backend
        weight = Parameter(name: "\(name).weight", shape: [outChannels, inChannels, kernel, kernel])
        self.bias = bias ? Parameter(name: "\(name).bias", shape: [outChannels]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    private func implementation(for input: Tensor) -> (ConvolutionGeometry, ConvolutionKernels) {
        precondition(input.shape.count == 4 && input.shape[1] == inChannels, "Conv2d expects [N, \(inChannels), H, W], got \(input.shape)")
        let geometry = ConvolutionGeometry(batch: input.shape[0], inChannels: inChannels, inHeight: input.shape[2], inWidth: input.shape[3],
                                           outChannels: outChannels, kernel: kernel, stride: stride, padding: padding)
        return (geometry, kernels.kernels(for: geometry, backend: backend, precision: precision, output: outputPrecision,
                                                    inputGradient: inputGradientPrecision(for: input), transposed: false))
    }

    public func forward(_ input: Tensor) -> Tensor {
        let (geometry, implementation) = implementation(for: input)
        self.input = input
        let output = Tensor.reuse(self.output, shape: geometry.outputShape)
        self.output = output
        implementation.forward(input: input, weight: weight.value, output: output)
        if let bias { addBias(bias.value, to: output) }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard let input, let implementation = kernels.current else { preconditionFailure("backward before forward") }
        if computesParameterGradients {
            implementation.backwardWeights(input: input, outputGradient: outputGradient, weightGradient: weight.gradient)
            if let bias { accumulateBiasGradient(outputGradient, into: bias.gradient) }
        }
        guard needsInputGradient else { return nil }
        let inputGradient = Tensor.reuse(self.inputGradient, shape: input.shape)
        self.inputGradient = inputGradient
        implementation.backwardData(outputGradient: outputGradient, weight: weight.value, inputGradient: inputGradient)
        return inputGradient
    }
}

/// ConvTranspose2d, as PyTorch: weight [in, out, k, k], optional bias [out].
///   input [N, in, H, W] → output [N, out, (H − 1)·s − 2p + k, (W − 1)·s − 2p + k]
/// It is the transpose of the convolution out → in with the same weight: its forward is that
/// convolution's backward-data, its backward-data that convolution's forward.
public final class ConvTranspose2d: Layer, PrecisionSelectable, ConvolutionLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public var backend: Backend
    public var precision = Precision.fp32
    /// bf16: the output or the input gradient is written in bf16 (`Sequential.setPrecision`
    /// decides where readers allow).
    var outputPrecision = Precision.fp32
    var inputGradientPrecision = Precision.fp32
    public var isTraining = true
    public var needsInputGradient = true
    public var computesParameterGradients = true

    private var kernels = KernelCache()
    private var input: Tensor?
    private var output: Tensor?
    private var inputGradient: Tensor?

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
                backend: Backend = .reference, name: String = "deconv") {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.backend = backend
        weight = Parameter(name: "\(name).weight", shape: [inChannels, outChannels, kernel, kernel])
        self.bias = bias ? Parameter(name: "\(name).bias", shape: [outChannels]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    /// The geometry of the underlying convolution: from this layer's output (its "input") to this
    /// layer's input (its "output").
    private func implementation(for input: Tensor) -> (ConvolutionGeometry, ConvolutionKernels) {
        precondition(input.shape.count == 4 && input.shape[1] == inChannels, "ConvTranspose2d expects [N, \(inChannels), H, W], got \(input.shape)")
        let outHeight = (input.shape[2] - 1) * stride - 2 * padding + kernel
        let outWidth = (input.shape[3] - 1) * stride - 2 * padding + kernel
        let geometry = ConvolutionGeometry(batch: input.shape[0], inChannels: outChannels, inHeight: outHeight, inWidth: outWidth,
                                           outChannels: inChannels, kernel: kernel, stride: stride, padding: padding)
        return (geometry, kernels.kernels(for: geometry, backend: backend, precision: precision, output: outputPrecision,
                                                    inputGradient: inputGradientPrecision(for: input), transposed: true))
    }

    public func forward(_ input: Tensor) -> Tensor {
        let (geometry, implementation) = implementation(for: input)
        self.input = input
        let output = Tensor.reuse(self.output, shape: geometry.inputShape)
        self.output = output
        implementation.backwardData(outputGradient: input, weight: weight.value, inputGradient: output)
        if let bias { addBias(bias.value, to: output) }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard let input, let implementation = kernels.current else { preconditionFailure("backward before forward") }
        if computesParameterGradients {
            // dW[in,out,i,j] = Σ outputGradient-as-conv-input × input-as-conv-output-gradient
            implementation.backwardWeights(input: outputGradient, outputGradient: input, weightGradient: weight.gradient)
            if let bias { accumulateBiasGradient(outputGradient, into: bias.gradient) }
        }
        guard needsInputGradient else { return nil }
        let inputGradient = Tensor.reuse(self.inputGradient, shape: input.shape)
        self.inputGradient = inputGradient
        implementation.forward(input: outputGradient, weight: weight.value, output: inputGradient)
        return inputGradient
    }
}

/// output[n, c, ...] += bias[c]. Blocked outputs take a round trip through plain: DCGAN's
/// convolutions have no bias, so this is never on the fast path's hot loop.
func addBias(_ bias: Tensor, to output: Tensor) {
    let plain = output.plain()
    let batch = plain.shape[0], channels = plain.shape[1], plane = plain.count / (batch * channels)
    for n in 0..<batch {
        for c in 0..<channels {
            let value = bias[c], base = plain.data + (n * channels + c) * plane
            for k in 0..<plane { base[k] += value }
        }
    }
    if plain !== output, let format = output.format { Reorders.run(from: .plain(plain.shape), plain.data, to: format, output.data) }
}

/// biasGradient[c] += Σ_{n,y,x} outputGradient[n,c,y,x]
func accumulateBiasGradient(_ outputGradient: Tensor, into biasGradient: Tensor) {
    let plain = outputGradient.plain()
    ReferenceConvolution.backwardBias(outputGradient: plain.data, biasGradient: biasGradient.data, batch: plain.shape[0],
                                      channels: plain.shape[1], plane: plain.shape[2] * plain.shape[3])
}
