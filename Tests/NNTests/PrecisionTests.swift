import Formats
@testable import NN
import XCTest

/// bf16 convolutions against the fp32 fast path on the DCGAN's shapes: operands rounded to bf16
/// (8 significant bits) with fp32 accumulation keep each result within a few tenths of a percent
/// of the fp32 one, and never equal to it.
final class PrecisionTests: XCTestCase {
    private func randomize(_ tensor: Tensor, seed: UInt64, scale: Float = 1) {
        var random = SeededRandom(seed: seed)
        for i in 0..<tensor.count { tensor[i] = (random.nextUniform() * 2 - 1) * scale }
    }

    /// Root-mean-square difference over the reference's root-mean-square.
    private func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let x = a.values, y = b.values
        let difference = zip(x, y).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, norm = y.reduce(0) { $0 + $1 * $1 }
        return (difference / max(norm, 1e-30)).squareRoot()
    }

    private func assertBF16Close(_ bf16: Tensor, _ fp32: Tensor, _ label: String, mustDiffer: Bool = true,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(bf16.shape, fp32.shape, label, file: file, line: line)
        let error = relativeError(bf16, fp32)
        XCTAssertLessThan(error, 1e-2, "\(label): relative error \(error)", file: file, line: line)
        if mustDiffer { XCTAssertGreaterThan(error, 1e-5, "\(label): bf16 gave the fp32 result, so it did not run", file: file, line: line) }
    }

    /// Forward, input gradient and weight gradient of a bf16 layer against the same layer in fp32.
    private func compare(_ make: () -> Layer & PrecisionSelectable, inputShape: [Int], label: String) {
        let fp32 = make(), bf16 = make()
        bf16.precision = .bf16
        randomize(fp32.parameters[0].value, seed: 3, scale: 0.05)
        bf16.parameters[0].value.copy(from: fp32.parameters[0].value)
        let input = Tensor(shape: inputShape)
        randomize(input, seed: 4)
        assertBF16Close(bf16.forward(input), fp32.forward(input), "\(label) forward")
        let gradient = Tensor(shape: fp32.forward(input).shape)
        _ = bf16.forward(input)
        randomize(gradient, seed: 5)
        assertBF16Close(bf16.backward(gradient)!, fp32.backward(gradient)!, "\(label) input gradient")
        assertBF16Close(bf16.parameters[0].gradient, fp32.parameters[0].gradient, "\(label) weight gradient")

        // The bf16 copy of the weights follows a change of the fp32 master weights.
        for parameter in [fp32.parameters[0].value, bf16.parameters[0].value] {
            for i in 0..<parameter.count { parameter[i] *= -2 }
        }
        assertBF16Close(bf16.forward(input), fp32.forward(input), "\(label) forward after a weight change")
    }

    func testBF16ConvolutionsAgreeWithFP32OnTheDCGANShapes() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        // The discriminator's stride-2 convolutions at 64 px RGB and 32 px gray, and the generator's
        // transposed ones. The passes that write a few-channel image gradient or image (D's first
        // layer's input gradient, G's last layer's forward) run in bf16 too, as a phase-split
        // forward convolution (`PhaseBackwardData`).
        let convolutions: [(inC: Int, outC: Int, size: Int)] = [(3, 64, 64), (1, 64, 32), (64, 128, 32), (128, 256, 16), (256, 512, 8)]
        for c in convolutions {
            compare({ Conv2d(c.inC, c.outC, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast) },
                    inputShape: [4, c.inC, c.size, c.size], label: "conv \(c)")
        }
        let transposed: [(inC: Int, outC: Int, size: Int)] = [(512, 256, 4), (256, 128, 8), (128, 64, 16), (64, 3, 32), (64, 1, 16)]
        for c in transposed {
            compare({ ConvTranspose2d(c.inC, c.outC, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast) },
                    inputShape: [4, c.inC, c.size, c.size], label: "deconv \(c)")
        }
    }

    /// The matrix-product kernels against the plain-Swift reference in bf16, as AMX CPUs run them
    /// (and other CPUs with AVX-512 the weight gradient where the output is 4×4), on any CPU with
    /// AVX-512 (oneDNN's matmul computes bf16 without AMX too, only slower): DCGAN shapes and a
    /// small non-square one.
    func testColumnKernelsAgreeWithTheReference() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        checkColumnKernels(.bf16, on: [
            ConvolutionGeometry(batch: 3, inChannels: 64, inHeight: 16, inWidth: 16, outChannels: 128, kernel: 4, stride: 2, padding: 1),
            ConvolutionGeometry(batch: 2, inChannels: 256, inHeight: 8, inWidth: 8, outChannels: 512, kernel: 4, stride: 2, padding: 1),
            ConvolutionGeometry(batch: 3, inChannels: 16, inHeight: 6, inWidth: 10, outChannels: 24, kernel: 4, stride: 2, padding: 1),
        ])
    }

    /// The same kernels in fp32, with which CPUs without AVX-512 compute the weight gradient of
    /// the layers with a 4×4 output (here 32 px D's 128 → 256), checked on every CPU; and which
    /// precision and CPU take them for which geometry.
    func testFP32ColumnKernelsAgreeWithTheReference() {
        checkColumnKernels(.fp32, on: [
            ConvolutionGeometry(batch: 2, inChannels: 128, inHeight: 8, inWidth: 8, outChannels: 256, kernel: 4, stride: 2, padding: 1),
            ConvolutionGeometry(batch: 3, inChannels: 16, inHeight: 6, inWidth: 10, outChannels: 24, kernel: 4, stride: 2, padding: 1),
        ])
        let fourByFour = ConvolutionGeometry(batch: 64, inChannels: 256, inHeight: 8, inWidth: 8, outChannels: 512, kernel: 4, stride: 2, padding: 1)
        let eightByEight = ConvolutionGeometry(batch: 64, inChannels: 128, inHeight: 16, inWidth: 16, outChannels: 256, kernel: 4, stride: 2, padding: 1)
        XCTAssertTrue(ColumnConvolutionKernels.computesWeightGradient(of: fourByFour, precision: .fp32, avx512: false))
        XCTAssertFalse(ColumnConvolutionKernels.computesWeightGradient(of: fourByFour, precision: .fp32, avx512: true))
        XCTAssertTrue(ColumnConvolutionKernels.computesWeightGradient(of: fourByFour, precision: .bf16, avx512: true))
        XCTAssertFalse(ColumnConvolutionKernels.computesWeightGradient(of: eightByEight, precision: .fp32, avx512: false))
        XCTAssertFalse(ColumnConvolutionKernels.computesWeightGradient(of: eightByEight, precision: .bf16, avx512: true))
    }

    private func checkColumnKernels(_ precision: Precision, on geometries: [ConvolutionGeometry], file: StaticString = #filePath, line: UInt = #line) {
        func assertClose(_ result: Tensor, _ expected: Tensor, _ label: String) {
            if precision == .bf16 { return assertBF16Close(result, expected, label, file: file, line: line) }
            XCTAssertEqual(result.shape, expected.shape, label, file: file, line: line)
            XCTAssertLessThan(relativeError(result, expected), 1e-5, "\(label) in fp32", file: file, line: line)
        }
        for g in geometries {
            let input = Tensor(shape: g.inputShape), weight = Tensor(shape: g.weightShape), gradient = Tensor(shape: g.outputShape)
            randomize(input, seed: 1)
            randomize(weight, seed: 2, scale: 0.05)
            randomize(gradient, seed: 3)
            let columns = ColumnConvolutionKernels(g, precision: precision), reference = ReferenceConvolutionKernels(g)
            let output = Tensor(shape: [1]), expectedOutput = Tensor(shape: [1])
            columns.forward(input: input, weight: weight, output: output)
            reference.forward(input: input, weight: weight, output: expectedOutput)
            assertClose(output, expectedOutput, "\(g) forward")

            let inputGradient = Tensor(shape: [1]), expectedInputGradient = Tensor(shape: [1])
            columns.backwardData(outputGradient: gradient, weight: weight, inputGradient: inputGradient)
            reference.backwardData(outputGradient: gradient, weight: weight, inputGradient: expectedInputGradient)
            assertClose(inputGradient, expectedInputGradient, "\(g) input gradient")

            // Both accumulate onto what the gradient already holds.
            let weightGradient = Tensor(shape: g.weightShape), expectedWeightGradient = Tensor(shape: g.weightShape)
            weightGradient.fill(1)
            expectedWeightGradient.fill(1)
            columns.backwardWeights(input: input, outputGradient: gradient, weightGradient: weightGradient)
            reference.backwardWeights(input: input, outputGradient: gradient, weightGradient: expectedWeightGradient)
            for tensor in [weightGradient, expectedWeightGradient] {
                for i in 0..<tensor.count { tensor[i] -= 1 }
            }
            assertClose(weightGradient, expectedWeightGradient, "\(g) weight gradient")

            // A changed weight is copied again; a changed input is laid out again.
            for i in 0..<weight.count { weight[i] *= -2 }
            for i in 0..<input.count { input[i] = input[i] * 0.5 + 0.25 }
            columns.forward(input: input, weight: weight, output: output)
            reference.forward(input: input, weight: weight, output: expectedOutput)
            assertClose(output, expectedOutput, "\(g) forward after a change")
        }
    }

    /// The weight gradient on the forward kernel, batch and channels swapped, against the
    /// plain-Swift reference: DCGAN's stride-2 shapes (narrower), a batch that does not fill a block of 16, a
    /// stride-1 and an unpadded geometry; operands plain fp32 and in the bf16 blocked layout the
    /// layers pass; added onto what the gradient holds.
    func testSwappedWeightGradientAgreesWithTheReference() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let geometries = [
            ConvolutionGeometry(batch: 16, inChannels: 32, inHeight: 16, inWidth: 16, outChannels: 64, kernel: 4, stride: 2, padding: 1),
            ConvolutionGeometry(batch: 5, inChannels: 64, inHeight: 8, inWidth: 8, outChannels: 128, kernel: 4, stride: 2, padding: 1),
            ConvolutionGeometry(batch: 3, inChannels: 128, inHeight: 8, inWidth: 8, outChannels: 256, kernel: 4, stride: 2, padding: 1),
            ConvolutionGeometry(batch: 4, inChannels: 16, inHeight: 9, inWidth: 9, outChannels: 32, kernel: 3, stride: 1, padding: 1),
            ConvolutionGeometry(batch: 2, inChannels: 32, inHeight: 10, inWidth: 10, outChannels: 16, kernel: 4, stride: 2, padding: 0),
        ]
        for g in geometries {
            XCTAssertTrue(SwappedWeightGradient.applies(to: g), "\(g)")
            let input = Tensor(shape: g.inputShape), gradient = Tensor(shape: g.outputShape)
            randomize(input, seed: 1)
            randomize(gradient, seed: 3)
            let expected = Tensor(shape: g.weightShape)
            expected.fill(1)
            ReferenceConvolutionKernels(g).backwardWeights(input: input, outputGradient: gradient, weightGradient: expected)
            var inputScratch: Tensor?, gradientScratch: Tensor?
            let layout = DNNLConvolutionKernels(g, precision: .bf16).preferredSourceFormat
            XCTAssertFalse(layout.isPlain, "\(g)")
            let blocked = [layout.holding(.bf16), layout.holding(.fp32).sameLayout(for: g.outputShape)!.holding(.bf16)]
            let swapped = SwappedWeightGradient(g)
            for (label, x, dy) in [("plain fp32", input, gradient),
                                   ("blocked bf16", input.converted(to: blocked[0], scratch: &inputScratch),
                                    gradient.converted(to: blocked[1], scratch: &gradientScratch))] {
                let weightGradient = Tensor(shape: g.weightShape)
                weightGradient.fill(1)
                swapped.run(input: x, outputGradient: dy, weightGradient: weightGradient)
                assertBF16Close(weightGradient, expected, "\(g) \(label)")
            }
        }
        for other in [ConvolutionGeometry(batch: 4, inChannels: 3, inHeight: 64, inWidth: 64, outChannels: 64, kernel: 4, stride: 2, padding: 1),
                      ConvolutionGeometry(batch: 4, inChannels: 64, inHeight: 32, inWidth: 32, outChannels: 1, kernel: 4, stride: 2, padding: 1),
                      ConvolutionGeometry(batch: 4, inChannels: 24, inHeight: 8, inWidth: 8, outChannels: 32, kernel: 4, stride: 2, padding: 1),
                      // The last row and column are never read: the far side would need negative padding.
                      ConvolutionGeometry(batch: 2, inChannels: 32, inHeight: 11, inWidth: 11, outChannels: 16, kernel: 4, stride: 2, padding: 0)] {
            XCTAssertFalse(SwappedWeightGradient.applies(to: other), "\(other)")
        }
    }

    /// A backward-data split by phase against the plain-Swift reference, its input gradient in
    /// `type`, run again after the weight changed (the phase weights are kept until it does).
    /// Returns the input gradient.
    @discardableResult
    private func assertPhaseSplitMatchesReference(_ g: ConvolutionGeometry, type: Precision, gradientFormat: MemoryFormat,
                                                  run: (_ gradient: Tensor, _ weight: Tensor, _ inputGradient: Tensor) -> Void,
                                                  file: StaticString = #filePath, line: UInt = #line) -> Tensor {
        let reference = ReferenceConvolutionKernels(g)
        let weight = Tensor(shape: g.weightShape), gradient = Tensor(shape: g.outputShape)
        randomize(weight, seed: 2, scale: 0.05)
        randomize(gradient, seed: 3)
        var scratch: Tensor?
        let inputGradient = Tensor(shape: [1]), expected = Tensor(shape: [1])
        for round in 0..<2 {
            run(gradient.converted(to: gradientFormat, scratch: &scratch), weight, inputGradient)
            reference.backwardData(outputGradient: gradient, weight: weight, inputGradient: expected)
            XCTAssertEqual(inputGradient.format?.precision ?? .fp32, type, "\(g)", file: file, line: line)
            assertBF16Close(inputGradient, expected, "\(g) input gradient, round \(round)", file: file, line: line)
            for i in 0..<weight.count { weight[i] *= -2 }
        }
        return inputGradient
    }

    /// Backward-data split by phase on oneDNN's forward convolution, against the plain-Swift
    /// reference: an image gradient in fp32 and bf16, square and not; and again after the weight
    /// changed.
    func testPhaseBackwardDataAgreesWithTheReference() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let cases: [(ConvolutionGeometry, Precision)] = [
            (ConvolutionGeometry(batch: 3, inChannels: 3, inHeight: 16, inWidth: 16, outChannels: 32, kernel: 4, stride: 2, padding: 1), .fp32),
            (ConvolutionGeometry(batch: 2, inChannels: 4, inHeight: 8, inWidth: 8, outChannels: 64, kernel: 4, stride: 2, padding: 1), .bf16),
            (ConvolutionGeometry(batch: 2, inChannels: 1, inHeight: 6, inWidth: 10, outChannels: 16, kernel: 4, stride: 2, padding: 1), .fp32),
        ]
        for (g, type) in cases {
            XCTAssertTrue(PhaseBackwardData.applies(to: g), "\(g)")
            let phase = PhaseBackwardData(g, type: type)
            assertPhaseSplitMatchesReference(g, type: type, gradientFormat: phase.gradientFormat) {
                phase.run(gradient: $0, weight: $1, inputGradient: $2)
            }
        }
        for other in [ConvolutionGeometry(batch: 1, inChannels: 3, inHeight: 15, inWidth: 15, outChannels: 8, kernel: 4, stride: 2, padding: 1),
                      ConvolutionGeometry(batch: 1, inChannels: 16, inHeight: 8, inWidth: 8, outChannels: 8, kernel: 4, stride: 2, padding: 1)] {
            XCTAssertFalse(PhaseBackwardData.applies(to: other), "\(other)")
        }
    }

    /// Backward-data of 4×4 outputs as four phase convolutions on oneDNN's forward kernel, against
    /// the plain-Swift reference: DCGAN's shape (narrower) and a batch that does not fill a block of
    /// 16, in bf16 and fp32, written channel-blocked; and again after the weight changed.
    func testSplitPhaseBackwardDataAgreesWithTheReference() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let cases: [(ConvolutionGeometry, Precision)] = [
            (ConvolutionGeometry(batch: 4, inChannels: 64, inHeight: 8, inWidth: 8, outChannels: 128, kernel: 4, stride: 2, padding: 1), .bf16),
            (ConvolutionGeometry(batch: 3, inChannels: 32, inHeight: 8, inWidth: 8, outChannels: 16, kernel: 4, stride: 2, padding: 1), .fp32),
        ]
        for (g, type) in cases {
            XCTAssertTrue(SplitPhaseBackwardData.applies(to: g), "\(g)")
            let split = SplitPhaseBackwardData(g, type: type)
            let inputGradient = assertPhaseSplitMatchesReference(g, type: type, gradientFormat: split.gradientFormat) {
                split.run(gradient: $0, weight: $1, inputGradient: $2)
            }
            XCTAssertEqual(inputGradient.format, .channelBlocked(g.inputShape, type), "\(g)")
        }
        for other in [ConvolutionGeometry(batch: 1, inChannels: 64, inHeight: 16, inWidth: 16, outChannels: 128, kernel: 4, stride: 2, padding: 1),
                      ConvolutionGeometry(batch: 1, inChannels: 3, inHeight: 8, inWidth: 8, outChannels: 64, kernel: 4, stride: 2, padding: 1),
                      ConvolutionGeometry(batch: 1, inChannels: 64, inHeight: 8, inWidth: 8, outChannels: 24, kernel: 4, stride: 2, padding: 1),
                      ConvolutionGeometry(batch: 1, inChannels: 64, inHeight: 8, inWidth: 8, outChannels: 128, kernel: 3, stride: 1, padding: 1)] {
            XCTAssertFalse(SplitPhaseBackwardData.applies(to: other), "\(other)")
        }
    }

    /// D's trunk: convolutions joined by batch normalisation and LeakyReLU pass bf16 activations
    /// (the rule in `Sequential.setPrecision`). Forward and back, the chain is as close to fp32 as
    /// the same chain with bf16 convolutions and fp32 activations between them (batch
    /// normalisation's backward subtracts batch means, which magnifies any rounding to a few
    /// percent on a batch of 4), and so is the frozen-slope pass a gradient penalty runs.
    func testBF16ActivationsBetweenConvolutionsAgreeWithFP32() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        func trunk() -> Sequential {
            Sequential([Conv2d(3, 32, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast), LeakyReLU(backend: .fast),
                        Conv2d(32, 64, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast), BatchNorm2d(64, backend: .fast),
                        LeakyReLU(backend: .fast), Conv2d(64, 1, kernel: 4, stride: 1, padding: 0, bias: false, backend: .fast)])
        }
        let fp32 = trunk(), bf16 = trunk(), convolutionsOnly = trunk()
        bf16.setPrecision(.bf16)
        convolutionsOnly.setPrecision(.bf16)
        for case let convolution as Conv2d in convolutionsOnly.layers {
            convolution.outputPrecision = .fp32
            convolution.inputGradientPrecision = .fp32
        }
        for (index, parameter) in fp32.parameters.enumerated() where parameter.value.count > 64 {
            randomize(parameter.value, seed: UInt64(10 + index), scale: 0.1)
            bf16.parameters[index].value.copy(from: parameter.value)
            convolutionsOnly.parameters[index].value.copy(from: parameter.value)
        }
        let input = Tensor(shape: [4, 3, 16, 16]), gradient = Tensor(shape: [4, 1, 1, 1])
        randomize(input, seed: 4)
        randomize(gradient, seed: 5)
        func run(_ network: Sequential) -> [Tensor] {
            let output = network.forward(input).clone()
            return [output, network.backward(gradient)!.clone()] + network.parameters.map(\.gradient)
        }
        let expected = run(fp32), reference = run(convolutionsOnly), results = run(bf16)
        let labels = ["forward", "input gradient"] + fp32.parameters.map { "\($0.name) gradient" }
        for (label, (result, (bound, exact))) in zip(labels, zip(results, zip(reference, expected))) {
            let error = relativeError(result, exact), allowed = relativeError(bound, exact) * 1.5 + 2e-3
            XCTAssertLessThan(error, allowed, "\(label): relative error \(error), bf16 convolutions alone \(allowed)")
            XCTAssertLessThan(error, 0.1, label)
        }
        XCTAssertEqual(bf16.layers[0].forward(input).format?.precision, .bf16, "the first convolution writes bf16")
        XCTAssertEqual(bf16.layers[5].forward(bf16.forward(input, layers: 0..<5)).format?.precision ?? .fp32, .fp32, "the logits stay fp32")
        _ = bf16.forward(input)
        // With AMX the second convolution is a matrix product (`ColumnConvolutionKernels`), which
        // writes fp32 whatever it is asked; the LeakyReLU's activation is bf16 either way, and so
        // is the gradient it passes back.
        XCTAssertEqual(bf16.backward(gradient, layers: 2..<6)?.format?.precision ?? .fp32, Precision.amxSupported ? .fp32 : .bf16,
                       "the second convolution's input gradient, going back to the first through primitives only, is bf16")
        XCTAssertEqual(bf16.backward(gradient, layers: 1..<6)?.format?.precision, .bf16, "the LeakyReLU passes it back in bf16")

        // Frozen slopes read bf16 activations as fp32: the same pass as unfrozen, to bf16's rounding.
        let unfrozen = bf16.forward(input).clone()
        for case let activation as LeakyReLU in bf16.layers { activation.freezesPattern = true }
        assertBF16Close(bf16.forward(input), unfrozen, "frozen forward", mustDiffer: false)
        for case let activation as LeakyReLU in bf16.layers { activation.freezesPattern = false }

        // A Swift-loop reader (MinibatchStd) or a non-convolution next keeps a convolution's output fp32.
        let guarded = Sequential([Conv2d(3, 8, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast), LeakyReLU(backend: .fast),
                                  MinibatchStd(), Conv2d(9, 8, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast), Tanh(backend: .fast)])
        guarded.setPrecision(.bf16)
        XCTAssertEqual(guarded.layers[0].forward(input).format?.precision ?? .fp32, .fp32)
        XCTAssertEqual(guarded.layers[3].forward(guarded.forward(input, layers: 0..<3)).format?.precision ?? .fp32, .fp32)
        let guardedGradient = Tensor(shape: [4, 8, 4, 4])
        randomize(guardedGradient, seed: 6)
        _ = guarded.forward(input)
        XCTAssertEqual(guarded.backward(guardedGradient, layers: 3..<5)?.format?.precision ?? .fp32, .fp32,
                       "MinibatchStd's backward reads the gradient in Swift: fp32")
    }

    /// G's front: the dense first layer (z, 1×1 → 4×4) writes fp32 whatever it is asked, so the
    /// transposed convolution after it must send its input gradient back in fp32 too (as autocast
    /// keeps a gradient in its activation's type): rounding it to bf16 there changed G's first
    /// layers' gradients, and training no longer matched the fp32-gradient build bit for bit.
    func testAConvolutionAfterAnFP32ActivationSendsItsGradientBackInFP32() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let front = Sequential([ConvTranspose2d(8, 32, kernel: 4, stride: 1, padding: 0, bias: false, backend: .fast), BatchNorm2d(32, backend: .fast),
                                ReLU(backend: .fast), ConvTranspose2d(32, 16, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast),
                                BatchNorm2d(16, backend: .fast), ReLU(backend: .fast),
                                ConvTranspose2d(16, 8, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast)])
        front.setPrecision(.bf16)
        for (index, parameter) in front.parameters.enumerated() where parameter.value.count > 64 { randomize(parameter.value, seed: UInt64(20 + index), scale: 0.1) }
        let z = Tensor(shape: [4, 8, 1, 1]), gradient = Tensor(shape: [4, 8, 16, 16])
        randomize(z, seed: 7)
        randomize(gradient, seed: 8)
        let first = front.layers[0].forward(z)
        XCTAssertEqual(first.format?.precision ?? .fp32, .fp32, "the dense first layer writes fp32")
        _ = front.forward(z)
        XCTAssertEqual(front.backward(gradient, layers: 3..<7)?.format?.precision ?? .fp32, .fp32,
                       "the input gradient of a convolution whose input was fp32")
        // With AMX the 32 → 16 layer is a matrix product that writes fp32, so the last layer's
        // input is fp32 there, and so is its gradient.
        XCTAssertEqual(front.backward(gradient, layers: 6..<7)?.format?.precision ?? .fp32, Precision.amxSupported ? .fp32 : .bf16,
                       "between two convolutions that pass bf16 it stays bf16")
    }

    func testBF16WithoutAVX512BF16FallsBackToFP32WithANote() {
        let fallback = Precision.resolve(.bf16, bf16Supported: false)
        XCTAssertEqual(fallback.precision, .fp32)
        XCTAssertTrue(fallback.note?.contains("AVX512-BF16") ?? false, fallback.note ?? "no note")
        XCTAssertEqual(Precision.resolve(.bf16, bf16Supported: true, bf16Speedup: { 1.7 }).precision, .bf16)
        XCTAssertNil(Precision.resolve(.bf16, bf16Supported: true, bf16Speedup: { 1.7 }).note)
        XCTAssertNil(Precision.resolve(.fp32, bf16Supported: false).note)
    }

    func testSlowerBF16KeepsBF16AndSaysFP32IsFaster() {
        let slower = Precision.resolve(.bf16, bf16Supported: true, bf16Speedup: { 0.554 })
        XCTAssertEqual(slower.precision, .bf16, "a timing does not change the arithmetic asked for")
        XCTAssertTrue(slower.note?.contains("0.55× its fp32 speed") ?? false, slower.note ?? "no note")
        XCTAssertTrue(slower.note?.contains("--precision fp32") ?? false, slower.note ?? "no note")
        var timed = false
        XCTAssertNil(Precision.resolve(.fp32, bf16Supported: true, bf16Speedup: { timed = true; return 0.5 }).note)
        XCTAssertFalse(timed, "fp32 runs are not timed")
    }

    func testMeasuredBF16SpeedupIsARatioOfTwoTimings() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let speedup = Precision.measuredBF16Speedup()
        XCTAssertTrue(speedup.isFinite && speedup > 0.05 && speedup < 20, "\(speedup)")
    }
}
