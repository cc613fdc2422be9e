import Dispatch

/// A network layer: forward keeps what backward needs; backward *accumulates* parameter gradients
/// and returns the gradient with respect to the input.
public protocol Layer: AnyObject {
    /// Forward pass. The returned tensor belongs to the layer and is overwritten by the next call.
    func forward(_ input: Tensor) -> Tensor
    /// Backward pass for the last forward. Returns the input gradient (owned by the layer), or nil
    /// when `needsInputGradient` is false.
    func backward(_ outputGradient: Tensor) -> Tensor?
    /// Learnable tensors (empty for activations).
    var parameters: [Parameter] { get }
    /// Batch statistics and dropout in training; running statistics and identity in evaluation.
    var isTraining: Bool { get set }
    /// False for a network's first layer: nobody needs the gradient of the data.
    var needsInputGradient: Bool { get set }
    /// False while back-propagating through a network whose weights are not being trained (the
    /// generator step goes through the discriminator): weight gradients are then never computed.
    var computesParameterGradients: Bool { get set }
}

/// Layers whose arithmetic can run in bf16 (the convolutions).
public protocol PrecisionSelectable: AnyObject {
    var precision: Precision { get set }
}

/// Layers that hold no parameters get the flags for free.
open class StatelessLayer {
    public var isTraining = true
    public var needsInputGradient = true
    public var computesParameterGradients = true
    public var parameters: [Parameter] { [] }
    public init() {}
}

/// Layers run in order.
public final class Sequential: Layer {
    public let layers: [Layer]

    public init(_ layers: [Layer]) {
        precondition(!layers.isEmpty, "a Sequential needs at least one layer")
        self.layers = layers
    }

    /// When set, each layer's forward and backward time is added to it (`bench train-step --profile`).
    public var profile: LayerProfile?

    public func forward(_ input: Tensor) -> Tensor { forward(input, layers: layers.indices) }

    public func backward(_ outputGradient: Tensor) -> Tensor? { backward(outputGradient, layers: layers.indices) }

    /// Runs only `range` of the layers: a network split into blocks with named outputs (the
    /// discriminator's features and logits) runs its parts one after the other.
    public func forward(_ input: Tensor, layers range: Range<Int>) -> Tensor {
        var value = input
        for index in range {
            let started = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            value = layers[index].forward(value)
            profile?.add(index: index, layer: layers[index], pass: "forward", nanoseconds: DispatchTime.now().uptimeNanoseconds - started)
        }
        return value
    }

    /// Backward through `range` (the last forward through it), last layer first.
    public func backward(_ outputGradient: Tensor, layers range: Range<Int>) -> Tensor? {
        var gradient = outputGradient
        for index in range.reversed() {
            let started = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let next = layers[index].backward(gradient)
            profile?.add(index: index, layer: layers[index], pass: "backward", nanoseconds: DispatchTime.now().uptimeNanoseconds - started)
            guard let next else { return nil }
            gradient = next
        }
        return gradient
    }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }

    public var isTraining: Bool {
        get { layers[0].isTraining }
        set { for layer in layers { layer.isTraining = newValue } }
    }

    /// Only the first layer may skip its input gradient; inner layers always pass one back.
    public var needsInputGradient: Bool {
        get { layers[0].needsInputGradient }
        set { layers[0].needsInputGradient = newValue }
    }

    public var computesParameterGradients: Bool {
        get { layers[0].computesParameterGradients }
        set { for layer in layers { layer.computesParameterGradients = newValue } }
    }

    public func zeroGradients() { for parameter in parameters { parameter.zeroGradient() } }

    /// Sets the arithmetic of every layer that has a choice (the convolutions). In bf16 a
    /// convolution whose output reaches the next convolution through batch normalisation and
    /// ReLUs only writes it in bf16: those layers run oneDNN primitives in whatever element type
    /// they are given, and the next convolution would round its input to bf16 anyway, so half the
    /// memory traffic and no conversion. The gradient takes the same way back, so that next
    /// convolution writes its input gradient in bf16 too (those primitives would round it to
    /// their bf16 layout first, as PyTorch's autocast keeps it bf16). Any other reader (a Swift
    /// loop, a loss) gets fp32.
    public func setPrecision(_ precision: Precision) {
        for case let layer as PrecisionSelectable in layers { layer.precision = precision }
        for case let convolution as ConvolutionLayer in layers {
            convolution.outputPrecision = .fp32
            convolution.inputGradientPrecision = .fp32
        }
        guard precision == .bf16 else { return }
        for (index, layer) in layers.enumerated() {
            guard let convolution = layer as? ConvolutionLayer, convolution.emitsBF16Safely,
                  let next = Sequential.convolutionFedThroughPrimitives(layers[(index + 1)...]) else { continue }
            convolution.outputPrecision = .bf16
            next.inputGradientPrecision = .bf16
        }
    }

    /// The fast convolution the layers lead to through oneDNN-run normalisation and ReLUs only.
    private static func convolutionFedThroughPrimitives(_ following: ArraySlice<Layer>) -> ConvolutionLayer? {
        for layer in following {
            switch layer {
            case let convolution as ConvolutionLayer: return convolution.backend == .fast ? convolution : nil
            case let normalization as BatchNorm2d where normalization.backend == .fast: continue
            case let activation as ReLU where activation.backend == .fast: continue
            case let activation as LeakyReLU where activation.backend == .fast: continue
            default: return nil
            }
        }
        return nil
    }
}

/// Accumulated time per (layer, pass), for finding the slowest layer.
public final class LayerProfile {
    public struct Entry: Codable, Sendable {
        public var layer: String
        public var pass: String
        public var seconds: Double
        public var calls: Int
    }

    public let name: String
    public private(set) var entries: [String: Entry] = [:]
    public private(set) var order: [String] = []

    public init(name: String) { self.name = name }

    func add(index: Int, layer: Layer, pass: String, nanoseconds: UInt64) {
        let label = "\(name).main.\(index) \(type(of: layer))"
        let key = label + " " + pass
        if entries[key] == nil { order.append(key); entries[key] = Entry(layer: label, pass: pass, seconds: 0, calls: 0) }
        entries[key]!.seconds += Double(nanoseconds) / 1e9
        entries[key]!.calls += 1
    }

    public var ordered: [Entry] { order.map { entries[$0]! } }
}
