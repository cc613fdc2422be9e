import CDNNL
import Foundation

/// bf16 convolution passes as matrix products on oneDNN's matmul, for CPUs with AMX. oneDNN 2.6's
/// AMX convolutions run backward at 60–240 GFLOP/s on the DCGAN's shapes (slower than its fp32
/// kernels), while its AMX matmul runs the same products at 400–1,100. With P = N·OH·OW output
/// positions and the window W = k·k·C (in (ky, kx, c) order, so a window row is runs of C channels):
///   columns [P, W] = im2col(input)                      (bf16, channels-last input)
///   forward:          output [P, O]  = columns · weightᵀ           (output channels-last, fp32)
///   backward-weights: weightGradient [O, W] += outputGradientᵀ · columns
///   backward-data:    windows [P, W] = outputGradient · weight;  inputGradient = col2im(windows)
/// The weight [O, C, k, k] is used as [O, W] (OHWI), a bf16 copy made once per optimiser step.
/// Products accumulate in fp32 and every result is fp32, as in the direct path.
final class ColumnConvolutionKernels: ConvolutionKernels {
    let geometry: ConvolutionGeometry
    /// The layer is a transposed convolution: its forward is this kernel's backward-data.
    private let transposed: Bool
    private let positions: Int, window: Int

    private let sourceFormat: MemoryFormat, gradientFormat: MemoryFormat, weightFormat: MemoryFormat
    /// The matrices the products read and write: columns [P, W] and gradient [P, O] in bf16,
    /// weight [O, W] in bf16 and as weightᵀ [W, O], gradientᵀ [O, P]; fp32 [P, O], [P, W], [O, W].
    private let columnsMatrix: MemoryFormat, gradientMatrix: MemoryFormat, weightMatrix: MemoryFormat
    private let weightTransposed: MemoryFormat, gradientTransposed: MemoryFormat
    private let outputMatrix: MemoryFormat, windowsMatrix: MemoryFormat, weightGradientMatrix: MemoryFormat
    private lazy var forwardProduct = Primitive.matmul(a: columnsMatrix, b: weightTransposed, c: outputMatrix)
    private lazy var dataProduct = Primitive.matmul(a: gradientMatrix, b: weightMatrix, c: windowsMatrix)
    private lazy var weightsProduct = Primitive.matmul(a: gradientTransposed, b: columnsMatrix, c: weightGradientMatrix)

    private var sourceScratch: Tensor?
    private var gradientScratch: Tensor?
    private var gradientCopy = ConvertedOperand()
    private var bf16Weight = ReorderedWeight()
    private let columns: Tensor
    private var columnsOf: (tensor: Tensor, version: UInt64)?
    private lazy var windows = Tensor(shape: [positions, window], zeros: false)
    private lazy var blockedWeightGradient = Tensor(shape: geometry.weightShape, zeros: false)

    /// AMX present (oneDNN's effective ISA), and runs of channels long enough for the copies.
    static func applies(to geometry: ConvolutionGeometry, amx: Bool = ColumnConvolutionKernels.amxSupported) -> Bool {
        amx && geometry.inChannels >= 16 && geometry.outChannels >= 16 && !DenseConvolutionKernels.applies(to: geometry)
    }

    static var amxSupported: Bool {
        let amx = dnnl_cpu_isa_avx512_core_amx.rawValue
        return dnnl_get_effective_cpu_isa().rawValue & amx == amx
    }

    init(_ geometry: ConvolutionGeometry, transposed: Bool = false) {
        self.geometry = geometry
        self.transposed = transposed
        positions = geometry.batch * geometry.outHeight * geometry.outWidth
        window = geometry.kernel * geometry.kernel * geometry.inChannels
        let outputs = geometry.outChannels
        sourceFormat = .tagged(geometry.inputShape, dnnl_acdb, .bf16)
        gradientFormat = .tagged(geometry.outputShape, dnnl_acdb, .bf16)
        weightFormat = .tagged(geometry.weightShape, dnnl_acdb, .bf16)
        columnsMatrix = .tagged([positions, window], dnnl_ab, .bf16)
        gradientMatrix = .tagged([positions, outputs], dnnl_ab, .bf16)
        weightMatrix = .tagged([outputs, window], dnnl_ab, .bf16)
        weightTransposed = .strided([window, outputs], strides: [1, window], .bf16)
        gradientTransposed = .strided([outputs, positions], strides: [1, outputs], .bf16)
        outputMatrix = .plain([positions, outputs])
        windowsMatrix = .plain([positions, window])
        weightGradientMatrix = .plain([outputs, window])
        columns = Tensor(shape: [1], zeros: false)
        columns.adopt(shape: [positions, window], format: columnsMatrix)
    }

    func forward(input: Tensor, weight: Tensor, output: Tensor) {
        if !transposed { startCycle() }
        let columns = imageColumns(input)
        let weights = bf16Weight.of(weight, in: weightFormat)
        output.adopt(shape: geometry.outputShape, format: .channelsLast(geometry.outputShape))
        forwardProduct.execute([(Argument.source, columns.data, columnsMatrix), (Argument.weights, weights.data, weightTransposed),
                                (Argument.destination, output.data, outputMatrix)])
    }

    func backwardData(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        if transposed { startCycle() }
        let gradient = gradientCopy.of(outputGradient, in: gradientFormat, scratch: &gradientScratch)
        let weights = bf16Weight.of(weight, in: weightFormat)
        dataProduct.execute([(Argument.source, gradient.data, gradientMatrix), (Argument.weights, weights.data, weightMatrix),
                             (Argument.destination, windows.data, windowsMatrix)])
        inputGradient.adopt(shape: geometry.inputShape, format: .channelsLast(geometry.inputShape))
        columnsToImage(windows.data, into: inputGradient.data)
    }

    func backwardWeights(input: Tensor, outputGradient: Tensor, weightGradient: Tensor) {
        let columns = imageColumns(input)
        let gradient = gradientCopy.of(outputGradient, in: gradientFormat, scratch: &gradientScratch)
        let blocked = Tensor.reuse(blockedWeightGradient, shape: geometry.weightShape, format: .tagged(geometry.weightShape, dnnl_acdb))
        weightsProduct.execute([(Argument.source, gradient.data, gradientTransposed), (Argument.weights, columns.data, columnsMatrix),
                                (Argument.destination, blocked.data, weightGradientMatrix)])
        accumulate(blocked, into: weightGradient)
    }

    /// A layer's forward starts a cycle; within it the columns and the gradient's copy are reused
    /// while their tensors are unchanged (the layer contract, as in the direct path).
    private func startCycle() {
        columnsOf = nil
        gradientCopy = ConvertedOperand()
    }

    private func imageColumns(_ input: Tensor) -> Tensor {
        if DNNLConvolutionKernels.reusesOperands, let columnsOf, columnsOf.tensor === input, columnsOf.version == input.version { return columns }
        let source = input.converted(to: sourceFormat, scratch: &sourceScratch)
        imageToColumns(UnsafeRawPointer(source.data).assumingMemoryBound(to: UInt16.self),
                       into: UnsafeMutableRawPointer(columns.data).assumingMemoryBound(to: UInt16.self))
        columnsOf = (input, input.version)
        return columns
    }

    /// The valid taps of one window row: kx in lower..<upper reads input columns ix0 + kx.
    private func taps(_ origin: Int, extent: Int) -> Range<Int> {
        max(0, -origin)..<min(geometry.kernel, extent - origin)
    }

    /// columns[(n, oy, ox), (ky, kx, c)] = input[n, oy·s − p + ky, ox·s − p + kx, c] (zero outside),
    /// split over the batch between two threads.
    private func imageToColumns(_ source: UnsafePointer<UInt16>, into target: UnsafeMutablePointer<UInt16>) {
        let g = geometry, channels = g.inChannels, k = g.kernel, window = window
        DispatchQueue.concurrentPerform(iterations: min(2, g.batch)) { part in
            for n in stride(from: part, to: g.batch, by: 2) {
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        let row = target + ((n * g.outHeight + oy) * g.outWidth + ox) * window
                        let x0 = ox * g.stride - g.padding, across = taps(x0, extent: g.inWidth)
                        for ky in 0..<k {
                            let line = row + ky * k * channels, iy = oy * g.stride - g.padding + ky
                            guard iy >= 0 && iy < g.inHeight, !across.isEmpty else {
                                line.update(repeating: 0, count: k * channels)
                                continue
                            }
                            line.update(repeating: 0, count: across.lowerBound * channels)
                            (line + across.upperBound * channels).update(repeating: 0, count: (k - across.upperBound) * channels)
                            (line + across.lowerBound * channels).update(from: source + ((n * g.inHeight + iy) * g.inWidth + x0 + across.lowerBound) * channels,
                                                                         count: across.count * channels)
                        }
                    }
                }
            }
        }
    }

    /// inputGradient[n, iy, ix, c] = Σ over the windows that cover it of windows[(n, oy, ox), (ky, kx, c)].
    private func columnsToImage(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>) {
        let g = geometry, channels = g.inChannels, k = g.kernel, window = window
        DispatchQueue.concurrentPerform(iterations: min(2, g.batch)) { part in
            for n in stride(from: part, to: g.batch, by: 2) {
                let image = target + n * g.inHeight * g.inWidth * channels
                image.update(repeating: 0, count: g.inHeight * g.inWidth * channels)
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        let row = source + ((n * g.outHeight + oy) * g.outWidth + ox) * window
                        let x0 = ox * g.stride - g.padding, across = taps(x0, extent: g.inWidth)
                        for ky in 0..<k {
                            let iy = oy * g.stride - g.padding + ky
                            guard iy >= 0 && iy < g.inHeight, !across.isEmpty else { continue }
                            let from = row + (ky * k + across.lowerBound) * channels
                            let to = image + (iy * g.inWidth + x0 + across.lowerBound) * channels
                            for i in 0..<(across.count * channels) { to[i] += from[i] }
                        }
                    }
                }
            }
        }
    }
}
