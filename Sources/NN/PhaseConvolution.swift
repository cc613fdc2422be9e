/// Backward-data of a kernel-4, stride-2, padding-1 convolution with few input channels, in bf16,
/// as oneDNN's *forward* convolution split by output phase (sub-pixel, as
/// `ColumnConvolutionKernels`' backward-data, with no im2col). The input gradient's pixel
/// (2u − py, 2v − px) is phase (py, px) of a 2×2, stride-1, padding-1 convolution of the output
/// gradient from O to 4C channels,
///   phases[n, (py, px, c), u, v] = Σ_{o,a,b} outputGradient[n, o, u − 1 + a, v − 1 + b]
///                                            · weight[o, c, 3 − py − 2a, 3 − px − 2b]
/// over u ∈ [0, OH], v ∈ [0, OW]; four reorders then copy each phase's rows u ∈ [py, py + OH) and
/// columns v ∈ [px, px + OW) to every other pixel of the plain input gradient. These are D's first
/// layer's input gradient and G's last layer's forward (an image), where oneDNN's direct
/// backward-data is slow and the fp32 GEMM + col2im it replaces took three times as long.
final class PhaseBackwardData {
    let geometry: ConvolutionGeometry
    /// The layout the gradient is read in (the forward primitive's choice).
    var gradientFormat: MemoryFormat { primitive.format(.source) }

    private let primitive: Primitive
    private let phaseShape: [Int]
    private let result: MemoryFormat
    /// Each phase's part of the plain phases and the pixels of the result it lands on.
    private let views: [(from: MemoryFormat, to: MemoryFormat)]
    private let phases: Tensor
    private var plainPhases: Tensor?
    private var phaseWeights = ReorderedWeight()
    private let phaseWeightsPlain: Tensor
    private var phaseWeightsOf = TensorStamp()

    /// Kernel 4, stride 2, padding 1 on an even input with at most 4 channels.
    static func applies(to g: ConvolutionGeometry) -> Bool {
        g.kernel == 4 && g.stride == 2 && g.padding == 1 && g.inHeight == 2 * g.outHeight && g.inWidth == 2 * g.outWidth
            && g.inChannels <= ColumnBackwardData.maximumInputChannels
    }

    /// The input gradient is written plain, with elements of `type`.
    init(_ geometry: ConvolutionGeometry, type: Precision) {
        precondition(PhaseBackwardData.applies(to: geometry), "not a phase-split geometry: \(geometry)")
        self.geometry = geometry
        let g = geometry, channels = g.inChannels
        phaseShape = [g.batch, 4 * channels, g.outHeight + 1, g.outWidth + 1]
        primitive = Primitive.convolutionForward(source: .any(g.outputShape, .bf16), weights: .any([4 * channels, g.outChannels, 2, 2], .bf16),
                                                 destination: .any(phaseShape), stride: 1, padding: 1)
        phases = Tensor(shape: phaseShape, zeros: false)
        phases.adopt(shape: phaseShape, format: primitive.format(.destination))
        phaseWeightsPlain = Tensor(shape: [4 * channels, g.outChannels, 2, 2], zeros: false)
        result = .plain(g.inputShape, type)

        // Rows and columns seen as (position, parity): a phase fills one parity of each.
        let window = [g.batch, channels, g.outHeight, 1, g.outWidth, 1]
        let spread = MemoryFormat.plain(phaseShape).reshaped([phaseShape[0], phaseShape[1], phaseShape[2], 1, phaseShape[3], 1])!
        let pixels = result.reshaped([g.batch, channels, g.outHeight, 2, g.outWidth, 2])!
        views = (0..<4).map { phase in
            let py = phase / 2, px = phase % 2
            return (spread.window(window, at: [0, phase * channels, py, 0, px, 0])!, pixels.window(window, at: [0, 0, 0, py, 0, px])!)
        }
    }

    /// `gradient` in `gradientFormat`; `weight` plain [O, C, 4, 4].
    func run(gradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        primitive.execute([(Argument.source, gradient.data, gradientFormat),
                           (Argument.weights, phaseWeights(of: weight).data, primitive.format(.weights)),
                           (Argument.destination, phases.data, primitive.format(.destination))])
        let source = phases.converted(to: nil, scratch: &plainPhases)
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
                            for b in 0..<2 { taps[a * 2 + b] = source[((o * channels + c) * 4 + phaseTap(py, a)) * 4 + phaseTap(px, b)] }
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
