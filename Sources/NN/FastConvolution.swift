import Foundation

/// Convolution passes on oneDNN primitives. Every primitive is created with all layouts left to
/// oneDNN (`any`), so it picks its fastest (blocked) ones; an operand is reordered only when it
/// arrives in another layout, which in a chain of fast layers is rare, since the layout one
/// primitive writes is the one the next prefers. Weights stay plain (PyTorch's layout) for the
/// optimiser and checkpoints; each pass keeps its reordered copy until the weight changes (one
/// optimiser step serves the real, fake and generator passes).
///
/// In bf16 the operands each pass reads (source, weights, destination gradient) are bf16: the
/// reorder into the primitive's layout rounds them on the way, and the weights once per optimiser
/// step. What each pass writes stays fp32: the weight gradient always, the layer's output and its
/// input gradient unless `outputPrecision` and `inputGradientPrecision` ask for bf16 (where only
/// oneDNN primitives lie between this convolution and the next: `Sequential.setPrecision`); the
/// optimiser and the checkpoints never see bf16.
final class DNNLConvolutionKernels: ConvolutionKernels {
    let geometry: ConvolutionGeometry
    let precision: Precision
    /// The element type of the layer's output: the convolution's destination, or for a transposed
    /// layer its backward-data's source gradient.
    let outputPrecision: Precision
    /// The element type of the layer's input gradient: the convolution's source gradient, or for a
    /// transposed layer its forward's destination.
    let inputGradientPrecision: Precision
    private lazy var forwardPrimitive = Primitive.convolutionForward(
        source: .any(geometry.inputShape, precision), weights: .any(geometry.weightShape, precision),
        destination: .any(geometry.outputShape, transposed ? inputGradientPrecision : outputPrecision),
        stride: geometry.stride, padding: geometry.padding)
    private lazy var dataPrimitive = Primitive.convolutionBackwardData(
        sourceGradient: .any(geometry.inputShape, transposed ? outputPrecision : inputGradientPrecision),
        weights: .any(geometry.weightShape, precision),
        destinationGradient: .any(geometry.outputShape, precision), stride: geometry.stride, padding: geometry.padding, hint: forwardPrimitive)
    private lazy var weightsPrimitive = Primitive.convolutionBackwardWeights(
        source: .any(geometry.inputShape, precision), weightsGradient: .any(geometry.weightShape),
        destinationGradient: .any(geometry.outputShape, precision), stride: geometry.stride, padding: geometry.padding, hint: forwardPrimitive)

    // Operands reordered to the layouts a primitive wants, kept between calls: the source role
    // (forward, backward-weights) and the destination-gradient role (backward-data and -weights).
    private var inputScratch: Tensor?
    private var gradientScratch: Tensor?
    private var sourceCopy = ConvertedOperand()
    private var gradientCopy = ConvertedOperand()
    /// The layer is a transposed convolution: its forward is this kernel's backward-data.
    private let transposed: Bool
    /// Off only in the test that checks reuse changes no result.
    nonisolated(unsafe) static var reusesOperands = true
    private var forwardWeights = ReorderedWeight()
    private var dataWeights = ReorderedWeight()
    private var blockedWeightGradient: Tensor?

    private lazy var columnBackwardData = ColumnBackwardData(geometry)
    /// In bf16, the few-channel backward-data split by phase on the forward kernel.
    private lazy var phaseBackwardData: PhaseBackwardData? =
        precision == .bf16 && PhaseBackwardData.applies(to: geometry)
            ? PhaseBackwardData(geometry, type: transposed ? outputPrecision : inputGradientPrecision) : nil
    /// In bf16, the backward-data of 4×4 outputs on the forward kernel, one convolution a phase.
    private lazy var splitPhaseBackwardData: SplitPhaseBackwardData? =
        precision == .bf16 && SplitPhaseBackwardData.applies(to: geometry)
            ? SplitPhaseBackwardData(geometry, type: transposed ? outputPrecision : inputGradientPrecision) : nil
    /// In bf16, the weight gradient on the forward kernel (see `SwappedWeightGradient`) wherever
    /// the channels allow; it replaces both oneDNN's backward-weights and the matrix product.
    private lazy var swappedWeights: SwappedWeightGradient? =
        precision == .bf16 && SwappedWeightGradient.applies(to: geometry) ? SwappedWeightGradient(geometry) : nil
    /// oneDNN 2.6's backward-weights is slow where the output is 4×4 or smaller (D's last stride-2
    /// layer, G's first) in fp32 without AVX-512 (`jit:avx2`), and in bf16: there the weight
    /// gradient is the column kernels' matrix product (in bf16 only where the swapped one does
    /// not apply), which cut those layers' backward passes by a fifth to a third.
    private lazy var columnWeights: ColumnConvolutionKernels? =
        ColumnConvolutionKernels.computesWeightGradient(of: geometry, precision: precision)
            ? ColumnConvolutionKernels(geometry, precision: precision, transposed: transposed) : nil

    init(_ geometry: ConvolutionGeometry, precision: Precision = .fp32, output: Precision = .fp32, inputGradient: Precision = .fp32,
         transposed: Bool = false) {
        self.geometry = geometry
        self.precision = precision
        outputPrecision = output
        inputGradientPrecision = inputGradient
        self.transposed = transposed
    }

    /// A layer's forward starts a cycle: its backward then reads the same tensors (the layer
    /// contract), so an operand already reordered in this cycle is reused (in bf16 every operand
    /// is a conversion; a Conv2d's input is read by forward and backward-weights, its output
    /// gradient by backward-weights and -data). A new forward reorders afresh.
    private func startCycle() {
        sourceCopy = ConvertedOperand()
        gradientCopy = ConvertedOperand()
    }

    /// The layout oneDNN's forward convolution wants its input in.
    var preferredSourceFormat: MemoryFormat { forwardPrimitive.format(.source) }

    func forward(input: Tensor, weight: Tensor, output: Tensor) {
        if !transposed { startCycle() }
        let primitive = forwardPrimitive
        let source = sourceCopy.of(input, in: primitive.format(.source), scratch: &inputScratch)
        let weights = forwardWeights.of(weight, in: primitive.format(.weights))
        output.adopt(shape: geometry.outputShape, format: primitive.format(.destination))
        primitive.execute([(Argument.source, source.data, primitive.format(.source)),
                           (Argument.weights, weights.data, primitive.format(.weights)),
                           (Argument.destination, output.data, primitive.format(.destination))])
    }

    func backwardData(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        if transposed { startCycle() }
        if let phaseBackwardData {
            let gradient = gradientCopy.of(outputGradient, in: phaseBackwardData.gradientFormat, scratch: &gradientScratch)
            phaseBackwardData.run(gradient: gradient, weight: weight, inputGradient: inputGradient)
            return
        }
        if let splitPhaseBackwardData {
            let gradient = gradientCopy.of(outputGradient, in: splitPhaseBackwardData.gradientFormat, scratch: &gradientScratch)
            splitPhaseBackwardData.run(gradient: gradient, weight: weight, inputGradient: inputGradient)
            return
        }
        if geometry.inChannels <= ColumnBackwardData.maximumInputChannels {
            columnBackwardData.run(outputGradient: outputGradient, weight: weight, inputGradient: inputGradient)
            return
        }
        let primitive = dataPrimitive
        let gradient = gradientCopy.of(outputGradient, in: primitive.format(.destinationGradient), scratch: &gradientScratch)
        let weights = dataWeights.of(weight, in: primitive.format(.weights))
        inputGradient.adopt(shape: geometry.inputShape, format: primitive.format(.sourceGradient))
        primitive.execute([(Argument.destinationGradient, gradient.data, primitive.format(.destinationGradient)),
                           (Argument.weights, weights.data, primitive.format(.weights)),
                           (Argument.sourceGradient, inputGradient.data, primitive.format(.sourceGradient))])
    }

    func backwardWeights(input: Tensor, outputGradient: Tensor, weightGradient: Tensor) {
        if let swappedWeights {
            swappedWeights.run(input: input, outputGradient: outputGradient, weightGradient: weightGradient)
            return
        }
        if let columnWeights {
            columnWeights.backwardWeights(input: input, outputGradient: outputGradient, weightGradient: weightGradient)
            return
        }
        let primitive = weightsPrimitive
        let source = sourceCopy.of(input, in: primitive.format(.source), scratch: &inputScratch)
        let gradient = gradientCopy.of(outputGradient, in: primitive.format(.destinationGradient), scratch: &gradientScratch)
        let format = primitive.format(.weightsGradient)
        let blocked = Tensor.reuse(blockedWeightGradient, shape: geometry.weightShape, format: format)
        blockedWeightGradient = blocked
        primitive.execute([(Argument.source, source.data, primitive.format(.source)),
                           (Argument.destinationGradient, gradient.data, primitive.format(.destinationGradient)),
                           (Argument.weightsGradient, blocked.data, format)])
        accumulate(blocked, into: weightGradient)
    }
}

/// A convolution whose kernel covers its whole input (no padding, a 1×1 output) is a dense layer:
///   output[n, o] = Σ_{c,y,x} input[n, c, y, x] · weight[o, c, y, x]
/// DCGAN's edge layers are such: the discriminator's last and, as a transposed convolution, the
/// generator's first. oneDNN's direct convolution runs them at 2–70 GFLOP/s; as one GEMM each pass
/// runs near the sgemm peak. The spatial side [N, C, k, k] stays in the blocked layout oneDNN's
/// convolution would give it (so its neighbours need no reorder), and the weight [O, C, k, k] is
/// reordered into that same layout with O in the batch's place: then a sample and a weight row line
/// up element for element, and the GEMM runs on the activations as they are.
final class DenseConvolutionKernels: ConvolutionKernels {
    let geometry: ConvolutionGeometry
    private let spatialFormat: MemoryFormat?
    private let weightFormat: MemoryFormat?
    private var inputScratch: Tensor?
    private var gradientScratch: Tensor?
    private var reorderedWeights = ReorderedWeight()
    private var blockedWeightGradient: Tensor?

    static func applies(to geometry: ConvolutionGeometry) -> Bool {
        geometry.padding == 0 && geometry.inHeight == geometry.kernel && geometry.inWidth == geometry.kernel
    }

    init(_ geometry: ConvolutionGeometry) {
        precondition(DenseConvolutionKernels.applies(to: geometry))
        self.geometry = geometry
        // The layout oneDNN's own convolution picks for the spatial side, if it is one whose batch
        // dimension is outermost with no channel padding (then the weight can share it); else plain.
        let preferred = DNNLConvolutionKernels(geometry).preferredSourceFormat
        if preferred.elementCount == geometry.inputShape.reduce(1, *), let weights = preferred.sameLayout(for: geometry.weightShape) {
            spatialFormat = preferred.isPlain ? nil : preferred
            weightFormat = weights.isPlain ? nil : weights
        } else {
            spatialFormat = nil
            weightFormat = nil
        }
    }

    private var rows: Int { geometry.batch }
    private var width: Int { geometry.inChannels * geometry.kernel * geometry.kernel }
    private var outputs: Int { geometry.outChannels }

    /// output [N, O] = input [N, C·k·k] · weightᵀ
    func forward(input: Tensor, weight: Tensor, output: Tensor) {
        let source = input.converted(to: spatialFormat, scratch: &inputScratch)
        let weights = reorderedWeights.of(weight, in: weightFormat)
        output.adopt(shape: geometry.outputShape, format: nil)
        sgemm(transposeA: false, transposeB: true, m: rows, n: outputs, k: width, alpha: 1, a: source.data, lda: width,
              b: weights.data, ldb: width, beta: 0, c: output.data, ldc: outputs)
    }

    /// inputGradient [N, C·k·k] = outputGradient [N, O] · weight
    func backwardData(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        let gradient = outputGradient.converted(to: nil, scratch: &gradientScratch)
        let weights = reorderedWeights.of(weight, in: weightFormat)
        inputGradient.adopt(shape: geometry.inputShape, format: spatialFormat)
        sgemm(transposeA: false, transposeB: false, m: rows, n: width, k: outputs, alpha: 1, a: gradient.data, lda: outputs,
              b: weights.data, ldb: width, beta: 0, c: inputGradient.data, ldc: width)
    }

    /// weightGradient [O, C·k·k] += outputGradientᵀ · input
    func backwardWeights(input: Tensor, outputGradient: Tensor, weightGradient: Tensor) {
        let source = input.converted(to: spatialFormat, scratch: &inputScratch)
        let gradient = outputGradient.converted(to: nil, scratch: &gradientScratch)
        guard let weightFormat else {
            sgemm(transposeA: true, transposeB: false, m: outputs, n: width, k: rows, alpha: 1, a: gradient.data, lda: outputs,
                  b: source.data, ldb: width, beta: 1, c: weightGradient.data, ldc: width)
            return
        }
        let blocked = Tensor.reuse(blockedWeightGradient, shape: geometry.weightShape, format: weightFormat)
        blockedWeightGradient = blocked
        sgemm(transposeA: true, transposeB: false, m: outputs, n: width, k: rows, alpha: 1, a: gradient.data, lda: outputs,
              b: source.data, ldb: width, beta: 0, c: blocked.data, ldc: width)
        accumulate(blocked, into: weightGradient)
    }
}

/// weightGradient (plain) += a weight gradient computed in a blocked layout: accumulate, as every
/// backward does. One reorder with a sum post-op: no plain copy, no second pass.
func accumulate(_ blocked: Tensor, into weightGradient: Tensor) {
    accumulate(blocked.data, in: blocked.format ?? .plain(blocked.shape), into: weightGradient)
}

/// The same for storage seen through any layout of the weight's shape (a view with axes permuted).
func accumulate(_ data: UnsafeMutablePointer<Float>, in format: MemoryFormat, into weightGradient: Tensor) {
    Reorders.run(from: format, data, to: .plain(weightGradient.shape), weightGradient.data, accumulate: true)
    weightGradient.markModified()
}

/// An operand in the layout (and element type) a primitive wants, kept for the other passes of
/// the same cycle: valid while it is the same tensor, unchanged, wanted in the same layout.
struct ConvertedOperand {
    private var original = TensorStamp()
    private var copy: Tensor?

    mutating func of(_ tensor: Tensor, in format: MemoryFormat, scratch: inout Tensor?) -> Tensor {
        if DNNLConvolutionKernels.reusesOperands, let copy, original.matches(tensor), (copy.format ?? .plain(copy.shape)) == format { return copy }
        let converted = tensor.converted(to: format, scratch: &scratch)
        original.record(tensor)
        copy = converted
        return converted
    }
}

/// Which tensor, at which version, something derived from it was made from.
struct TensorStamp {
    private var tensor: Tensor?
    private var version: UInt64 = 0

    func matches(_ other: Tensor) -> Bool { tensor === other && version == other.version }

    mutating func record(_ source: Tensor) {
        tensor = source
        version = source.version
    }
}

/// A weight in the layout one primitive wants (one per primitive, so the layout is fixed),
/// reordered again only when the weight's version moved.
struct ReorderedWeight {
    private var scratch: Tensor?
    private var source = TensorStamp()
    private var result: Tensor?

    mutating func of(_ weight: Tensor, in format: MemoryFormat?) -> Tensor {
        if let result, source.matches(weight) { return result }
        let reordered = weight.converted(to: format, scratch: &scratch)
        source.record(weight)
        result = reordered
        return reordered
    }
}

/// Backward-data of a convolution with few input channels (the discriminator's first layer; the
/// generator's last, as a transposed one), where oneDNN's direct kernel runs at 20–50 GFLOP/s.
/// One GEMM gives each output position's contributions to its k×k input window,
///   columns[(n, oy, ox), (c, ky, kx)] = Σ_o outputGradient[n, o, oy, ox] · weight[o, c, ky, kx]
/// (the gradient channels-last, the weight plain as it is), and col2im adds them into place:
///   inputGradient[n, c, oy·s − p + ky, ox·s − p + kx] += columns[(n, oy, ox), (c, ky, kx)]
struct ColumnBackwardData {
    static let maximumInputChannels = 4
    let geometry: ConvolutionGeometry
    private var gradientScratch: Tensor?
    private let columns: Tensor

    init(_ geometry: ConvolutionGeometry) {
        self.geometry = geometry
        columns = Tensor(shape: [geometry.batch * geometry.outHeight * geometry.outWidth,
                                 geometry.inChannels * geometry.kernel * geometry.kernel], zeros: false)
    }

    mutating func run(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        let g = geometry
        let gradient = outputGradient.converted(to: .channelsLast(g.outputShape), scratch: &gradientScratch)
        let positions = g.batch * g.outHeight * g.outWidth, window = g.inChannels * g.kernel * g.kernel
        sgemm(transposeA: false, transposeB: false, m: positions, n: window, k: g.outChannels, alpha: 1, a: gradient.data, lda: g.outChannels,
              b: weight.data, ldb: window, beta: 0, c: columns.data, ldc: window)
        inputGradient.adopt(shape: g.inputShape, format: nil)
        let target = inputGradient.data, source = columns.data
        target.update(repeating: 0, count: inputGradient.count)
        let plane = g.inHeight * g.inWidth
        // Samples are independent: two threads, each its own images.
        DispatchQueue.concurrentPerform(iterations: min(2, g.batch)) { part in
            for n in stride(from: part, to: g.batch, by: 2) {
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        let row = source + ((n * g.outHeight + oy) * g.outWidth + ox) * window
                        for c in 0..<g.inChannels {
                            let image = target + (n * g.inChannels + c) * plane
                            for ky in 0..<g.kernel {
                                let iy = oy * g.stride - g.padding + ky
                                guard iy >= 0 && iy < g.inHeight else { continue }
                                let taps = row + (c * g.kernel + ky) * g.kernel, line = image + iy * g.inWidth
                                for kx in 0..<g.kernel {
                                    let ix = ox * g.stride - g.padding + kx
                                    if ix >= 0 && ix < g.inWidth { line[ix] += taps[kx] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
