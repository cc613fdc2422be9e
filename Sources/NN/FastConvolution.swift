/// Convolution passes on oneDNN primitives. Every primitive is created with all layouts left to
/// oneDNN (`any`), so it picks its fastest (blocked) ones; an operand is reordered only when it
/// arrives in another layout, which in a chain of fast layers is rare, since the layout one
/// primitive writes is the one the next prefers. Weights stay plain (PyTorch's layout) for the
/// optimiser and checkpoints, and are reordered per pass: they are small next to activations.
final class DNNLConvolutionKernels: ConvolutionKernels {
    let geometry: ConvolutionGeometry
    private lazy var forwardPrimitive = Primitive.convolutionForward(
        source: .any(geometry.inputShape), weights: .any(geometry.weightShape), destination: .any(geometry.outputShape),
        stride: geometry.stride, padding: geometry.padding)
    private lazy var dataPrimitive = Primitive.convolutionBackwardData(
        sourceGradient: .any(geometry.inputShape), weights: .any(geometry.weightShape), destinationGradient: .any(geometry.outputShape),
        stride: geometry.stride, padding: geometry.padding, hint: forwardPrimitive)
    private lazy var weightsPrimitive = Primitive.convolutionBackwardWeights(
        source: .any(geometry.inputShape), weightsGradient: .any(geometry.weightShape), destinationGradient: .any(geometry.outputShape),
        stride: geometry.stride, padding: geometry.padding, hint: forwardPrimitive)

    // Operands reordered to the layouts a primitive wants, kept between calls.
    private var inputScratch: Tensor?
    private var gradientScratch: Tensor?
    private var forwardWeights: Tensor?
    private var dataWeights: Tensor?
    private var blockedWeightGradient: Tensor?
    private var plainWeightGradient: Tensor?

    init(_ geometry: ConvolutionGeometry) { self.geometry = geometry }

    /// Implementation names, for `--profile`.
    var implementations: [String] {
        [forwardPrimitive.implementation, dataPrimitive.implementation, weightsPrimitive.implementation]
    }

    func forward(input: Tensor, weight: Tensor, output: Tensor) {
        let primitive = forwardPrimitive
        let source = input.converted(to: primitive.format(.source), scratch: &inputScratch)
        let weights = weight.converted(to: primitive.format(.weights), scratch: &forwardWeights)
        output.adopt(shape: geometry.outputShape, format: primitive.format(.destination))
        primitive.execute([(Argument.source, source.data, primitive.format(.source)),
                           (Argument.weights, weights.data, primitive.format(.weights)),
                           (Argument.destination, output.data, primitive.format(.destination))])
    }

    func backwardData(outputGradient: Tensor, weight: Tensor, inputGradient: Tensor) {
        let primitive = dataPrimitive
        let gradient = outputGradient.converted(to: primitive.format(.destinationGradient), scratch: &gradientScratch)
        let weights = weight.converted(to: primitive.format(.weights), scratch: &dataWeights)
        inputGradient.adopt(shape: geometry.inputShape, format: primitive.format(.sourceGradient))
        primitive.execute([(Argument.destinationGradient, gradient.data, primitive.format(.destinationGradient)),
                           (Argument.weights, weights.data, primitive.format(.weights)),
                           (Argument.sourceGradient, inputGradient.data, primitive.format(.sourceGradient))])
    }

    func backwardWeights(input: Tensor, outputGradient: Tensor, weightGradient: Tensor) {
        let primitive = weightsPrimitive
        let source = input.converted(to: primitive.format(.source), scratch: &inputScratch)
        let gradient = outputGradient.converted(to: primitive.format(.destinationGradient), scratch: &gradientScratch)
        let format = primitive.format(.weightsGradient)
        let blocked = Tensor.reuse(blockedWeightGradient, shape: geometry.weightShape, format: format)
        blockedWeightGradient = blocked
        primitive.execute([(Argument.source, source.data, primitive.format(.source)),
                           (Argument.destinationGradient, gradient.data, primitive.format(.destinationGradient)),
                           (Argument.weightsGradient, blocked.data, format)])
        // Accumulate, as every backward does.
        let plain = blocked.converted(to: nil, scratch: &plainWeightGradient)
        let target = weightGradient.data, source2 = plain.data
        for index in 0..<weightGradient.count { target[index] += source2[index] }
    }
}
