import Formats
import NN
import XCTest

final class LayerGradientTests: XCTestCase {
    private func initialise(_ layer: Layer, seed: UInt64) {
        var random = SeededRandom(seed: seed)
        for parameter in layer.parameters {
            Initialization.normal(parameter.value, mean: parameter.name.hasSuffix("bn.weight") ? 1 : 0, standardDeviation: 0.3, random: &random)
        }
    }

    func testConv2dGradients() {
        for (stride, padding, kernel) in [(1, 0, 3), (2, 1, 4), (2, 0, 3), (1, 2, 2)] {
            let conv = Conv2d(3, 4, kernel: kernel, stride: stride, padding: padding, bias: true)
            initialise(conv, seed: 1)
            GradientCheck.check(conv, input: GradientCheck.randomTensor([2, 3, 7, 6], seed: 2))
        }
    }

    func testConvTranspose2dGradients() {
        for (stride, padding, kernel) in [(2, 1, 4), (1, 0, 4), (2, 0, 3)] {
            let deconv = ConvTranspose2d(3, 2, kernel: kernel, stride: stride, padding: padding, bias: true)
            initialise(deconv, seed: 3)
            GradientCheck.check(deconv, input: GradientCheck.randomTensor([2, 3, 4, 5], seed: 4))
        }
    }

    func testConvTransposeIsTheAdjointOfConv() {
        // ⟨conv(x), y⟩ = ⟨x, convᵀ(y)⟩ with the same weight tensor.
        let conv = Conv2d(3, 5, kernel: 4, stride: 2, padding: 1, bias: false)
        let deconv = ConvTranspose2d(5, 3, kernel: 4, stride: 2, padding: 1, bias: false)
        initialise(conv, seed: 8)
        deconv.weight.value.copy(from: conv.weight.value)
        let x = GradientCheck.randomTensor([2, 3, 8, 8], seed: 9), y = GradientCheck.randomTensor([2, 5, 4, 4], seed: 10)
        let cx = conv.forward(x), dy = deconv.forward(y)
        XCTAssertEqual(dy.shape, x.shape)
        var left = 0.0, right = 0.0
        for i in 0..<cx.count { left += Double(cx[i]) * Double(y[i]) }
        for i in 0..<x.count { right += Double(x[i]) * Double(dy[i]) }
        XCTAssertEqual(left, right, accuracy: 1e-4 * abs(left))
    }

    func testBatchNormGradientsInTrainingAndEvaluation() {
        let norm = BatchNorm2d(3, name: "bn")
        initialise(norm, seed: 5)
        GradientCheck.check(norm, input: GradientCheck.randomTensor([4, 3, 3, 2], seed: 6, scale: 2))
        norm.isTraining = false
        norm.runningMean.fill(0.1)
        norm.runningVariance.fill(0.7)
        GradientCheck.check(norm, input: GradientCheck.randomTensor([4, 3, 3, 2], seed: 7, scale: 2))
    }

    func testClassAffineScalesAndShiftsEachImagesClassAndItsGradientsMatchFiniteDifferences() {
        let affine = ClassAffine(channels: 3, classes: 4, name: "main.1")
        XCTAssertEqual(affine.parameters.map(\.name), ["main.1.class_weight", "main.1.class_bias"])
        affine.classes = [2, 0, 2]
        let input = GradientCheck.randomTensor([3, 3, 2, 2], seed: 8, scale: 2)
        XCTAssertEqual(affine.forward(input).values, input.values, "zero-initialised: the identity")
        affine.scale.value.assign(shape: [4, 3], values: (0..<12).map { Float($0) * 0.1 - 0.5 })
        affine.shift.value.assign(shape: [4, 3], values: (0..<12).map { Float($0) * -0.2 + 1 })
        let output = affine.forward(input)
        // Image 1 is class 0: channel 2 gets × (1 + a[0, 2]) + b[0, 2] = × 0.7 + 0.6.
        XCTAssertEqual(output[1 * 12 + 2 * 4 + 3], input[1 * 12 + 2 * 4 + 3] * 0.7 + 0.6, accuracy: 1e-6)
        // Image 2 is class 2: channel 0 gets × (1 + a[2, 0]) + b[2, 0] = × 1.1 − 0.2.
        XCTAssertEqual(output[2 * 12 + 1], input[2 * 12 + 1] * 1.1 - 0.2, accuracy: 1e-6)
        GradientCheck.check(affine, input: input)
        // Classes 1 and 3 are in no image: their rows get no gradient.
        affine.scale.zeroGradient()
        _ = affine.forward(input)
        _ = affine.backward(GradientCheck.randomTensor(output.shape, seed: 9))
        for k in [1, 3] { for c in 0..<3 { XCTAssertEqual(affine.scale.gradient[k * 3 + c], 0) } }
    }

    func testBatchNormMatchesPyTorchSemantics() {
        let norm = BatchNorm2d(1)
        let input = Tensor(shape: [2, 1, 1, 2], values: [1, 2, 3, 6])  // mean 3, biased var 3.5, unbiased 14/3
        let output = norm.forward(input)
        let inverse = 1 / (3.5 + 1e-5).squareRoot()
        XCTAssertEqual(Double(output[0]), -2 * inverse, accuracy: 1e-5)
        XCTAssertEqual(Double(output[3]), 3 * inverse, accuracy: 1e-5)
        XCTAssertEqual(norm.runningMean[0], 0.3, accuracy: 1e-6)
        XCTAssertEqual(norm.runningVariance[0], 0.9 + 0.1 * 14 / 3, accuracy: 1e-6)
        norm.isTraining = false
        let evaluated = norm.forward(input)
        XCTAssertEqual(evaluated[0], (1 - 0.3) / (norm.runningVariance[0] + 1e-5).squareRoot(), accuracy: 1e-6)
    }

    func testActivationGradients() {
        let input = GradientCheck.randomTensor([2, 3, 4, 4], seed: 11, scale: 2, awayFromZero: 0.05)
        for layer in [ReLU(), LeakyReLU(slope: 0.2), Tanh(), Sigmoid()] as [Layer] {
            GradientCheck.check(layer, input: input, step: 1e-3)
        }
        XCTAssertEqual(LeakyReLU(slope: 0.2).forward(Tensor(shape: [2], values: [-1, 3])).values, [-0.2, 3])
        XCTAssertEqual(Sigmoid().forward(Tensor(shape: [2], values: [-200, 200])).values, [0, 1])
    }

    func testLinearAndFlattenGradients() {
        let linear = Linear(12, 5)
        initialise(linear, seed: 12)
        GradientCheck.check(Sequential([Flatten(), linear]), input: GradientCheck.randomTensor([3, 3, 2, 2], seed: 13))
    }

    func testDropoutScalesKeptUnitsAndIsIdentityInEvaluation() {
        let dropout = Dropout(probability: 0.25, seed: 1)
        let input = Tensor(shape: [10_000])
        input.fill(1)
        let output = dropout.forward(input)
        let kept = output.values.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 10_000, 0.75, accuracy: 0.02)
        XCTAssertTrue(kept.allSatisfy { abs($0 - 4.0 / 3.0) < 1e-6 })
        let gradient = dropout.backward(input)!
        XCTAssertEqual(gradient.values, output.values)
        dropout.isTraining = false
        XCTAssertEqual(dropout.forward(input).values, input.values)
    }

    func testFirstLayerSkipsInputGradientAndFrozenLayersSkipWeightGradients() {
        let conv = Conv2d(1, 2, kernel: 3, bias: false)
        initialise(conv, seed: 14)
        let input = GradientCheck.randomTensor([1, 1, 5, 5], seed: 15)
        let output = conv.forward(input)
        conv.needsInputGradient = false
        XCTAssertNil(conv.backward(output))
        XCTAssertNotEqual(conv.weight.gradient.values.reduce(0) { $0 + abs($1) }, 0)
        conv.weight.zeroGradient()
        conv.needsInputGradient = true
        conv.computesParameterGradients = false
        XCTAssertNotNil(conv.backward(output))
        XCTAssertEqual(conv.weight.gradient.values.reduce(0) { $0 + abs($1) }, 0)
    }
}
