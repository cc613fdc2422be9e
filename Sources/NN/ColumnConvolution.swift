import Foundation

/// Passes of the DCGAN's stride-2 convolutions (kernel 4, padding 1) as matrix products on oneDNN's
/// matmul. In bf16 for CPUs with AMX: oneDNN 2.6's AMX backward convolutions run at 60–240 GFLOP/s
/// on these shapes (slower than its fp32 kernels); its AMX matmul runs the same products at
/// 500–1,300. Elsewhere the weight gradient alone where the output is 4×4: in fp32 on CPUs without
/// AVX-512, whose oneDNN 2.6 `avx2` backward-weights runs at half its sgemm rate on these shapes,
/// and in bf16 where `SwappedWeightGradient` does not apply. With P = N·OH·OW output positions:
///   columns [P, 16C] = im2col(input), windows 4×4 in (ky, kx, c) order   (channels-last)
///   forward:          output [P, O] = columns · weightᵀ            (written channels-last, fp32)
///   backward-weights: weightGradient [O, 16C] += outputGradientᵀ · columns
/// The weight [O, C, 4, 4] is used as [O, 16C] (OHWI), a copy made once per optimiser step.
///
/// Backward-data splits by output phase (sub-pixel): the input gradient's pixel (2m + py, 2l + px)
/// gathers the output gradient at rows m − 1 + py, m + py and columns l − 1 + px, l + px only, with
/// taps ky = 3 − py − 2a, kx = 3 − px − 2b. So one 2×2 im2col of the output gradient padded by one,
///   gradientColumns [Q, 4O] over the Q = N·(OH+1)·(OW+1) window origins (a, b, o),
/// times phaseWeights [4O, 4C] ((a, b, o) × (py, px, c)) gives every phase of every pixel at once:
///   phases [Q, 4C];  inputGradient[n, 2m + py, 2l + px, c] = phases[(n, m + py, l + px), (py, px, c)]
/// a product with 4× the inner dimension of the im2col one and a quarter of its output, and a copy
/// in place of col2im's sums. The products read `precision` operands and accumulate in fp32; every
/// result is fp32.
final class ColumnConvolutionKernels: ConvolutionKernels {
    let geometry: ConvolutionGeometry
    let precision: Precision
    /// The layer is a transposed convolution: its forward is this kernel's backward-data.
    private let transposed: Bool
    /// The 2×2, stride-1, padding-1 windows over the output gradient that backward-data reads.
    private let phaseGeometry: ConvolutionGeometry
    private let positions: Int, origins: Int

    private let sourceFormat: MemoryFormat, gradientFormat: MemoryFormat, weightFormat: MemoryFormat
    /// Where results land: output and input gradient channels-last, the weight gradient OHWI (fp32).
    private let outputLayout: MemoryFormat, inputGradientLayout: MemoryFormat, weightGradientLayout: MemoryFormat
    /// The matrices the products read (`precision`) and write (fp32).
    private let columnsMatrix: MemoryFormat, weightTransposed: MemoryFormat, gradientTransposed: MemoryFormat
    private let gradientColumnsMatrix: MemoryFormat, phaseWeightsMatrix: MemoryFormat
    private let outputMatrix: MemoryFormat, phasesMatrix: MemoryFormat, weightGradientMatrix: MemoryFormat
    private lazy var forwardProduct = Primitive.matmul(a: columnsMatrix, b: weightTransposed, c: outputMatrix)
    private lazy var weightsProduct = Primitive.matmul(a: gradientTransposed, b: columnsMatrix, c: weightGradientMatrix)
    private lazy var dataProduct = Primitive.matmul(a: gradientColumnsMatrix, b: phaseWeightsMatrix, c: phasesMatrix)

    private var sourceScratch: Tensor?
    private var gradientScratch: Tensor?
    private var gradientCopy = ConvertedOperand()
    private var weightCopy = ReorderedWeight()
    private let columns: Tensor
    private var columnsOf = TensorStamp()
    private lazy var gradientColumns = Tensor.matrix([origins, 4 * geometry.outChannels], precision)
    private lazy var phaseWeights = Tensor.matrix([4 * geometry.outChannels, 4 * geometry.inChannels], precision)
    private lazy var phaseWeightsPlain = Tensor(shape: [4 * geometry.outChannels, 4 * geometry.inChannels], zeros: false)
    private var phaseWeightsOf = TensorStamp()
    private lazy var phases = Tensor(shape: [origins, 4 * geometry.inChannels], zeros: false)
    private lazy var blockedWeightGradient = Tensor(shape: geometry.weightShape, zeros: false)

    /// AMX present (oneDNN's effective ISA); the DCGAN's down/up-sampling geometry; runs of
    /// channels long enough for the copies.
    static func applies(to geometry: ConvolutionGeometry, amx: Bool = Precision.amxSupported) -> Bool {
        amx && geometry.kernel == 4 && geometry.stride == 2 && geometry.padding == 1
            && geometry.inHeight % 2 == 0 && geometry.inWidth % 2 == 0
            && geometry.inChannels >= 16 && geometry.outChannels >= 16
    }

    /// Outside the AMX path, the weight-gradient pass alone where the output is at most 4×4 (see
    /// `DNNLConvolutionKernels`): in bf16, and in fp32 on CPUs without AVX-512.
    static func computesWeightGradient(of geometry: ConvolutionGeometry, precision: Precision,
                                       avx512: Bool = Precision.bf16Computable) -> Bool {
        applies(to: geometry, amx: true) && geometry.outHeight * geometry.outWidth <= 16 && (precision == .bf16 || !avx512)
    }

    init(_ geometry: ConvolutionGeometry, precision: Precision, transposed: Bool = false) {
        precondition(ColumnConvolutionKernels.applies(to: geometry, amx: true), "not a kernel-4, stride-2, padding-1 geometry: \(geometry)")
        self.geometry = geometry
        self.precision = precision
        self.transposed = transposed
        let g = geometry, outputs = g.outChannels
        phaseGeometry = ConvolutionGeometry(batch: g.batch, inChannels: outputs, inHeight: g.outHeight, inWidth: g.outWidth,
                                            outChannels: 4 * g.inChannels, kernel: 2, stride: 1, padding: 1)
        positions = g.batch * g.outHeight * g.outWidth
        origins = g.batch * phaseGeometry.outHeight * phaseGeometry.outWidth
        let window = 16 * g.inChannels
        sourceFormat = .channelsLast(g.inputShape, precision)
        gradientFormat = .channelsLast(g.outputShape, precision)
        weightFormat = .channelsLast(g.weightShape, precision)
        outputLayout = .channelsLast(g.outputShape)
        inputGradientLayout = .channelsLast(g.inputShape)
        weightGradientLayout = .channelsLast(g.weightShape)
        columnsMatrix = .plain([positions, window], precision)
        weightTransposed = .strided([window, outputs], strides: [1, window], precision)
        gradientTransposed = .strided([outputs, positions], strides: [1, outputs], precision)
        gradientColumnsMatrix = .plain([origins, 4 * outputs], precision)
        phaseWeightsMatrix = .plain([4 * outputs, 4 * g.inChannels], precision)
        outputMatrix = .plain([positions, outputs])
        phasesMatrix = .plain([origins, 4 * g.inChannels])
        weightGradientMatrix = .plain([outputs, window])
        columns = Tensor.matrix([positions, window], precision)
    }

    func forward(input: Tensor, weight: Tensor, output: Tensor) {
        if !transposed { startCycle() }
        let columns = imageColumns(input)
        let weights = weightCopy.of(weight, in: weightFormat)
        output.adopt(shape: geometry.outputShape, format: outputLayout)
        forwardProduct.execute([(Argument.source, columns.data, columnsMatrix), (Argument.weights, weights.data, weightTransposed),
                                (Argument.destination, output.data, outputMatrix)])
    }

    func backwardWeights(input: Tensor, outputGradient: Tensor, weightGradient: Tensor) {
        let columns = imageColumns(input)
        let gradient = gradientCopy.of(outputGradient, in: gradientFormat, scratch: &gradientScratch)
        let blocked = Tensor.reuse(blockedWeightGradient, shape: geometry.weightShape, format: weightGradientLayout)
        weightsProduct.execute([(Argument.source, gradient.data, gradientTransposed), (Argument.weights, columns.data, columnsMatrix),
                                (Argument.destination, blocked.data, weightGradientMatrix)])
        accumulate(blocked, into: weightGradient)
    }

    func backwardData(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        if transposed { startCycle() }
        let gradient = gradientCopy.of(outputGradient, in: gradientFormat, scratch: &gradientScratch)
        imageToColumns(phaseGeometry, gradient.data, into: gradientColumns.data, precision)
        dataProduct.execute([(Argument.source, gradientColumns.data, gradientColumnsMatrix),
                             (Argument.weights, phaseWeights(of: weight).data, phaseWeightsMatrix),
                             (Argument.destination, phases.data, phasesMatrix)])
        inputGradient.adopt(shape: geometry.inputShape, format: inputGradientLayout)
        phasesToImage(phases.data, into: inputGradient.data)
    }

    /// A layer's forward starts a cycle; within it the columns and the gradient's copy are reused
    /// while their tensors are unchanged (the layer contract, as in the direct path).
    private func startCycle() {
        columnsOf = TensorStamp()
        gradientCopy = ConvertedOperand()
    }

    private func imageColumns(_ input: Tensor) -> Tensor {
        if DNNLConvolutionKernels.reusesOperands, columnsOf.matches(input) { return columns }
        let source = input.converted(to: sourceFormat, scratch: &sourceScratch)
        imageToColumns(geometry, source.data, into: columns.data, precision)
        columnsOf.record(input)
        return columns
    }

    /// phaseWeights[(a, b, o), (py, px, c)] = weight[o, c, 3 − py − 2a, 3 − px − 2b], in `precision`, made
    /// again only when the weight changed.
    private func phaseWeights(of weight: Tensor) -> Tensor {
        if phaseWeightsOf.matches(weight) { return phaseWeights }
        precondition(weight.format == nil, "weights stay plain")
        let outputs = geometry.outChannels, channels = geometry.inChannels
        let source = weight.data, target = phaseWeightsPlain.data
        for a in 0..<2 {
            for b in 0..<2 {
                for o in 0..<outputs {
                    let row = target + ((a * 2 + b) * outputs + o) * 4 * channels
                    for py in 0..<2 {
                        for px in 0..<2 {
                            let ky = phaseTap(py, a), kx = phaseTap(px, b), column = row + (py * 2 + px) * channels
                            for c in 0..<channels { column[c] = source[((o * channels + c) * 4 + ky) * 4 + kx] }
                        }
                    }
                }
            }
        }
        Reorders.run(from: .plain(phaseWeightsPlain.shape), target, to: phaseWeightsMatrix, phaseWeights.data)
        phaseWeightsOf.record(weight)
        return phaseWeights
    }

    /// inputGradient[n, 2m + py, 2l + px, c] = phases[(n, m + py, l + px), (py, px, c)].
    private func phasesToImage(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>) {
        let g = geometry, channels = g.inChannels, originRows = phaseGeometry.outHeight, originColumns = phaseGeometry.outWidth
        DispatchQueue.concurrentPerform(iterations: min(2, g.batch)) { part in
            for n in stride(from: part, to: g.batch, by: 2) {
                for iy in 0..<g.inHeight {
                    let py = iy % 2, oy = iy / 2 + py
                    for ix in 0..<g.inWidth {
                        let px = ix % 2, ox = ix / 2 + px
                        let from = source + ((n * originRows + oy) * originColumns + ox) * 4 * channels + (py * 2 + px) * channels
                        (target + ((n * g.inHeight + iy) * g.inWidth + ix) * channels).update(from: from, count: channels)
                    }
                }
            }
        }
    }
}

/// columns[(n, oy, ox), (ky, kx, c)] = image[n, oy·s − p + ky, ox·s − p + kx, c] (zero outside),
/// for a channels-last image of `precision` elements; split over the batch between two threads.
private func imageToColumns(_ g: ConvolutionGeometry, _ image: UnsafeMutablePointer<Float>, into columns: UnsafeMutablePointer<Float>,
                            _ precision: Precision) {
    switch precision {
    case .bf16: imageToColumns(g, image, into: columns, as: UInt16.self)
    case .fp32: imageToColumns(g, image, into: columns, as: Float.self)
    }
}

private func imageToColumns<Element: AdditiveArithmetic>(_ g: ConvolutionGeometry, _ image: UnsafeMutablePointer<Float>,
                                                         into columns: UnsafeMutablePointer<Float>, as _: Element.Type) {
    let source = UnsafeRawPointer(image).assumingMemoryBound(to: Element.self)
    let target = UnsafeMutableRawPointer(columns).assumingMemoryBound(to: Element.self)
    let channels = g.inChannels, k = g.kernel, window = k * k * channels
    DispatchQueue.concurrentPerform(iterations: min(2, g.batch)) { part in
        for n in stride(from: part, to: g.batch, by: 2) {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    let row = target + ((n * g.outHeight + oy) * g.outWidth + ox) * window
                    // Taps kx in across read input columns x0 + kx.
                    let x0 = ox * g.stride - g.padding, across = max(0, -x0)..<min(k, g.inWidth - x0)
                    for ky in 0..<k {
                        let line = row + ky * k * channels, iy = oy * g.stride - g.padding + ky
                        guard iy >= 0 && iy < g.inHeight, !across.isEmpty else {
                            line.update(repeating: .zero, count: k * channels)
                            continue
                        }
                        line.update(repeating: .zero, count: across.lowerBound * channels)
                        (line + across.upperBound * channels).update(repeating: .zero, count: (k - across.upperBound) * channels)
                        (line + across.lowerBound * channels).update(from: source + ((n * g.inHeight + iy) * g.inWidth + x0 + across.lowerBound) * channels,
                                                                     count: across.count * channels)
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// Storage for a plain matrix or image of `shape` with `type` elements (bf16: half as many
    /// Float slots).
    static func matrix(_ shape: [Int], _ type: Precision) -> Tensor {
        let tensor = Tensor(shape: [1], zeros: false)
        tensor.adopt(shape: shape, format: .plain(shape, type))
        return tensor
    }
}

/// The kernel tap (kernel 4, stride 2, padding 1) that takes an input-gradient pixel of `parity`
/// from the output-gradient row or column `offset` ∈ {0, 1} of its 2×2 window: 3 − parity − 2·offset.
@inline(__always)
func phaseTap(_ parity: Int, _ offset: Int) -> Int { 3 - parity - 2 * offset }
