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

        let window = [g.batch, channels, g.outHeight, 1, g.outWidth, 1]
        let spread = MemoryFormat.plain(phaseShape).reshaped([phaseShape[0], phaseShape[1], phaseShape[2], 1, phaseShape[3], 1])!
        views = zip(0..<4, phasePixels(in: result, g)).map { phase, pixels in
            (spread.window(window, at: [0, phase * channels, phase / 2, 0, phase % 2, 0])!, pixels)
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

/// Backward-data of a kernel-4, stride-2, padding-1 convolution in bf16 as four of oneDNN's
/// *forward* convolutions, one per phase of the input gradient, with no product wasted:
///   inputGradient[n, c, 2i + py, 2j + px] = Σ_{o,a,b} outputGradient[n, o, i − 1 + py + a, j − 1 + px + b]
///                                           · weight[o, c, 3 − py − 2a, 3 − px − 2b]
/// is a 2×2, stride-1 convolution from O channels to C, padded 1 − p before and p after each axis
/// (p the phase's parity there), [N, C, OH, OW]; a reorder puts it on every other pixel of the
/// channel-blocked input gradient. Where the output is 4×4 (D's last stride-2 layer, G's first
/// transposed one), oneDNN 2.6's bf16 backward-data runs at 0.7× its forward's rate and these at
/// the forward's (a C harness, Zen 4, batch 64: 256→512 10.6 → 7.4 ms a call, 128→256 2.4 → 1.9);
/// on larger outputs the two are level. `PhaseBackwardData` is the few-channel case as one
/// convolution to 4C channels, over (OH + 1) × (OW + 1) windows: on a 4×4 output, 25/16 of the products.
final class SplitPhaseBackwardData {
    let geometry: ConvolutionGeometry
    /// The layout the gradient is read in.
    let gradientFormat: MemoryFormat
    private let primitives: [Primitive]
    private let phases: [Tensor]
    private let phaseWeights: [Tensor]
    private var phaseWeightsOf = TensorStamp()
    /// One tap of the plain weight seen as [C, O, 1, 1], and for each phase its four taps: where in
    /// the plain weight each starts, and where it goes in the phase's weights.
    private let tap: MemoryFormat
    private let taps: [[(offset: Int, to: MemoryFormat)]]
    private let result: MemoryFormat
    /// A phase's result seen as [N, C, OH, 1, OW, 1], and where each phase lands in the result.
    private let spread: MemoryFormat
    private let pixels: [MemoryFormat]

    /// Kernel 4, stride 2, padding 1 from an 8×8 input; channels in whole blocks of 16.
    static func applies(to g: ConvolutionGeometry) -> Bool {
        g.kernel == 4 && g.stride == 2 && g.padding == 1 && g.inHeight == 8 && g.inWidth == 8
            && g.inChannels % 16 == 0 && g.outChannels % 16 == 0
    }

    /// The input gradient is written channel-blocked, with elements of `type`.
    init(_ geometry: ConvolutionGeometry, type: Precision) {
        precondition(SplitPhaseBackwardData.applies(to: geometry), "not a split-phase geometry: \(geometry)")
        self.geometry = geometry
        let g = geometry, phaseShape = [g.batch, g.inChannels, g.outHeight, g.outWidth]
        let gradient = MemoryFormat.channelBlocked(g.outputShape, .bf16)
        gradientFormat = gradient
        primitives = (0..<4).map { phase in
            let py = phase / 2, px = phase % 2
            return Primitive.unitStrideConvolution(source: gradient, weights: .any([g.inChannels, g.outChannels, 2, 2], .bf16),
                                                   destination: .channelBlocked(phaseShape, type), padding: [1 - py, 1 - px], paddingAfter: [py, px])
        }
        phases = primitives.map { primitive in
            let phase = Tensor(shape: phaseShape, zeros: false)
            phase.adopt(shape: phaseShape, format: primitive.format(.destination))
            return phase
        }
        phaseWeights = primitives.map { primitive in
            let shape = [g.inChannels, g.outChannels, 2, 2], weights = Tensor(shape: shape, zeros: false)
            weights.adopt(shape: shape, format: primitive.format(.weights))
            return weights
        }
        tap = MemoryFormat.strided([g.inChannels, g.outChannels, 1, 1], strides: [16, g.inChannels * 16, 1, 1])
        taps = zip(0..<4, primitives).map { phase, primitive in
            (0..<4).map { ab in
                let a = ab / 2, b = ab % 2
                return (phaseTap(phase / 2, a) * 4 + phaseTap(phase % 2, b),
                        primitive.format(.weights).window([g.inChannels, g.outChannels, 1, 1], at: [0, 0, a, b])!)
            }
        }
        result = .channelBlocked(g.inputShape, type)
        spread = MemoryFormat.channelBlocked(phaseShape, type).reshaped([g.batch, g.inChannels, g.outHeight, 1, g.outWidth, 1])!
        pixels = phasePixels(in: result, g)
    }

    /// `gradient` in `gradientFormat`; `weight` plain [O, C, 4, 4].
    func run(gradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        updatePhaseWeights(weight)
        inputGradient.adopt(shape: geometry.inputShape, format: result)
        for (phase, primitive) in primitives.enumerated() {
            primitive.execute([(Argument.source, gradient.data, gradientFormat),
                               (Argument.weights, phaseWeights[phase].data, primitive.format(.weights)),
                               (Argument.destination, phases[phase].data, primitive.format(.destination))])
            Reorders.run(from: spread, phases[phase].data, to: pixels[phase], inputGradient.data)
        }
        inputGradient.markModified()
    }

    /// phaseWeights[(py, px)][c, o, a, b] = weight[o, c, 3 − py − 2a, 3 − px − 2b] in the primitives'
    /// layouts (bf16), again only when the weight changed: one reorder a tap, since oneDNN
    /// describes no reversed axis.
    private func updatePhaseWeights(_ weight: Tensor) {
        precondition(weight.format == nil, "weights stay plain")
        guard !phaseWeightsOf.matches(weight) else { return }
        for (phase, phaseTaps) in taps.enumerated() {
            for (offset, target) in phaseTaps { Reorders.run(from: tap, weight.data + offset, to: target, phaseWeights[phase].data) }
        }
        phaseWeightsOf.record(weight)
    }
}

/// Where phase (py, px) of a stride-2 convolution's input gradient lies in `layout` (of the input's
/// shape), in the order (0, 0), (0, 1), (1, 0), (1, 1): its pixels (2i + py, 2j + px), seen as
/// [N, C, OH, 1, OW, 1] (rows and columns split into position and parity).
func phasePixels(in layout: MemoryFormat, _ g: ConvolutionGeometry) -> [MemoryFormat] {
    let pixels = layout.reshaped([g.batch, g.inChannels, g.outHeight, 2, g.outWidth, 2])!
    let window = [g.batch, g.inChannels, g.outHeight, 1, g.outWidth, 1]
    return (0..<4).map { pixels.window(window, at: [0, 0, 0, $0 / 2, 0, $0 % 2])! }
}
