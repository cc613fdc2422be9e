/// Backward-data of a kernel-4, stride-2, padding-1 convolution in bf16 as oneDNN's *forward*
/// convolution, split by output phase (sub-pixel, as `ColumnConvolutionKernels`' backward-data,
/// with no im2col). The input gradient's pixel (2u − py, 2v − px) is phase (py, px) of a 2×2,
/// stride-1, padding-1 convolution of the output gradient from O to 4C channels:
///   phases[n, (py, px, c), u, v] = Σ_{o,a,b} outputGradient[n, o, u − 1 + a, v − 1 + b]
///                                            · weight[o, c, 3 − py − 2a, 3 − px − 2b]
/// over u ∈ [0, OH], v ∈ [0, OW]; four reorders then copy each phase's rows u ∈ [py, py + OH) and
/// columns v ∈ [px, px + OW) to every other pixel of the input gradient, in the layout its reader
/// wants. oneDNN 2.6's bf16 forward kernel runs this at 600+ GFLOP/s where its backward-data runs
/// at 300 (a 4×4 output: D's 256→512 layer, G's first transposed one), and on few input
/// channels (D's first layer's input gradient, G's last layer's forward) the whole pass takes
/// a fifth of the GEMM and col2im it replaces.
final class PhaseBackwardData {
    let geometry: ConvolutionGeometry
    /// The layout the gradient is read in (the forward primitive's choice).
    var gradientFormat: MemoryFormat { primitive.format(.source) }

    private let primitive: Primitive
    private let phaseShape: [Int]
    private let result: MemoryFormat
    /// Each phase's part of the primitive's output (or of its plain copy, where the layout it chose
    /// cannot be cut at a phase's channels) and the pixels of the result it lands on.
    private let views: [(from: MemoryFormat, to: MemoryFormat)]
    private let viewsReadPlainCopy: Bool
    private let phases: Tensor
    private lazy var plainPhases = Tensor(shape: phaseShape, zeros: false)
    private var phaseWeights = ReorderedWeight()
    private let phaseWeightsPlain: Tensor
    private var phaseWeightsOf = TensorStamp()

    /// kernel 4, stride 2, padding 1 on an even input: where measured faster than oneDNN's
    /// backward-data or the few-channel GEMM.
    static func applies(to g: ConvolutionGeometry) -> Bool {
        g.kernel == 4 && g.stride == 2 && g.padding == 1 && g.inHeight == 2 * g.outHeight && g.inWidth == 2 * g.outWidth
            && (g.inChannels <= ColumnBackwardData.maximumInputChannels || g.outHeight * g.outWidth <= 16)
    }

    /// `preferred`: the input gradient's layout and element type, where oneDNN can address every
    /// other row of it (else channels-last of that type).
    init(_ geometry: ConvolutionGeometry, preferred: MemoryFormat) {
        precondition(PhaseBackwardData.applies(to: geometry), "not a phase-split geometry: \(geometry)")
        self.geometry = geometry
        let g = geometry, channels = g.inChannels
        phaseShape = [g.batch, 4 * channels, g.outHeight + 1, g.outWidth + 1]
        primitive = Primitive.convolutionForward(source: .any(g.outputShape, .bf16), weights: .any([4 * channels, g.outChannels, 2, 2], .bf16),
                                                 destination: .any(phaseShape), stride: 1, padding: 1)
        phases = Tensor(shape: phaseShape, zeros: false)
        phases.adopt(shape: phaseShape, format: primitive.format(.destination))
        phaseWeightsPlain = Tensor(shape: [4 * channels, g.outChannels, 2, 2], zeros: false)

        // Rows and columns split in (position, parity): a phase is one parity of each.
        let split = [g.batch, channels, g.outHeight, 2, g.outWidth, 2], phaseWindow = [g.batch, channels, g.outHeight, 1, g.outWidth, 1]
        let padded = phaseShape[0..<2] + [phaseShape[2], 1, phaseShape[3], 1]
        func cuts(of layout: MemoryFormat) -> [MemoryFormat]? {
            guard let spread = layout.reshaped(Array(padded)) else { return nil }
            let parts = (0..<4).map { phase in spread.window(phaseWindow, at: [0, phase * channels, phase / 2, 0, phase % 2, 0]) }
            return parts.allSatisfy { $0 != nil } ? parts.map { $0! } : nil
        }
        let fallback = MemoryFormat.channelsLast(g.inputShape, preferred.precision)
        result = preferred.reshaped(split) == nil ? fallback : preferred
        let pixels = result.reshaped(split)!
        let targets = (0..<4).map { phase in pixels.window(phaseWindow, at: [0, 0, 0, phase / 2, 0, phase % 2])! }
        if let direct = cuts(of: primitive.format(.destination)) {
            views = Array(zip(direct, targets))
            viewsReadPlainCopy = false
        } else {
            views = Array(zip(cuts(of: .plain(phaseShape))!, targets))
            viewsReadPlainCopy = true
        }
    }

    /// `gradient` in `gradientFormat`; `weight` plain [O, C, 4, 4].
    func run(gradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        primitive.execute([(Argument.source, gradient.data, gradientFormat),
                           (Argument.weights, phaseWeights(of: weight).data, primitive.format(.weights)),
                           (Argument.destination, phases.data, primitive.format(.destination))])
        var source = phases
        if viewsReadPlainCopy {
            Reorders.run(from: primitive.format(.destination), phases.data, to: .plain(phaseShape), plainPhases.data)
            source = plainPhases
        }
        inputGradient.adopt(shape: geometry.inputShape, format: result)
        for (from, to) in views { Reorders.run(from: from, source.data, to: to, inputGradient.data) }
        inputGradient.markModified()
    }

    /// phaseWeights[(py, px, c), o, a, b] = weight[o, c, 3 − py − 2a, 3 − px − 2b], reordered for the
    /// primitive (bf16) again only when the weight changed.
    private func phaseWeights(of weight: Tensor) -> Tensor {
        precondition(weight.format == nil, "weights stay plain")
        if !phaseWeightsOf.matches(weight) {
            let outputs = geometry.outChannels, channels = geometry.inChannels
            let source = weight.data, target = phaseWeightsPlain.data
            for phase in 0..<4 {
                let py = phase / 2, px = phase % 2
                for c in 0..<channels {
                    for o in 0..<outputs {
                        let taps = target + ((phase * channels + c) * outputs + o) * 4
                        for a in 0..<2 {
                            for b in 0..<2 { taps[a * 2 + b] = source[((o * channels + c) * 4 + 3 - py - 2 * a) * 4 + 3 - px - 2 * b] }
                        }
                    }
                }
            }
            phaseWeightsPlain.markModified()
            phaseWeightsOf.record(weight)
        }
        return phaseWeights.of(phaseWeightsPlain, in: primitive.format(.weights))
    }
}
