import Foundation

/// BatchNorm2d with PyTorch's semantics. In training, each channel is normalised with its batch
/// mean and biased variance, and the running statistics move by `momentum` (the running variance
/// takes the unbiased batch variance); in evaluation the running statistics are used.
///   input, output [N, C, H, W]; weight (γ) and bias (β) [C]
public final class BatchNorm2d: Layer {
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Tensor
    public let runningVariance: Tensor
    public let channels: Int
    public let name: String
    /// Training forwards so far (PyTorch's num_batches_tracked).
    public var batchesTracked: Int64 = 0
    public var momentum: Float = 0.1
    public var epsilon: Float = 1e-5
    public var backend: Backend
    public var isTraining = true
    /// False while the same batch is passed again for a gradient penalty: batch statistics are
    /// used, the running ones stay as they were.
    public var updatesRunningStatistics = true
    public var needsInputGradient = true
    public var computesParameterGradients = true

    private var input: Tensor?
    private var output: Tensor?
    private var inputGradient: Tensor?
    private var fast = FastState()
    /// Per channel, saved by a training forward for backward.
    private var mean: [Float]
    private var inverseStandardDeviation: [Float]

    public init(_ channels: Int, backend: Backend = .reference, name: String = "bn") {
        self.channels = channels
        self.name = name
        self.backend = backend
        weight = Parameter(name: "\(name).weight", shape: [channels])
        bias = Parameter(name: "\(name).bias", shape: [channels])
        weight.value.fill(1)
        runningMean = Tensor(shape: [channels])
        runningVariance = Tensor(shape: [channels])
        runningVariance.fill(1)
        mean = [Float](repeating: 0, count: channels)
        inverseStandardDeviation = [Float](repeating: 1, count: channels)
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.shape.count == 4 && input.shape[1] == channels, "BatchNorm2d expects [N, \(channels), H, W], got \(input.shape)")
        if isTraining && updatesRunningStatistics { batchesTracked += 1 }
        if backend == .fast { return fastForward(input) }
        precondition(input.format == nil, "the reference path takes plain tensors")
        self.input = input
        let output = Tensor.reuse(self.output, shape: input.shape)
        self.output = output
        let batch = input.shape[0], plane = input.shape[2] * input.shape[3], count = batch * plane
        for c in 0..<channels {
            var channelMean: Float, inverse: Float
            if isTraining {
                var sum = 0.0, sumSquares = 0.0
                for n in 0..<batch {
                    let base = input.data + (n * channels + c) * plane
                    for k in 0..<plane { let v = Double(base[k]); sum += v; sumSquares += v * v }
                }
                let meanValue = sum / Double(count)
                let variance = max(sumSquares / Double(count) - meanValue * meanValue, 0)
                channelMean = Float(meanValue)
                inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
                let unbiased = count > 1 ? variance * Double(count) / Double(count - 1) : variance
                if updatesRunningStatistics {
                    runningMean[c] = (1 - momentum) * runningMean[c] + momentum * channelMean
                    runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * Float(unbiased)
                }
                mean[c] = channelMean
                inverseStandardDeviation[c] = inverse
            } else {
                channelMean = runningMean[c]
                inverse = 1 / (runningVariance[c] + epsilon).squareRoot()
            }
            // y = γ·(x − μ)·σ⁻¹ + β  as  y = x·scale + shift
            let scale = weight.value[c] * inverse, shift = bias.value[c] - channelMean * scale
            for n in 0..<batch {
                let source = input.data + (n * channels + c) * plane, target = output.data + (n * channels + c) * plane
                for k in 0..<plane { target[k] = source[k] * scale + shift }
            }
        }
        return output
    }

    /// With x̂ = (x − μ)σ⁻¹ and g = dy·γ over the M = N·H·W values of a channel:
    ///   dγ = Σ dy·x̂,  dβ = Σ dy,  dx = σ⁻¹·(g − mean(g) − x̂·mean(g·x̂))
    /// (evaluation mode: dx = dy·γ·σ⁻¹, the statistics being constants).
    public func backward(_ outputGradient: Tensor) -> Tensor? {
        if backend == .fast { return fastBackward(outputGradient) }
        guard let input else { preconditionFailure("backward before forward") }
        precondition(outputGradient.format == nil, "the reference path takes plain tensors")
        let batch = input.shape[0], plane = input.shape[2] * input.shape[3], count = Double(batch * plane)
        let inputGradient = needsInputGradient ? Tensor.reuse(self.inputGradient, shape: input.shape) : nil
        self.inputGradient = inputGradient ?? self.inputGradient
        for c in 0..<channels {
            let channelMean = isTraining ? mean[c] : runningMean[c]
            let inverse = isTraining ? inverseStandardDeviation[c] : 1 / (runningVariance[c] + epsilon).squareRoot()
            var sumGradient = 0.0, sumGradientXHat = 0.0
            for n in 0..<batch {
                let x = input.data + (n * channels + c) * plane, dy = outputGradient.data + (n * channels + c) * plane
                for k in 0..<plane {
                    sumGradient += Double(dy[k])
                    sumGradientXHat += Double(dy[k]) * Double((x[k] - channelMean) * inverse)
                }
            }
            if computesParameterGradients {
                weight.gradient[c] += Float(sumGradientXHat)
                bias.gradient[c] += Float(sumGradient)
            }
            guard let inputGradient else { continue }
            let gamma = weight.value[c]
            let meanG = Float(sumGradient / count) * gamma, meanGXHat = Float(sumGradientXHat / count) * gamma
            for n in 0..<batch {
                let offset = (n * channels + c) * plane
                let x = input.data + offset, dy = outputGradient.data + offset, dx = inputGradient.data + offset
                for k in 0..<plane {
                    if isTraining {
                        let xHat = (x[k] - channelMean) * inverse
                        dx[k] = inverse * (dy[k] * gamma - meanG - xHat * meanGXHat)
                    } else {
                        dx[k] = dy[k] * gamma * inverse
                    }
                }
            }
        }
        return inputGradient
    }

    // The fast path: oneDNN's batch normalisation on whatever layout the input has (nChw8c
    // after a fast convolution, where it runs 4-5x faster than on plain NCHW).

    private struct FastState {
        var layout: MemoryFormat?
        var training: Primitive?
        var inference: Primitive?
        var backward: Primitive?
        var batchMean: Tensor?
        var batchVariance: Tensor?
        var gradientScratch: Tensor?
        var scaleGradient: Tensor?
        var shiftGradient: Tensor?
    }

    private func fastPrimitives(for layout: MemoryFormat) {
        guard fast.layout != layout else { return }
        fast = FastState(layout: layout)
        fast.batchMean = Tensor(shape: [channels])
        fast.batchVariance = Tensor(shape: [channels])
        fast.scaleGradient = Tensor(shape: [channels])
        fast.shiftGradient = Tensor(shape: [channels])
    }

    private func fastForward(_ input: Tensor) -> Tensor {
        let layout = input.format ?? MemoryFormat.plain(input.shape)
        fastPrimitives(for: layout)
        self.input = input
        let output = Tensor.reuse(self.output, shape: input.shape, format: input.format)
        self.output = output
        let statistics = MemoryFormat.plain([channels])
        if isTraining {
            if fast.training == nil { fast.training = Primitive.batchNormalizationForward(data: layout, epsilon: epsilon, globalStatistics: false) }
            let mean = fast.batchMean!, variance = fast.batchVariance!
            fast.training!.execute([(Argument.source, input.data, layout), (Argument.destination, output.data, layout),
                                    (Argument.scale, weight.value.data, statistics), (Argument.shift, bias.value.data, statistics),
                                    (Argument.mean, mean.data, statistics), (Argument.variance, variance.data, statistics)])
            let count = Float(input.shape[0] * input.shape[2] * input.shape[3])
            let unbiasing = count > 1 ? count / (count - 1) : 1
            for c in 0..<channels where updatesRunningStatistics {
                runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c]
                runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * variance[c] * unbiasing
            }
        } else {
            if fast.inference == nil { fast.inference = Primitive.batchNormalizationForward(data: layout, epsilon: epsilon, globalStatistics: true) }
            fast.inference!.execute([(Argument.source, input.data, layout), (Argument.destination, output.data, layout),
                                     (Argument.scale, weight.value.data, statistics), (Argument.shift, bias.value.data, statistics),
                                     (Argument.mean, runningMean.data, statistics), (Argument.variance, runningVariance.data, statistics)])
        }
        return output
    }

    private func fastBackward(_ outputGradient: Tensor) -> Tensor? {
        guard let input, let layout = fast.layout else { preconditionFailure("backward before forward") }
        precondition(isTraining, "the fast path back-propagates batch normalisation in training mode only")
        if fast.backward == nil {
            let hint = fast.training ?? Primitive.batchNormalizationForward(data: layout, epsilon: epsilon, globalStatistics: false)
            fast.backward = Primitive.batchNormalizationBackward(data: layout, epsilon: epsilon, hint: hint)
        }
        let gradient = outputGradient.converted(to: input.format, scratch: &fast.gradientScratch)
        let inputGradient = Tensor.reuse(self.inputGradient, shape: input.shape, format: input.format)
        self.inputGradient = inputGradient
        let statistics = MemoryFormat.plain([channels])
        let scaleGradient = fast.scaleGradient!, shiftGradient = fast.shiftGradient!
        fast.backward!.execute([(Argument.source, input.data, layout), (Argument.mean, fast.batchMean!.data, statistics),
                                (Argument.variance, fast.batchVariance!.data, statistics),
                                (Argument.destinationGradient, gradient.data, layout), (Argument.scale, weight.value.data, statistics),
                                (Argument.shift, bias.value.data, statistics),
                                (Argument.sourceGradient, inputGradient.data, layout),
                                (Argument.scaleGradient, scaleGradient.data, statistics), (Argument.shiftGradient, shiftGradient.data, statistics)])
        if computesParameterGradients {
            for c in 0..<channels {
                weight.gradient[c] += scaleGradient[c]
                bias.gradient[c] += shiftGradient[c]
            }
        }
        return inputGradient
    }
}
