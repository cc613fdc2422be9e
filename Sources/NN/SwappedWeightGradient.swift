/// The weight gradient of a convolution on oneDNN's *forward* convolution, the batch and channel
/// roles swapped. With s the stride and p the padding,
///   weightGradient[o, c, ky, kx] = Σ_{n,y,x} outputGradient[n, o, y, x] · input[n, c, s·y − p + ky, s·x − p + kx]
/// is the convolution of the input seen as C images of N channels [C, N, H, W] with the output
/// gradient seen as O filters [O, N, OH, OW] whose taps lie s apart (dilation s − 1), stride 1,
/// padding p before and whatever after makes the result k×k: [C, O, k, k], the weight gradient
/// with its first two axes swapped. The swapped views are oneDNN descriptors over the tensors as
/// they are; one reorder each puts them in the primitive's layouts (bf16), and one more adds the
/// result into the plain weight gradient. Used in bf16, where oneDNN 2.6's backward-weights kernel
/// runs DCGAN's stride-2 layers at half its forward kernel's rate or less.
final class SwappedWeightGradient {
    let geometry: ConvolutionGeometry
    private let primitive: Primitive
    /// The operands in the primitive's layouts, and the result, [C, O, k, k] fp32.
    private let source: Tensor, filters: Tensor, result: Tensor
    /// The result seen as [O, C, k, k].
    private let resultView: MemoryFormat

    /// Channel counts in whole blocks of 16 (no blocked-layout padding lands on the swapped batch
    /// axis), a square input (one far-side padding serves both axes), and that padding
    /// non-negative (it is not where the stride skips the last rows).
    static func applies(to g: ConvolutionGeometry) -> Bool {
        g.inChannels % 16 == 0 && g.outChannels % 16 == 0 && g.inChannels >= 16 && g.outChannels >= 16
            && g.inHeight == g.inWidth && paddingAfter(g) >= 0
    }

    /// Output k = H + p + after − ((OH − 1)·s + 1) + 1, solved for `after`.
    private static func paddingAfter(_ g: ConvolutionGeometry) -> Int {
        g.kernel + (g.outHeight - 1) * g.stride - g.inHeight - g.padding
    }

    init(_ geometry: ConvolutionGeometry) {
        precondition(SwappedWeightGradient.applies(to: geometry), "no swapped weight gradient for \(geometry)")
        self.geometry = geometry
        let g = geometry
        let sourceShape = [g.inChannels, g.batch, g.inHeight, g.inWidth]
        let filterShape = [g.outChannels, g.batch, g.outHeight, g.outWidth]
        let resultShape = [g.inChannels, g.outChannels, g.kernel, g.kernel]
        // The source channel-blocked: left to oneDNN 2.6 it picks channels-last and `brgconv`,
        // 1–2 ms a call slower on the deeper layers (a C harness, Zen 4).
        let after = SwappedWeightGradient.paddingAfter(g)
        primitive = Primitive.unitStrideConvolution(
            source: .channelBlocked(sourceShape, .bf16), weights: .any(filterShape, .bf16), destination: .any(resultShape),
            dilation: g.stride - 1, padding: [g.padding, g.padding], paddingAfter: [after, after])
        source = Tensor(shape: sourceShape, zeros: false)
        source.adopt(shape: sourceShape, format: primitive.format(.source))
        filters = Tensor(shape: filterShape, zeros: false)
        filters.adopt(shape: filterShape, format: primitive.format(.weights))
        result = Tensor(shape: resultShape, zeros: false)
        result.adopt(shape: resultShape, format: primitive.format(.destination))
        resultView = primitive.format(.destination).swappingFirstAxes()
    }

    /// weightGradient (plain [O, C, k, k]) += the gradient of this batch; `input` and
    /// `outputGradient` in any layout and element type.
    func run(input: Tensor, outputGradient: Tensor, weightGradient: Tensor) {
        Reorders.run(from: (input.format ?? .plain(input.shape)).swappingFirstAxes(), input.data,
                     to: primitive.format(.source), source.data)
        Reorders.run(from: (outputGradient.format ?? .plain(outputGradient.shape)).swappingFirstAxes(), outputGradient.data,
                     to: primitive.format(.weights), filters.data)
        primitive.execute([(Argument.source, source.data, primitive.format(.source)),
                           (Argument.weights, filters.data, primitive.format(.weights)),
                           (Argument.destination, result.data, primitive.format(.destination))])
        accumulate(result.data, in: resultView, into: weightGradient)
    }
}
