import Foundation

/// Element-wise activations: forward and backward side by side. Shapes are unchanged. They run
/// on any layout as is (the output keeps the input's); an incoming gradient in another layout is
/// first brought to the output's. Each keeps what its derivative needs (input or output).
/// The fast path runs them as oneDNN eltwise primitives: vectorised, and on the same OpenMP
/// threads as the convolutions around them (a second thread pool would fight those for the cores).
public class ElementwiseActivation: StatelessLayer, Layer {
    public var backend: Backend
    fileprivate var input: Tensor?
    fileprivate var output: Tensor?
    private var inputGradient: Tensor?
    private var gradientScratch: Tensor?
    private var primitives: (layout: MemoryFormat, forward: Primitive, backward: Primitive?)?

    public init(backend: Backend = .reference) {
        self.backend = backend
        super.init()
    }

    /// The same function for oneDNN.
    var function: ElementwiseFunction { fatalError("override") }

    private func fastPrimitives(_ layout: MemoryFormat) -> (forward: Primitive, backward: () -> Primitive) {
        if primitives?.layout != layout { primitives = (layout, Primitive.elementwiseForward(function, data: layout), nil) }
        return (primitives!.forward, {
            if let backward = self.primitives!.backward { return backward }
            let made = Primitive.elementwiseBackward(self.function, data: layout, hint: self.primitives!.forward)
            self.primitives!.backward = made
            return made
        })
    }

    public func forward(_ input: Tensor) -> Tensor {
        self.input = input
        let output = Tensor.reuse(self.output, shape: input.shape, format: input.format)
        self.output = output
        if backend == .fast {
            let layout = input.format ?? MemoryFormat.plain(input.shape)
            fastPrimitives(layout).forward.execute([(Argument.source, input.data, layout), (Argument.destination, output.data, layout)])
        } else {
            apply(input.data, output.data, input.count)
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor? {
        guard needsInputGradient else { return nil }
        guard let input, let output else { preconditionFailure("backward before forward") }
        let gradient = outputGradient.converted(to: output.format, scratch: &gradientScratch)
        let inputGradient = Tensor.reuse(self.inputGradient, shape: input.shape, format: input.format)
        self.inputGradient = inputGradient
        if backend == .fast {
            let layout = input.format ?? MemoryFormat.plain(input.shape)
            let data = function.backwardUsesOutput ? (Argument.destination, output.data, layout) : (Argument.source, input.data, layout)
            fastPrimitives(layout).backward().execute([data, (Argument.destinationGradient, gradient.data, layout),
                                                       (Argument.sourceGradient, inputGradient.data, layout)])
        } else {
            derivative(input.data, output.data, gradient.data, inputGradient.data, input.count)
        }
        return inputGradient
    }

    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) { fatalError("override") }
    func derivative(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        fatalError("override")
    }
}

/// y = max(x, 0);  dx = dy·[x > 0]
public final class ReLU: ElementwiseActivation {
    override var function: ElementwiseFunction { .relu(slope: 0) }
    override func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { y[i] = max(x[i], 0) }
    }
    override func derivative(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : 0 }
    }
}

/// y = x for x > 0, slope·x otherwise;  dx = dy·(x > 0 ? 1 : slope)
public final class LeakyReLU: ElementwiseActivation {
    public let slope: Float
    private var pattern: Tensor?
    private var frozenOutput: Tensor?
    private var frozenGradient: Tensor?
    private var frozenScratch: Tensor?
    private var frozenInput: Tensor?

    public init(slope: Float = 0.2, backend: Backend = .reference) {
        self.slope = slope
        super.init(backend: backend)
    }
    override var function: ElementwiseFunction { .relu(slope: slope) }

    /// While set, the layer is the linear map it was at the last forward before: each unit keeps
    /// the slope (1 or `slope`) its input's sign chose then, forward and backward. A gradient
    /// penalty's shifted passes need this, or a unit crossing 0 between them would make the finite
    /// difference jump.
    public var freezesPattern = false {
        didSet {
            guard freezesPattern != oldValue else { return }
            pattern = freezesPattern ? input.map { $0.inFP32(scratch: &frozenInput).clone() } : nil
        }
    }

    public override func forward(_ input: Tensor) -> Tensor {
        guard freezesPattern, let pattern else { return super.forward(input) }
        let input = input.inFP32(scratch: &frozenInput)
        precondition(input.shape == pattern.shape && input.format == pattern.format, "a frozen LeakyReLU takes inputs like the one it froze on")
        let output = Tensor.reuse(frozenOutput, shape: input.shape, format: input.format)
        frozenOutput = output
        for i in 0..<input.count { output.data[i] = pattern.data[i] > 0 ? input.data[i] : slope * input.data[i] }
        output.markModified()
        return output
    }

    public override func backward(_ outputGradient: Tensor) -> Tensor? {
        guard freezesPattern, let pattern else { return super.backward(outputGradient) }
        guard needsInputGradient else { return nil }
        let gradient = outputGradient.converted(to: pattern.format, scratch: &frozenScratch)
        let inputGradient = Tensor.reuse(frozenGradient, shape: pattern.shape, format: pattern.format)
        frozenGradient = inputGradient
        for i in 0..<pattern.count { inputGradient.data[i] = pattern.data[i] > 0 ? gradient.data[i] : slope * gradient.data[i] }
        inputGradient.markModified()
        return inputGradient
    }

    override func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { y[i] = x[i] > 0 ? x[i] : slope * x[i] }
    }
    override func derivative(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : slope * dy[i] }
    }
}

/// y = tanh(x);  dx = dy·(1 − y²)
public final class Tanh: ElementwiseActivation {
    override var function: ElementwiseFunction { .tanh }
    override func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { y[i] = tanhf(x[i]) }
    }
    override func derivative(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    }
}

/// y = 1 / (1 + e^−x);  dx = dy·y·(1 − y)
public final class Sigmoid: ElementwiseActivation {
    override var function: ElementwiseFunction { .logistic }
    override func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { y[i] = sigmoid(x[i]) }
    }
    override func derivative(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
    }
}

/// Numerically stable logistic function.
@inline(__always)
func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}
